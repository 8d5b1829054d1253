"""Random shapes and options drawn by hypothesis for huber/smooth_l1, binary cross-entropy (both),
kl_div, poisson and gaussian NLL, through the same harness as the fixed cases (values and
gradients against torch). Inputs are made with numpy from a drawn seed; hypothesis draws the
structure: shapes (empty dimensions included), reductions, parameters, broadcast shapes of
weights, the share of exact edge values (ties, probabilities 0/1, zero targets, tiny variances)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from parity_tests.harness import Case, assert_case

reductions = st.sampled_from(["none", "mean", "sum"])
dtypes = st.sampled_from(["float32", "float64"])
seeds = st.integers(0, 2**31 - 1)
shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)
nonempty_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@st.composite
def broadcast_to(draw, shape):
    """A shape that broadcasts to ``shape`` without enlarging it: a suffix, sizes kept or 1."""
    k = draw(st.integers(0, len(shape)))
    suffix = shape[len(shape) - k :]
    return tuple(draw(st.sampled_from([d, 1])) for d in suffix)


@settings(max_examples=30)
@given(
    fn=st.sampled_from(["huber_loss", "smooth_l1_loss"]),
    shape=shapes,
    reduction=reductions,
    param=st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0, 10.0]),
    ties=st.booleans(),
    weighted=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_robust(fn, shape, reduction, param, ties, weighted, dtype, seed):
    g = np.random.default_rng(seed)
    if ties:  # differences on a grid that hits 0, the threshold and both zones exactly
        pair = g.integers(-4, 5, size=(2,) + shape) * (max(param, 0.5) / 2)
    else:
        pair = g.normal(size=(2,) + shape) * g.uniform(0.1, 10)
    kw = {"reduction": reduction}
    if fn == "huber_loss":
        kw["delta"] = param or 0.25
        if weighted:
            kw["weight"] = g.uniform(0.0, 2.0, size=shape)
    else:
        kw["beta"] = param
    assert_case(
        Case(
            "hypothesis", fn, (np.asarray(pair[0]), np.asarray(pair[1])), kw, grad=(0, 1), dtype=dtype, label=f"{shape}"
        )
    )


@settings(max_examples=30)
@given(
    data=st.data(),
    shape=shapes,
    reduction=reductions,
    weighted=st.booleans(),
    edge_frac=st.sampled_from([0.0, 0.3, 1.0]),
    dtype=dtypes,
    seed=seeds,
)
def test_binary_cross_entropy(data, shape, reduction, weighted, edge_frac, dtype, seed):
    g = np.random.default_rng(seed)
    x = 1 / (1 + np.exp(-g.normal(size=shape) * 3))
    t = g.uniform(size=shape)
    x = np.where(g.uniform(size=shape) < edge_frac, g.integers(0, 2, size=shape), x).astype(np.float64)
    t = np.where(g.uniform(size=shape) < edge_frac, g.integers(0, 2, size=shape), t).astype(np.float64)
    kw = {"reduction": reduction}
    if weighted:
        kw["weight"] = g.uniform(0.1, 2.0, size=data.draw(broadcast_to(shape)))
    assert_case(
        Case(
            "hypothesis",
            "binary_cross_entropy",
            (np.asarray(x), np.asarray(t)),
            kw,
            grad=(0, 1),
            dtype=dtype,
            label=f"{shape}",
        )
    )


@settings(max_examples=30)
@given(
    data=st.data(),
    shape=shapes,
    reduction=reductions,
    weighted=st.booleans(),
    pos=st.booleans(),
    scale=st.sampled_from([1.0, 10.0, 100.0, 1e4]),
    hard=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_binary_cross_entropy_with_logits(data, shape, reduction, weighted, pos, scale, hard, dtype, seed):
    g = np.random.default_rng(seed)
    x = np.asarray(g.normal(size=shape) * scale)
    t = np.asarray(g.integers(0, 2, size=shape).astype(np.float64) if hard else g.uniform(size=shape))
    kw = {"reduction": reduction}
    if weighted:
        kw["weight"] = g.uniform(0.1, 2.0, size=data.draw(broadcast_to(shape)))
    if pos:
        kw["pos_weight"] = g.uniform(0.1, 5.0, size=data.draw(broadcast_to(shape)))
    assert_case(
        Case("hypothesis", "binary_cross_entropy_with_logits", (x, t), kw, grad=(0, 1), dtype=dtype, label=f"{shape}")
    )


@settings(max_examples=30)
@given(
    shape=shapes,
    reduction=st.sampled_from(["none", "mean", "sum", "batchmean"]),
    log_target=st.booleans(),
    zero_frac=st.sampled_from([0.0, 0.3]),
    dtype=dtypes,
    seed=seeds,
)
def test_kl_div(shape, reduction, log_target, zero_frac, dtype, seed):
    g = np.random.default_rng(seed)
    x = np.asarray(np.log(g.uniform(0.01, 1.0, size=shape)))
    t = np.asarray(np.where(g.uniform(size=shape) < zero_frac, 0.0, g.uniform(size=shape)))
    if log_target:
        t = np.asarray(np.log(g.uniform(0.01, 1.0, size=shape)))
    kw = {"reduction": reduction, "log_target": log_target}
    assert_case(Case("hypothesis", "kl_div", (x, t), kw, grad=(0, 1), dtype=dtype, label=f"{shape}"))


@settings(max_examples=30)
@given(
    shape=shapes,
    reduction=reductions,
    log_input=st.booleans(),
    full=st.booleans(),
    eps=st.sampled_from([1e-8, 1e-3, 0.5]),
    rate=st.sampled_from([0.5, 3.0, 50.0]),
    dtype=dtypes,
    seed=seeds,
)
def test_poisson_nll_loss(shape, reduction, log_input, full, eps, rate, dtype, seed):
    g = np.random.default_rng(seed)
    t = np.asarray(g.poisson(rate, size=shape).astype(np.float64))
    x = g.normal(np.log(rate), 1.0, size=shape)
    x = np.asarray(x if log_input else np.exp(x))
    kw = {"reduction": reduction, "log_input": log_input, "full": full, "eps": eps}
    # the target gradient is NaN at target 0 with full=True, in torch and here alike
    assert_case(Case("hypothesis", "poisson_nll_loss", (x, t), kw, grad=(0, 1), dtype=dtype, label=f"{shape}"))


@st.composite
def gaussian_problem(draw):
    shape = draw(nonempty_shapes)
    form = draw(st.sampled_from(["same", "fewer", "one", "float"]))
    if form == "same":
        vshape = shape
    elif form == "fewer":
        vshape = shape[:-1]
    elif form == "one":
        i = draw(st.integers(0, len(shape) - 1))
        vshape = shape[:i] + (1,) + shape[i + 1 :]
    else:
        vshape = None
    return shape, vshape


@settings(max_examples=30)
@given(
    problem=gaussian_problem(),
    reduction=reductions,
    full=st.booleans(),
    eps=st.sampled_from([1e-6, 1e-2, 0.3]),
    vscale=st.sampled_from([1e-8, 1e-3, 1.0, 100.0]),
    dtype=dtypes,
    seed=seeds,
)
def test_gaussian_nll_loss(problem, reduction, full, eps, vscale, dtype, seed):
    shape, vshape = problem
    g = np.random.default_rng(seed)
    x, t = np.asarray(g.normal(size=shape)), np.asarray(g.normal(size=shape))
    if vshape is None:
        var, grad = float(g.uniform(0.0, 2.0) * vscale), (0, 1)
    else:
        var, grad = np.asarray(g.uniform(0.0, 2.0, size=vshape) * vscale), (0, 1, 2)
    kw = {"reduction": reduction, "full": full, "eps": eps}
    assert_case(
        Case("hypothesis", "gaussian_nll_loss", (x, t, var), kw, grad=grad, dtype=dtype, label=f"{shape} var {vshape}")
    )
