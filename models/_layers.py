"""Layers of the tutorial networks: torch's ``Conv2d`` / ``Linear`` / ``MaxPool2d(2)`` in NHWC.

Parameters follow Flax's conventions (``kernel`` in HWIO for convolutions, ``(in, out)`` for
linear layers, ``bias``); :mod:`models._torch_io` converts to and from torch's layouts.
Initialisation follows torch's ``reset_parameters`` (torch 2.13 ``nn/modules/conv.py`` and
``nn/modules/linear.py``): ``kaiming_uniform_(weight, a=sqrt(5))``, which is
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (gain ``sqrt(2 / (1 + 5))`` times ``sqrt(3 / fan_in)``),
and a bias drawn from the same ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``; ``fan_in`` is
``in_channels * kh * kw`` for a convolution and ``in_features`` for a linear layer.
"""

from __future__ import annotations

import contextvars
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

_SymbolicZero = jax.custom_derivatives.SymbolicZero

__all__ = ["Conv2d", "Linear", "jit", "max_pool_2x2"]


def _torch_uniform(key: jax.Array, shape: tuple[int, ...], fan_in: int) -> jax.Array:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` in float32, torch's default for weights and biases."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return jax.random.uniform(key, shape, jnp.float32, minval=-bound, maxval=bound)


def _conv(x: jax.Array, kernel: jax.Array, padding: int) -> jax.Array:
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(1, 1),
        padding=((padding, padding), (padding, padding)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


# Kernel gradients on CPU are computed over batch chunks of this many samples, then summed; at
# most _KERNEL_GRAD_MAX_CHUNKS chunks (larger ones past that), to bound the compiled program.
# Measured on Tudui (same-process A/B of the jitted train step; 2-core EPYC, jaxlib 0.10.2):
# batch 64, chunks of 2: 52.5 ms/step; 4: 58 ms; 8: 62 ms; 16: 68 ms; single samples no faster
# than 2. Batch 512: 32 chunks of 16: 913 img/s, ~5 s compile; 64 of 8: 985 img/s, ~8 s;
# 128 of 4: 968 img/s, ~17 s. (A loop over chunks, lax.map, is 10x slower: XLA CPU runs
# convolutions inside while loops far slower.)
# Not done: chunking the forward too made the step ~18% faster (batch 64: 57.5 -> 47-49 ms), but
# XLA then rounds identical float32 patches differently at different positions (LeNet's conv1
# on flat image blocks: 25-98 of the exact ties torch keeps become near-ties), so max pooling
# no longer picks torch's element there (parity_tests/test_models.py fails). Chunking the input
# gradient made the step 2x slower.
_KERNEL_GRAD_CHUNK = 2
_KERNEL_GRAD_MAX_CHUNKS = 32


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _conv_chunked_kernel_grad(x: jax.Array, kernel: jax.Array, padding: int) -> jax.Array:
    """``_conv``, with the kernel's tangent (so its gradient, by transposition) computed batch
    chunk by batch chunk.

    The kernel gradient of a convolution is itself a convolution whose contraction runs over
    the whole batch and every output position (``N * Ho * Wo`` terms per kernel entry). XLA's
    CPU backend runs that one large contraction far below the machine's speed, and worse as the
    batch grows (Tudui's three layers, measured alone: 0.8-0.9 s at batch 512, 45-80 ms at
    batch 64). Writing the tangent in the kernel as a concatenation of per-chunk convolutions
    makes its transpose a sum of per-chunk kernel gradients, which run several times faster
    (0.23 s with chunks of 16; 25 ms with chunks of 2).
    The values are the same sums in another order; forward-mode and higher-order autodiff keep
    working, since this is a JVP rule, not a VJP.
    """
    return _conv(x, kernel, padding)


def _conv_chunked_kernel_grad_jvp(padding, primals, tangents):
    x, kernel = primals
    tx, tk = tangents
    y = _conv(x, kernel, padding)
    parts = []
    if not isinstance(tx, _SymbolicZero):
        parts.append(_conv(tx, kernel, padding))
    if not isinstance(tk, _SymbolicZero):
        n = x.shape[0]
        size = max(_KERNEL_GRAD_CHUNK, -(-n // _KERNEL_GRAD_MAX_CHUNKS))
        if n <= size:
            parts.append(_conv(x, tk, padding))
        else:
            parts.append(jnp.concatenate([_conv(x[i : i + size], tk, padding) for i in range(0, n, size)]))
    return y, parts[0] if len(parts) == 1 else parts[0] + parts[1]


_conv_chunked_kernel_grad.defjvp(_conv_chunked_kernel_grad_jvp, symbolic_zeros=True)


# On CPU, under default compile options, the input channels of a convolution are zero-padded to
# a multiple of this: the YNNPACK convolution XLA then uses is several times slower with 3
# channels (every RGB first layer) than with 4. Measured forward, batch 64, 5x5 SAME (2-core
# EPYC, jaxlib 0.10.2): Tudui's conv1 (3 -> 32 channels, 32x32) 10.3 ms -> 2.3 ms with 4 channels (8: 4.2 ms);
# batch 512 109 -> 45 ms; 5 -> 8 channels at 16x16: 2.7 -> 1.0 ms. One channel is faster as it
# is (1.4 ms; 2.1 ms padded). Tudui's jitted step: batch 64 33.2 -> 23.4 ms, batch 512 315 -> 254 ms.
# The zeros add exact zeros, and every output position still sums its patch in the same order,
# so equal patches (flat image regions) still give exactly equal outputs, which max pooling's
# tie choices rely on.
_CHANNEL_MULTIPLE = 4


def _pad_channels(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``x`` (NHWC) and ``kernel`` (HWIO) with zero input channels appended up to a multiple of
    ``_CHANNEL_MULTIPLE`` (not for a single channel). Their gradients come back sliced to the
    original shapes by autodiff of the pad."""
    c = x.shape[-1]
    extra = -c % _CHANNEL_MULTIPLE
    if c == 1 or extra == 0:
        return x, kernel
    x = jnp.pad(x, ((0, 0),) * (x.ndim - 1) + ((0, extra),))
    kernel = jnp.pad(kernel, ((0, 0), (0, 0), (0, extra), (0, 0)))
    return x, kernel


# XLA's CPU backend hands convolutions (with dots and reductions) to YNNPACK by default, and in
# jaxlib 0.10.2 YNNPACK runs a convolution on ONE thread (Tudui's conv2 forward at batch 64: 3.5 ms
# on one core or two). This compile option keeps dots and reductions on YNNPACK and gives
# convolutions back to XLA's own (Eigen) kernels, which use every core (2.7 ms on two). Under it
# the plain layers are fastest: the channel padding and batch chunking below only suit
# YNNPACK's kernels. Tudui's jitted step (2-core EPYC): batch 64 23.3 ms (default options,
# padded and chunked) -> 18.7 ms (these options, plain); batch 512 248 -> 223 ms; compile
# 3.3 -> 0.6 s.
_CPU_COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
}
# True while a function made by :func:`jit` is traced: the layers then emit plain convolutions.
_XLA_CONVOLUTIONS = contextvars.ContextVar("models_xla_convolutions", default=False)


@functools.cache
def _cpu_compiler_options() -> dict:
    """The options above where this jaxlib knows them (it is an experimental flag), else {}."""
    try:
        jax.jit(lambda a: a + 1, compiler_options=_CPU_COMPILER_OPTIONS).lower(np.float32(0)).compile()
    except Exception:  # an unknown or renamed option: fall back to the defaults
        return {}
    return dict(_CPU_COMPILER_OPTIONS)


def jit(fun, **jit_kwargs):
    """``jax.jit(fun, **jit_kwargs)``, compiled the way the models train fastest on the default
    backend. ``train`` compiles its steps with it.

    On CPU: XLA's multi-threaded convolutions instead of YNNPACK's single-threaded ones (the
    ``xla_cpu_experimental_ynn_fusion_type`` compile option, merged under any
    ``compiler_options`` you pass) and the layers in their plain form. Tudui's training step is
    ~20% faster than under ``nnx.jit`` / ``jax.jit`` with default options (which remain correct,
    just slower). On other backends, or where this jaxlib lacks the option, it is plain
    ``jax.jit``.

    This is ``jax.jit``, not ``nnx.jit``: NNX modules can be passed (they are pytrees), but
    in-place updates inside ``fun`` are not written back; return the new state instead (as
    ``train.train_step`` does with ``nnx.split`` / ``nnx.merge``). Called inside another
    trace (a jit, grad or vmap around it), it is a plain nested ``jax.jit``: compile options
    belong to the outermost jit.
    """
    options = _cpu_compiler_options() if jax.default_backend() == "cpu" else {}
    plain = jax.jit(fun, **jit_kwargs)
    if not options:
        return plain
    jitted = jax.jit(fun, **{**jit_kwargs, "compiler_options": {**options, **(jit_kwargs.get("compiler_options") or {})}})

    @functools.wraps(fun)
    def call(*args, **kwargs):
        if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((args, kwargs))):
            # Called inside another trace: compile options belong to the outermost jit, so
            # this is a plain nested jit and the layers follow the outer compilation's default.
            return plain(*args, **kwargs)
        token = _XLA_CONVOLUTIONS.set(True)  # jax.jit traces (if it must) inside this call
        try:
            return jitted(*args, **kwargs)
        finally:
            _XLA_CONVOLUTIONS.reset(token)

    return call


def _conv2d(x: jax.Array, kernel: jax.Array, bias: jax.Array, padding: int) -> jax.Array:
    """Stride-1 2-D cross-correlation (torch's ``conv2d``), NHWC input, HWIO kernel, zero padding.

    On CPU (the default backend at trace time), unless traced by :func:`jit`, the input channels
    are zero-padded to a multiple of 4 (:func:`_pad_channels`) and the kernel gradient is
    computed over batch chunks (:func:`_conv_chunked_kernel_grad`): both speed up YNNPACK's
    convolutions, which default compile options use. Under :func:`jit` (XLA's own CPU
    convolutions) and on other backends, it is the plain convolution.
    """
    if jax.default_backend() == "cpu" and not _XLA_CONVOLUTIONS.get():
        x, kernel = _pad_channels(x, kernel)
        y = _conv_chunked_kernel_grad(x, kernel, padding)
    else:
        y = _conv(x, kernel, padding)
    return y + bias


def _pool_windows(x: jax.Array) -> jax.Array:
    """NHWC ``(n, h, w, c)`` -> ``(n, h // 2, 2, w // 2, 2, c)``: the 2x2 windows (odd edges dropped)."""
    n, h, w, c = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, : 2 * h2, : 2 * w2, :].reshape(n, h2, 2, w2, 2, c)


def _pool_best_and_choice(x6: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Window maxima and which element (0..3, row-major) torch's CPU kernel takes for each."""
    best = x6[:, :, 0, :, 0, :]
    choice = jnp.zeros(best.shape, jnp.int8)
    for k, (i, j) in enumerate(((0, 1), (1, 0), (1, 1)), start=1):
        v = x6[:, :, i, :, j, :]
        take = (v > best) | jnp.isnan(v)
        best = jnp.where(take, v, best)
        choice = jnp.where(take, jnp.int8(k), choice)
    return best, choice


@jax.custom_jvp
def max_pool_2x2(x: jax.Array) -> jax.Array:
    """torch's ``MaxPool2d(2)`` (kernel 2, stride 2, no padding, floor mode) on NHWC input.

    Values are exactly the window maxima (NaN propagates, as in torch). Odd trailing rows or
    columns are dropped, as torch's floor mode does.

    Gradient: the whole incoming gradient goes to ONE element of each window, chosen as torch's
    CPU kernel chooses it: scanning the window in row-major order, an element is taken when it
    is greater than the current best or is NaN. So at exact ties the first maximum gets the
    gradient (``jnp.max`` would split it equally among the tied elements, and
    ``lax.reduce_window`` picks its own element). Ties are common in practice: flat image
    regions give identical conv outputs in a window.

    Implementation: the 2x2 windows are four strided views of the input, combined by three
    compare-and-select steps that also record the chosen element (an int8 code). The JVP is
    ``sum(where(chosen, tangent windows, 0))`` over each window, so the gradient is one
    ``where(chosen, broadcast(g), 0)``: a single fused loop. On CPU this is several times faster
    than the backward of ``reduce_window`` max pooling (select-and-scatter) and of
    ``reshape + max``, and a Tudui step at batch 64 about 15% faster than differentiating the
    compare-and-select chain itself (whose transpose XLA does not fuse as well).
    """
    return _pool_best_and_choice(_pool_windows(x))[0]


_POOL_CODES = np.arange(4, dtype=np.int8).reshape(1, 1, 2, 1, 2, 1)


@max_pool_2x2.defjvp
def _max_pool_2x2_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    best, choice = _pool_best_and_choice(_pool_windows(x))
    chosen = choice[:, :, None, :, None, :] == _POOL_CODES
    return best, jnp.sum(jnp.where(chosen, _pool_windows(t), jnp.zeros((), t.dtype)), axis=(2, 4))


class Conv2d(nnx.Module):
    """torch's ``nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)`` (stride 1,
    square kernel, zero padding, with bias), on NHWC input.

    Parameters: ``kernel`` ``(kernel_size, kernel_size, in_channels, out_channels)`` (HWIO;
    torch's weight is OIHW), ``bias`` ``(out_channels,)``, both float32, initialised as torch does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, padding: int = 0,
                 rngs: nnx.Rngs):
        fan_in = in_channels * kernel_size * kernel_size
        self.kernel = nnx.Param(
            _torch_uniform(rngs.params(), (kernel_size, kernel_size, in_channels, out_channels), fan_in))
        self.bias = nnx.Param(_torch_uniform(rngs.params(), (out_channels,), fan_in))
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.padding = padding

    def __call__(self, x: jax.Array) -> jax.Array:
        return _conv2d(x, self.kernel[...], self.bias[...], self.padding)


class Linear(nnx.Module):
    """torch's ``nn.Linear(in_features, out_features)`` (with bias): ``x @ kernel + bias``.

    Parameters: ``kernel`` ``(in_features, out_features)`` (torch's weight is its transpose),
    ``bias`` ``(out_features,)``, both float32, initialised as torch does.
    """

    def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs):
        self.kernel = nnx.Param(_torch_uniform(rngs.params(), (in_features, out_features), in_features))
        self.bias = nnx.Param(_torch_uniform(rngs.params(), (out_features,), in_features))
        self.in_features = in_features
        self.out_features = out_features

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.kernel[...] + self.bias[...]
