"""binary_cross_entropy(_with_logits), kl_div, poisson_nll_loss, gaussian_nll_loss (functional
and class). Reductions rotate across shapes to keep compile time down; each edge the losses
define (probabilities 0 and 1, huge logits, zero targets, tiny and zero variances) has its own
family so the report shows it."""

from __future__ import annotations

import itertools

import numpy as np

from ..harness import Case
from ._data import FLOAT_DTYPES, HALF_DTYPES, REDUCTIONS, normal, positive, probabilities, rng

SHAPES = [(), (7,), (3, 4), (2, 3, 4)]


def _rot(i: int, reds=REDUCTIONS) -> str:
    return reds[i % len(reds)]


def sigmoid(z):
    return np.asarray(1.0 / (1.0 + np.exp(-z)))  # 0-d stays an array (numpy gives a scalar)


def probs(key, shape):
    return sigmoid(normal(("p", key), shape, 2.0))


def unit(key, shape):
    return np.asarray(rng("unit", key, shape).uniform(0.0, 1.0, size=shape))


def with_01(key, shape):
    """Probabilities that include exact 0s and 1s."""
    g = rng("01", key, shape)
    return np.where(g.uniform(size=shape) < 0.4, g.integers(0, 2, size=shape).astype(np.float64), g.uniform(size=shape))


def _kind(kw):
    return "elementwise" if kw.get("reduction") == "none" or kw.get("reduce") is False else "reduction"


def _bce(out, dtype):
    fn = "binary_cross_entropy"
    add = lambda what, args, kw, label, **o: out.append(
        Case(f"{fn}: {what}", o.pop("name", fn), args, kw, grad=o.pop("grad", (0, 1)), dtype=dtype, label=label, **o)
    )
    for i, shape in enumerate(SHAPES):
        add(
            "reductions x shapes",
            (probs((fn, shape), shape), unit((fn, shape), shape)),
            {"reduction": _rot(i)},
            f"{shape},{_rot(i)}",
        )
    for red in ("mean", "sum"):
        add(
            "reductions x shapes",
            (probs((fn, red), (3, 4)), unit((fn, red), (3, 4))),
            {"reduction": red},
            f"(3, 4),{red}",
        )
    for i, ws in enumerate([(3, 4), (4,), (1, 4), (3, 1), ()]):
        red = _rot(i)
        add(
            "weight (broadcast to input) x reductions",
            (probs((fn, "w", ws), (3, 4)), unit((fn, "w", ws), (3, 4))),
            {"reduction": red, "weight": positive((fn, ws), ws)},
            f"weight {ws},{red}",
        )
    # exact 0/1 probabilities: each log term clamped at -100, gradients by torch's 1e-12 formula
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1e-30, 1 - 1e-7, 0.5])
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.3, 0.3, 0.0, 1.0, 1.0])
    for red in REDUCTIONS:
        add("probabilities 0 and 1 (log clamped at -100)", (x, t), {"reduction": red}, red)
    add(
        "probabilities 0 and 1 (log clamped at -100)",
        (with_01((fn, 1), (5, 6)), with_01((fn, 2), (5, 6))),
        {"reduction": "none", "weight": positive((fn, 3), (6,))},
        "random, weight",
    )
    for sa, rd in ((False, None), (None, False), (True, True)):
        add(
            "legacy size_average/reduce",
            (probs((fn, 1), (3, 4)), unit((fn, 2), (3, 4))),
            {"size_average": sa, "reduce": rd},
            f"sa={sa},reduce={rd}",
            kind="reduction",
        )
    for red in ("none", "mean"):
        add("edge: empty", (np.zeros((0, 3)), np.zeros((0, 3))), {"reduction": red}, red)
    for kw in (
        {},
        {"reduction": "sum"},
        {"reduction": "none", "weight": positive((fn, 4), (5,))},
        {"weight": positive((fn, 5), (3, 5))},
    ):
        add(
            "class API",
            (probs((fn, 10), (3, 5)), unit((fn, 11), (3, 5))),
            {},
            str(kw.keys()),
            name="BCELoss",
            module_kwargs=kw,
            kind=_kind(kw),
        )


def _bce_logits(out, dtype):
    fn = "binary_cross_entropy_with_logits"
    add = lambda what, args, kw, label, **o: out.append(
        Case(f"{fn}: {what}", o.pop("name", fn), args, kw, grad=o.pop("grad", (0, 1)), dtype=dtype, label=label, **o)
    )
    for i, shape in enumerate(SHAPES):
        add(
            "reductions x shapes",
            (normal((fn, shape), shape, 3.0), unit((fn, shape), shape)),
            {"reduction": _rot(i)},
            f"{shape},{_rot(i)}",
        )
    for red in ("mean", "sum"):
        add(
            "reductions x shapes",
            (normal((fn, red), (3, 4), 3.0), unit((fn, red), (3, 4))),
            {"reduction": red},
            f"(3, 4),{red}",
        )
    big = np.array([-1e4, -800.0, -100.0, -30.0, -17.0, 0.0, 17.0, 30.0, 100.0, 800.0, 1e4, -1e30, 1e30])
    for red in ("none", "sum"):
        for tv in (0.0, 1.0, 0.25):
            add(
                "large |logits| (stable log-sigmoid)",
                (big, np.full(big.shape, tv)),
                {"reduction": red},
                f"target {tv},{red}",
            )
    add(
        "large |logits| (stable log-sigmoid)",
        (big, np.full(big.shape, 1.0)),
        {"reduction": "none", "pos_weight": np.array(3.0)},
        "pos_weight",
    )
    shape = (2, 3, 4)
    for i, ws in enumerate([(4,), (3, 1), (1,), (), (2, 3, 4)]):
        red = _rot(i)
        add(
            "weight (broadcast) x reductions",
            (normal((fn, "w", ws), shape, 3.0), unit((fn, "w", ws), shape)),
            {"reduction": red, "weight": positive((fn, "w", ws), ws)},
            f"weight {ws},{red}",
        )
    for i, ps in enumerate([(4,), (3, 1), (3, 4), (1,), (), (2, 3, 4)]):
        red = _rot(i)
        add(
            "pos_weight over the last dimension x reductions",
            (normal((fn, "p", ps), shape, 3.0), with_01((fn, "p", ps), shape)),
            {"reduction": red, "pos_weight": positive((fn, "p", ps), ps, 0.1, 5.0)},
            f"pos_weight {ps},{red}",
        )
    for red in REDUCTIONS:
        add(
            "weight and pos_weight",
            (normal((fn, "b", red), (5, 3), 3.0), with_01((fn, "b", red), (5, 3))),
            {
                "reduction": red,
                "weight": positive((fn, "bw"), (5, 1)),
                "pos_weight": positive((fn, "bp"), (3,), 0.1, 5.0),
            },
            red,
        )
    add(
        "targets outside [0, 1] (accepted, as torch)",
        (normal((fn, "o"), (4, 5), 3.0), normal((fn, "ot"), (4, 5), 2.0)),
        {"reduction": "none", "pos_weight": positive((fn, "op"), (5,))},
        "none",
    )
    add(
        "targets outside [0, 1] (accepted, as torch)",
        (normal((fn, "o"), (4, 5), 3.0), normal((fn, "ot"), (4, 5), 2.0)),
        {"reduction": "mean"},
        "mean",
    )
    for sa, rd in ((False, None), (None, False), (True, True)):
        add(
            "legacy size_average/reduce",
            (normal((fn, 1), (3, 4)), unit((fn, 2), (3, 4))),
            {"size_average": sa, "reduce": rd},
            f"sa={sa},reduce={rd}",
            kind="reduction",
        )
    for red in ("none", "mean"):
        add("edge: empty", (np.zeros((0, 3)), np.zeros((0, 3))), {"reduction": red, "pos_weight": np.ones(3)}, red)
    add(
        "edge: NaN and inf",
        (np.array([np.nan, np.inf, -np.inf, np.inf, 1.0]), np.array([0.5, 0.0, 1.0, 1.0, np.nan])),
        {"reduction": "none"},
        "none",
    )
    for kw in (
        {},
        {"reduction": "sum"},
        {"reduction": "none", "pos_weight": positive((fn, 4), (5,))},
        {"weight": positive((fn, 5), (3, 1)), "pos_weight": positive((fn, 6), (5,))},
        {"reduce": False},
    ):
        add(
            "class API",
            (normal((fn, 10), (3, 5), 3.0), unit((fn, 11), (3, 5))),
            {},
            str(kw.keys()),
            name="BCEWithLogitsLoss",
            module_kwargs=kw,
            kind=_kind(kw),
        )


def _kl(out, dtype):
    fn = "kl_div"
    add = lambda what, args, kw, label, **o: out.append(
        Case(f"{fn}: {what}", o.pop("name", fn), args, kw, grad=o.pop("grad", (0, 1)), dtype=dtype, label=label, **o)
    )
    reds = ("none", "mean", "sum", "batchmean")
    for lt in (False, True):
        for i, shape in enumerate([(5,), (3, 4), (2, 3, 4), (4, 6)]):
            red = _rot(i, reds)
            p = probabilities((fn, shape), shape, -1)
            q = probabilities((fn, "q", shape), shape, -1)
            add(
                f"reductions x shapes (log_target={lt})",
                (np.log(q), np.log(p) if lt else p),
                {"reduction": red, "log_target": lt},
                f"{shape},{red}",
            )
    # target exactly 0: the term is 0 and its input gradient 0; the target gradient is torch's NaN
    t = np.array([[0.0, 0.5, 0.5, 0.0], [0.25, 0.0, 0.75, 0.0]])
    x = np.log(probabilities((fn, "z"), (2, 4), -1))
    for red in reds:
        add("target 0 (xlogy: 0 log 0 = 0)", (x, t), {"reduction": red}, red)
    add("target 0 (xlogy: 0 log 0 = 0)", (x, t), {"reduction": "sum"}, "input gradient only", grad=(0,))
    with np.errstate(divide="ignore"):
        log_t = np.log(t)  # -inf where t == 0
    add(
        "log_target -inf (target 0 in log space)",
        (x, log_t),
        {"reduction": "none", "log_target": True},
        "none",
        grad=(0,),
    )
    add(
        "edge: negative targets, huge inputs",
        (np.array([-1.0, -2.0, -1000.0, 3.0]), np.array([-0.5, 0.2, 0.2, 1e-300])),
        {"reduction": "none"},
        "none",
    )
    for i, (si, st) in enumerate([((3, 4), (4,)), ((3, 1), (3, 4)), ((3, 4), (3, 1))]):
        red = _rot(i, reds)
        add(
            "broadcast (silent, as torch)",
            (np.log(unit((fn, si), si)), unit((fn, "t", st), st)),
            {"reduction": red},
            f"{si} vs {st},{red}",
        )
    for red in ("batchmean", "sum"):
        add("0-d input (batchmean = sum)", (np.array(-1.0), np.array(0.5)), {"reduction": red}, red)
    for red in ("batchmean", "none"):
        add("edge: empty", (np.zeros((0, 3)), np.zeros((0, 3))), {"reduction": red}, red)
    for sa, rd in ((False, None), (None, False), (True, True)):
        add(
            "legacy size_average/reduce",
            (np.log(unit((fn, 1), (3, 4))), unit((fn, 2), (3, 4))),
            {"size_average": sa, "reduce": rd},
            f"sa={sa},reduce={rd}",
            kind="reduction",
        )
    for kw in (
        {},
        {"reduction": "batchmean"},
        {"reduction": "none", "log_target": True},
        {"reduction": "sum", "log_target": True},
    ):
        tgt = unit((fn, 11), (3, 5))
        add(
            "class API",
            (np.log(unit((fn, 10), (3, 5))), np.log(tgt) if kw.get("log_target") else tgt),
            {},
            str(kw),
            name="KLDivLoss",
            module_kwargs=kw,
            kind=_kind(kw),
        )


def _poisson(out, dtype):
    fn = "poisson_nll_loss"
    add = lambda what, args, kw, label, **o: out.append(
        Case(f"{fn}: {what}", o.pop("name", fn), args, kw, grad=o.pop("grad", (0, 1)), dtype=dtype, label=label, **o)
    )
    counts = lambda key, shape: rng("counts", key, shape).poisson(2.0, size=shape).astype(np.float64)
    i = 0
    for li, full in itertools.product((True, False), (False, True)):
        for shape in [(7,), (3, 4)]:
            red = _rot(i)
            i += 1
            x = normal((fn, li, shape), shape) if li else positive((fn, li, shape), shape, 0.1, 4.0)
            t = counts((fn, full, shape), shape) + 0.0  # includes 0, 1 and > 1
            add(
                "log_input x full x reductions",
                (x, t),
                {"reduction": red, "log_input": li, "full": full},
                f"log_input={li},full={full},{shape},{red}",
            )
    # Stirling only where target > 1: targets at 0, 1, just above 1, fractional, large
    t = np.array([0.0, 1.0, 1.0 + 1e-6, 0.5, 1.5, 2.0, 7.0, 100.0])
    x = np.array([0.5, -1.0, 0.3, 1.2, 2.0, 0.7, 2.0, 4.6])
    for li in (True, False):
        for red in ("none", "sum"):
            add(
                "full: Stirling term where target > 1",
                (x if li else np.abs(x), t),
                {"reduction": red, "log_input": li, "full": True},
                f"log_input={li},{red}",
            )
        add(
            "full: Stirling term where target > 1",
            (x if li else np.abs(x), t[[2, 4, 5, 6, 7]].repeat(2)[:8]),
            {"reduction": "none", "log_input": li, "full": True},
            f"log_input={li}, targets > 1, target gradient",
        )
    for eps in (1e-8, 0.5):
        add(
            "eps (log_input=False)",
            (np.array([0.0, 1e-9, 0.3, 2.0]), np.array([0.0, 2.0, 1.0, 3.0])),
            {"reduction": "none", "log_input": False, "eps": eps},
            f"eps={eps}",
        )
    add(
        "integer counts target",
        (normal((fn, "i"), (3, 4)), counts((fn, "i"), (3, 4)).astype(np.int64)),
        {"reduction": "mean"},
        "mean",
        grad=(0,),
    )
    add(
        "broadcast (silent, as torch)",
        (normal((fn, "b"), (3, 1)), counts((fn, "b"), (4,))),
        {"reduction": "none"},
        "none",
    )
    for sa, rd in ((False, None), (None, False)):
        add(
            "legacy size_average/reduce",
            (normal((fn, 1), (3, 4)), counts((fn, 2), (3, 4))),
            {"size_average": sa, "reduce": rd},
            f"sa={sa},reduce={rd}",
            kind="reduction",
        )
    add("edge: empty", (np.zeros((0, 3)), np.zeros((0, 3))), {"reduction": "mean"}, "mean")
    for kw in (
        {},
        {"full": True, "reduction": "sum"},
        {"log_input": False, "eps": 1e-3, "reduction": "none"},
        {"size_average": False},
    ):
        x = normal((fn, 10), (3, 5)) if kw.get("log_input", True) else positive((fn, 10), (3, 5))
        add(
            "class API",
            (x, counts((fn, 11), (3, 5))),
            {},
            str(kw),
            name="PoissonNLLLoss",
            module_kwargs=kw,
            kind=_kind(kw),
        )


def _gaussian(out, dtype):
    fn = "gaussian_nll_loss"
    add = lambda what, args, kw, label, **o: out.append(
        Case(f"{fn}: {what}", o.pop("name", fn), args, kw, grad=o.pop("grad", (0, 1, 2)), dtype=dtype, label=label, **o)
    )
    shape = (2, 3, 4)
    for i, vs in enumerate([(2, 3, 4), (2, 3), (2, 3, 1), (2, 1, 4), (1, 3, 4)]):
        red = _rot(i)
        full = i % 2 == 1
        add(
            "var shapes (same, one fewer dim, one dim of 1) x reductions",
            (normal((fn, vs), shape), normal((fn, "t", vs), shape), positive((fn, "v", vs), vs, 0.1, 3.0)),
            {"reduction": red, "full": full},
            f"var {vs},{red},full={full}",
        )
    add(
        "var shapes (same, one fewer dim, one dim of 1) x reductions",
        (normal((fn, 1), (5,)), normal((fn, 2), (5,)), np.array(0.7)),
        {"reduction": "none"},
        "0-d var for 1-D input",
    )
    add(
        "var shapes (same, one fewer dim, one dim of 1) x reductions",
        (normal((fn, 3), (4, 1)), normal((fn, 4), (4, 1)), positive((fn, 5), (4,))),
        {"reduction": "none"},
        "var (4,) for input (4, 1)",
    )
    for red in ("none", "mean"):
        add(
            "var a Python float",
            (normal((fn, "f"), (3, 4)), normal((fn, "ft"), (3, 4)), 0.8),
            {"reduction": red, "full": True},
            red,
            grad=(0, 1),
        )
    # clamp at eps: invisible to gradients (torch clamps in place under no_grad)
    v = np.array([0.0, 1e-9, 1e-6, 1e-4, 0.5, 2.0])
    for eps in (1e-6, 1e-3, 0.6):
        add(
            "var below eps (clamped, gradient passes through)",
            (normal((fn, "c", eps), (6,)), normal((fn, "ct", eps), (6,)), v),
            {"reduction": "none", "eps": eps},
            f"eps={eps}",
        )
    add(
        "var below eps (clamped, gradient passes through)",
        (normal((fn, "c"), (6,)), normal((fn, "ct"), (6,)), v),
        {"reduction": "mean"},
        "mean",
    )
    add(
        "target broadcast (unchecked, as torch)",
        (normal((fn, "b"), (3, 4)), normal((fn, "bt"), (3, 1)), positive((fn, "bv"), (3, 4))),
        {"reduction": "mean"},
        "target (3, 1)",
    )
    add(
        "target broadcast (unchecked, as torch)",
        (normal((fn, "c"), (4,)), normal((fn, "ct"), (3, 4)), positive((fn, "cv"), (4,))),
        {"reduction": "none"},
        "target (3, 4) for input (4,)",
    )
    add(
        "edge: NaN and inf",
        (np.array([np.nan, 1.0, np.inf, 0.0]), np.array([0.0, np.inf, 1.0, 0.0]), np.array([1.0, 1.0, 1.0, np.inf])),
        {"reduction": "none"},
        "none",
    )
    add("edge: empty", (np.zeros((0, 3)), np.zeros((0, 3)), np.ones((0, 3))), {"reduction": "mean"}, "mean")
    for kw in ({}, {"full": True, "reduction": "sum"}, {"eps": 1e-2, "reduction": "none"}):
        add(
            "class API",
            (normal((fn, 10), (3, 5)), normal((fn, 11), (3, 5)), positive((fn, 12), (3, 1), 0.001, 2.0)),
            {},
            str(kw),
            name="GaussianNLLLoss",
            module_kwargs=kw,
            kind=_kind(kw),
        )


def cases() -> list[Case]:
    out: list[Case] = []
    for dtype in FLOAT_DTYPES:
        _bce(out, dtype)
        _bce_logits(out, dtype)
        _kl(out, dtype)
        _poisson(out, dtype)
        _gaussian(out, dtype)
    for dtype in HALF_DTYPES:
        x = normal("half", (4, 8), 2.0)
        t = unit("half", (4, 8))
        out.append(
            Case(
                "binary_cross_entropy: half precision",
                "binary_cross_entropy",
                (sigmoid(x), t),
                {"reduction": "mean"},
                grad=(0, 1),
                dtype=dtype,
            )
        )
        out.append(
            Case(
                "binary_cross_entropy_with_logits: half precision",
                "binary_cross_entropy_with_logits",
                (x, t),
                {"reduction": "none", "pos_weight": positive("half", (8,))},
                grad=(0, 1),
                dtype=dtype,
            )
        )
        out.append(
            Case(
                "kl_div: half precision",
                "kl_div",
                (np.log(probabilities("half", (4, 8), 1)), probabilities("half2", (4, 8), 1)),
                {"reduction": "batchmean"},
                grad=(0, 1),
                dtype=dtype,
            )
        )
        out.append(
            Case(
                "poisson_nll_loss: half precision",
                "poisson_nll_loss",
                (x / 2, np.round(t * 5)),
                {"reduction": "none", "full": True},
                grad=(0,),
                dtype=dtype,
            )
        )
        out.append(
            Case(
                "gaussian_nll_loss: half precision",
                "gaussian_nll_loss",
                (x, t, positive("half", (4, 1))),
                {"reduction": "mean"},
                grad=(0, 1, 2),
                dtype=dtype,
            )
        )
    return out
