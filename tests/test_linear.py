"""linear_cross_entropy without torch: the chunked path against cross_entropy of explicit logits,
the memory claim (no N x V buffer), JAX transformations, options and the class."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import losses_jax
from losses_jax import LinearCrossEntropyLoss, LinearCrossEntropyOptions, cross_entropy, linear_cross_entropy

RNG = np.random.default_rng(0)
N, H, C = 7, 4, 5


def _arr(*shape, scale=1.0):
    return jnp.asarray(RNG.normal(size=shape) * scale, jnp.float32)


def _explicit(x, w, t, b, **kw):
    """cross_entropy of the logits linear_cross_entropy stands for (class axis 1)."""
    h = x.shape[-1]
    z = x @ w.reshape(-1, h).T
    if b is not None:
        z = z + b.reshape(-1)
    z = z.reshape((*x.shape[:-1], *w.shape[:-1]))
    if kw.get("ignore_index", 0) is None:
        kw = {k: v for k, v in kw.items() if k != "ignore_index"}
    return cross_entropy(z, t, **kw)


def _close(a, b, rtol=2e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol, equal_nan=True)


# reduction x K-dimensional out_features x target kind x (weight + label smoothing (+ ignore_index)),
# chunk rows cycling through 3 (not dividing N), 1 and 10 (more than N)
GRID = [
    combo + ((3, 1, 10)[i % 3],)
    for i, combo in enumerate(itertools.product(("none", "mean", "sum"), ((), (3,)), ("index", "probs"), (False, True)))
]


@pytest.mark.parametrize("red,dk,kind,opts,chunk", GRID)
def test_chunked_equals_cross_entropy_of_explicit_logits(red, dk, kind, opts, chunk):
    x, w, b = _arr(N, H, scale=1.5), _arr(C, *dk, H), _arr(C, *dk)
    if kind == "index":
        t = jnp.asarray(RNG.integers(0, C, size=(N, *dk)))
        t = t.at[1].set(2 if opts else -100)
    else:
        t = jax.nn.softmax(_arr(N, C, *dk), axis=1)
    kw = {"reduction": red}
    if opts:
        kw.update(weight=jnp.asarray(RNG.uniform(0.5, 2, C), jnp.float32), label_smoothing=0.3)
        if kind == "index":
            kw["ignore_index"] = 2
    o = LinearCrossEntropyOptions(batch_chunk_size=chunk)
    ours = lambda x, w, b, t: linear_cross_entropy(x, w, t, linear_bias=b, options=o, **kw)
    ref = lambda x, w, b, t: _explicit(x, w, t, b, **kw)
    argnums = (0, 1, 2, 3) if kind == "probs" else (0, 1, 2)
    ct = jnp.asarray(RNG.uniform(0.5, 1.5, size=ref(x, w, b, t).shape), jnp.float32)
    vg = lambda f: jax.value_and_grad(lambda *a: jnp.sum(f(*a) * ct), argnums=argnums)
    (v_ours, g_ours), (v_ref, g_ref) = jax.jit(vg(ours))(x, w, b, t), vg(ref)(x, w, b, t)
    _close(v_ours, v_ref)
    for a, r in zip(g_ours, g_ref, strict=True):
        _close(a, r)


def _avals(jaxpr):
    """Every variable's abstract value in a closed jaxpr, nested jaxprs (scan, custom_vjp) included."""
    for eqn in jaxpr.eqns:
        for v in list(eqn.invars) + list(eqn.outvars):
            if hasattr(v, "aval"):
                yield v.aval
        for p in eqn.params.values():
            for sub in p if isinstance(p, (tuple, list)) else (p,):
                inner = getattr(sub, "jaxpr", None)
                if inner is not None:
                    yield from _avals(inner if hasattr(inner, "eqns") else inner.jaxpr)
                elif hasattr(sub, "eqns"):
                    yield from _avals(sub)


def test_value_and_grad_never_hold_the_logits():
    """At N=512, V=4096 the chunked value+grad has no N x V array anywhere in its jaxpr, and XLA's
    temporaries stay far below one N x V buffer; the plain path needs several (the test can fail)."""
    n, h, v, chunk = 512, 32, 4096, 32
    x, w = _arr(n, h), _arr(v, h, scale=0.2)
    t = jnp.asarray(RNG.integers(0, v, size=n))
    logits_bytes = n * v * 4
    temps = {}
    for name, o in [("chunked", LinearCrossEntropyOptions(batch_chunk_size=chunk)), ("plain", None)]:
        f = jax.value_and_grad(
            lambda x, w, o=o: linear_cross_entropy(x, w, t, label_smoothing=0.1, options=o), argnums=(0, 1)
        )
        biggest = max(int(np.prod(a.shape)) for a in _avals(jax.make_jaxpr(f)(x, w).jaxpr) if hasattr(a, "shape"))
        temps[name] = (biggest, jax.jit(f).lower(x, w).compile().memory_analysis().temp_size_in_bytes)
    biggest, temp = temps["chunked"]
    assert biggest < n * v  # largest array: linear_weight / its gradient (v * h), or a block
    assert biggest <= max(v * h, chunk * v)
    assert temp < logits_bytes / 4, temps
    assert temps["plain"][0] >= n * v and temps["plain"][1] >= logits_bytes, temps


def test_auto_chunk_keeps_block_at_16_mib():
    o = LinearCrossEntropyOptions()
    assert o.resolve_batch_chunk_size(4096, 256, 65536) == 64
    assert o.resolve_batch_chunk_size(10, 256, 65536) == 10
    assert o.resolve_batch_chunk_size(4096, 256, 10**9) == 1
    assert LinearCrossEntropyOptions(batch_chunk_size=100).resolve_batch_chunk_size(4096, 256, 65536) == 100
    assert (
        LinearCrossEntropyOptions(batch_chunk_size=None, chunking_method=None).resolve_batch_chunk_size(50, 4, 7) == 50
    )


def test_aspect_ratio_matches_torch_formula():
    torch = pytest.importorskip("torch")
    for n, h, v, method in itertools.product(
        (1, 7, 100, 4096), (1, 4, 256), (3, 1000, 65536), ("aspect_ratio", "aspect_ratio:2", "aspect_ratio:5")
    ):
        ours = LinearCrossEntropyOptions(chunking_method=method).resolve_batch_chunk_size(n, h, v)
        theirs = (
            torch.nn.LinearCrossEntropyOptions(chunking_method=method)._adjust(n, h, v, torch.float32).batch_chunk_size
        )
        assert ours == theirs, (n, h, v, method)


@pytest.mark.parametrize(
    "kw,msg",
    [
        ({"batch_chunk_size": 0}, "batch_chunk_size must be positive int or None"),
        ({"batch_chunk_size": 2.5}, "batch_chunk_size"),
        ({"chunking_method": "foo"}, "invalid chunking_method"),
        ({"chunking_method": "aspect_ratio:0"}, "invalid chunking_method"),
        ({"acc_policy": "fast"}, "invalid acc_policy"),
        ({"acc_dtype": jnp.int32}, "acc_dtype"),
    ],
)
def test_options_validation(kw, msg):
    with pytest.raises(ValueError, match=msg):
        LinearCrossEntropyOptions(**kw)


def test_options_conflict():
    o = LinearCrossEntropyOptions(batch_chunk_size=3, chunking_method="aspect_ratio")
    with pytest.raises(ValueError, match="pass only one"):
        linear_cross_entropy(_arr(N, H), _arr(C, H), jnp.zeros(N, int), options=o)


def test_vmap_jit_and_traced_label_smoothing():
    o = LinearCrossEntropyOptions(batch_chunk_size=2)
    xs, w = _arr(3, N, H), _arr(C, H)
    t = jnp.asarray(RNG.integers(0, C, size=N))
    f = lambda x, ls: linear_cross_entropy(x, w, t, label_smoothing=ls, options=o)
    batched = jax.jit(jax.vmap(f, in_axes=(0, None)))(xs, 0.2)
    looped = jnp.stack([_explicit(x, w, t, None, label_smoothing=0.2) for x in xs])
    _close(batched, looped)
    gb = jax.vmap(jax.grad(f), in_axes=(0, None))(xs, 0.2)
    gl = jnp.stack([jax.grad(lambda x: _explicit(x, w, t, None, label_smoothing=0.2))(x) for x in xs])
    _close(gb, gl)


def test_forward_mode_only_on_reference_path():
    x, w = _arr(N, H), _arr(C, H)
    t = jnp.asarray(RNG.integers(0, C, size=N))
    ref = lambda x: linear_cross_entropy(x, w, t)
    hess = jax.hessian(ref)(x)  # the reference path supports every transformation
    assert hess.shape == (N, H, N, H) and np.isfinite(np.asarray(hess)).all()
    chunked = lambda x: linear_cross_entropy(x, w, t, options=LinearCrossEntropyOptions())
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(chunked, (x,), (x,))


def test_out_of_range_target():
    x, w = _arr(N, H), _arr(C, H)
    bad = jnp.asarray([0, 1, 2, 3, 4, 5, 0])
    o = LinearCrossEntropyOptions(batch_chunk_size=3)
    for opts in (None, o):
        with pytest.raises(IndexError, match="Target 5 is out of bounds"):
            linear_cross_entropy(x, w, bad, options=opts)
    # under jit the values cannot be checked: NaN, never a plausible number
    val, grad = jax.jit(jax.value_and_grad(lambda x, t: linear_cross_entropy(x, w, t, options=o)))(x, bad)
    assert np.isnan(val) and np.isnan(np.asarray(grad)).any()


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_dtype_and_value(dtype):
    x, w = _arr(16, 8).astype(dtype), (_arr(C, 8) * 0.5).astype(dtype)
    t = jnp.asarray(RNG.integers(0, C, size=16))
    out = linear_cross_entropy(x, w, t, options=LinearCrossEntropyOptions(batch_chunk_size=5))
    assert out.dtype == dtype
    ref = _explicit(x.astype(jnp.float32), w.astype(jnp.float32), t, None)
    _close(out.astype(jnp.float32), ref, rtol=1e-2)
    g = jax.grad(lambda w: linear_cross_entropy(x, w, t, options=LinearCrossEntropyOptions()).astype(jnp.float32))(w)
    assert g.dtype == dtype


def test_float64():
    with jax.enable_x64(True):
        x = jnp.asarray(RNG.normal(size=(N, H)))
        w = jnp.asarray(RNG.normal(size=(C, H)))
        t = jnp.asarray(RNG.integers(0, C, size=N))
        o = LinearCrossEntropyOptions(batch_chunk_size=2)
        out = linear_cross_entropy(x, w, t, options=o, label_smoothing=0.1)
        assert out.dtype == jnp.float64
        np.testing.assert_allclose(out, _explicit(x, w, t, None, label_smoothing=0.1), rtol=1e-12)
        g = jax.grad(lambda w: linear_cross_entropy(x, w, t, options=o))(w)
        np.testing.assert_allclose(g, jax.grad(lambda w: _explicit(x, w, t, None))(w), rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# The class


def test_class_parameters_like_torch_linear():
    m = LinearCrossEntropyLoss(16, 10, out_features=(2, 3), bias=True, key=jax.random.key(1))
    assert m.linear_weight.shape == (60, 16) and m.linear_bias.shape == (60,)
    bound = 1 / np.sqrt(16)
    assert float(jnp.max(jnp.abs(m.linear_weight))) <= bound and float(jnp.max(jnp.abs(m.linear_bias))) <= bound
    assert float(jnp.std(m.linear_weight)) > bound / 3  # uniform on [-bound, bound]: std bound / sqrt(3)
    assert LinearCrossEntropyLoss(4, 3).linear_bias is None
    assert LinearCrossEntropyLoss(4, 3, dtype=jnp.bfloat16).linear_weight.dtype == jnp.bfloat16
    a, b = LinearCrossEntropyLoss(4, 3), LinearCrossEntropyLoss(4, 3)
    np.testing.assert_array_equal(a.linear_weight, b.linear_weight)  # key=None: jax.random.key(0)


def test_class_is_a_pytree_through_jit_and_grad():
    m = LinearCrossEntropyLoss(
        H, C, bias=True, label_smoothing=0.1, options=LinearCrossEntropyOptions(batch_chunk_size=3)
    )
    x = _arr(N, H)
    t = jnp.asarray(RNG.integers(0, C, size=N))
    loss = jax.jit(lambda m, x: m(x, t))(m, x)
    _close(loss, _explicit(x, m.linear_weight, t, m.linear_bias, label_smoothing=0.1))
    g = jax.grad(lambda m: m(x, t))(m)
    assert isinstance(g, LinearCrossEntropyLoss)
    gw = jax.grad(lambda w: _explicit(x, w, t, m.linear_bias, label_smoothing=0.1))(m.linear_weight)
    _close(g.linear_weight, gw)
    assert g.options == m.options and g.label_smoothing == 0.1


def test_class_errors_and_repr():
    with pytest.raises(ValueError, match="'weight'"):
        LinearCrossEntropyLoss(4, 5, weight=jnp.ones(3))
    with pytest.raises(ValueError, match="'label_smoothing'"):
        LinearCrossEntropyLoss(4, 5, label_smoothing=1.5)
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        LinearCrossEntropyLoss(4, 5, reduction="avg")
    with pytest.raises(TypeError, match="'options'"):
        LinearCrossEntropyLoss(4, 5, options={"batch_chunk_size": 2})
    r = repr(LinearCrossEntropyLoss(4, 5, reduction="sum", weight=jnp.ones(5)))
    assert r.startswith("LinearCrossEntropyLoss(") and "reduction='sum'" in r and "weight=Array(5,)" in r


def test_exported():
    for name in ("linear_cross_entropy", "LinearCrossEntropyLoss", "LinearCrossEntropyOptions"):
        assert name in losses_jax.__all__ and hasattr(losses_jax, name)
