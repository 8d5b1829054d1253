"""Hypothesis-drawn shapes and options for the margin / embedding losses and the distances.

Inputs come from a drawn seed with numpy; hypothesis draws the structure (shapes, empty
dimensions, reductions, margins, p, eps, swap, weights) and whether values are small integers,
which makes exact kinks (hinge argument 0, ties, zero differences) common. Every example goes
through the same harness as the fixed cases: values and gradients against torch.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from parity_tests.harness import Case, assert_case

reductions = st.sampled_from(["none", "mean", "sum"])
dtypes = st.sampled_from(["float32", "float64"])
seeds = st.integers(0, 2**31 - 1)
shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)


def _values(g, shape, ties, scale=1.0):
    if ties:  # small integers (and halves): kinks are hit exactly
        return g.integers(-4, 5, size=shape) / 2.0
    return g.normal(size=shape) * scale


def _signs(g, shape, others):
    s = np.where(g.uniform(size=shape) < 0.5, -1.0, 1.0)
    if others:  # targets that are neither 1 nor -1
        s = np.where(g.uniform(size=shape) < 0.2, g.choice([0.0, 0.5, 2.0], size=shape), s)
    return np.asarray(s)


@settings(max_examples=30)
@given(
    fn=st.sampled_from(["hinge_embedding_loss", "margin_ranking_loss", "soft_margin_loss"]),
    shape=shapes,
    reduction=reductions,
    margin=st.sampled_from([0.0, 0.5, 1.0, -0.5, 2.0]),
    ties=st.booleans(),
    others=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_pointwise_margin_losses(fn, shape, reduction, margin, ties, others, dtype, seed):
    g = np.random.default_rng(seed)
    x = np.asarray(_values(g, shape, ties, 2.0))
    t = _signs(g, shape, others)
    kw = {"reduction": reduction}
    if fn == "hinge_embedding_loss":
        args, grad, kw["margin"] = (x, t), (0,), margin
    elif fn == "margin_ranking_loss":
        args, grad, kw["margin"] = (x, np.asarray(_values(g, shape, ties)), t), (0, 1, 2), margin
    else:
        args, grad = (x, t), (0,)
    assert_case(Case("hypothesis", fn, args, kw, grad=grad, dtype=dtype, label=f"{shape}"))


@settings(max_examples=25)
@given(
    n=st.integers(0, 5),
    d=st.integers(0, 4),
    batched=st.booleans(),
    reduction=reductions,
    margin=st.sampled_from([0.0, 0.3, -0.4, 0.9]),
    zero_rows=st.booleans(),
    ties=st.booleans(),
    others=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_cosine_embedding(n, d, batched, reduction, margin, zero_rows, ties, others, dtype, seed):
    g = np.random.default_rng(seed)
    shape = (n, d) if batched else (d,)
    x1, x2 = _values(g, shape, ties), _values(g, shape, ties)
    if zero_rows and batched and n:
        x1[0] = 0.0
    t = _signs(g, (n,) if batched else (), others)
    atol = None
    if d == 1 or ties:
        # Exact cancellations, as in test_cosine_similarity: with one feature (cosine +-1) or tied
        # values the gradient is a difference of equal terms of size ~1/|x|, which torch's op order
        # happens to cancel to 0 in float32 and ours leaves at an ulp of those terms (a draw found
        # 2.7e-6 against 0). Compare such draws in float64, the floor scaled by the term size.
        dtype = "float64"
        norms = np.concatenate([np.ravel(np.linalg.norm(np.atleast_1d(x), axis=-1)) for x in (x1, x2)])
        nonzero = norms[norms > 0]
        if nonzero.size:
            atol = 1e-12 * max(1.0, 1.0 / max(float(nonzero.min()), 1e-6))
    assert_case(
        Case(
            "hypothesis",
            "cosine_embedding_loss",
            (x1, x2, t),
            {"reduction": reduction, "margin": margin},
            grad=(0, 1),
            dtype=dtype,
            label=f"{shape}",
            atol=atol,
        )
    )


@settings(max_examples=30)
@given(
    n=st.integers(0, 5),
    c=st.integers(1, 5),
    layout=st.sampled_from(["batched", "unbatched", "scalar"]),
    p=st.sampled_from([1, 2]),
    margin=st.sampled_from([1.0, 0.5, 0.0, -0.5]),
    weighted=st.booleans(),
    reduction=reductions,
    ties=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_multi_margin(n, c, layout, p, margin, weighted, reduction, ties, dtype, seed):
    g = np.random.default_rng(seed)
    if layout == "batched":
        xs, ts = (n, c), (n,)
        if n == 0:  # torch 2.13 returns uninitialised memory for an empty 'mean'/'sum'
            reduction = "none"
    else:
        c = c if layout == "unbatched" else 1
        xs, ts = ((c,) if layout == "unbatched" else ()), (() if g.uniform() < 0.5 else (1,))
    x = np.asarray(_values(g, xs, ties))
    t = np.asarray(g.integers(0, c, size=ts), np.int64)
    kw = {"p": p, "margin": margin, "reduction": reduction}
    if weighted:
        kw["weight"] = g.uniform(0.1, 2.0, size=(c,))
    assert_case(Case("hypothesis", "multi_margin_loss", (x, t), kw, dtype=dtype, label=f"{xs}"))


@settings(max_examples=30)
@given(
    n=st.integers(0, 5),
    c=st.integers(1, 6),
    batched=st.booleans(),
    reduction=reductions,
    pad_frac=st.floats(0, 1),
    ties=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_multilabel_margin(n, c, batched, reduction, pad_frac, ties, dtype, seed):
    g = np.random.default_rng(seed)
    shape = (n, c) if batched else (c,)
    if batched and n == 0:  # torch 2.13 returns uninitialised memory for an empty 'mean'/'sum'
        reduction = "none"
    x = np.asarray(_values(g, shape, ties))
    t = g.integers(0, c, size=shape)
    t = np.where(g.uniform(size=shape) < pad_frac, -1, t)  # -1 anywhere: only entries before the first count
    assert_case(
        Case(
            "hypothesis",
            "multilabel_margin_loss",
            (x, np.asarray(t, np.int64)),
            {"reduction": reduction},
            dtype=dtype,
            label=f"{shape}",
        )
    )


@settings(max_examples=25)
@given(
    shape=st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple),
    reduction=reductions,
    weighted=st.booleans(),
    hard=st.booleans(),
    scale=st.sampled_from([1.0, 10.0, 100.0]),
    dtype=dtypes,
    seed=seeds,
)
def test_multilabel_soft_margin(shape, reduction, weighted, hard, scale, dtype, seed):
    g = np.random.default_rng(seed)
    x = g.normal(size=shape) * scale
    t = (g.uniform(size=shape) < 0.5).astype(np.float64) if hard else g.uniform(size=shape)
    args, grad = (x, t), (0, 1)
    if weighted:
        args, grad = (x, t, g.uniform(0.1, 2.0, size=shape[-1:])), (0, 1, 2)
    assert_case(
        Case(
            "hypothesis",
            "multilabel_soft_margin_loss",
            args,
            {"reduction": reduction},
            grad=grad,
            dtype=dtype,
            label=f"{shape}",
        )
    )


@settings(max_examples=30)
@given(
    n=st.integers(0, 4),
    d=st.integers(1, 4),
    batched=st.booleans(),
    p=st.sampled_from([1, 2, 3, 1.5, 0.5, np.inf]),
    eps=st.sampled_from([1e-6, 0.0, 0.1]),
    swap=st.booleans(),
    margin=st.sampled_from([1.0, 0.5, 2.0]),
    reduction=reductions,
    ties=st.booleans(),
    distance=st.sampled_from(["triplet_margin_loss", "default", "squared"]),
    dtype=dtypes,
    seed=seeds,
)
def test_triplet(n, d, batched, p, eps, swap, margin, reduction, ties, distance, dtype, seed):
    g = np.random.default_rng(seed)
    shape = (n, d) if batched else (d,)
    a, pos, neg = (np.asarray(_values(g, shape, ties)) for _ in range(3))
    if ties and batched and n:
        pos[0] = a[0]  # identical vectors: zero difference when eps == 0
    kw = {"margin": margin, "swap": swap, "reduction": reduction}
    if distance == "triplet_margin_loss":
        fn = distance
        kw.update(p=p, eps=eps)
    else:
        fn = "triplet_margin_with_distance_loss"
        if distance == "squared":
            from parity_tests.cases.margin import squared_euclidean

            kw["distance_function"] = squared_euclidean
    assert_case(Case("hypothesis", fn, (a, pos, neg), kw, grad=(0, 1, 2), dtype=dtype, label=f"{shape}"))


@settings(max_examples=30)
@given(
    s1=shapes,
    s2=shapes,
    p=st.sampled_from([0, 0.5, 1, 1.5, 2, 3, np.inf, -np.inf, -1]),
    eps=st.sampled_from([1e-6, 0.0, 0.5]),
    keepdim=st.booleans(),
    ties=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_pairwise_distance(s1, s2, p, eps, keepdim, ties, dtype, seed):
    g = np.random.default_rng(seed)
    try:
        np.broadcast_shapes(s1, s2)
    except ValueError:
        s2 = s1
    x1, x2 = np.asarray(_values(g, s1, ties)), np.asarray(_values(g, s2, ties))
    out_shape = np.broadcast_shapes(s1, s2)
    if (p == np.inf or p < 0) and out_shape and out_shape[-1] == 0:
        p = 2  # torch: the max, min and negative norms of an empty vector are errors (no identity)
    assert_case(
        Case(
            "hypothesis",
            "pairwise_distance",
            (x1, x2),
            {"p": p, "eps": eps, "keepdim": keepdim},
            grad=(0, 1),
            dtype=dtype,
            kind="elementwise",
            label=f"{s1},{s2}",
        )
    )


@settings(max_examples=30)
@given(
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),
    data=st.data(),
    eps=st.sampled_from([1e-8, 0.0, 0.1, 1.0]),
    zero=st.booleans(),
    tiny=st.booleans(),
    ties=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_cosine_similarity(shape, data, eps, zero, tiny, ties, dtype, seed):
    g = np.random.default_rng(seed)
    ndim = max(len(shape), 1)
    dim = data.draw(st.integers(-ndim, ndim - 1), label="dim")
    x1, x2 = np.asarray(_values(g, shape, ties)), np.asarray(_values(g, shape, ties))
    if zero:
        x1 = np.asarray(x1 * (g.uniform(size=shape) < 0.5))  # some zero entries, maybe whole zero vectors
    if tiny:
        x2 = np.asarray(x2 * 1e-3)  # norms below eps (gradient through torch's no-grad clamp)
    atol = None
    if ties or (shape[dim] if shape else 1) == 1:
        # Exact cancellations: with one element along `dim` (similarity +-1) or with tied values,
        # gradient components are differences of equal terms of size ~1/|x|. float32 leaves ~1e-7
        # of those terms there, which torch's op order happens to cancel to exactly 0 and ours
        # need not (relative to a 0 reference any residue is an infinite relative error).
        # Compare such draws in float64, where the same formulas are checked to 1e-7. Even there
        # the residue is an ulp of the cancelling terms: with `tiny` norms (~1e-4) the terms are
        # ~1e4 and one ulp is ~2e-12, above float64's 1e-12 floor (a draw found it). The floor
        # is scaled by the term size, 1 / max(smallest nonzero norm, eps).
        dtype = "float64"
        norms = np.concatenate([np.ravel(np.linalg.norm(np.atleast_1d(x), axis=dim if shape else 0)) for x in (x1, x2)])
        nonzero = norms[norms > 0]
        if nonzero.size:
            atol = 1e-12 * max(1.0, 1.0 / max(float(nonzero.min()), eps))
    assert_case(
        Case(
            "hypothesis",
            "cosine_similarity",
            (x1, x2),
            {"dim": dim, "eps": eps},
            grad=(0, 1),
            dtype=dtype,
            kind="elementwise",
            label=f"{shape},dim={dim}",
            atol=atol,
        )
    )
