"""Margin and embedding losses: hinge_embedding, margin_ranking, soft_margin, cosine_embedding,
multi_margin, multilabel_margin, multilabel_soft_margin, triplet_margin(_with_distance).

Every case compares values and the gradients of every floating input with torch 2.13.0. Kinks
are hit exactly (inputs chosen so that the hinge argument is exactly 0 in binary floating point).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch.nn.functional as TF

import losses_jax

from ..harness import Case
from ._data import FLOAT_DTYPES, HALF_DTYPES, REDUCTIONS, class_targets, normal, positive, rng

NAN, INF = np.nan, np.inf


def signs(key, shape) -> np.ndarray:
    return np.where(rng("signs", key, shape).uniform(size=shape) < 0.5, -1.0, 1.0)


def multilabel_targets(key, n, c) -> np.ndarray:
    """Rows of class indices padded with -1, with junk after the first -1 (torch ignores it),
    duplicates, an all-targets row and a leading -1 row."""
    g = rng("multilabel", key, n, c)
    rows = []
    for _ in range(n):
        k = int(g.integers(0, c + 1))
        row = list(g.permutation(c)[:k]) + [-1] * (c - k)
        if k < c - 1:
            row[k + 1] = int(g.integers(-1, c))  # after the first -1: ignored
        rows.append(row)
    t = np.array(rows, dtype=np.int64).reshape(n, c)
    if n >= 3 and c >= 3:
        t[0, :2] = [1, 1]  # a class listed twice counts twice
        t[1] = np.arange(c)  # every class is a target: loss 0
        t[2, 0] = -1  # no targets at all
    return t


def _grid(fn, dtype, family, make, grad, options, shapes):
    """One case per (options, shape, reduction), options cycling through the list."""
    out = []
    combos = list(itertools.product(shapes, REDUCTIONS))
    for i, (shape, red) in enumerate(combos):
        opt = options[i % len(options)]
        out.append(
            Case(
                f"{fn}: {family}",
                fn,
                make(shape, i),
                {"reduction": red, **opt},
                grad=grad,
                dtype=dtype,
                label=f"{shape},{red},{opt}",
            )
        )
    return out


def _legacy_and_class(fn, cls, args, grad, dtype, fn_kwargs=None, cls_kwargs=None):
    fn_kwargs = fn_kwargs or {}
    cls_kwargs = cls_kwargs or {}
    out = []
    for sa, rd in [(False, None), (None, False)]:
        out.append(
            Case(
                f"{fn}: legacy size_average/reduce",
                fn,
                args,
                {"size_average": sa, "reduce": rd, **fn_kwargs},
                grad=grad,
                dtype=dtype,
                label=f"sa={sa},reduce={rd}",
                kind="elementwise" if rd is False else "reduction",
            )
        )
    for kw in ({}, {"reduction": "none"}):
        out.append(
            Case(
                f"{fn}: class API",
                cls,
                args,
                module_kwargs={**cls_kwargs, **kw},
                grad=grad,
                dtype=dtype,
                label=str(kw),
                kind="elementwise" if kw.get("reduction") == "none" else "reduction",
            )
        )
    return out


def _hinge(dtype):
    fn = "hinge_embedding_loss"
    out = _grid(
        fn,
        dtype,
        "margin x reductions x shapes",
        lambda s, i: (normal((fn, s, i), s, 2.0), signs((fn, s, i), s)),
        (0,),
        [{"margin": 1.0}, {"margin": 0.5}, {"margin": 2.5}, {}],
        [(), (3, 4)],
    )
    # margin - x == 0 exactly (gradient -1 passes), targets other than +-1 (both terms), NaN/inf
    x = np.array([1.0, 0.5, 1.0, NAN, NAN, INF, -INF, 2.0, 0.25, 3.0])
    t = np.array([-1.0, -1, 1, -1, 1, -1, -1, 0, 0.5, 2])
    for red in ("none", "sum"):
        out.append(
            Case(
                f"{fn}: kinks, other targets, NaN/inf",
                fn,
                (x, t),
                {"reduction": red, "margin": 1.0},
                dtype=dtype,
                label=red,
            )
        )
    out.append(
        Case(
            f"{fn}: broadcast target",
            fn,
            (normal((fn, 9), (3, 1)), signs((fn, 9), (4,))),
            {"reduction": "none", "margin": 0.3},
            dtype=dtype,
        )
    )
    for red in ("mean",):
        out.append(
            Case(
                f"{fn}: edge: empty",
                fn,
                (np.zeros((0, 3)), np.ones((0, 3))),
                {"reduction": red},
                dtype=dtype,
                label=red,
            )
        )
    if dtype == "float64":
        out += _legacy_and_class(
            fn,
            "HingeEmbeddingLoss",
            (normal((fn, 1), (3, 4)), signs((fn, 1), (3, 4))),
            (0,),
            dtype,
            {"margin": 0.7},
            {"margin": 0.7},
        )
    return out


def _ranking(dtype):
    fn = "margin_ranking_loss"
    out = _grid(
        fn,
        dtype,
        "margin x reductions x shapes",
        lambda s, i: (normal((fn, 1, s, i), s), normal((fn, 2, s, i), s), signs((fn, s, i), s)),
        (0, 1, 2),
        [{"margin": 0.0}, {"margin": 0.5}, {"margin": -0.2}, {}],
        [(), (2, 5)],
    )
    # -t (x1 - x2) + margin == 0 exactly; NaN/inf; a target of 0 or 2
    x1 = np.array([1.0, 0.5, 2.0, NAN, 1.0, INF, 0.0, 1.0])
    x2 = np.array([0.5, 1.0, 0.0, 0.0, NAN, 0.0, 0.5, 0.25])
    t = np.array([1.0, -1, 1, 1, -1, -1, 0, 2])
    for red in ("none", "mean"):
        out.append(
            Case(
                f"{fn}: kinks, NaN/inf",
                fn,
                (x1, x2, t),
                {"reduction": red, "margin": 0.5},
                grad=(0, 1, 2),
                dtype=dtype,
                label=red,
            )
        )
    out.append(
        Case(
            f"{fn}: broadcast",
            fn,
            (normal((fn, 3), (3, 1)), normal((fn, 4), (1, 4)), signs((fn, 5), (3, 4))),
            {"reduction": "none", "margin": 0.1},
            grad=(0, 1, 2),
            dtype=dtype,
        )
    )
    out.append(
        Case(
            f"{fn}: edge: empty",
            fn,
            (np.zeros(0), np.zeros(0), np.ones(0)),
            {"reduction": "mean"},
            grad=(0, 1, 2),
            dtype=dtype,
        )
    )
    if dtype == "float64":
        args = (normal((fn, 6), (6,)), normal((fn, 7), (6,)), signs((fn, 8), (6,)))
        out += _legacy_and_class(fn, "MarginRankingLoss", args, (0, 1, 2), dtype, {"margin": 0.2}, {"margin": 0.2})
    return out


def _soft(dtype):
    fn = "soft_margin_loss"
    out = _grid(
        fn,
        dtype,
        "reductions x shapes",
        lambda s, i: (normal((fn, s, i), s, 3.0), signs((fn, s, i), s)),
        (0,),
        [{}],
        [(), (3, 4)],
    )
    # soft targets, zero input, NaN; large margins that torch still computes finitely
    big = 60.0 if dtype == "float32" else 600.0
    x = np.array([0.0, 1.5, -2.0, NAN, big, -big, 30.0, -30.0])
    t = np.array([1.0, 0.5, -0.25, 1, 1, 1, -1, 1])
    for red in ("none", "sum"):
        out.append(Case(f"{fn}: soft targets, large |x|, NaN", fn, (x, t), {"reduction": red}, dtype=dtype, label=red))
    out.append(
        Case(
            f"{fn}: broadcast target",
            fn,
            (normal((fn, 2), (3, 4)), signs((fn, 2), (4,))),
            {"reduction": "none"},
            dtype=dtype,
        )
    )
    out.append(Case(f"{fn}: edge: empty", fn, (np.zeros((2, 0)), np.ones((2, 0))), {"reduction": "mean"}, dtype=dtype))
    if dtype == "float64":
        out += _legacy_and_class(fn, "SoftMarginLoss", (normal((fn, 3), (5,)), signs((fn, 3), (5,))), (0,), dtype)
    return out


def _cosine_embedding(dtype):
    fn = "cosine_embedding_loss"

    def make(shape, i):
        n, d = shape
        return (normal((fn, 1, shape, i), shape), normal((fn, 2, shape, i), shape), signs((fn, shape, i), (n,)))

    out = _grid(
        fn,
        dtype,
        "margin x reductions",
        make,
        (0, 1),
        [{"margin": 0.0}, {"margin": 0.3}, {"margin": -0.5}, {}],
        [(6, 4), (3, 2)],
    )
    for red in ("none",):
        x1, x2 = normal((fn, 3), (5,)), normal((fn, 4), (5,))
        for t in (1.0, -1.0):
            out.append(
                Case(
                    f"{fn}: unbatched (D) inputs, 0-d target",
                    fn,
                    (x1, x2, np.array(t)),
                    {"reduction": red, "margin": -0.2},
                    grad=(0, 1),
                    dtype=dtype,
                    label=f"{t},{red}",
                )
            )
    # zero vectors (torch's eps in the norms), tiny vectors, orthogonal (cos - margin == 0:
    # the clamp's kink), parallel, targets that are neither 1 nor -1, NaN
    x1 = np.array(
        [[0.0, 0, 0], [1e-7, 0, 0], [1.0, 0, 0], [1.0, 2, 3], [1.0, 2, 3], [0.5, 1, 0], [NAN, 1, 0], [1.0, 1, 0]]
    )
    x2 = np.array(
        [[1.0, 2, 3], [1.0, 2, 0], [0.0, 1, 0], [2.0, 4, 6], [2.0, 4, 6], [0.0, 0, 0], [1.0, 1, 1], [3.0, -1, 1]]
    )
    t = np.array([1.0, 1, -1, -1, 1, -1, 1, 0.5])
    for red in ("none", "sum"):
        out.append(
            Case(
                f"{fn}: zero/tiny/orthogonal vectors, NaN",
                fn,
                (x1, x2, t),
                {"reduction": red},
                grad=(0, 1),
                dtype=dtype,
                label=red,
            )
        )
    out.append(
        Case(
            f"{fn}: broadcast input2 (1, D)",
            fn,
            (normal((fn, 5), (4, 3)), normal((fn, 6), (1, 3)), signs((fn, 7), (4,))),
            {"reduction": "none"},
            grad=(0, 1),
            dtype=dtype,
        )
    )
    out.append(
        Case(
            f"{fn}: integer target",
            fn,
            (normal((fn, 8), (4, 3)), normal((fn, 9), (4, 3)), np.array([1, -1, -1, 1])),
            {"reduction": "none", "margin": 0.1},
            grad=(0, 1),
            dtype=dtype,
        )
    )
    if dtype == "float64":
        args = (normal((fn, 10), (4, 3)), normal((fn, 11), (4, 3)), signs((fn, 12), (4,)))
        out += _legacy_and_class(fn, "CosineEmbeddingLoss", args, (0, 1), dtype, {"margin": 0.1}, {"margin": 0.1})
    return out


def _multi_margin(dtype):
    fn = "multi_margin_loss"
    out = []
    n, c = 5, 4
    x = normal((fn, 1), (n, c))
    t = class_targets((fn, 1), (n,), c)
    w = positive((fn, 1), (c,))
    reds = itertools.cycle(REDUCTIONS)
    for p, margin, weighted in itertools.product((1, 2), (1.0, 0.3), (False, True)):
        kw = {"p": p, "margin": margin, "reduction": next(reds)}
        if weighted:
            kw["weight"] = w
        out.append(
            Case(
                f"{fn}: p x margin x weight",
                fn,
                (x, t),
                kw,
                dtype=dtype,
                label=f"p={p},margin={margin},weight={weighted}",
            )
        )
    # unbatched (C) input with a 0-d or (1,) target; a 0-d input (one class: loss 0)
    xc = normal((fn, 2), (c,))
    for tgt, red in [(np.array(2), "none"), (np.array([2]), "none"), (np.array(2), "mean")]:
        out.append(
            Case(
                f"{fn}: unbatched (C) and 0-d input",
                fn,
                (xc, tgt),
                {"reduction": red, "p": 2, "weight": w},
                dtype=dtype,
                label=f"{tgt.shape},{red}",
            )
        )
    out.append(
        Case(
            f"{fn}: unbatched (C) and 0-d input",
            fn,
            (np.array(0.7), np.array(0)),
            {"reduction": "none"},
            dtype=dtype,
            label="0-d",
        )
    )
    # hinge argument exactly 0 (torch: no gradient), NaN entries (torch skips them: value 0)
    xk = np.array([[0.0, 1.0, 0.5], [NAN, 1.0, 0.0], [0.25, NAN, -0.25], [2.0, 0.0, 1.5]])
    tk = np.array([1, 1, 0, 2])
    for p, red in [(1, "none"), (2, "sum")]:
        out.append(
            Case(
                f"{fn}: kinks (z == 0) and NaN",
                fn,
                (xk, tk),
                {"reduction": red, "p": p, "margin": 0.5},
                dtype=dtype,
                label=f"p={p},{red}",
            )
        )
    out.append(
        Case(
            f"{fn}: edge: empty batch",
            fn,
            (np.zeros((0, 3)), np.zeros(0, np.int64)),
            {"reduction": "none"},
            dtype=dtype,
        )
    )
    if dtype == "float64":
        out += _legacy_and_class(
            fn, "MultiMarginLoss", (x, t), (0,), dtype, {"p": 2, "weight": w}, {"p": 2, "margin": 0.7, "weight": w}
        )
    return out


def _multilabel_margin(dtype):
    fn = "multilabel_margin_loss"
    out = []
    for (n, c), red in itertools.product([(6, 5), (1, 1)], REDUCTIONS):
        out.append(
            Case(
                f"{fn}: targets padded with -1 x reductions",
                fn,
                (normal((fn, n, c), (n, c)), multilabel_targets((fn, n), n, c)),
                {"reduction": red},
                dtype=dtype,
                label=f"{(n, c)},{red}",
            )
        )
    for red in ("none",):
        out.append(
            Case(
                f"{fn}: unbatched (C) and 0-d input",
                fn,
                (normal((fn, 1), (4,)), np.array([3, 0, -1, 2])),
                {"reduction": red},
                dtype=dtype,
                label=red,
            )
        )
    out.append(
        Case(
            f"{fn}: unbatched (C) and 0-d input",
            fn,
            (np.array(0.3), np.array(0)),
            {"reduction": "none"},
            dtype=dtype,
            label="0-d",
        )
    )
    # 1 - x_j + x_c == 0 exactly (no gradient), NaN entries (skipped by torch)
    xk = np.array([[0.0, 1.0, 0.5], [NAN, 1.0, 0.0], [0.25, 1.0, NAN]])
    tk = np.array([[1, -1, 0], [1, 2, -1], [0, -1, -1]])
    for red in ("none", "sum"):
        out.append(Case(f"{fn}: kinks and NaN", fn, (xk, tk), {"reduction": red}, dtype=dtype, label=red))
    # Rows listing no target, every class, a class twice, and +-inf values: the loop runs as many
    # steps as the longest list, and shorter lists must not count past their end.
    xl = np.array(
        [[0.5, -0.25, 2.0, 0.0], [1.0, 0.75, -1.0, 0.5], [np.inf, 0.5, -np.inf, 1.5], [0.25, 0.25, 0.25, -0.5]]
    )
    tl = np.array([[-1, 2, 3, 0], [3, 1, 0, 2], [1, 1, 3, -1], [2, -1, 0, 0]])
    for red in ("none", "mean"):
        out.append(
            Case(f"{fn}: list lengths, duplicates and inf", fn, (xl, tl), {"reduction": red}, dtype=dtype, label=red)
        )
    out.append(
        Case(
            f"{fn}: edge: empty batch",
            fn,
            (np.zeros((0, 3)), np.zeros((0, 3), np.int64)),
            {"reduction": "none"},
            dtype=dtype,
        )
    )
    if dtype == "float64":
        out += _legacy_and_class(
            fn, "MultiLabelMarginLoss", (normal((fn, 2), (4, 4)), multilabel_targets((fn, 2), 4, 4)), (0,), dtype
        )
    return out


def _multilabel_soft(dtype):
    fn = "multilabel_soft_margin_loss"

    def make(shape, i):
        return (
            normal((fn, shape, i), shape, 3.0),
            rng(fn, shape, i).uniform(size=shape),
            positive((fn, shape, i), shape[-1:]),
        )

    out = _grid(fn, dtype, "weight x reductions x shapes", lambda s, i: make(s, i)[:2], (0, 1), [{}], [(5, 4), (4,)])
    for shape, red in [((5, 4), "none"), ((5, 4), "sum"), ((2, 3, 4), "mean")]:
        x, t, w = make(shape, 7)
        out.append(
            Case(
                f"{fn}: weight x reductions x shapes",
                fn,
                (x, t, w),
                {"reduction": red},
                grad=(0, 1, 2),
                dtype=dtype,
                label=f"{shape},{red},weight",
            )
        )
    # torch's broadcasting: class dim is input.ndim - 1 of the broadcast; C = input.shape[-1]
    for xs, ts, ws in [((2, 1), (2, 3), None), ((3,), (2, 3), (1, 3))]:
        args = (normal((fn, xs), xs), rng(fn, ts).uniform(size=ts)) + (() if ws is None else (positive((fn, ws), ws),))
        out.append(
            Case(
                f"{fn}: broadcasting",
                fn,
                args,
                {"reduction": "none"},
                grad=tuple(range(len(args))),
                dtype=dtype,
                label=f"{xs},{ts},{ws}",
            )
        )
    x = np.array([[-200.0, 200.0, 0.0, NAN], [30.0, -30.0, 1.0, 2.0]])
    t = np.array([[1.0, 0.0, 0.5, 1.0], [0.0, 1.0, 1.0, 0.0]])
    out.append(Case(f"{fn}: large |x|, NaN", fn, (x, t), {"reduction": "none"}, grad=(0, 1), dtype=dtype))
    out.append(
        Case(
            f"{fn}: edge: empty",
            fn,
            (np.zeros((0, 3)), np.zeros((0, 3))),
            {"reduction": "mean"},
            grad=(0, 1),
            dtype=dtype,
        )
    )
    if dtype == "float64":
        x, t, w = make((4, 3), 9)
        out += _legacy_and_class(fn, "MultiLabelSoftMarginLoss", (x, t), (0, 1), dtype, {"weight": w}, {"weight": w})
    return out


def _triplet(dtype):
    fn = "triplet_margin_loss"
    out = []
    a, p, n = (normal((fn, k), (5, 4)) for k in "apn")
    reds = itertools.cycle(REDUCTIONS)
    for pnorm, swap in [(1, False), (2, True), (2, False), (3, True), (0.5, False), (INF, True), (1.5, True)]:
        kw = {"p": pnorm, "swap": swap, "reduction": next(reds), "margin": 1.0 if pnorm != 3 else 0.4}
        out.append(Case(f"{fn}: p x swap x margin", fn, (a, p, n), kw, grad=(0, 1, 2), dtype=dtype, label=str(kw)))
    for eps, red in itertools.product((0.0, 0.1), ("none",)):
        # anchor == positive: the distance of identical vectors is eps * D**(1/p) (0 for eps=0,
        # where torch's norm gradient is 0, not NaN)
        out.append(
            Case(
                f"{fn}: eps x identical vectors",
                fn,
                (a, a.copy(), n),
                {"eps": eps, "reduction": red, "swap": True},
                grad=(0, 1, 2),
                dtype=dtype,
                label=f"eps={eps}",
            )
        )
    for shapes in [((4,), (4,), (4,)), ((), (), ()), ((3, 4), (1, 4), (3, 1))]:
        args = tuple(normal((fn, s, i), s) for i, s in enumerate(shapes))
        out.append(
            Case(
                f"{fn}: unbatched, 0-d and broadcast shapes",
                fn,
                args,
                {"reduction": "none"},
                grad=(0, 1, 2),
                dtype=dtype,
                label=str(shapes),
            )
        )
    # margin + d(a,p) - d(a,n) == 0 exactly (p=1, eps=0); a swap tie d(a,n) == d(p,n); NaN
    ak = np.array([[0.0, 0.0], [0.0, 0.0], [NAN, 0.0]])
    pk = np.array([[1.0, 0.0], [2.0, 0.0], [1.0, 0.0]])
    nk = np.array([[2.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    for swap in (False, True):
        out.append(
            Case(
                f"{fn}: kinks, swap ties, NaN",
                fn,
                (ak, pk, nk),
                {"p": 1, "eps": 0.0, "swap": swap, "reduction": "none"},
                grad=(0, 1, 2),
                dtype=dtype,
                label=f"swap={swap}",
            )
        )
    if dtype == "float64":
        out += _legacy_and_class(
            fn,
            "TripletMarginLoss",
            (a, p, n),
            (0, 1, 2),
            dtype,
            {"p": 1.5, "swap": True},
            {"margin": 0.5, "p": 1.5, "swap": True},
        )
    return out


def squared_euclidean(x, y):
    """A distance written once for both libraries (torch tensors and jax arrays)."""
    return ((x - y) ** 2).sum(-1)


def _triplet_distance(dtype):
    fn = "triplet_margin_with_distance_loss"
    a, p, n = (normal((fn, k), (6, 3)) for k in "apn")
    cos_t = lambda x, y: 1.0 - TF.cosine_similarity(x, y)
    cos_j = lambda x, y: 1.0 - losses_jax.cosine_similarity(x, y)
    out = []
    for swap, red in [(False, "none"), (True, "mean"), (True, "sum")]:
        out.append(
            Case(
                f"{fn}: default distance x swap x reductions",
                fn,
                (a, p, n),
                {"swap": swap, "reduction": red},
                grad=(0, 1, 2),
                dtype=dtype,
                label=f"swap={swap},{red}",
            )
        )
    for swap, margin in [(False, 1.0), (True, 0.25)]:
        out.append(
            Case(
                f"{fn}: custom distance_function",
                fn,
                (a, p, n),
                {"swap": swap, "margin": margin, "reduction": "none", "distance_function": squared_euclidean},
                grad=(0, 1, 2),
                dtype=dtype,
                label=f"sq,swap={swap},m={margin}",
            )
        )
        kw = {"swap": swap, "margin": margin, "reduction": "none"}
        out.append(
            Case(
                f"{fn}: custom distance_function",
                fn,
                (a, p, n),
                kw,
                grad=(0, 1, 2),
                dtype=dtype,
                label=f"cos,swap={swap},m={margin}",
                torch_fn=lambda *xs, **k: TF.triplet_margin_with_distance_loss(*xs, distance_function=cos_t, **k),
                jax_fn=lambda *xs, **k: losses_jax.triplet_margin_with_distance_loss(*xs, distance_function=cos_j, **k),
            )
        )
    out.append(
        Case(
            f"{fn}: unbatched (D)",
            fn,
            tuple(x[0] for x in (a, p, n)),
            {"reduction": "none"},
            grad=(0, 1, 2),
            dtype=dtype,
        )
    )
    if dtype == "float64":
        for kw in ({}, {"reduction": "none", "swap": True}, {"distance_function": squared_euclidean, "margin": 2.0}):
            out.append(
                Case(
                    f"{fn}: class API",
                    "TripletMarginWithDistanceLoss",
                    (a, p, n),
                    module_kwargs=kw,
                    grad=(0, 1, 2),
                    dtype=dtype,
                    label=str(sorted(kw)),
                    kind="elementwise" if kw.get("reduction") == "none" else "reduction",
                )
            )
    return out


def _half():
    out = []
    for dtype in HALF_DTYPES:
        x, y, z = (normal(("half", k), (4, 6)) for k in "xyz")
        s = signs("half", (4, 6))
        for fn, args, kw, grad in [
            ("hinge_embedding_loss", (x, s), {}, (0,)),
            ("margin_ranking_loss", (x, y, s), {"margin": 0.1}, (0, 1, 2)),
            ("soft_margin_loss", (x, s), {}, (0,)),
            ("cosine_embedding_loss", (x, y, s[:, 0]), {}, (0, 1)),
            ("multilabel_soft_margin_loss", (x, np.abs(s) * 0.5), {}, (0, 1)),
            ("triplet_margin_loss", (x, y, z), {"swap": True}, (0, 1, 2)),
        ]:
            out.append(Case(f"{fn}: half precision", fn, args, {"reduction": "mean", **kw}, grad=grad, dtype=dtype))
    return out


# Shape-logic families (broadcasting, empty batches, unbatched layouts) run in float64 only: they test which
# elements meet, not rounding, and the fixed suite has to stay fast.
_F64_ONLY = ("broadcast", "edge: empty", "unbatched", "integer target")


def cases() -> list[Case]:
    out = []
    for dtype in FLOAT_DTYPES:
        for make in (
            _hinge,
            _ranking,
            _soft,
            _cosine_embedding,
            _multi_margin,
            _multilabel_margin,
            _multilabel_soft,
            _triplet,
            _triplet_distance,
        ):
            out += [c for c in make(dtype) if dtype == "float64" or not any(k in c.family for k in _F64_ONLY)]
    return out + _half()
