"""huber_loss and smooth_l1_loss (functional and class).

Kept small (compile time dominates): reductions rotate across shapes and parameters, and the
differences are chosen so that every branch is hit: exact ties, both zones, the switch point,
NaN, infinities.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..harness import Case
from ._data import FLOAT_DTYPES, HALF_DTYPES, REDUCTIONS, normal, positive, rng, with_ties

SHAPES = [(), (7,), (3, 4), (2, 3, 4)]
PARAM = {"huber_loss": ("delta", (0.5, 1.0, 2.5)), "smooth_l1_loss": ("beta", (0.0, 0.5, 1.0, 3.0))}
CLASSES = {"huber_loss": "HuberLoss", "smooth_l1_loss": "SmoothL1Loss"}


def boundary(key, shape, t) -> np.ndarray:
    """Differences of exactly 0, +-t/2, +-t and +-2t: the tie, both zones and the switch point."""
    picks = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0]) * t
    return rng("boundary", key, shape).choice(picks, size=shape)


def _rot(i: int) -> str:
    return REDUCTIONS[i % 3]


def _torch_huber_w(x, y, w, **kw):
    import torch.nn.functional as TF

    return TF.huber_loss(x, y, weight=w, **kw)


def _jax_huber_w(x, y, w, **kw):
    import losses_jax

    return losses_jax.huber_loss(x, y, weight=w, **kw)


def cases() -> list[Case]:
    out = []
    for fn, dtype in itertools.product(PARAM, FLOAT_DTYPES):
        pname, values = PARAM[fn]
        fam = lambda what: f"{fn}: {what}"
        add = lambda what, args, kw, label, **o: out.append(
            Case(fam(what), o.pop("name", fn), args, kw, grad=o.pop("grad", (0, 1)), dtype=dtype, label=label, **o)
        )
        for i, shape in enumerate(SHAPES):
            red = _rot(i)
            add(
                "reductions x shapes",
                (normal((fn, shape), shape, 2.0), normal((fn, "t", shape), shape)),
                {"reduction": red},
                f"{shape},{red}",
            )
        for red in REDUCTIONS[1:]:
            add(
                "reductions x shapes",
                (normal((fn, red), (3, 4), 2.0), normal((fn, "t", red), (3, 4))),
                {"reduction": red},
                f"(3, 4),{red}",
            )
        for i, shape in enumerate(SHAPES[1:]):
            red = _rot(i)
            add(
                "ties (x == y, gradient 0)",
                (with_ties((fn, shape), shape), with_ties((fn, "t", shape), shape)),
                {"reduction": red},
                f"{shape},{red}",
            )
        for i, p in enumerate(values):
            red = _rot(i + 1)
            shape = (4, 6)
            add(
                f"{pname} x reductions",
                (normal((fn, "x", p), shape, 2.0), normal((fn, "y", p), shape)),
                {"reduction": red, pname: p},
                f"{pname}={p},{red}",
            )
            # differences exactly at 0, inside, at and beyond the threshold (y = 0 keeps them exact)
            for red in ("none", "mean"):
                add(
                    f"{pname}: differences at 0 and at the threshold",
                    (boundary((fn, p), shape, p if p else 1.0), np.zeros(shape)),
                    {"reduction": red, pname: p},
                    f"{pname}={p},{red}",
                )
        if fn == "huber_loss":
            for i, shape in enumerate(SHAPES):
                red, delta = _rot(i), (0.7, 1.0)[i % 2]
                add(
                    "weight x reductions",
                    (normal((fn, shape), shape, 2.0), normal((fn, "t", shape), shape)),
                    {"reduction": red, "delta": delta, "weight": positive((fn, "w", shape), shape)},
                    f"{shape},{red},delta={delta}",
                )
            add(
                "weight x reductions",
                (normal((fn, 8), (2, 3)), normal((fn, 9), (2, 3))),
                {"reduction": "mean", "weight": np.zeros((2, 3))},
                "zero weight",
            )
            for red in ("none", "sum"):
                add(
                    "weight with broadcast target (warns)",
                    (normal((fn, 5), (3, 1)), normal((fn, 6), (3,))),
                    {"reduction": red, "weight": positive((fn, 7), (3, 1))},
                    red,
                )
            for red in ("none", "mean"):
                # the weight is differentiable in torch's huber_loss (a plain multiply): compare it too
                add(
                    "weight gradient",
                    (normal((fn, 10), (3, 4), 2.0), normal((fn, 11), (3, 4)), positive((fn, 12), (3, 4))),
                    {"reduction": red},
                    red,
                    grad=(0, 1, 2),
                    torch_fn=_torch_huber_w,
                    jax_fn=_jax_huber_w,
                )
        else:
            for sa, rd in ((False, None), (None, False), (True, True), (False, True)):
                add(
                    "legacy size_average/reduce",
                    (normal((fn, 1), (3, 4)), normal((fn, 2), (3, 4))),
                    {"size_average": sa, "reduce": rd, "beta": 0.5},
                    f"sa={sa},reduce={rd}",
                    kind="reduction",
                )
        for i, (si, st) in enumerate([((3, 1), (3,)), ((4,), (1,)), ((2, 1, 3), (4, 1))]):
            red = _rot(i)
            add(
                "broadcast target (warns)",
                (normal((fn, si), si), normal((fn, st), st)),
                {"reduction": red},
                f"{si} vs {st},{red}",
            )
        special = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, 1e30, 3.0, -np.inf])
        tgt = np.array([0.0, 0.0, np.inf, 1.0, np.nan, -1e30, np.inf, 2.0])
        for p in values:
            add("edge: NaN, inf, huge", (special, tgt), {"reduction": "none", pname: p}, f"none,{pname}={p}")
        add(
            "edge: NaN, inf, huge",
            (special[[0, 2, 3, 5, 6]], tgt[[0, 2, 3, 5, 6]]),
            {"reduction": "sum"},
            "sum, no NaN",
        )
        for red in ("none", "mean"):
            add("edge: empty", (np.zeros((0,)), np.zeros((0,))), {"reduction": red}, red)
        if fn == "huber_loss":
            add(
                "edge: empty",
                (np.zeros((0, 3)), np.zeros((0, 3))),
                {"reduction": "mean", "weight": np.zeros((0, 3))},
                "mean,weight",
            )
        kws = (
            {},
            {"reduction": "sum"},
            {"reduction": "none", pname: values[0]},
            {pname: values[-1], "reduction": "sum"},
        )
        if fn == "smooth_l1_loss":
            kws += ({"size_average": False}, {"reduce": False, "beta": 0.5})
        for kw in kws:
            add(
                "class API",
                (normal((fn, 10), (3, 5), 2.0), normal((fn, 11), (3, 5))),
                {},
                str(kw),
                name=CLASSES[fn],
                module_kwargs=kw,
                kind="elementwise" if kw.get("reduction") == "none" or kw.get("reduce") is False else "reduction",
            )
    for fn, dtype, red in itertools.product(PARAM, HALF_DTYPES, ("none", "mean")):
        out.append(
            Case(
                f"{fn}: half precision",
                fn,
                (normal((fn, 12), (4, 8), 2.0), normal((fn, 13), (4, 8))),
                {"reduction": red},
                grad=(0, 1),
                dtype=dtype,
                label=red,
            )
        )
    return out
