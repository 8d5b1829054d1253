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

import math

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

__all__ = ["Conv2d", "Linear", "max_pool_2x2"]


def _torch_uniform(key: jax.Array, shape: tuple[int, ...], fan_in: int) -> jax.Array:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` in float32, torch's default for weights and biases."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return jax.random.uniform(key, shape, jnp.float32, minval=-bound, maxval=bound)


def _conv2d(x: jax.Array, kernel: jax.Array, bias: jax.Array, padding: int) -> jax.Array:
    """Stride-1 2-D cross-correlation (torch's ``conv2d``), NHWC input, HWIO kernel, zero padding.

    Kept as one small private function so that a faster formulation (e.g. a ``custom_vjp``
    whose backward is itself expressed as forward convolutions, which XLA's CPU backend runs
    faster than its transposed-conv kernels) can replace it without touching the layers.
    """
    y = lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(1, 1),
        padding=((padding, padding), (padding, padding)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    return y + bias


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
    compare-and-select steps. Everything is elementwise, so XLA fuses forward and backward into
    single loops; on CPU this is several times faster than the backward of ``reduce_window``
    max pooling (select-and-scatter) and of ``reshape + max``.
    """
    n, h, w, c = x.shape
    h2, w2 = h // 2, w // 2
    x = x[:, : 2 * h2, : 2 * w2, :].reshape(n, h2, 2, w2, 2, c)
    best = x[:, :, 0, :, 0, :]
    for i, j in ((0, 1), (1, 0), (1, 1)):
        v = x[:, :, i, :, j, :]
        best = jnp.where((v > best) | jnp.isnan(v), v, best)
    return best


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
