"""Behaviour that is ours to define (not a comparison with torch): transforms, warnings, the
class API, the documented under-jit behaviour, and hand-computed values from the tutorials."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import losses_jax as F
from losses_jax._reduction import legacy_get_string, resolve_reduction
from tests._jaxlib_features import requires_memory_bounds

X = jnp.asarray(np.random.default_rng(0).normal(size=(6, 5)), jnp.float32)
T = jnp.array([0, 4, 2, -100, 1, 3])


# -- the tutorials' worked numbers (the L1/MSE and cross-entropy lessons), computed by hand ---


def test_tutorial_numbers_by_hand():
    a = np.array([[3.0, 2, 1], [1, 2, 3]], np.float32)
    b = np.array([[1.0, 2, 1], [1, 2, 4]], np.float32)
    assert float(F.l1_loss(a, b)) == pytest.approx(0.5)
    assert float(F.l1_loss(a, b, reduction="sum")) == pytest.approx(3.0)
    assert float(F.mse_loss(a, b)) == pytest.approx(5 / 6)  # (2^2 + 1^2) / 6
    u, v = np.array([1.0, 2, 3]), np.array([1.0, 2, 5])
    assert float(F.l1_loss(u, v, reduction="sum")) == pytest.approx(2.0)
    assert float(F.l1_loss(u, v)) == pytest.approx(2 / 3)
    assert float(F.mse_loss(u, v, reduction="sum")) == pytest.approx(4.0)
    assert float(F.mse_loss(u, v)) == pytest.approx(4 / 3)
    expected = -0.2 + math.log(math.exp(0.1) + math.exp(0.2) + math.exp(0.3))
    assert float(F.cross_entropy(np.array([[0.1, 0.2, 0.3]]), np.array([1]))) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(1.1019, abs=1e-4)
    lse = math.log(math.exp(0.5) + math.exp(1) + math.exp(2))
    two = F.CrossEntropyLoss()(jnp.array([[0.5, 1, 2], [0.5, 1, 2]]), jnp.array([0, 1]))
    assert float(two) == pytest.approx(((lse - 0.5) + (lse - 1)) / 2, rel=1e-6)


def test_weighted_mean_and_smoothing_by_hand():
    x = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    t = np.array([2, 0])
    w = np.array([0.5, 1.0, 2.0])
    lp = x - np.log(np.exp(x).sum(1, keepdims=True))
    nll = np.array([-lp[0, 2] * 2.0, -lp[1, 0] * 0.5])
    assert float(F.cross_entropy(x, t, weight=w)) == pytest.approx(nll.sum() / 2.5, rel=1e-6)
    eps = 0.3
    smooth = -(lp * w).sum(1)
    expected = (1 - eps) * nll.sum() / 2.5 + eps / 3 * smooth.sum() / 2.5
    assert float(F.cross_entropy(x, t, weight=w, label_smoothing=eps)) == pytest.approx(expected, rel=1e-6)


# -- reduction handling and warnings ------------------------------------------------------


@pytest.mark.parametrize(
    "size_average,reduce,expected",
    [
        (None, None, "mean"),
        (True, None, "mean"),
        (False, None, "sum"),
        (None, True, "mean"),
        (None, False, "none"),
        (True, True, "mean"),
        (False, True, "sum"),
        (True, False, "none"),
        (False, False, "none"),
    ],
)
def test_legacy_mapping_is_torchs(size_average, reduce, expected):
    torch_reduction = pytest.importorskip("torch.nn._reduction")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch_reduction.legacy_get_string(size_average, reduce) == expected
        assert legacy_get_string(size_average, reduce) == expected


def test_legacy_arguments_warn_at_the_callers_line():
    with pytest.warns(UserWarning, match=r"please use reduction='sum' instead") as rec:
        out = F.l1_loss(np.ones(3), np.zeros(3), size_average=False)
    assert float(out) == 3.0
    assert rec[0].filename == __file__
    with pytest.warns(UserWarning, match=r"reduction='none'") as rec:
        F.NLLLoss(reduce=False)
    assert rec[0].filename == __file__
    with pytest.warns(UserWarning, match="elementwise_mean' is deprecated") as rec:
        assert resolve_reduction("elementwise_mean") == "mean"


def test_shape_mismatch_warns_like_torch():
    with pytest.warns(
        UserWarning, match=r"Using a target size \(\(3,\)\) that is different to the input size \(\(3, 1\)\)"
    ) as rec:
        out = F.mse_loss(np.ones((3, 1)), np.zeros(3))
    assert rec[0].filename == __file__
    assert float(out) == 1.0


def test_class_rejects_bad_reduction_when_built():
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        F.MSELoss(reduction="avg")


# -- transforms: jit, grad, vmap --------------------------------------------------------

CALLS = {
    "l1_loss": lambda x, y: F.l1_loss(x, y),
    "mse_loss": lambda x, y: F.mse_loss(x, y, reduction="sum"),
    "nll_loss": lambda x, t: F.nll_loss(jax.nn.log_softmax(x), t, weight=jnp.arange(1.0, 6.0)),
    "cross_entropy": lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
    "cross_entropy_probs": lambda x, p: F.cross_entropy(x, p),
}


def _second(name):
    if name in ("l1_loss", "mse_loss"):
        return X[::-1]
    if name == "cross_entropy_probs":
        return jax.nn.softmax(X[::-1])
    return jnp.where(T < 0, 0, T)


@pytest.mark.parametrize("name", CALLS)
def test_jit_matches_eager(name):
    f = CALLS[name]
    y = _second(name)
    np.testing.assert_allclose(jax.jit(f)(X, y), f(X, y), rtol=1e-6)
    # fusion under jit reorders float32 sums: agreement to float32 rounding, not bit-for-bit
    np.testing.assert_allclose(jax.jit(jax.grad(f))(X, y), jax.grad(f)(X, y), rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize("name", CALLS)
def test_grad_matches_finite_differences(name):
    f = CALLS[name]
    y = _second(name)
    with jax.enable_x64(True):
        x64 = X.astype(jnp.float64)
        y64 = y.astype(jnp.float64) if jnp.issubdtype(y.dtype, jnp.floating) else y
        g = jax.grad(f)(x64, y64)
        d = jnp.asarray(np.random.default_rng(1).normal(size=X.shape))
        h = 1e-6
        fd = (f(x64 + h * d, y64) - f(x64 - h * d, y64)) / (2 * h)
        assert float(jnp.vdot(g, d)) == pytest.approx(float(fd), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", ["l1_loss", "mse_loss", "cross_entropy", "cross_entropy_probs"])
def test_vmap_over_a_batch_of_problems(name):
    """vmap over a leading axis of independent problems equals a Python loop over them."""
    f = CALLS[name]
    xs = jnp.stack([X, 2 * X, X + 1])
    ys = jnp.stack([_second(name)] * 3)
    batched = jax.vmap(f)(xs, ys)
    looped = jnp.stack([f(a, b) for a, b in zip(xs, ys, strict=True)])
    np.testing.assert_allclose(batched, looped, rtol=1e-6)


def test_vmap_per_example_cross_entropy_is_the_none_reduction():
    """vmap over examples sees (C,) logits and () targets: torch's unbatched layout."""
    t = jnp.where(T < 0, 0, T)
    per_example = jax.vmap(F.cross_entropy)(X, t)
    np.testing.assert_allclose(per_example, F.cross_entropy(X, t, reduction="none"), rtol=1e-6)


@requires_memory_bounds
@pytest.mark.parametrize("smoothing, weighted", [(0.0, False), (0.1, False), (0.1, True)])
def test_cross_entropy_value_and_grad_keeps_no_n_by_c_temporary(smoothing, weighted):
    """The only N x C buffer of value+grad is the gradient itself (an output): XLA's temporaries
    stay far below one N x C array. Guards the XLA:CPU rewrite of the custom JVP
    (losses_jax._xla_cpu), without which XLA materialised the shifted logits (500 MiB at
    4096 x 32000 with smoothing)."""
    n, c = 512, 2048
    x = jax.ShapeDtypeStruct((n, c), jnp.float32)
    t = jax.ShapeDtypeStruct((n,), jnp.int32)
    w = jnp.linspace(0.5, 1.5, c) if weighted else None
    f = jax.value_and_grad(lambda x, t: F.cross_entropy(x, t, weight=w, label_smoothing=smoothing))
    memory = jax.jit(f).lower(x, t).compile().memory_analysis()
    assert memory.output_size_in_bytes >= n * c * 4
    assert memory.temp_size_in_bytes < n * c * 4 / 4, memory


@requires_memory_bounds
@pytest.mark.parametrize(
    "name, kwargs",
    [("l1_loss", {}), ("mse_loss", {}), ("huber_loss", {"delta": 0.5}), ("smooth_l1_loss", {"beta": 0.5})],
)
def test_regression_value_and_grad_keeps_no_full_size_temporary(name, kwargs):
    """The gradient is the only full-size buffer: the forward reads input and target straight
    into the reduction (huber/smooth_l1 need their select-free forms and barrier-separated
    gradients for that; with a shared x - y, XLA materialised it)."""
    shape = (256, 1024)
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    f = jax.value_and_grad(lambda x, y: getattr(F, name)(x, y, **kwargs))
    memory = jax.jit(f).lower(x, x).compile().memory_analysis()
    assert memory.temp_size_in_bytes < math.prod(shape) * 4 / 4, memory


# -- data-dependent problems: concrete -> IndexError, traced -> NaN (documented) ------------


def test_out_of_range_target_under_jit_is_nan_not_plausible():
    bad = jnp.array([0, 7, 2, -100, 1, 3])
    for fn in (F.cross_entropy, F.nll_loss):
        value = jax.jit(fn)(X, bad)
        assert np.isnan(float(value))
        per = jax.jit(lambda x, t: fn(x, t, reduction="none"))(X, bad)
        assert np.isnan(per[1]) and np.isfinite(np.delete(np.asarray(per), 1)).all()
        grad = jax.jit(jax.grad(fn))(X, bad)
        assert np.isnan(np.asarray(grad)).any()
    with pytest.raises(IndexError, match="Target 7 is out of bounds."):
        F.cross_entropy(X, bad)


def test_all_ignored_mean_is_nan_with_zero_gradient():
    t = jnp.full((6,), -100)
    assert np.isnan(float(F.cross_entropy(X, t)))
    np.testing.assert_array_equal(jax.grad(F.cross_entropy)(X, t), np.zeros(X.shape))
    assert float(F.cross_entropy(X, t, reduction="sum")) == 0.0


def test_extreme_logits_are_exact():
    x = jnp.array([[1e4, -1e4, 0.0], [1e4, 1e4, 1e4]], jnp.float32)
    out = F.cross_entropy(x, jnp.array([1, 2]), reduction="none")
    np.testing.assert_allclose(out, [2e4, math.log(3)], rtol=1e-6)
    g = jax.grad(lambda x: F.cross_entropy(x, jnp.array([1, 2])))(x)
    assert np.isfinite(np.asarray(g)).all()


def test_half_precision_results_keep_the_input_dtype():
    for dt in (jnp.bfloat16, jnp.float16):
        assert F.cross_entropy(X.astype(dt), jnp.array([0, 1, 2, 3, 4, 0])).dtype == dt
        assert F.mse_loss(X.astype(dt), X.astype(dt)).dtype == dt


# -- the class API -------------------------------------------------------------------------


def test_classes_are_pytrees_usable_as_jit_arguments():
    crit = F.CrossEntropyLoss(weight=jnp.arange(1.0, 6.0), ignore_index=4, label_smoothing=0.2)
    leaves, treedef = jax.tree_util.tree_flatten(crit)
    assert len(leaves) == 1 and leaves[0].shape == (5,)
    t = jnp.where(T < 0, 0, T)
    via_jit = jax.jit(lambda c, x, t: c(x, t))(crit, X, t)
    np.testing.assert_allclose(
        via_jit, F.cross_entropy(X, t, weight=jnp.arange(1.0, 6.0), ignore_index=4, label_smoothing=0.2), rtol=1e-6
    )
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert rebuilt.ignore_index == 4 and rebuilt.label_smoothing == 0.2


def test_repr_shows_non_default_options():
    assert repr(F.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(F.NLLLoss(ignore_index=0, reduction="sum")) == "NLLLoss(reduction='sum', ignore_index=0)"
    assert repr(F.CrossEntropyLoss(weight=np.ones(3))) == "CrossEntropyLoss(weight=Array(3,))"


def test_to_numpy_takes_torch_jax_and_numpy_values():
    """The one conversion behind both state_dict readers: torch tensors that require grad, in half
    precision, JAX and numpy arrays; exact values (float16/bfloat16 widened to float32 exactly)."""
    import torch

    from losses_jax.interop import to_numpy

    w = torch.tensor([[1.5, -2.25], [3.0, 0.1]], requires_grad=True)
    np.testing.assert_array_equal(to_numpy(w), w.detach().numpy())
    for dtype in (torch.float16, torch.bfloat16):
        half = w.detach().to(dtype)
        got = to_numpy(half)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, half.float().numpy())
    assert to_numpy(torch.arange(3)).dtype == np.int64
    np.testing.assert_array_equal(to_numpy(jnp.arange(4.0)), np.arange(4.0, dtype=np.float32))
    assert to_numpy([1, 2]).tolist() == [1, 2]
