"""Layers of the tutorial networks: torch's ``Conv2d`` / ``Linear`` / ``MaxPool2d(2)`` in NHWC.

Parameters follow Flax's conventions (``kernel`` in HWIO for convolutions, ``(in, out)`` for
linear layers, ``bias``); [`models._torch_io`][models._torch_io] converts to and from torch's layouts.
Initialisation follows torch's ``reset_parameters`` (torch 2.13 ``nn/modules/conv.py`` and
``nn/modules/linear.py``): ``kaiming_uniform_(weight, a=sqrt(5))``, which is
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (gain ``sqrt(2 / (1 + 5))`` times ``sqrt(3 / fan_in)``),
and a bias drawn from the same ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``; ``fan_in`` is
``in_channels * kh * kw`` for a convolution and ``in_features`` for a linear layer.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from . import _cpu

__all__ = ["Conv2d", "CpuImpl", "Linear", "max_pool_2x2"]

# How a convolution is written for XLA's CPU backend (on other backends both are the plain one):
# "xla", the plain convolution, fastest when XLA runs convolutions itself (models.jit);
# "ynnpack", rewritten for YNNPACK, which runs them under default compile options (jax.jit, nnx.jit).
CpuImpl = Literal["xla", "ynnpack"]


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


def _check_cpu_impl(cpu_impl, where: str) -> None:
    if cpu_impl not in get_args(CpuImpl):
        raise ValueError(f"{where}: 'cpu_impl' must be one of {get_args(CpuImpl)}, got {cpu_impl!r}")


def _conv2d(x: jax.Array, kernel: jax.Array, bias: jax.Array, padding: int, cpu_impl: CpuImpl = "xla") -> jax.Array:
    """Stride-1 2-D cross-correlation (torch's ``conv2d``), NHWC input, HWIO kernel, zero padding.

    ``cpu_impl="ynnpack"``: on CPU, [`models._cpu.ynnpack_conv`][models._cpu.ynnpack_conv] (same values and gradients,
    written for YNNPACK's kernels); elsewhere, and with ``"xla"``, the plain convolution.
    """
    y = _cpu.ynnpack_conv(_conv, x, kernel, padding) if cpu_impl == "ynnpack" else _conv(x, kernel, padding)
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
    """Torch's ``MaxPool2d(2)`` (kernel 2, stride 2, no padding, floor mode) on NHWC input.

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
    """torch's ``nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)`` on NHWC input.

    Stride 1, a square kernel, zero padding, with bias.

    Parameters: ``kernel`` ``(kernel_size, kernel_size, in_channels, out_channels)`` (HWIO;
    torch's weight is OIHW), ``bias`` ``(out_channels,)``, both float32, initialised as torch does.

    ``cpu_impl`` chooses how the convolution is written for XLA's CPU backend (same values and
    gradients either way; on other backends both are the plain convolution):

    * ``"xla"`` (default): the plain convolution. Fastest under [`models.jit`][models.jit], whose compile
      option has XLA run convolutions with its own multi-threaded kernels.
    * ``"ynnpack"``: input channels zero-padded to a multiple of 4 and the kernel gradient summed
      over batch chunks (``models/_cpu.py``), which suit YNNPACK, the library that runs
      convolutions under default compile options (``jax.jit`` / ``nnx.jit``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        padding: int = 0,
        cpu_impl: CpuImpl = "xla",
        rngs: nnx.Rngs,
    ):
        _check_cpu_impl(cpu_impl, "Conv2d")
        fan_in = in_channels * kernel_size * kernel_size
        self.kernel = nnx.Param(
            _torch_uniform(rngs.params(), (kernel_size, kernel_size, in_channels, out_channels), fan_in)
        )
        self.bias = nnx.Param(_torch_uniform(rngs.params(), (out_channels,), fan_in))
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.padding = padding
        self.cpu_impl: CpuImpl = cpu_impl

    def __call__(self, x: jax.Array) -> jax.Array:
        return _conv2d(x, self.kernel[...], self.bias[...], self.padding, self.cpu_impl)


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
