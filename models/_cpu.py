"""Code that exists only for speed on XLA's CPU backend, in one place.

Two things, each tested equal to the plain code (``tests/test_models.py``):

* `ynnpack_conv`: the convolution written for YNNPACK, the library XLA's CPU backend hands
  convolutions to under default compile options (input channels zero-padded to a multiple of 4,
  kernel gradient over batch chunks). ``Conv2d(..., cpu_impl="ynnpack")`` uses it, on CPU only
  (``jax.lax.platform_dependent``); other backends get the plain convolution.
* `compiler_options`: the compile option under which XLA runs convolutions itself
  (multi-threaded) instead of on YNNPACK, which [`models.jit`][models.jit] merges on CPU; the plain layers
  (``cpu_impl="xla"``, the default) are the fastest under it.

Figures: 2-core EPYC, jaxlib 0.10.2, Tudui.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["compiler_options", "ynnpack_conv"]

_SymbolicZero = jax.custom_derivatives.SymbolicZero
# (x NHWC, kernel HWIO, padding) -> y NHWC: the plain convolution these rewrite.
Conv = Callable[[jax.Array, jax.Array, int], jax.Array]


# ------------------------------------------------------------------ compile options

# XLA's CPU backend hands convolutions (with dots and reductions) to YNNPACK by default, and in
# jaxlib 0.10.2 YNNPACK runs a convolution on ONE thread (Tudui's conv2 forward at batch 64: 3.5 ms
# on one core or two). This option keeps dots and reductions on YNNPACK and gives convolutions
# back to XLA's own (Eigen) kernels, which use every core (2.7 ms on two). It is an experimental
# flag, so :func:`compiler_options` checks that the installed jaxlib knows it.
_YNN_FUSION_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
}


@functools.cache
def compiler_options() -> dict[str, str]:
    """The option above where this jaxlib's CPU compiler accepts it, else ``{}``.

    Probed once by compiling a one-element program for the CPU backend).
    """
    try:
        jax.jit(lambda a: a + 1, compiler_options=_YNN_FUSION_OPTIONS).lower(np.float32(0)).compile()
    except Exception:  # an unknown or renamed option: fall back to the defaults
        return {}
    return dict(_YNN_FUSION_OPTIONS)


# ------------------------------------------------------------------ the YNNPACK convolution

# Input channels are zero-padded to a multiple of this: YNNPACK's convolution is several times
# slower with 3 channels (every RGB first layer) than with 4. Measured forward, batch 64, 5x5
# SAME: Tudui's conv1 (3 -> 32 channels, 32x32) 10.3 ms -> 2.3 ms with 4 channels (8: 4.2 ms);
# batch 512 109 -> 45 ms; 5 -> 8 channels at 16x16: 2.7 -> 1.0 ms. One channel is faster as it
# is (1.4 ms; 2.1 ms padded). The zeros add exact zeros, and every output position still sums
# its patch in the same order, so equal patches (flat image regions) still give exactly equal
# outputs, which max pooling's tie choices rely on.
_CHANNEL_MULTIPLE = 4

# Kernel gradients are computed over batch chunks of this many samples, then summed; at most
# _KERNEL_GRAD_MAX_CHUNKS chunks (larger ones past that), to bound the compiled program.
# Measured (jitted train step, default compile options): batch 64, chunks of 2: 52.5 ms/step;
# 4: 58 ms; 8: 62 ms; 16: 68 ms; single samples no faster than 2. Batch 512: 32 chunks of 16:
# 913 img/s, ~5 s compile; 64 of 8: 985 img/s, ~8 s; 128 of 4: 968 img/s, ~17 s. (A loop over
# chunks, lax.map, is 10x slower: XLA CPU runs convolutions inside while loops far slower.)
# Not done: chunking the forward too made the step ~18% faster, but XLA then rounds identical
# float32 patches differently at different positions, so max pooling no longer picks torch's
# element at exact ties. Chunking the input gradient made the step 2x slower.
_KERNEL_GRAD_CHUNK = 2
_KERNEL_GRAD_MAX_CHUNKS = 32


def pad_channels(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``x`` (NHWC) and ``kernel`` (HWIO) with zero input channels appended.

    Up to a multiple of ``_CHANNEL_MULTIPLE`` (not for a single channel). Their gradients come back sliced to the
    original shapes by autodiff of the pad.
    """
    c = x.shape[-1]
    extra = -c % _CHANNEL_MULTIPLE
    if c == 1 or extra == 0:
        return x, kernel
    x = jnp.pad(x, ((0, 0),) * (x.ndim - 1) + ((0, extra),))
    kernel = jnp.pad(kernel, ((0, 0), (0, 0), (0, extra), (0, 0)))
    return x, kernel


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 3))
def chunked_kernel_grad(conv: Conv, x: jax.Array, kernel: jax.Array, padding: int) -> jax.Array:
    """``conv(x, kernel, padding)``, with the kernel's tangent computed batch chunk by batch chunk.

    The kernel's gradient follows, by transposition.

    The kernel gradient of a convolution is itself a convolution whose contraction runs over
    the whole batch and every output position (``N * Ho * Wo`` terms per kernel entry). Under
    default compile options XLA's CPU backend runs that one large contraction far below the
    machine's speed, and worse as the batch grows (Tudui's three layers, measured alone:
    0.8-0.9 s at batch 512, 45-80 ms at batch 64). Writing the tangent in the kernel as a
    concatenation of per-chunk convolutions makes its transpose a sum of per-chunk kernel
    gradients, which run several times faster (0.23 s with chunks of 16; 25 ms with chunks of 2).
    The values are the same sums in another order; forward-mode and higher-order autodiff keep
    working, since this is a JVP rule, not a VJP.
    """
    return conv(x, kernel, padding)


def _chunked_kernel_grad_jvp(conv, padding, primals, tangents):
    x, kernel = primals
    tx, tk = tangents
    y = conv(x, kernel, padding)
    parts = []
    if not isinstance(tx, _SymbolicZero):
        parts.append(conv(tx, kernel, padding))
    if not isinstance(tk, _SymbolicZero):
        n = x.shape[0]
        size = max(_KERNEL_GRAD_CHUNK, -(-n // _KERNEL_GRAD_MAX_CHUNKS))
        if n <= size:
            parts.append(conv(x, tk, padding))
        else:
            parts.append(jnp.concatenate([conv(x[i : i + size], tk, padding) for i in range(0, n, size)]))
    return y, parts[0] if len(parts) == 1 else parts[0] + parts[1]


chunked_kernel_grad.defjvp(_chunked_kernel_grad_jvp, symbolic_zeros=True)


def _ynnpack_conv_on_cpu(conv: Conv, padding: int, x: jax.Array, kernel: jax.Array) -> jax.Array:
    x, kernel = pad_channels(x, kernel)
    return chunked_kernel_grad(conv, x, kernel, padding)


def ynnpack_conv(conv: Conv, x: jax.Array, kernel: jax.Array, padding: int) -> jax.Array:
    """``conv(x, kernel, padding)``, written for YNNPACK where it is lowered for CPU.

    There, with the input channels zero-padded (`pad_channels`) and the kernel gradient over batch chunks
    (`chunked_kernel_grad`), which make YNNPACK's convolutions faster. Lowered for any
    other platform it is ``conv`` itself (``jax.lax.platform_dependent`` keeps one branch).
    """
    return lax.platform_dependent(
        x,
        kernel,
        cpu=functools.partial(_ynnpack_conv_on_cpu, conv, padding),
        default=lambda x, kernel: conv(x, kernel, padding),
    )
