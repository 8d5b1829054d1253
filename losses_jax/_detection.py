r"""Detection losses: ``torchvision.ops``'s ``sigmoid_focal_loss`` and its three box-IoU losses.

The formulas are torchvision 0.29's, operation for operation, so that float32 rounding agrees
with it too. What torchvision does and these functions reproduce:

* Boxes are ``(x1, y1, x2, y2)`` along the last axis: ``(N, 4)`` or a single ``(4,)`` box (any
  leading shape works, as ``unbind(dim=-1)`` does in torchvision). Boxes other than float32 and
  float64 (integers, bool, bfloat16, float16) are computed in float32 and the loss stays float32.
* The intersection is ``0`` unless both of its sides are positive, and its gradient is then 0
  (torchvision writes it through a mask).
* ``'mean'`` of no boxes is 0 for the box losses (torchvision's ``0.0 * loss.sum()``), but NaN for
  ``sigmoid_focal_loss`` (its plain ``loss.mean()``).
* ``complete_box_iou_loss`` passes its ``eps`` to the aspect-ratio weight only: its IoU and
  distance terms use torchvision's default ``1e-7`` whatever ``eps`` is.
* CIoU's aspect-ratio weight ``alpha`` is computed under ``torch.no_grad()``: no gradient flows
  through it (here ``jax.lax.stop_gradient``).
* ``sigmoid_focal_loss`` of half-precision inputs is computed op by op in their dtype, each op
  rounded as torch rounds it (``sigmoid`` and the scalar products in float32, then rounded).

``sigmoid_focal_loss`` calls ``losses_jax.binary_cross_entropy_with_logits``, as torchvision
calls torch's.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._probabilistic import binary_cross_entropy_with_logits
from ._reduction import REDUCTIONS, Reduction, apply_reduction
from ._torch_semantics import as_array, broadcast_shape, check_floating, sigmoid, static_number, times_scalar

# torchvision's default eps, which complete_box_iou_loss uses for its IoU and distance terms.
_DEFAULT_EPS = 1e-7


def _check_reduction(reduction: object, fn: str) -> Reduction:
    if isinstance(reduction, str) and reduction in REDUCTIONS:
        return reduction  # type: ignore[return-value]
    raise ValueError(
        f"{fn}: Invalid Value for arg 'reduction': {reduction!r}; supported reduction modes: 'none', 'mean', 'sum'"
    )


def _pow(x, gamma: float):
    # torch's pow with a scalar exponent: an integral one is repeated multiplication (and 0 gives
    # 1 with gradient 0), as lax.integer_pow; any other goes through pow.
    if gamma.is_integer():
        return jax.lax.integer_pow(x, int(gamma))
    return x**gamma


def sigmoid_focal_loss(
    inputs: ArrayLike,
    targets: ArrayLike,
    alpha: float = 0.25,
    gamma: float = 2,
    reduction: Reduction = "none",
) -> jax.Array:
    r"""The focal loss of RetinaNet, as ``torchvision.ops.sigmoid_focal_loss``.

    $$
    p = \sigma(x), \qquad p_t = p\,y + (1 - p)(1 - y), \qquad
    \alpha_t = \alpha\,y + (1 - \alpha)(1 - y),
    $$

    $$
    \ell = \alpha_t \, \mathrm{BCE}(x, y) \, (1 - p_t)^{\gamma}
    $$

    with $\mathrm{BCE}$ the unreduced ``losses_jax.binary_cross_entropy_with_logits``
    (stable for any logit), reduced by ``reduction``. ``alpha = -1`` drops $\alpha_t$.

    Args:
      inputs: logits, any shape, floating point.
      targets: of exactly ``inputs``' shape, floating point; 1 for the positive class, 0 for the
        negative (values in between are used as they are, as in torchvision).
      alpha: weight of the positive class, in ``[0, 1]``, or ``-1`` for no weighting.
      gamma: the exponent of the modulating factor $(1 - p_t)$.
      reduction: ``'none' | 'mean' | 'sum'`` (default ``'none'``, torchvision's).

    Returns:
      ``inputs``' shape for ``'none'``, else a scalar; dtype promoted from inputs and targets.
      ``'mean'`` of an empty input is NaN, as in torchvision.

    Raises:
      ValueError: ``alpha`` outside ``[0, 1]`` and not ``-1``, an unknown ``reduction``, or
        ``targets`` of another shape.
      TypeError: non-floating ``inputs`` or ``targets``, or a traced ``alpha`` / ``gamma``.

    Example:
      >>> import jax.numpy as jnp
      >>> from losses_jax import ops
      >>> loss = ops.sigmoid_focal_loss(jnp.array([2.0, -1.0]), jnp.array([1.0, 0.0]), reduction="sum")
      >>> round(float(loss), 6)
      0.017444
    """
    fn = "sigmoid_focal_loss"
    alpha = static_number(alpha, "alpha", fn)
    gamma = static_number(gamma, "gamma", fn)
    if not 0 <= alpha <= 1 and alpha != -1:
        raise ValueError(f"{fn}: Invalid 'alpha' value: {alpha}; it must be in the range [0, 1] or -1 for ignore")
    reduction = _check_reduction(reduction, fn)
    x = as_array(inputs, "inputs", fn)
    y = as_array(targets, "targets", fn)
    check_floating(x, "inputs", fn)
    check_floating(y, "targets", fn)
    if x.shape != y.shape:
        raise ValueError(f"{fn}: 'targets' of shape {tuple(y.shape)} must have the shape of 'inputs', {tuple(x.shape)}")
    p = sigmoid(x)
    ce_loss = binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce_loss * _pow(1 - p_t, gamma)
    if alpha >= 0:
        alpha_t = times_scalar(y, alpha) + times_scalar(1 - y, 1 - alpha)
        loss = alpha_t * loss
    return apply_reduction(loss, reduction)


# -- box-IoU losses ------------------------------------------------------------------------------


def _boxes(boxes, name: str, fn: str):
    """``boxes`` as an array of shape ``(..., 4)``, upcast as torchvision's ``_upcast_non_float``."""
    b = as_array(boxes, name, fn)
    if jnp.issubdtype(b.dtype, jnp.complexfloating):
        raise TypeError(f"{fn}: argument '{name}' must hold real coordinates, got dtype {b.dtype}")
    if b.ndim == 0 or b.shape[-1] != 4:
        raise ValueError(
            f"{fn}: argument '{name}' must have shape (N, 4) or (4,), boxes as (x1, y1, x2, y2), got {tuple(b.shape)}"
        )
    if b.dtype not in (jnp.float32, jnp.float64):
        b = b.astype(jnp.float32)
    return b


def _coords(b):
    return b[..., 0], b[..., 1], b[..., 2], b[..., 3]


def _checked_pair(boxes1, boxes2, reduction, eps, fn: str):
    eps = static_number(eps, "eps", fn)
    reduction = _check_reduction(reduction, fn)
    b1, b2 = _boxes(boxes1, "boxes1", fn), _boxes(boxes2, "boxes2", fn)
    # torchvision writes the intersection areas into zeros_like(boxes1's x1): boxes2 must broadcast
    # to boxes1's shape, and the areas must not need a wider dtype than boxes1's.
    if broadcast_shape(fn, boxes1=b1, boxes2=b2) != b1.shape:
        raise ValueError(
            f"{fn}: 'boxes2' of shape {tuple(b2.shape)} must broadcast to the shape of 'boxes1', {tuple(b1.shape)}"
        )
    if jnp.result_type(b1, b2) != b1.dtype:
        raise TypeError(
            f"{fn}: 'boxes1' ({b1.dtype}) and 'boxes2' ({b2.dtype}) need the same dtype after the upcast of "
            f"non-float32/64 boxes to float32; cast 'boxes1' to {jnp.result_type(b1, b2)}"
        )
    return b1, b2, reduction, eps


def _inter_union(b1, b2):
    """Torchvision's ``_loss_inter_union``: the intersection and union areas of each pair."""
    x1, y1, x2, y2 = _coords(b1)
    x1g, y1g, x2g, y2g = _coords(b2)
    xkis1 = jnp.maximum(x1, x1g)
    ykis1 = jnp.maximum(y1, y1g)
    xkis2 = jnp.minimum(x2, x2g)
    ykis2 = jnp.minimum(y2, y2g)
    mask = (ykis2 > ykis1) & (xkis2 > xkis1)
    # torchvision writes the areas through the mask: elsewhere the area, and its gradient, is 0.
    intsct = jnp.where(mask, (xkis2 - xkis1) * (ykis2 - ykis1), 0)
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intsct
    return intsct, union


def _enclosing(b1, b2):
    """The corners ``(xc1, yc1, xc2, yc2)`` of the smallest box enclosing each pair."""
    x1, y1, x2, y2 = _coords(b1)
    x1g, y1g, x2g, y2g = _coords(b2)
    return jnp.minimum(x1, x1g), jnp.minimum(y1, y1g), jnp.maximum(x2, x2g), jnp.maximum(y2, y2g)


def _diou_iou(b1, b2, eps: float):
    """Torchvision's ``_diou_iou_loss``: the unreduced DIoU loss and the IoU."""
    intsct, union = _inter_union(b1, b2)
    iou = intsct / (union + eps)
    xc1, yc1, xc2, yc2 = _enclosing(b1, b2)
    diagonal_distance_squared = ((xc2 - xc1) ** 2) + ((yc2 - yc1) ** 2) + eps
    x1, y1, x2, y2 = _coords(b1)
    x1g, y1g, x2g, y2g = _coords(b2)
    x_p = (x2 + x1) / 2
    y_p = (y2 + y1) / 2
    x_g = (x1g + x2g) / 2
    y_g = (y1g + y2g) / 2
    centers_distance_squared = ((x_p - x_g) ** 2) + ((y_p - y_g) ** 2)
    return 1 - iou + (centers_distance_squared / diagonal_distance_squared), iou


def _box_reduction(loss, reduction: Reduction):
    if reduction == "mean" and loss.size == 0:
        return 0.0 * jnp.sum(loss)  # torchvision's mean of no boxes: 0, not NaN
    return apply_reduction(loss, reduction)


def generalized_box_iou_loss(
    boxes1: ArrayLike,
    boxes2: ArrayLike,
    reduction: Reduction = "none",
    eps: float = 1e-7,
) -> jax.Array:
    r"""The generalized IoU loss, as ``torchvision.ops.generalized_box_iou_loss``.

    With $I$ and $U$ the areas of the intersection and the union of two boxes and
    $C$ the area of the smallest box enclosing both:

    $$
    \ell = 1 - \frac{I}{U + \epsilon} + \frac{C - U}{C + \epsilon}
    $$

    Symmetric in its two arguments; non-zero and informative also for disjoint boxes.

    Args:
      boxes1: boxes ``(x1, y1, x2, y2)``, shape ``(N, 4)`` or ``(4,)``; any real dtype
        (integers, bool and half precision are computed in float32, as torchvision does).
      boxes2: boxes of ``boxes1``'s shape, or one that broadcasts to it (a single ``(4,)`` box).
      reduction: ``'none' | 'mean' | 'sum'`` (default ``'none'``); ``'mean'`` of no boxes is 0.
      eps: added to the denominators against division by zero.

    Returns:
      One loss per box pair for ``'none'`` (the boxes' shape without its last axis), else a
      scalar; float64 for float64 boxes, else float32.

    Raises:
      ValueError: boxes whose last axis is not 4, ``boxes2`` that does not broadcast to
        ``boxes1``'s shape, or an unknown ``reduction``.
      TypeError: complex boxes, float64 ``boxes2`` with float32 (or non-float) ``boxes1`` (which
        torchvision refuses too), or a traced ``eps``.

    Example:
      >>> from losses_jax import ops
      >>> float(ops.generalized_box_iou_loss([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]))
      1.0793650150299072
    """
    b1, b2, reduction, eps = _checked_pair(boxes1, boxes2, reduction, eps, "generalized_box_iou_loss")
    intsctk, unionk = _inter_union(b1, b2)
    iouk = intsctk / (unionk + eps)
    xc1, yc1, xc2, yc2 = _enclosing(b1, b2)
    area_c = (xc2 - xc1) * (yc2 - yc1)
    miouk = iouk - ((area_c - unionk) / (area_c + eps))
    return _box_reduction(1 - miouk, reduction)


def distance_box_iou_loss(
    boxes1: ArrayLike,
    boxes2: ArrayLike,
    reduction: Reduction = "none",
    eps: float = 1e-7,
) -> jax.Array:
    r"""The distance IoU loss, as ``torchvision.ops.distance_box_iou_loss``.

    With $I$, $U$ the intersection and union areas, $\rho$ the distance between
    the two boxes' centres and $c$ the diagonal of the smallest box enclosing both:

    $$
    \ell = 1 - \frac{I}{U + \epsilon} + \frac{\rho^2}{c^2 + \epsilon}
    $$

    For boxes with the same centre it is the IoU loss.

    Args, Returns and Raises: as ``generalized_box_iou_loss``.

    Example:
      >>> from losses_jax import ops
      >>> float(ops.distance_box_iou_loss([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]))
      0.9682539701461792
    """
    b1, b2, reduction, eps = _checked_pair(boxes1, boxes2, reduction, eps, "distance_box_iou_loss")
    loss, _ = _diou_iou(b1, b2, eps)
    return _box_reduction(loss, reduction)


def complete_box_iou_loss(
    boxes1: ArrayLike,
    boxes2: ArrayLike,
    reduction: Reduction = "none",
    eps: float = 1e-7,
) -> jax.Array:
    r"""The complete IoU loss, as ``torchvision.ops.complete_box_iou_loss``.

    The distance IoU loss (``distance_box_iou_loss``) plus an aspect-ratio term: with
    $w, h$ the sides of ``boxes1``, $w^g, h^g$ those of ``boxes2`` and
    $\mathrm{IoU} = I / (U + 10^{-7})$,

    $$
    v = \frac{4}{\pi^2} \left(\arctan\frac{w^g}{h^g} - \arctan\frac{w}{h}\right)^2, \qquad
    \alpha = \frac{v}{1 - \mathrm{IoU} + v + \epsilon}, \qquad
    \ell = \ell_{\mathrm{DIoU}} + \alpha\, v
    $$

    As in torchvision, $\alpha$ carries no gradient (torchvision computes it under
    ``torch.no_grad()``), and ``eps`` enters $\alpha$ only: the IoU and distance terms use
    torchvision's default ``1e-7`` whatever ``eps`` is. A box of zero width and height has
    $w / h = 0 / 0$, so its loss is NaN, as in torchvision.

    Args, Returns and Raises: as ``generalized_box_iou_loss``.

    Example:
      >>> from losses_jax import ops
      >>> float(ops.complete_box_iou_loss([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 4.0]))
      1.0191645622253418
    """
    b1, b2, reduction, eps = _checked_pair(boxes1, boxes2, reduction, eps, "complete_box_iou_loss")
    diou_loss, iou = _diou_iou(b1, b2, _DEFAULT_EPS)
    x1, y1, x2, y2 = _coords(b1)
    x1g, y1g, x2g, y2g = _coords(b2)
    w_pred = x2 - x1
    h_pred = y2 - y1
    w_gt = x2g - x1g
    h_gt = y2g - y1g
    v = (4 / (math.pi**2)) * ((jnp.arctan(w_gt / h_gt) - jnp.arctan(w_pred / h_pred)) ** 2)
    alpha = jax.lax.stop_gradient(v / (1 - iou + v + eps))
    return _box_reduction(diou_loss + alpha * v, reduction)
