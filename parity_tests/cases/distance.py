"""pairwise_distance and cosine_similarity (functional and class), values and gradients.

The gradient cases aim at the places where torch's formulas are not the textbook ones: the
``eps`` added to the difference, zero differences (torch's norm gradient is 0 there, not NaN),
ties of the infinity norm, and cosine similarity of vectors whose norm is below ``eps`` (torch's
clamp is invisible to autograd).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..harness import Case
from ._data import FLOAT_DTYPES, HALF_DTYPES, normal

NAN, INF = np.nan, np.inf
PS = (0, 0.5, 1, 1.5, 2, 3, INF, -INF, -1)


def _special_rows():
    """Rows of x1 - x2 with a zero difference, infinity-norm ties, NaN and inf entries."""
    x1 = np.array(
        [[1.0, -2.0, 0.5], [2.0, -2.0, 1.0], [0.0, 0.0, 0.0], [1.0, NAN, 2.0], [INF, 1.0, 0.0], [0.25, 0.25, -0.25]]
    )
    x2 = np.array(
        [[1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    )
    return x1, x2


def _pairwise(dtype):
    fn = "pairwise_distance"
    out = []
    x1, x2 = normal((fn, 1), (5, 4)), normal((fn, 2), (5, 4))
    for i, p in enumerate(PS):
        kw = {"p": p, "eps": (1e-6, 0.0, 0.3)[i % 3], "keepdim": i % 2 == 1}
        out.append(
            Case(
                f"{fn}: p x eps x keepdim",
                fn,
                (x1, x2),
                kw,
                grad=(0, 1),
                dtype=dtype,
                kind="elementwise",
                label=str(kw),
            )
        )
    s1, s2 = _special_rows()
    for p in (1, 2, 3, INF, 0.5, -INF):
        out.append(
            Case(
                f"{fn}: zero difference (eps=0), inf-norm ties, NaN/inf",
                fn,
                (s1, s2),
                {"p": p, "eps": 0.0},
                grad=(0, 1),
                dtype=dtype,
                kind="elementwise",
                label=f"p={p}",
            )
        )
    if dtype == "float64":
        for a, b, kw in [
            ((), (), {}),
            ((5,), (5,), {"keepdim": True}),
            ((3, 1), (3, 4), {"p": 1}),
            ((4,), (3, 4), {"p": 3}),
            ((2, 3, 4), (3, 4), {"keepdim": True}),
            ((0, 3), (0, 3), {}),
            ((3, 0), (3, 0), {}),
        ]:
            out.append(
                Case(
                    f"{fn}: shapes, broadcasting, empty",
                    fn,
                    (normal((fn, a), a), normal((fn, b, 2), b)),
                    kw,
                    grad=(0, 1),
                    dtype=dtype,
                    kind="elementwise",
                    label=f"{a} vs {b},{kw}",
                )
            )
        for kw in ({}, {"p": 1.0, "eps": 0.0, "keepdim": True}):
            out.append(
                Case(
                    "PairwiseDistance: class API",
                    "PairwiseDistance",
                    (x1, x2),
                    module_kwargs=kw,
                    grad=(0, 1),
                    dtype=dtype,
                    kind="elementwise",
                    label=str(kw),
                )
            )
    return out


def _cosine(dtype):
    fn = "cosine_similarity"
    out = []
    for shape, dim, eps in [
        ((5, 4), 1, 1e-8),
        ((5, 4), 0, 1e-8),
        ((5, 4), -1, 0.5),
        ((2, 3, 4), 2, 1e-8),
        ((2, 3, 4), 1, 0.0),
        ((2, 3, 4), -3, 1e-3),
    ]:
        out.append(
            Case(
                f"{fn}: dim x eps",
                fn,
                (normal((fn, shape, 1), shape), normal((fn, shape, 2), shape)),
                {"dim": dim, "eps": eps},
                grad=(0, 1),
                dtype=dtype,
                kind="elementwise",
                label=f"{shape},dim={dim},eps={eps}",
            )
        )
    # zero vectors, vectors with norm below eps (gradient through torch's no-grad clamp),
    # one exactly at eps's scale, and ordinary ones
    x1 = np.array([[0.0, 0.0, 0.0], [1e-9, -2e-9, 3e-9], [1e-3, 2e-3, 0.0], [0.05, 0.0, 0.0], [1.0, 2.0, 3.0]])
    x2 = np.array([[1.0, 2.0, 3.0], [0.5, 1.0, -1.0], [1e-4, 0.0, 1e-4], [0.0, 0.0, 0.0], [-1.0, 0.5, 2.0]])
    for eps in (1e-8, 0.1, 0.0):
        out.append(
            Case(
                f"{fn}: zero and below-eps vectors",
                fn,
                (x1, x2),
                {"dim": 1, "eps": eps},
                grad=(0, 1),
                dtype=dtype,
                kind="elementwise",
                label=f"eps={eps}",
            )
        )
    if dtype == "float32":
        # norms that overflow to inf give similarity 0, as torch; NaN propagates
        big = np.array([[1e20, 1e20, 0.0], [1.0, NAN, 0.0], [3.0, 4.0, 0.0]])
        out.append(
            Case(
                f"{fn}: overflowing norms, NaN",
                fn,
                (big, np.ones((3, 3))),
                {"dim": 1},
                grad=(0, 1),
                dtype=dtype,
                kind="elementwise",
            )
        )
    if dtype == "float64":
        for a, b, kw in [
            ((3, 1), (3, 4), {}),
            ((4,), (3, 4), {"dim": -1}),
            ((), (), {"dim": 0}),
            ((5,), (5,), {"dim": 0}),
            ((2, 0), (2, 0), {}),
        ]:
            out.append(
                Case(
                    f"{fn}: broadcasting, 0-d, 1-D, empty",
                    fn,
                    (normal((fn, a), a), normal((fn, b, 2), b)),
                    kw,
                    grad=(0, 1),
                    dtype=dtype,
                    kind="elementwise",
                    label=f"{a} vs {b},{kw}",
                )
            )
        out.append(
            Case(
                f"{fn}: integer x2",
                fn,
                (normal((fn, 3), (3, 4)), np.arange(12).reshape(3, 4) - 5),
                {},
                grad=(0,),
                dtype=dtype,
                kind="elementwise",
            )
        )
        for kw in ({}, {"dim": 0, "eps": 0.5}):
            out.append(
                Case(
                    "CosineSimilarity: class API",
                    "CosineSimilarity",
                    (normal((fn, 4), (4, 3)), normal((fn, 5), (4, 3))),
                    module_kwargs=kw,
                    grad=(0, 1),
                    dtype=dtype,
                    kind="elementwise",
                    label=str(kw),
                )
            )
    return out


def _half():
    out = []
    x1, x2 = normal(("dist-half", 1), (4, 8)), normal(("dist-half", 2), (4, 8))
    for dtype, (fn, kw) in itertools.product(HALF_DTYPES, [("pairwise_distance", {}), ("cosine_similarity", {})]):
        out.append(Case(f"{fn}: half precision", fn, (x1, x2), kw, grad=(0, 1), dtype=dtype, kind="elementwise"))
    return out


def cases() -> list[Case]:
    out = []
    for dtype in FLOAT_DTYPES:
        out += _pairwise(dtype) + _cosine(dtype)
    return out + _half()
