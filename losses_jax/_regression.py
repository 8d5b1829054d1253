"""Regression losses: ``l1_loss`` and ``mse_loss`` (torch.nn.functional names and arguments)."""

from __future__ import annotations

import jax.numpy as jnp

from ._checks import as_array, broadcast_pair, check_floating, compute_dtype
from ._reduction import apply_reduction, resolve_reduction


def _torch_sign(d):
    """torch's ``sgn`` for reals: -1, 0 or 1, and 0 for NaN (jnp.sign gives NaN)."""
    return (d > 0).astype(d.dtype) - (d < 0).astype(d.dtype)


def _abs_error(d):
    # |d| whose derivative is torch's sign(d): 0 at d == 0 and at NaN, where jnp.abs gives 1
    # and NaN. The comparisons inside _torch_sign carry no gradient, so d/dd = sign(d).
    return d * _torch_sign(d)


def _squared_error(d):
    return d * d


def _pointwise(fn, elementwise, input, target, size_average, reduce, reduction, weight):
    reduction = resolve_reduction(reduction, size_average, reduce)
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    check_floating(input, "input", fn)
    if weight is not None:
        weight = as_array(weight, "weight", fn)
        if weight.shape != input.shape:
            # torch compares with the input's own shape, before broadcasting.
            raise ValueError(
                f"{fn}: Weights and input must have the same size: 'weight' has shape "
                f"{tuple(weight.shape)}, 'input' has shape {tuple(input.shape)}."
            )
    x, y = broadcast_pair(input, target, fn)
    work, out = compute_dtype(x.dtype, y.dtype)
    err = elementwise(x.astype(work) - y.astype(work))
    if weight is None:
        return apply_reduction(err, reduction).astype(out)
    w = weight.astype(work)
    err = err * w
    if reduction == "mean":
        return (jnp.sum(err) / jnp.sum(w)).astype(out)
    return apply_reduction(err, reduction).astype(out)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    r"""Mean absolute error, as ``torch.nn.functional.l1_loss``.

    .. math::
        \ell_i = w_i \, |x_i - y_i|

    reduced by ``reduction``: ``'none'`` returns :math:`\ell`, ``'sum'`` its sum, ``'mean'`` its
    mean, or :math:`\sum_i \ell_i / \sum_i w_i` when ``weight`` is given (torch's weighted mean).

    Args:
      input: predictions, any shape, floating point.
      target: values of ``input``'s shape. A broadcastable shape is accepted with torch's
        ``UserWarning``; an incompatible one raises ``ValueError``.
      size_average, reduce: deprecated torch flags; when given they override ``reduction`` and
        warn, exactly as torch maps them.
      reduction: ``'none' | 'mean' | 'sum'``.
      weight: optional per-element weights of exactly ``input``'s shape.

    Returns:
      A scalar, or the broadcast shape for ``'none'``; dtype promoted from input and target.
      Half-precision inputs are computed in float32 and rounded back.

    The gradient at ``input == target`` is 0 (torch's ``sign``), not the 1 of ``jnp.abs``;
    NaN differences also get gradient 0, as in torch. The empty mean is NaN, as in torch.
    """
    return _pointwise("l1_loss", _abs_error, input, target, size_average, reduce, reduction, weight)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    r"""Mean squared error, as ``torch.nn.functional.mse_loss``.

    .. math::
        \ell_i = w_i \, (x_i - y_i)^2

    reduced by ``reduction``: ``'none'`` returns :math:`\ell`, ``'sum'`` its sum, ``'mean'`` its
    mean, or :math:`\sum_i \ell_i / \sum_i w_i` when ``weight`` is given (torch's weighted mean).

    Args and Returns: as :func:`l1_loss`.
    """
    return _pointwise("mse_loss", _squared_error, input, target, size_average, reduce, reduction, weight)
