"""Random shapes and option combinations drawn by hypothesis, for the foundation losses.

Inputs are made from a drawn seed with numpy (fast); hypothesis draws the structure: shapes
(empty dimensions included), reductions, weights, ignore_index and how often it occurs, label
smoothing, target kind and dtype. Every example goes through the same harness as the fixed cases.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from parity_tests.harness import Case, assert_case

reductions = st.sampled_from(["none", "mean", "sum"])
dtypes = st.sampled_from(["float32", "float64"])
seeds = st.integers(0, 2**31 - 1)


@settings(max_examples=40)
@given(
    fn=st.sampled_from(["l1_loss", "mse_loss"]),
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),
    reduction=reductions,
    weighted=st.booleans(),
    ties=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_regression(fn, shape, reduction, weighted, ties, dtype, seed):
    g = np.random.default_rng(seed)
    if ties:
        pair = g.integers(-2, 3, size=(2,) + shape).astype(np.float64)
    else:
        pair = g.normal(size=(2,) + shape) * g.uniform(0.1, 10)
    x, y = np.asarray(pair[0]), np.asarray(pair[1])  # 0-d arrays, not numpy scalars
    kw = {"reduction": reduction}
    if weighted:
        kw["weight"] = g.uniform(0.1, 2.0, size=shape)
    assert_case(Case("hypothesis", fn, (x, y), kw, grad=(0, 1), dtype=dtype, label=f"{shape}"))


@st.composite
def index_problem(draw):
    c = draw(st.integers(1, 6))
    batched = draw(st.booleans())
    n = draw(st.integers(0, 5))
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))) if batched else ()
    xshape = (n, c) + spatial if batched else (c,)
    tshape = (n,) + spatial if batched else ()
    return c, xshape, tshape


@settings(max_examples=60)
@given(
    fn=st.sampled_from(["nll_loss", "cross_entropy"]),
    problem=index_problem(),
    reduction=reductions,
    weighted=st.booleans(),
    ignore=st.one_of(st.none(), st.integers(-100, 8)),
    ignore_frac=st.floats(0, 1),
    smoothing=st.one_of(st.just(0.0), st.floats(0, 1)),
    scale=st.sampled_from([1.0, 10.0, 1e3]),
    dtype=dtypes,
    seed=seeds,
)
def test_index_targets(fn, problem, reduction, weighted, ignore, ignore_frac, smoothing, scale, dtype, seed):
    c, xshape, tshape = problem
    g = np.random.default_rng(seed)
    x = g.normal(size=xshape) * scale
    if fn == "nll_loss":
        axis = 0 if len(xshape) == 1 else 1
        x = x - np.log(np.exp(x - x.max(axis, keepdims=True)).sum(axis, keepdims=True)) - x.max(axis, keepdims=True)
    t = g.integers(0, c, size=tshape)
    kw = {"reduction": reduction}
    if ignore is not None:
        kw["ignore_index"] = ignore
        t = np.where(g.uniform(size=tshape) < ignore_frac, ignore, t)
        if ignore < 0 or ignore >= c:  # keep every non-ignored target in range
            t = np.where((t != ignore) & ((t < 0) | (t >= c)), 0, t)
    if weighted:
        kw["weight"] = g.uniform(0.1, 2.0, size=(c,))
    if fn == "cross_entropy" and smoothing:
        kw["label_smoothing"] = smoothing
    assert_case(Case("hypothesis", fn, (x, np.asarray(t, np.int64)), kw, dtype=dtype, label=f"{xshape}"))


@settings(max_examples=40)
@given(
    problem=index_problem(),
    reduction=reductions,
    weighted=st.booleans(),
    smoothing=st.one_of(st.just(0.0), st.floats(0, 1)),
    normalised=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_probability_targets(problem, reduction, weighted, smoothing, normalised, dtype, seed):
    c, xshape, _ = problem
    axis = 0 if len(xshape) == 1 else 1
    g = np.random.default_rng(seed)
    x = g.normal(size=xshape) * 3
    p = g.uniform(size=xshape)
    if normalised:
        p = p / p.sum(axis, keepdims=True)
    kw = {"reduction": reduction}
    if weighted:
        kw["weight"] = g.uniform(0.1, 2.0, size=(c,))
    if smoothing:
        kw["label_smoothing"] = smoothing
    assert_case(Case("hypothesis", "cross_entropy", (x, p), kw, grad=(0, 1), dtype=dtype, label=f"{xshape}"))
