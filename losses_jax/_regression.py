"""Regression losses: ``l1_loss``, ``mse_loss``, ``huber_loss``, ``smooth_l1_loss``.

torch.nn.functional's names and arguments, and the torch.nn classes.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._base import _Loss
from ._reduction import Reduction, apply_reduction, resolve_reduction, weighted_reduction
from ._torch_semantics import as_array, broadcast_pair, check_floating, compute_dtype, static_number
from ._xla_cpu import unshared


@jax.custom_jvp
def _abs_error(d):
    """``|d|`` whose derivative is torch's ``sign(d)``.

    That is 0 at ``d == 0`` and at NaN, where ``jnp.abs`` gives 1 and NaN. Custom JVP for torch's
    gradient (the kink at 0, NaN). Its rule is written for speed on XLA:CPU: one select, the
    tangent passing through negated or zeroed (``d * sign(d)`` costs two comparisons, two converts
    and a multiply per element; l1_loss went from 1.3x torch's time to 0.3-0.5, BENCHMARKS.md
    "What each change bought").
    """
    return jnp.abs(d)


@_abs_error.defjvp
def _abs_error_jvp(primals, tangents):
    (d,), (dd,) = primals, tangents
    return jnp.abs(d), jnp.where(d > 0, dd, jnp.where(d < 0, -dd, jnp.zeros_like(dd)))


def _squared_error(d):
    return d * d


def _pointwise(fn, elementwise, input, target, reduction, weight, *, mean_over_weight=True, pair=False):
    """The shared pipeline of the pointwise regression losses (``reduction`` already resolved).

    Checks, torch's broadcasting, ``elementwise(input - target)`` (``elementwise(input, target)``
    when ``pair``), the weight and the reduction.

    With ``weight``, ``'mean'`` is ``sum(w * loss) / sum(w)`` (l1/mse) or, when
    ``mean_over_weight`` is False, the plain mean of ``w * loss`` (torch 2.13's huber_loss).
    """
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
    x, y = x.astype(work), y.astype(work)
    err = elementwise(x, y) if pair else elementwise(x - y)
    if weight is None:
        return apply_reduction(err, reduction).astype(out)
    w = weight.astype(work)
    err = err * w
    if mean_over_weight:
        return weighted_reduction(err, reduction, jnp.sum(w)).astype(out)
    return apply_reduction(err, reduction).astype(out)


def l1_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    weight: ArrayLike | None = None,
) -> jax.Array:
    r"""Mean absolute error, as ``torch.nn.functional.l1_loss``.

    $$
    \ell_i = w_i \, |x_i - y_i|
    $$

    reduced by ``reduction``: ``'none'`` returns $\ell$, ``'sum'`` its sum, ``'mean'`` its
    mean, or $\sum_i \ell_i / \sum_i w_i$ when ``weight`` is given (torch's weighted mean).

    Args:
      input: predictions, any shape, floating point.
      target: values of ``input``'s shape. A broadcastable shape is accepted with torch's
        ``UserWarning``; an incompatible one raises ``ValueError``.
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns, exactly
        as torch maps it.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.
      weight: optional per-element weights of exactly ``input``'s shape.

    Returns:
      A scalar, or the broadcast shape for ``'none'``; dtype promoted from input and target.
      Half-precision inputs are computed in float32 and rounded back.

    The gradient at ``input == target`` is 0 (torch's ``sign``), not the 1 of ``jnp.abs``;
    NaN differences also get gradient 0, as in torch. The empty mean is NaN, as in torch.

    Raises:
      ValueError: an unknown ``reduction``, shapes that do not broadcast, or a ``weight`` whose
        shape is not ``input``'s.
      TypeError: an integer ``input``.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> x = jnp.array([[3.0, 2, 1], [1, 2, 3]])
      >>> y = jnp.array([[1.0, 2, 1], [1, 2, 4]])
      >>> F.l1_loss(x, y)
      Array(0.5, dtype=float32)
      >>> F.l1_loss(x, y, reduction='sum')
      Array(3., dtype=float32)
    """
    reduction = resolve_reduction(reduction, size_average, reduce)
    return _pointwise("l1_loss", _abs_error, input, target, reduction, weight)


def mse_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    weight: ArrayLike | None = None,
) -> jax.Array:
    r"""Mean squared error, as ``torch.nn.functional.mse_loss``.

    $$
    \ell_i = w_i \, (x_i - y_i)^2
    $$

    reduced by ``reduction``: ``'none'`` returns $\ell$, ``'sum'`` its sum, ``'mean'`` its
    mean, or $\sum_i \ell_i / \sum_i w_i$ when ``weight`` is given (torch's weighted mean).

    Args:
      input: predictions, any shape, floating point.
      target: values of ``input``'s shape. A broadcastable shape is accepted with torch's
        ``UserWarning``; an incompatible one raises ``ValueError``.
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.
      weight: optional per-element weights of exactly ``input``'s shape.

    Returns:
      A scalar, or the broadcast shape for ``'none'``; dtype promoted from input and target.

    Raises:
      ValueError: an unknown ``reduction``, shapes that do not broadcast, or a ``weight`` whose
        shape is not ``input``'s.
      TypeError: an integer ``input``.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> x = jnp.array([[3.0, 2, 1], [1, 2, 3]])
      >>> y = jnp.array([[1.0, 2, 1], [1, 2, 4]])
      >>> F.mse_loss(x, y)
      Array(0.8333..., dtype=float32)
      >>> F.mse_loss(x, y, reduction='none')
      Array([[4., 0., 0.],
             [0., 0., 1.]], dtype=float32)
    """
    reduction = resolve_reduction(reduction, size_average, reduce)
    return _pointwise("mse_loss", _squared_error, input, target, reduction, weight)


# -- robust regression: huber_loss and smooth_l1_loss ----------------------------------------


def _checked_delta(delta, fn: str) -> float:
    """Huber's ``delta`` as a float; torch's check (positive; NaN fails too).

    Shared by ``huber_loss`` and ``HuberLoss``.
    """
    delta = static_number(delta, "delta", fn)
    if not delta > 0:
        raise ValueError(
            f"{fn}: 'delta' must be positive; huber_loss does not support non-positive values for delta, got {delta}"
        )
    return delta


def _checked_beta(beta, fn: str) -> float:
    """Smooth-L1's ``beta`` as a float; torch's check (non-negative; NaN fails too).

    Shared by ``smooth_l1_loss`` and ``SmoothL1Loss``.
    """
    beta = static_number(beta, "beta", fn)
    if not beta >= 0:
        raise ValueError(
            f"{fn}: 'beta' must be non-negative; smooth_l1_loss does not support negative values for beta, got {beta}"
        )
    return beta


# Custom JVPs of huber/smooth_l1, for torch's gradient and for speed: the rules are torch's
# backward formulas (finite at infinite differences, where autodiff of the forward gives NaN), and
# they let the forward be written without selects and the rules read their inputs through
# `_xla_cpu.unshared`, for XLA:CPU (value+grad at 4096 x 1024 7.9 -> 4.0 ms, temporaries 16 MiB
# -> 0; BENCHMARKS.md "huber/smooth_l1 without selects").
@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _huber_pair(x, y, delta):
    # With z = |x - y| and m = min(z, delta), m * (z - m/2) is 0.5 * z * z below delta and
    # delta * (z - delta/2) from delta on: torch's two branches, bit for bit (z - z/2 is exact).
    # No select: XLA CPU fuses min/mul/sub into the reduction, where a select would be
    # materialised first. NaN and inf propagate as in torch.
    z = jnp.abs(x - y)
    m = jnp.minimum(z, delta)
    return m * (z - 0.5 * m)


@_huber_pair.defjvp
def _huber_pair_jvp(delta, primals, tangents):
    (x, y), (tx, ty) = primals, tangents
    # torch's huber_loss_backward: clip(x - y, -delta, delta) (NaN stays NaN, 0 at a tie,
    # +-delta at infinite differences, where autodiff of the forward would give NaN).
    xb, yb, db = unshared(x, y, jnp.asarray(delta, x.dtype))  # see _xla_cpu
    return _huber_pair(x, y, delta), jnp.clip(xb - yb, -db, db) * (tx - ty)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _smooth_l1_pair(x, y, beta):
    # (z - m/2) * (m / beta) with z = |x - y|, m = min(z, beta) (beta > 0): exactly z - beta/2
    # from beta on (m / beta == 1), and torch's 0.5 * z * z / beta below it up to the rounding
    # of one product (torch rounds (0.5 z) z / beta, this (0.5 z) (z / beta): at most an ulp
    # apart). No select, so it fuses into the reduction (see _huber_pair).
    z = jnp.abs(x - y)
    m = jnp.minimum(z, beta)
    return (z - 0.5 * m) * (m / beta)


@_smooth_l1_pair.defjvp
def _smooth_l1_pair_jvp(beta, primals, tangents):
    (x, y), (tx, ty) = primals, tangents
    # torch's smooth_l1_loss_backward: sign(d) outside (-beta, beta), d / beta inside; that is
    # clip(d / beta, -1, 1) (NaN stays NaN, +-inf gives +-1).
    xb, yb, bb = unshared(x, y, jnp.asarray(beta, x.dtype))  # see _xla_cpu
    return _smooth_l1_pair(x, y, beta), jnp.clip((xb - yb) / bb, -1.0, 1.0) * (tx - ty)


def huber_loss(
    input: ArrayLike,
    target: ArrayLike,
    reduction: Reduction = "mean",
    delta: float = 1.0,
    weight: ArrayLike | None = None,
) -> jax.Array:
    r"""Huber loss, as ``torch.nn.functional.huber_loss``.

    $$
    \ell_i = w_i \begin{cases} \tfrac12 (x_i - y_i)^2 & |x_i - y_i| < \delta \\
    \delta\,(|x_i - y_i| - \tfrac12 \delta) & \text{otherwise} \end{cases}
    $$

    reduced by ``reduction``: ``'none'``, ``'sum'``, or ``'mean'`` (the plain mean of
    $\ell$, also when ``weight`` is given: torch 2.13 does not divide by $\sum w$
    here, unlike ``l1_loss``/``mse_loss``).

    Args:
      input: predictions, any shape, floating point.
      target: values of ``input``'s shape (a broadcastable shape warns, as in torch).
      reduction: ``'none' | 'mean' | 'sum'`` (no legacy ``size_average``/``reduce`` here, as torch).
      delta: threshold, a Python number > 0 (``ValueError`` otherwise, torch's check). It selects
        branches, so under ``jit`` it must be static.
      weight: optional per-element weights of exactly ``input``'s shape.

    Gradients are torch's ``huber_loss_backward``: ``clip(x - y, -delta, delta)`` (0 at a tie,
    ``±delta`` at infinite differences, NaN at NaN). ``weight`` is differentiable, as in torch.

    Returns:
      A scalar, or the broadcast shape for ``'none'``.

    Raises:
      ValueError: an unknown ``reduction``, a ``delta`` that is not positive, shapes that do not
        broadcast, or a ``weight`` whose shape is not ``input``'s.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> x = jnp.array([0.5, 2.0, -3.0])
      >>> y = jnp.zeros(3)
      >>> F.huber_loss(x, y, reduction='none')
      Array([0.125, 1.5  , 2.5  ], dtype=float32)
      >>> F.huber_loss(x, y, delta=2.0)
      Array(2.0416..., dtype=float32)
    """
    fn = "huber_loss"
    reduction = resolve_reduction(reduction)
    delta = _checked_delta(delta, fn)
    return _pointwise(
        fn, lambda x, y: _huber_pair(x, y, delta), input, target, reduction, weight, mean_over_weight=False, pair=True
    )


def smooth_l1_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    beta: float = 1.0,
) -> jax.Array:
    r"""Smooth L1 loss, as ``torch.nn.functional.smooth_l1_loss``.

    $$
    \ell_i = \begin{cases} \tfrac12 (x_i - y_i)^2 / \beta & |x_i - y_i| < \beta \\
    |x_i - y_i| - \tfrac12 \beta & \text{otherwise} \end{cases}
    $$

    reduced by ``reduction`` (``'none' | 'mean' | 'sum'``; legacy ``size_average``/``reduce``
    override it with torch's warning). ``beta=0`` is exactly [`l1_loss`][losses_jax.l1_loss] (torch dispatches to
    it, so the gradient at a NaN difference is 0 there, and NaN for ``beta > 0``).

    Args:
      input: predictions, any shape, floating point.
      target: values of ``input``'s shape (a broadcastable shape warns, as in torch).
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.
      beta: threshold, a Python number >= 0 (``ValueError`` for a negative or NaN beta, torch's
        check). It selects branches, so under ``jit`` it must be static.

    Gradients are torch's ``smooth_l1_loss_backward``: ``(x - y) / beta`` inside the quadratic
    zone (0 at a tie), ``sign(x - y)`` outside. torch 2.13's ``smooth_l1_loss`` has no ``weight``.

    Returns:
      A scalar, or the broadcast shape for ``'none'``.

    Raises:
      ValueError: an unknown ``reduction``, a negative or NaN ``beta``, or shapes that do not
        broadcast.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> x = jnp.array([0.5, 2.0, -3.0])
      >>> y = jnp.zeros(3)
      >>> F.smooth_l1_loss(x, y, reduction='none')
      Array([0.125, 1.5  , 2.5  ], dtype=float32)
      >>> F.smooth_l1_loss(x, y, beta=0.5)
      Array(1.5833..., dtype=float32)
    """
    fn = "smooth_l1_loss"
    reduction = resolve_reduction(reduction, size_average, reduce)
    beta = _checked_beta(beta, fn)
    if beta == 0.0:
        return _pointwise(fn, _abs_error, input, target, reduction, None)
    return _pointwise(fn, lambda x, y: _smooth_l1_pair(x, y, beta), input, target, reduction, None, pair=True)


# -- classes -----------------------------------------------------------------------------------


class L1Loss(_Loss):
    """Mean absolute error; see [`losses_jax.l1_loss`][losses_jax.l1_loss].

    ``L1Loss(size_average=None, reduce=None, reduction='mean')``; call as ``loss(input, target)``.
    Shapes: input ``(*)``, target ``(*)`` same shape; output scalar, or ``(*)`` for ``'none'``.
    """

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error; see [`losses_jax.mse_loss`][losses_jax.mse_loss].

    ``MSELoss(size_average=None, reduce=None, reduction='mean')``; call as ``loss(input, target)``.
    Shapes: input ``(*)``, target ``(*)`` same shape; output scalar, or ``(*)`` for ``'none'``.
    """

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return mse_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Smooth L1 loss; see [`losses_jax.smooth_l1_loss`][losses_jax.smooth_l1_loss].

    ``SmoothL1Loss(size_average=None, reduce=None, reduction='mean', beta=1.0)``; call as
    ``loss(input, target)``. Shapes: input ``(*)``, target ``(*)`` same shape; output scalar, or
    ``(*)`` for ``'none'``. A negative ``beta`` raises ``ValueError`` when the object is built
    (torch raises at the first call).
    """

    _defaults = {"reduction": "mean", "beta": 1.0}

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
        beta: float = 1.0,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        _checked_beta(beta, "SmoothL1Loss")
        self.beta = beta

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Huber loss; see [`losses_jax.huber_loss`][losses_jax.huber_loss].

    ``HuberLoss(reduction='mean', delta=1.0)``; call as ``loss(input, target)`` (torch 2.13's class
    has no ``weight``; the functional has). Shapes: input ``(*)``, target ``(*)`` same shape;
    output scalar, or ``(*)`` for ``'none'``. ``delta`` must be a Python ``float`` or ``int``
    (``TypeError`` otherwise, torch's check); a non-positive ``delta`` raises ``ValueError`` when
    the object is built (torch raises at the first call).
    """

    _defaults = {"reduction": "mean", "delta": 1.0}

    def __init__(self, reduction: Reduction = "mean", delta: float = 1.0) -> None:
        if not isinstance(delta, (float, int)):
            raise TypeError(f"HuberLoss: argument 'delta' must be a float or int, got: {type(delta)}")
        super().__init__(reduction=reduction)
        _checked_delta(delta, "HuberLoss")
        self.delta = delta

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)
