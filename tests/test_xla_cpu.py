"""The XLA:CPU rewrites of ``losses_jax._xla_cpu`` equal the reference formulas (traced within
``_xla_cpu.reference_formulas()``): values and gradients in float64, and under ``jit``, ``vmap``
and ``jvp``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import losses_jax as F
from losses_jax import _xla_cpu

RNG = np.random.default_rng(7)
X = RNG.normal(size=(6, 5))
Y = RNG.normal(size=(6, 5))
W = RNG.uniform(0.5, 2.0, size=5)

# Each loss whose derivative goes through `_xla_cpu.unshared`, as a function of (x, y).
LOSSES = {
    "huber_loss": lambda x, y: F.huber_loss(x, y, delta=0.7),
    "smooth_l1_loss": lambda x, y: F.smooth_l1_loss(x, y, beta=0.7),
    "gaussian_nll_loss": lambda x, y: F.gaussian_nll_loss(x, jnp.sin(y), jnp.exp(y)),
    "multilabel_soft_margin_loss": lambda x, y: F.multilabel_soft_margin_loss(x, jax.nn.sigmoid(y)),
    "cross_entropy smoothing": lambda x, y: F.cross_entropy(x, jnp.argmax(y, -1), label_smoothing=0.2),
    "cross_entropy smoothing weight": lambda x, y: F.cross_entropy(
        x, jnp.argmax(y, -1), weight=jnp.asarray(W), label_smoothing=0.2
    ),
}


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _both(fn):
    """``fn()`` with the CPU rewrites, then within ``reference_formulas()`` (the reference)."""
    rewritten = jax.tree.map(np.asarray, fn())
    with _xla_cpu.reference_formulas():
        reference = jax.tree.map(np.asarray, fn())
    return rewritten, reference


def _close(a, b):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14), a, b)


def test_applies_when_lowered_for_cpu_only():
    """One traced program: its CPU lowering has the barrier, its lowering for another platform
    has not (the choice is made per lowering platform, whatever the default backend)."""
    traced = jax.jit(jax.grad(LOSSES["huber_loss"])).trace(X, Y)
    assert "optimization_barrier" in traced.lower(lowering_platforms=("cpu",)).as_text()
    assert "optimization_barrier" not in traced.lower(lowering_platforms=("cuda",)).as_text()


def test_reference_formulas_is_scoped_and_retraces():
    """Within ``reference_formulas()`` the same jitted function is traced again without the
    barrier, and after the block it is back (from jit's cache), with no cache clearing."""
    f = jax.jit(jax.grad(LOSSES["huber_loss"]))
    with_barrier = "optimization_barrier" in f.lower(X, Y).as_text()
    assert with_barrier == (jax.default_backend() == "cpu")
    with _xla_cpu.reference_formulas():
        assert "optimization_barrier" not in f.lower(X, Y).as_text()
    assert ("optimization_barrier" in f.lower(X, Y).as_text()) == with_barrier


@pytest.mark.parametrize("name", LOSSES)
def test_rewrite_equals_reference(name, x64):
    f = LOSSES[name]
    x, y = jnp.asarray(X), jnp.asarray(Y)
    v = jnp.asarray(RNG.normal(size=X.shape))
    on, off = _both(
        lambda: (
            f(x, y),
            jax.grad(f, argnums=(0, 1))(x, y),
            jax.jit(jax.value_and_grad(f))(x, y),
            jax.jvp(lambda x: f(x, y), (x,), (v,)),
            jax.vmap(lambda a, b: f(a[None], b[None]))(x, y),
            jax.vmap(jax.grad(lambda a, b: f(a[None], b[None])))(x, y),
            jax.jvp(jax.grad(lambda x: f(x, y)), (x,), (v,)),
        )
    )
    _close(on, off)
    # and the reference is the formula's derivative: central differences in float64
    h = 1e-6
    fd = (f(x + h * v, y) - f(x - h * v, y)) / (2 * h)
    np.testing.assert_allclose(on[3][1], fd, rtol=1e-6, atol=1e-9)
