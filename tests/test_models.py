"""models without torch: shapes, parameters, init, to_tensor, pooling, errors, jit/grad/vmap.

Parity with torch is in parity_tests/test_models.py.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import losses_jax
import models
from tests._jaxlib_features import requires_ynn_fusion

NETS = [models.Tudui, models.LeNet]
IDS = ["Tudui", "LeNet"]

# torch's parameter shapes (OIHW / (out, in)) of each network, in forward order.
TORCH_SHAPES = {
    "Tudui": {
        "model1.0.weight": (32, 3, 5, 5),
        "model1.0.bias": (32,),
        "model1.2.weight": (32, 32, 5, 5),
        "model1.2.bias": (32,),
        "model1.4.weight": (64, 32, 5, 5),
        "model1.4.bias": (64,),
        "model1.7.weight": (64, 1024),
        "model1.7.bias": (64,),
        "model1.8.weight": (10, 64),
        "model1.8.bias": (10,),
    },
    "LeNet": {
        "model.0.weight": (16, 3, 5, 5),
        "model.0.bias": (16,),
        "model.2.weight": (32, 16, 5, 5),
        "model.2.bias": (32,),
        "model.5.weight": (120, 800),
        "model.5.bias": (120,),
        "model.6.weight": (84, 120),
        "model.6.bias": (84,),
        "model.7.weight": (10, 84),
        "model.7.bias": (10,),
    },
}


def _images(n=4, seed=0):
    return models.to_tensor(np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))


def _params(model):
    return [np.asarray(p) for p in jax.tree.leaves(nnx.state(model, nnx.Param))]


# ------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("cls", NETS, ids=IDS)
@pytest.mark.parametrize("n", [1, 5])
def test_logits_shape_and_dtype(cls, n):
    out = cls(rngs=nnx.Rngs(0))(_images(n))
    assert out.shape == (n, 10) and out.dtype == jnp.float32
    assert np.isfinite(np.asarray(out)).all()


@pytest.mark.parametrize("cls", NETS, ids=IDS)
def test_parameters(cls):
    model = cls(rngs=nnx.Rngs(0))
    sd = models.to_torch_state_dict(model)
    assert {k: v.shape for k, v in sd.items()} == TORCH_SHAPES[cls.__name__]
    assert list(sd) == list(TORCH_SHAPES[cls.__name__])
    n_params = sum(math.prod(s) for s in TORCH_SHAPES[cls.__name__].values())
    assert sum(p.size for p in _params(model)) == n_params == {"Tudui": 145578, "LeNet": 121182}[cls.__name__]
    assert all(p.dtype == np.float32 for p in _params(model))
    # Flax layouts: HWIO kernels, (in, out) linear kernels.
    assert model.conv1.kernel.shape == (5, 5, 3, model.conv1.out_channels)
    assert model.fc1.kernel.shape == ({"Tudui": 1024, "LeNet": 800}[cls.__name__], model.fc1.out_features)


@pytest.mark.parametrize("cls", NETS, ids=IDS)
def test_init_is_torch_uniform_and_seeded(cls):
    a, b, c = (models.to_torch_state_dict(cls(rngs=nnx.Rngs(s))) for s in (0, 0, 1))
    for key, value in a.items():
        w_shape = a[key.replace(".bias", ".weight")].shape
        bound = 1 / math.sqrt(math.prod(w_shape[1:]))  # 1/sqrt(fan_in), as torch
        assert np.abs(value).max() <= bound
        if value.size >= 1000:
            assert np.abs(value).max() > 0.99 * bound
            assert abs(value.std() - bound / math.sqrt(3)) < 0.05 * bound
        np.testing.assert_array_equal(value, b[key])
        assert not np.array_equal(value, c[key])


# ------------------------------------------------------------------------------ to_tensor


def test_to_tensor_values_layout_and_inputs():
    x = np.arange(256, dtype=np.uint8).reshape(2, 4, 32, 1)
    expected = np.arange(256, dtype=np.float32).reshape(2, 4, 32, 1) / np.float32(255)  # IEEE division
    for inp in (x, jnp.asarray(x)):
        out = models.to_tensor(inp)
        assert isinstance(out, jax.Array) and out.dtype == jnp.float32 and out.shape == x.shape
        np.testing.assert_array_equal(np.asarray(out), expected)
    np.testing.assert_array_equal(np.asarray(jax.jit(models.to_tensor)(x)), expected)
    assert float(models.to_tensor(np.array([[[0, 255]]], np.uint8)).max()) == 1.0
    assert models.to_tensor(np.zeros((32, 32, 3), np.uint8)).shape == (32, 32, 3)  # one image


@pytest.mark.parametrize("bad", [np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, 32, 32, 3), np.int32)])
def test_to_tensor_rejects_non_uint8(bad):
    with pytest.raises(TypeError, match="'images' must be uint8"):
        models.to_tensor(bad)


def test_to_tensor_rejects_low_rank():
    with pytest.raises(ValueError, match="'images'"):
        models.to_tensor(np.zeros((32, 32), np.uint8))


# ------------------------------------------------------------------------------ max pooling


def test_max_pool_values_equal_reduce_window():
    x = jax.random.normal(jax.random.key(0), (3, 8, 10, 4))
    expected = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    np.testing.assert_array_equal(np.asarray(models.max_pool_2x2(x)), np.asarray(expected))
    odd = x[:, :7, :9]  # floor mode: the last row and column are dropped
    np.testing.assert_array_equal(np.asarray(models.max_pool_2x2(odd)), np.asarray(expected[:, :3, :4]))


def test_max_pool_gradient_goes_to_first_maximum_and_nan_propagates():
    window = jnp.array([[3.0, 5.0], [5.0, 1.0]]).reshape(1, 2, 2, 1)  # tie between (0,1) and (1,0)
    g = jax.grad(lambda x: models.max_pool_2x2(x).sum())(window)
    np.testing.assert_array_equal(np.asarray(g)[0, :, :, 0], [[0.0, 1.0], [0.0, 0.0]])
    nan = jnp.array([[3.0, jnp.nan], [5.0, 1.0]]).reshape(1, 2, 2, 1)
    assert np.isnan(np.asarray(models.max_pool_2x2(nan))).all()
    # forward mode works too (a custom JVP, not a custom VJP)
    _, tangent = jax.jvp(models.max_pool_2x2, (window,), (jnp.arange(4.0).reshape(1, 2, 2, 1),))
    assert float(tangent.squeeze()) == 1.0


def test_max_pool_jvp_selects_the_chosen_tangent_and_grad_of_grad_works():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.integers(0, 3, (2, 6, 7, 3)).astype(np.float64))  # ties; odd width
    t = jnp.asarray(rng.standard_normal(x.shape))
    with jax.enable_x64(True):
        x, t = x.astype(jnp.float64), t.astype(jnp.float64)
        _, tangent = jax.jvp(models.max_pool_2x2, (x,), (t,))
        # the VJP is the transpose of the JVP: <jvp(t), u> equals <t, vjp(u)>
        u = jnp.asarray(rng.standard_normal(tangent.shape))
        vjp_u = jax.vjp(models.max_pool_2x2, x)[1](u)[0]
        np.testing.assert_allclose(float(jnp.vdot(tangent, u)), float(jnp.vdot(t, vjp_u)), rtol=1e-12)
        # explicit: the tangent of the first maximum of each window
        win = np.asarray(x)[:, :6, :6].reshape(2, 3, 2, 3, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(2, 3, 3, 3, 4)
        tw = np.asarray(t)[:, :6, :6].reshape(2, 3, 2, 3, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(2, 3, 3, 3, 4)
        first = np.argmax(win == win.max(-1, keepdims=True), axis=-1)
        np.testing.assert_array_equal(np.asarray(tangent), np.take_along_axis(tw, first[..., None], -1)[..., 0])
        # second order: with S the selection, the Hessian of sum(pool(x)**2) is 2 S^T S, so its
        # product with t is twice the VJP of the tangent S t
        hvp = jax.jvp(jax.grad(lambda x: jnp.sum(models.max_pool_2x2(x) ** 2)), (x,), (t,))[1]
        np.testing.assert_array_equal(np.asarray(hvp), 2 * np.asarray(jax.vjp(models.max_pool_2x2, x)[1](tangent)[0]))


def _lax_conv(x, kernel, padding):
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), ((padding, padding), (padding, padding)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


# ------------------------------------------------------------- cpu_impl="ynnpack" (models/_cpu.py)


@pytest.mark.parametrize("n", [1, 19, 600])  # one chunk; 9 chunks of 2 and one of 1; the cap (32 of 19, the last 11)
def test_conv_kernel_gradient_over_batch_chunks_equals_one_convolution(n):
    from models import _cpu

    rng = np.random.default_rng(n)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.standard_normal((n, 6, 5, 2)))
        kernel = jnp.asarray(rng.standard_normal((3, 3, 2, 4)))
        tx, tk = jnp.asarray(rng.standard_normal(x.shape)), jnp.asarray(rng.standard_normal(kernel.shape))

        def chunked(x, k):
            return _cpu.chunked_kernel_grad(_lax_conv, x, k, 1)

        def plain(x, k):
            return _lax_conv(x, k, 1)

        def ours(x, k):
            return jnp.sum(jnp.sin(chunked(x, k)))

        def reference(x, k):
            return jnp.sum(jnp.sin(plain(x, k)))

        for a, b in zip(jax.grad(ours, (0, 1))(x, kernel), jax.grad(reference, (0, 1))(x, kernel), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)
        for tangents in ((tx, tk), (tx, jnp.zeros_like(tk)), (jnp.zeros_like(tx), tk)):
            y1, t1 = jax.jvp(chunked, (x, kernel), tangents)
            y2, t2 = jax.jvp(plain, (x, kernel), tangents)
            np.testing.assert_array_equal(np.asarray(y1), np.asarray(y2))
            np.testing.assert_allclose(np.asarray(t1), np.asarray(t2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("c, padded", [(1, 1), (2, 4), (3, 4), (5, 8), (6, 8), (8, 8)])
def test_conv_channel_padding_appends_zero_channels(c, padded):
    """YNNPACK's convolution is up to 4.5x faster with a multiple of 4 input channels."""
    from models import _cpu

    rng = np.random.default_rng(c)
    x = jnp.asarray(rng.standard_normal((3, 7, 6, c)), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((3, 3, c, 5)), jnp.float32)
    xp, kp = _cpu.pad_channels(x, kernel)
    assert xp.shape == (3, 7, 6, padded) and kp.shape == (3, 3, padded, 5)
    np.testing.assert_array_equal(np.asarray(xp[..., :c]), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(kp[:, :, :c]), np.asarray(kernel))
    np.testing.assert_array_equal(np.asarray(xp[..., c:]), 0)
    np.testing.assert_array_equal(np.asarray(kp[:, :, c:]), 0)


def _conv_pair(c, seed):
    """A plain Conv2d and a cpu_impl="ynnpack" one with the same float64 parameters (call inside
    enable_x64), and a float64 input batch."""
    rng = np.random.default_rng(seed)
    plain = models.Conv2d(c, 5, 3, padding=1, rngs=nnx.Rngs(0))
    ynn = models.Conv2d(c, 5, 3, padding=1, cpu_impl="ynnpack", rngs=nnx.Rngs(0))
    for layer in (plain, ynn):
        layer.kernel = nnx.Param(jnp.asarray(rng.standard_normal((3, 3, c, 5))))
        layer.bias = nnx.Param(jnp.asarray(rng.standard_normal(5)))
        rng = np.random.default_rng(seed)  # the same draws for both
    return plain, ynn, jnp.asarray(np.random.default_rng(seed + 1).standard_normal((7, 6, 5, c)))


@pytest.mark.parametrize("c", [1, 3, 8])
def test_ynnpack_layer_equals_plain_layer_in_values_and_gradients(c):
    """Conv2d(cpu_impl="ynnpack") against the plain Conv2d in float64: values, the gradients of
    input, kernel and bias, forward mode, under jit, and under vmap (of the value and of grad)."""
    with jax.enable_x64(True):
        plain, ynn, x = _conv_pair(c, seed=c)

        def loss(layer, x):
            return jnp.sum(jnp.sin(layer(x)))

        def close(a, b):
            for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
                assert u.shape == v.shape and u.dtype == v.dtype == jnp.float64
                np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-12, atol=1e-12)

        close(ynn(x), plain(x))
        close(jax.jit(lambda m, x: m(x))(ynn, x), plain(x))
        close(nnx.grad(loss, argnums=(0, 1))(ynn, x), nnx.grad(loss, argnums=(0, 1))(plain, x))
        close(nnx.jit(nnx.grad(loss, argnums=(0, 1)))(ynn, x), nnx.grad(loss, argnums=(0, 1))(plain, x))
        t = jnp.cos(x)
        close(jax.jvp(ynn, (x,), (t,)), jax.jvp(plain, (x,), (t,)))
        xs = jnp.stack([x, 2 * x, -x])  # vmap over batches of images
        close(jax.vmap(ynn)(xs), jax.vmap(plain)(xs))
        grad_x = jax.vmap(jax.grad(lambda x, m: loss(m, x)), in_axes=(0, None))
        close(grad_x(xs, ynn), grad_x(xs, plain))


def test_ynnpack_network_equals_plain_network_float64():
    with jax.enable_x64(True):
        nets = [models.Tudui(cpu_impl=impl, rngs=nnx.Rngs(0)) for impl in ("xla", "ynnpack")]
        for net in nets:
            nnx.update(net, jax.tree.map(lambda p: p.astype(jnp.float64), nnx.state(net, nnx.Param)))
        x, y = _images(5).astype(jnp.float64), jnp.arange(5)

        def loss(model, x, y):
            return losses_jax.cross_entropy(model(x), y)

        (l1, g1), (l2, g2) = (nnx.jit(nnx.value_and_grad(loss))(net, x, y) for net in nets)
        np.testing.assert_allclose(float(l1), float(l2), rtol=1e-12)
        for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)


def test_ynnpack_impl_is_lowered_only_for_cpu():
    """jax.lax.platform_dependent keeps the padded, chunked convolution in programs lowered for
    CPU; lowered for GPU, the same layer is the plain convolution (checked without a GPU)."""
    x = _images(4)

    def hlo(impl, platform):
        model = models.Tudui(cpu_impl=impl, rngs=nnx.Rngs(0))
        grad = jax.jit(lambda m, x: jax.grad(lambda m: jnp.sum(m(x)))(m))
        return grad.trace(model, x).lower(lowering_platforms=(platform,)).as_text()

    convs = {
        (impl, platform): hlo(impl, platform).count("stablehlo.convolution")
        for impl in ("xla", "ynnpack")
        for platform in ("cpu", "cuda")
    }
    # 3 layers: forward, input gradient (not for the first layer), kernel gradient
    assert convs[("xla", "cpu")] == convs[("xla", "cuda")] == convs[("ynnpack", "cuda")] == 8
    assert convs[("ynnpack", "cpu")] == 3 + 2 + 3 * 2  # kernel gradients over 2 chunks of 2 images
    assert "stablehlo.pad" in hlo("ynnpack", "cpu")  # 3 -> 4 input channels of the first layer
    assert "stablehlo.pad" not in hlo("ynnpack", "cuda")


@pytest.mark.parametrize(
    "make",
    [
        lambda impl: models.Tudui(cpu_impl=impl, rngs=nnx.Rngs(0)),
        lambda impl: models.LeNet(cpu_impl=impl, rngs=nnx.Rngs(0)),
        lambda impl: models.Conv2d(3, 4, 3, cpu_impl=impl, rngs=nnx.Rngs(0)),
    ],
    ids=["Tudui", "LeNet", "Conv2d"],
)
def test_unknown_cpu_impl_is_a_value_error(make):
    with pytest.raises(ValueError, match=r"'cpu_impl' must be one of \('xla', 'ynnpack'\), got 'eigen'"):
        make("eigen")
    for impl in ("xla", "ynnpack"):
        layer = make(impl)
        assert getattr(layer, "conv1", layer).cpu_impl == impl


# ------------------------------------------------------------------------------ models.jit


def _conv_and_dot(x, k, w):
    return _lax_conv(x, k, 2), x.reshape(-1, 3) @ w


_CONV_AND_DOT_ARGS = (jnp.ones((2, 16, 16, 3)), jnp.ones((5, 5, 3, 32)), jnp.ones((3, 4)))


def _ynn_fusions(jitted) -> int:
    """How many ops of the compiled program run as YNNPACK fusions."""
    return jitted.lower(*_CONV_AND_DOT_ARGS).compile().as_text().count("__ynn_fusion")


@requires_ynn_fusion
def test_models_jit_is_jax_jit_with_convolutions_off_ynnpack():
    """models.jit returns JAX's jitted function; on CPU its compile option moves convolutions off
    YNNPACK (dots stay on it), and the results are jax.jit's."""
    if jax.default_backend() != "cpu":
        pytest.skip("models.jit's compile option is for XLA's CPU backend")
    from models import _cpu

    assert _cpu.compiler_options() == _cpu._YNN_FUSION_OPTIONS  # this jaxlib knows the option
    ours = models.jit(_conv_and_dot)
    assert type(ours) is type(jax.jit(_conv_and_dot))
    assert _ynn_fusions(jax.jit(_conv_and_dot)) == 2  # the convolution and the dot
    compiled = ours.lower(*_CONV_AND_DOT_ARGS).compile().as_text()
    assert compiled.count("__ynn_fusion") == 1 and " convolution(" in compiled
    assert ours.trace(*_CONV_AND_DOT_ARGS).jaxpr is not None
    assert [s.shape for s in ours.eval_shape(*_CONV_AND_DOT_ARGS)] == [(2, 16, 16, 32), (512, 4)]
    # options you pass are merged over ours: here they also take dots off YNNPACK
    assert _ynn_fusions(models.jit(_conv_and_dot, compiler_options={"xla_cpu_experimental_ynn_fusion_type": ""})) == 0

    def loss(model, x, y):
        return losses_jax.cross_entropy(model(x), y)

    model, x, y = models.Tudui(rngs=nnx.Rngs(0)), _images(6), jnp.arange(6) % 10
    l1, g1 = models.jit(nnx.value_and_grad(loss))(model, x, y)
    l2, g2 = jax.jit(nnx.value_and_grad(loss))(model, x, y)
    np.testing.assert_allclose(float(l1), float(l2), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    # vmap and jvp around it keep it a top-level jit; JAX refuses compile options on a jit traced
    # inside another jit or under grad (docs/models.md and models.jit's docstring say so)
    forward = models.jit(lambda m, x: m(x))
    np.testing.assert_allclose(
        np.asarray(jax.vmap(forward, in_axes=(None, 0))(model, x[None])[0]),
        np.asarray(jax.jit(lambda m, x: m(x))(model, x)),
        rtol=1e-6,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="compiler_options.*top-level"):
        jax.jit(lambda m: forward(m, x))(model)
    with pytest.raises(ValueError, match="compiler_options.*top-level"):
        jax.grad(lambda m: forward(m, x).sum())(model)


def test_models_jit_passes_jit_arguments():
    f = models.jit(lambda a, n: a * n, static_argnums=1, compiler_options={"xla_cpu_enable_fast_math": False})
    np.testing.assert_array_equal(np.asarray(f(jnp.arange(3.0), 2)), [0.0, 2.0, 4.0])
    g = models.jit(lambda a: a + 1, donate_argnums=0)
    np.testing.assert_array_equal(np.asarray(g(jnp.zeros(2))), [1.0, 1.0])


@requires_ynn_fusion
def test_models_jit_is_plain_jax_jit_without_the_option_or_off_cpu(monkeypatch):
    if jax.default_backend() != "cpu":
        pytest.skip("compiles for XLA's CPU backend")
    from models import _cpu

    monkeypatch.setattr(_cpu, "_YNN_FUSION_OPTIONS", {"xla_cpu_no_such_option": "x"})
    _cpu.compiler_options.cache_clear()
    try:
        assert _cpu.compiler_options() == {}
        assert _ynn_fusions(models.jit(_conv_and_dot)) == 2  # default options: conv and dot on YNNPACK
    finally:
        _cpu.compiler_options.cache_clear()
    monkeypatch.undo()
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")  # not CPU when models.jit is called
    assert _ynn_fusions(models.jit(_conv_and_dot)) == 2


# ------------------------------------------------------------------------------ input errors


@pytest.mark.parametrize("cls", NETS, ids=IDS)
def test_bad_images(cls):
    model = cls(rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"NHWC .*\(N, 32, 32, 3\).*NCHW"):
        model(jnp.zeros((2, 3, 32, 32)))
    with pytest.raises(ValueError, match=r"'x' must be NHWC"):
        model(jnp.zeros((32, 32, 3)))
    with pytest.raises(ValueError, match=r"got \(2, 28, 28, 3\)"):
        model(jnp.zeros((2, 28, 28, 3)))
    with pytest.raises(TypeError, match="to_tensor"):
        model(np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="NCHW"):  # also at trace time under jit
        nnx.jit(lambda m, x: m(x))(model, jnp.zeros((2, 3, 32, 32)))


@pytest.mark.parametrize("dtype", [np.float64, jnp.bfloat16, np.float16])
def test_other_float_inputs_are_cast_to_float32(dtype):
    model = models.Tudui(rngs=nnx.Rngs(0))
    x = np.asarray(_images(2)).astype(dtype)
    out = model(x)
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(out), np.asarray(model(jnp.asarray(x).astype(jnp.float32))))


# ------------------------------------------------------------------------------ state_dict errors


def _torch_like_state_dict(cls, seed=0):
    return models.to_torch_state_dict(cls(rngs=nnx.Rngs(seed)))


@pytest.mark.parametrize("cls", NETS, ids=IDS)
def test_load_by_order_under_any_names(cls):
    sd = _torch_like_state_dict(cls, seed=1)
    renamed = {f"whatever.{i}.{k.rsplit('.', 1)[1]}": v for i, (k, v) in enumerate(sd.items())}
    model = models.load_torch_state_dict(cls(rngs=nnx.Rngs(0)), renamed)
    for a, b in zip(_params(model), _params(cls(rngs=nnx.Rngs(1))), strict=True):
        np.testing.assert_array_equal(a, b)
    # jax arrays and float64 numpy are accepted too (cast to the parameters' float32)
    as_jax = {k: jnp.asarray(v) for k, v in sd.items()}
    as_f64 = {k: v.astype(np.float64) for k, v in sd.items()}
    for variant in (as_jax, as_f64):
        loaded = models.load_torch_state_dict(cls(rngs=nnx.Rngs(0)), variant)
        assert all(p.dtype == np.float32 for p in _params(loaded))
        np.testing.assert_array_equal(models.to_torch_state_dict(loaded)[next(iter(sd))], next(iter(sd.values())))


def test_load_shape_mismatch_names_layer_and_shapes_and_leaves_model_unchanged():
    model = models.Tudui(rngs=nnx.Rngs(0))
    before = _params(model)
    sd = _torch_like_state_dict(models.Tudui, seed=1)
    sd["model1.4.weight"] = np.zeros((64, 32, 3, 3), np.float32)
    with pytest.raises(
        ValueError,
        match=r"layer 2 \(conv3, Conv2d\) weight 'model1.4.weight' has torch "
        r"shape \(64, 32, 3, 3\), expected \(64, 32, 5, 5\)",
    ):
        models.load_torch_state_dict(model, sd)
    for a, b in zip(before, _params(model), strict=True):  # checked before anything was written
        np.testing.assert_array_equal(a, b)
    # a LeNet state_dict into a Tudui: same tensor count, first conv has 16 channels, not 32
    with pytest.raises(
        ValueError,
        match=r"\(conv1, Conv2d\) weight 'model.0.weight' has torch shape "
        r"\(16, 3, 5, 5\), expected \(32, 3, 5, 5\)",
    ):
        models.load_torch_state_dict(model, _torch_like_state_dict(models.LeNet))


def test_load_wrong_count_wrong_order_wrong_types():
    model = models.LeNet(rngs=nnx.Rngs(0))
    sd = _torch_like_state_dict(models.LeNet)
    short = dict(list(sd.items())[:-1])
    with pytest.raises(ValueError, match=r"expects 10 tensors .*'state_dict' has 9"):
        models.load_torch_state_dict(model, short)
    swapped = dict(sd)
    items = list(sd.items())
    swapped = dict([items[1], items[0]] + items[2:])
    with pytest.raises(ValueError, match=r"expects its weight at position 0 .*'model.0.bias'"):
        models.load_torch_state_dict(model, swapped)
    with pytest.raises(TypeError, match="'state_dict' must be a mapping"):
        models.load_torch_state_dict(model, list(sd.values()))
    with pytest.raises(TypeError, match="must be floating"):
        models.load_torch_state_dict(model, {k: v.astype(np.int64) for k, v in sd.items()})
    with pytest.raises(TypeError, match="'model' must be a models.Tudui or models.LeNet"):
        models.load_torch_state_dict(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), sd)
    with pytest.raises(TypeError, match="'model'"):
        models.to_torch_state_dict(object())


@pytest.mark.parametrize("cls", NETS, ids=IDS)
def test_export_is_independent_writable_copy(cls):
    model = cls(rngs=nnx.Rngs(0))
    sd = models.to_torch_state_dict(model)
    first = next(iter(sd))
    assert sd[first].flags.writeable and sd[first].flags.c_contiguous
    sd[first][...] = 0
    assert np.abs(models.to_torch_state_dict(model)[first]).max() > 0


def test_first_linear_rows_are_permuted_between_flatten_orders():
    """A torch fc1 weight row index is c*H*W + h*W + w; ours is (h*W + w)*C + c."""
    model = models.LeNet(rngs=nnx.Rngs(0))
    sd = models.to_torch_state_dict(model)
    c, h, w = 32, 5, 5
    torch_w = np.arange(120 * c * h * w, dtype=np.float32).reshape(120, c * h * w)
    sd["model.5.weight"] = torch_w
    models.load_torch_state_dict(model, sd)
    kernel = np.asarray(model.fc1.kernel[...])
    for ci, hi, wi in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (31, 4, 3)]:
        np.testing.assert_array_equal(kernel[(hi * w + wi) * c + ci], torch_w[:, ci * h * w + hi * w + wi])


# ------------------------------------------------------------------------------ transforms


@pytest.mark.parametrize("cls", NETS, ids=IDS)
def test_jit_grad_vmap(cls):
    model = cls(rngs=nnx.Rngs(0))
    x, y = _images(4), jnp.arange(4) % 10
    eager = model(x)
    np.testing.assert_allclose(
        np.asarray(nnx.jit(lambda m, x: m(x))(model, x)), np.asarray(eager), rtol=1e-6, atol=1e-7
    )
    # functional style: split once, jit a pure function of the state
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))
    np.testing.assert_allclose(np.asarray(forward(state, x)), np.asarray(eager), rtol=1e-6, atol=1e-7)
    loss, grads = nnx.jit(nnx.value_and_grad(lambda m, x, y: losses_jax.cross_entropy(m(x), y)))(model, x, y)
    assert np.isfinite(float(loss))
    assert jax.tree.structure(grads) == jax.tree.structure(nnx.state(model, nnx.Param))
    assert all(np.abs(np.asarray(g)).max() > 0 for g in jax.tree.leaves(grads))
    # vmap over single images (each given a batch axis of 1) equals the batched call
    per_image = jax.vmap(lambda img: nnx.merge(graphdef, state)(img[None])[0])(x)
    np.testing.assert_allclose(np.asarray(per_image), np.asarray(eager), rtol=1e-5, atol=1e-6)


def test_optimizer_step_changes_parameters():
    import optax

    model = models.Tudui(rngs=nnx.Rngs(0))
    before = _params(model)
    optimizer = nnx.Optimizer(model, optax.sgd(0.01), wrt=nnx.Param)
    x, y = _images(8), jnp.arange(8) % 10

    @nnx.jit
    def step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(lambda m: losses_jax.cross_entropy(m(x), y))(model)
        optimizer.update(model, grads)
        return loss

    first, second = float(step(model, optimizer, x, y)), float(step(model, optimizer, x, y))
    assert second < first  # same batch twice: SGD lowers the loss
    assert all(not np.array_equal(a, b) for a, b in zip(before, _params(model), strict=True))
