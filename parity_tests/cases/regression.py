"""l1_loss and mse_loss (functional and class)."""

from __future__ import annotations

import itertools

import numpy as np

from ..harness import Case
from ._data import FLOAT_DTYPES, HALF_DTYPES, REDUCTIONS, normal, positive, with_ties

SHAPES = [(), (7,), (3, 4), (2, 3, 4)]
LOSSES = ("l1_loss", "mse_loss")
CLASSES = {"l1_loss": "L1Loss", "mse_loss": "MSELoss"}


def cases() -> list[Case]:
    out = []
    for fn, dtype in itertools.product(LOSSES, FLOAT_DTYPES):
        fam = lambda what: f"{fn}: {what}"
        for shape, red in itertools.product(SHAPES, REDUCTIONS):
            out.append(
                Case(
                    fam("reductions x shapes"),
                    fn,
                    (normal((fn, shape), shape), normal((fn, "t", shape), shape)),
                    {"reduction": red},
                    grad=(0, 1),
                    dtype=dtype,
                    label=f"{shape},{red}",
                )
            )
            # exact ties input == target: torch's gradient there is 0
            out.append(
                Case(
                    fam("ties (x == y, gradient 0)"),
                    fn,
                    (with_ties((fn, shape), shape), with_ties((fn, "t", shape), shape)),
                    {"reduction": red},
                    grad=(0, 1),
                    dtype=dtype,
                    label=f"{shape},{red}",
                )
            )
        for shape, red in itertools.product(SHAPES[1:], REDUCTIONS):
            out.append(
                Case(
                    fam("weight"),
                    fn,
                    (normal((fn, shape), shape), normal((fn, "t", shape), shape)),
                    {"reduction": red, "weight": positive((fn, "w", shape), shape)},
                    grad=(0, 1),
                    dtype=dtype,
                    label=f"{shape},{red}",
                )
            )
        for sa, rd in itertools.product((None, True, False), repeat=2):
            if sa is None and rd is None:
                continue
            out.append(
                Case(
                    fam("legacy size_average/reduce"),
                    fn,
                    (normal((fn, 1), (3, 4)), normal((fn, 2), (3, 4))),
                    {"size_average": sa, "reduce": rd},
                    grad=(0, 1),
                    dtype=dtype,
                    label=f"sa={sa},reduce={rd}",
                    kind="reduction",
                )
            )
        for (si, st), red in itertools.product([((3, 1), (3,)), ((4,), (1,)), ((2, 1, 3), (4, 1))], REDUCTIONS):
            out.append(
                Case(
                    fam("broadcast target (warns)"),
                    fn,
                    (normal((fn, si), si), normal((fn, st), st)),
                    {"reduction": red},
                    grad=(0, 1),
                    dtype=dtype,
                    label=f"{si} vs {st},{red}",
                )
            )
        out.append(
            Case(
                fam("broadcast with weight"),
                fn,
                (normal((fn, 5), (3, 1)), normal((fn, 6), (3,))),
                {"reduction": "none", "weight": positive((fn, 7), (3, 1))},
                grad=(0, 1),
                dtype=dtype,
            )
        )
        for red in REDUCTIONS:
            out.append(
                Case(
                    fam("edge: empty"),
                    fn,
                    (np.zeros((0,)), np.zeros((0,))),
                    {"reduction": red},
                    grad=(0, 1),
                    dtype=dtype,
                    label=red,
                )
            )
            out.append(
                Case(
                    fam("edge: empty"),
                    fn,
                    (np.zeros((0, 3)), np.zeros((0, 3))),
                    {"reduction": red, "weight": np.zeros((0, 3))},
                    grad=(0, 1),
                    dtype=dtype,
                    label=red + ",weight",
                )
            )
            special = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, 1e30])
            tgt = np.array([0.0, 0.0, np.inf, 1.0, np.nan, -1e30])
            out.append(
                Case(
                    fam("edge: NaN, inf, huge"),
                    fn,
                    (special, tgt),
                    {"reduction": red},
                    grad=(0, 1),
                    dtype=dtype,
                    label=red,
                )
            )
            out.append(
                Case(
                    fam("edge: zero weights"),
                    fn,
                    (normal((fn, 8), (4,)), normal((fn, 9), (4,))),
                    {"reduction": red, "weight": np.zeros(4)},
                    grad=(0, 1),
                    dtype=dtype,
                    label=red,
                )
            )
        # the tutorials' worked numbers (the L1/MSE and cross-entropy lessons)
        a = np.array([[3.0, 2, 1], [1, 2, 3]])
        b = np.array([[1.0, 2, 1], [1, 2, 4]])
        for red in REDUCTIONS:
            out.append(
                Case(
                    fam("tutorial examples"),
                    fn,
                    (a, b),
                    {"reduction": red},
                    grad=(0, 1),
                    dtype=dtype,
                    label=f"2x3,{red}",
                )
            )
            out.append(
                Case(
                    fam("tutorial examples"),
                    fn,
                    (np.array([1.0, 2, 3]), np.array([1.0, 2, 5])),
                    {"reduction": red},
                    grad=(0, 1),
                    dtype=dtype,
                    label=f"3,{red}",
                )
            )
        for kw in ({}, {"reduction": "sum"}, {"reduction": "none"}, {"size_average": False}, {"reduce": False}):
            out.append(
                Case(
                    fam("class API"),
                    CLASSES[fn],
                    (normal((fn, 10), (3, 5)), normal((fn, 11), (3, 5))),
                    module_kwargs=kw,
                    grad=(0, 1),
                    dtype=dtype,
                    label=str(kw),
                    kind="elementwise" if kw.get("reduction") == "none" or kw.get("reduce") is False else "reduction",
                )
            )
    for fn, dtype, red in itertools.product(LOSSES, HALF_DTYPES, REDUCTIONS):
        out.append(
            Case(
                f"{fn}: half precision",
                fn,
                (normal((fn, 12), (4, 8)), normal((fn, 13), (4, 8))),
                {"reduction": red},
                grad=(0, 1),
                dtype=dtype,
                label=red,
            )
        )
    return out
