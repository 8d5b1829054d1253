"""Multi-class losses: ``nll_loss`` and ``cross_entropy`` (torch.nn.functional semantics).

Layout is torch's: the class dimension is axis 1, or axis 0 for an unbatched ``(C,)`` input.

Class-index targets share one core (`_index_target_loss`). Cross-entropy is evaluated as
``log(sum(exp(x - max))) - (x[target] - max)`` rather than through a materialised ``log_softmax``:
the same numbers (torch shifts by the max the same way), but XLA fuses it into reductions over the
logits, which keeps the forward and backward passes close to one read of the logits each.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._base import _WeightedLoss
from ._reduction import Reduction, resolve_reduction, smoothed_parts, weighted_reduction
from ._torch_semantics import (
    SymbolicZero,
    as_array,
    check_class_weight,
    check_floating,
    check_index_target,
    check_label_smoothing,
    check_targets_in_range,
    class_axis,
    class_index_weights,
    class_shape,
    compute_dtype,
)
from ._xla_cpu import unshared


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _softmax_cross_entropy_parts(x, target, weight, axis, smoothing):
    """Per position, the two parts of cross-entropy: ``nll`` and, when ``smoothing``, ``smooth``.

    ``nll = -log_softmax(x)[target]`` and ``smooth = sum_c w_c * -log_softmax(x)_c`` (``w`` = 1
    when ``weight`` is None).

    log_softmax is computed as torch computes it: shifted by the row max first, so large logits
    keep every digit (``logsumexp(x) - x_t`` loses them: float32's spacing at 1e4 is 1e-3).

    Custom JVP for speed (autodiff of the formula gives torch's gradient too). It states the
    derivative with ``p = softmax(x)``, ``d nll = sum_c (p_c - onehot_c) dx_c`` (and the smoothing
    part likewise), linearly in the tangents: reverse mode is its transpose, the fused
    ``g (p - onehot)`` over the logits, where autodiff of the gather would scatter the picked
    logit's gradient into a separate N x C buffer. Measured on XLA:CPU: the backward at 4096 x
    32000 ~345 -> ~282 ms, value + grad 0.55 -> 0.46 of torch (BENCHMARKS.md "What each change
    bought"). Being a JVP, forward mode (``jvp``, ``jacfwd``, ``hessian``) works too.
    """
    return _softmax_cross_entropy_terms(x, target, weight, axis, smoothing)[:2]


def _softmax_cross_entropy_terms(x, target, weight, axis, smoothing):
    """``(nll, smooth, m, lse)``: the parts, the row max and ``log(sum(exp(x - m)))``."""
    # Every use of the shifted logits is written out inside its own reduction (and the picked
    # logit is shifted after the gather), so XLA fuses the shift into each pass instead of
    # materialising an N x C copy of the shifted logits.
    m = jnp.max(x, axis=axis, keepdims=True)
    lse = jnp.log(jnp.sum(jnp.exp(x - m), axis=axis))
    picked = jnp.take_along_axis(x, jnp.expand_dims(target, axis), axis=axis) - m
    nll = lse - jnp.squeeze(picked, axis)
    smooth = None
    if smoothing:
        # sum_c w_c (lse - (x_c - m)) = lse sum_c w_c + sum_c w_c (m - x_c): every term of the
        # second sum is >= 0 (no cancellation at large logits), and `m - x` is not the `x - m`
        # of the exp-sum above, so the two reductions do not share (and materialise) it.
        if weight is None:
            smooth = x.shape[axis] * lse + jnp.sum(m - x, axis=axis)
        else:
            w = weight.reshape(class_shape(x.ndim, axis, x.shape[axis]))
            smooth = jnp.sum(weight) * lse + jnp.sum(w * (m - x), axis=axis)
    return nll, smooth, m, lse


def _softmax_cross_entropy_jvp(axis, smoothing, primals, tangents):
    x, target, weight = primals
    tx, _, tw = tangents
    nll, smooth, m, lse = _softmax_cross_entropy_terms(x, target, weight, axis, smoothing)
    lse = jnp.expand_dims(lse, axis)
    # Without sharing, XLA:CPU does not materialise the broadcast row max / weights (_xla_cpu).
    m, weight_b = unshared(m, weight)
    p = jnp.exp((x - m) - lse)
    t_nll = jnp.zeros_like(nll)
    t_smooth = None if smooth is None else jnp.zeros_like(smooth)
    if not isinstance(tx, SymbolicZero):
        # Both parts are written through one ``sum_c p_c dx_c``: the transpose is then one
        # elementwise expression over the logits, ``p (g_nll + sum(w) g_smooth) - w g_smooth``,
        # and the picked logit's ``-g_nll`` is a gather's transpose, a scatter of N values that
        # XLA performs in place on that expression's output (no second N x C term). A one-hot
        # select instead costs a compare per logit: an 18% slower backward at 4096 x 32000.
        p_dx = jnp.sum(p * tx, axis=axis)
        picked_tx = jnp.take_along_axis(tx, jnp.expand_dims(target, axis), axis=axis)
        t_nll = p_dx - jnp.squeeze(picked_tx, axis)
        if smoothing:
            n = x.shape[axis]
            if weight is None:
                t_smooth = n * p_dx - jnp.sum(tx, axis=axis)
            else:
                w = weight_b.reshape(class_shape(x.ndim, axis, n))
                t_smooth = jnp.sum(weight_b) * p_dx - jnp.sum(w * tx, axis=axis)
    if smoothing and weight is not None and not isinstance(tw, SymbolicZero):
        # d/dw_c of sum_c w_c (-log p_c) is -log p_c
        neg_logp = lse - (x - m)
        w_shape = class_shape(x.ndim, axis, x.shape[axis])
        t_weight = jnp.sum(tw.reshape(w_shape) * neg_logp, axis=axis)
        t_smooth = t_weight if t_smooth is None else t_smooth + t_weight
    return (nll, smooth), (t_nll, t_smooth)


_softmax_cross_entropy_parts.defjvp(_softmax_cross_entropy_jvp, symbolic_zeros=True)


def _index_target_loss(x, target, weight, ignore_index, reduction, label_smoothing, *, from_logits: bool):
    """Per-position loss for class-index targets, then torch's weighted reduction.

    ``x`` holds logits (``from_logits``) or log-probabilities, class axis 1 (or 0 when 1-D).
    Ignored positions contribute exactly 0 to the loss and to every gradient. A non-ignored
    index outside ``[0, C)`` (only reachable under tracing) gets a NaN weight, so the loss and
    its gradient are NaN rather than a plausible number.
    """
    axis = class_axis(x)
    n_classes = x.shape[axis]
    valid, safe_target, w_t = class_index_weights(target, n_classes, ignore_index, weight, x.dtype)

    smooth = None
    smoothing = from_logits and not (isinstance(label_smoothing, (int, float)) and label_smoothing == 0)
    if from_logits:
        nll, smooth = _softmax_cross_entropy_parts(x, safe_target, weight, axis, smoothing)
        loss = w_t * nll
    else:
        picked = jnp.take_along_axis(x, jnp.expand_dims(safe_target, axis), axis=axis)
        loss = -w_t * jnp.squeeze(picked, axis)

    # `where` (not a multiply by the mask) so that ignored positions get an exact zero gradient
    # even when the 'mean' normaliser is 0 (every target ignored: torch returns NaN and zero
    # gradients).
    loss = jnp.where(valid, loss, 0)
    total_weight = jnp.sum(w_t)
    if not smoothing:
        return weighted_reduction(loss, reduction, total_weight)

    # torch: (1 - eps) * nll + eps / C * smooth, smooth_n = sum_c w_c * (-log_softmax(x)_n,c),
    # 0 at ignored positions. Under 'mean' each part is divided by the total target weight on
    # its own, as torch does (so 0/0 + s/0 is NaN, not inf).
    assert smooth is not None
    smooth = jnp.where(valid, smooth, 0)
    nll = weighted_reduction(loss, reduction, total_weight)
    smooth = weighted_reduction(smooth, reduction, total_weight)
    return smoothed_parts(nll, smooth, label_smoothing, n_classes)


def _checked_index_target_loss(fn, input, target, weight, ignore_index, reduction, label_smoothing):
    """Validate a class-index problem, then `_index_target_loss` in the compute dtype."""
    target = check_index_target(input, target, fn)
    n_classes = input.shape[class_axis(input)]
    weight = check_class_weight(None if weight is None else as_array(weight, "weight", fn), n_classes, fn)
    check_targets_in_range(target, n_classes, ignore_index)
    work, out = compute_dtype(input.dtype)
    w = None if weight is None else weight.astype(work)
    loss = _index_target_loss(
        input.astype(work),
        target,
        w,
        ignore_index,
        reduction,
        label_smoothing,
        from_logits=fn != "nll_loss",
    )
    return loss.astype(out)


def nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    r"""Negative log-likelihood loss, as ``torch.nn.functional.nll_loss``.

    $$
    \ell_n = -w_{y_n} \, x_{n, y_n} \cdot \mathbb{1}[y_n \ne \text{ignore\_index}]
    $$

    ``'sum'`` sums $\ell$; ``'mean'`` divides that sum by $\sum_n w_{y_n}$ over the
    non-ignored positions (NaN when that total is 0, e.g. every target ignored, as in torch).

    Args:
      input: log-probabilities, ``(C)``, ``(N, C)`` or ``(N, C, d1, ..., dK)``.
      target: integer class indices in ``[0, C)`` or ``ignore_index``: ``()`` (or ``(1,)``) for a
        ``(C)`` input, else ``(N)`` or ``(N, d1, ..., dK)``. Any integer dtype is accepted
        (torch wants int64; JAX's default is int32).
      weight: optional rescaling weight per class, ``(C)``.
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      ignore_index: a target value that contributes nothing, to the loss or to the ``'mean'``
        normaliser.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.

    Returns:
      A scalar, or the target's shape for ``reduction='none'``.

    Raises:
      ValueError: shape mistakes or an unknown ``reduction``, at trace time (so also under
        ``jit``).
      TypeError: a floating ``target`` or an integer ``input``.
      IndexError: a target outside ``[0, C)`` when the target is concrete (torch's message).
        Under ``jit``/``vmap``/``grad`` the values cannot be checked: such positions give a NaN
        loss (and NaN gradients), never a plausible number.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> log_probs = jax.nn.log_softmax(jnp.array([[0.1, 0.2, 0.3], [2.0, 0.0, -1.0]]), axis=1)
      >>> target = jnp.array([1, 0])
      >>> F.nll_loss(log_probs, target)
      Array(0.6358..., dtype=float32)
      >>> F.nll_loss(log_probs, target, weight=jnp.array([1.0, 2.0, 1.0]))
      Array(0.7912..., dtype=float32)
    """
    fn = "nll_loss"
    reduction = resolve_reduction(reduction, size_average, reduce)
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    check_floating(input, "input", fn)
    return _checked_index_target_loss(fn, input, target, weight, ignore_index, reduction, 0.0)


def cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
) -> jax.Array:
    r"""Cross-entropy between logits and a target, as ``torch.nn.functional.cross_entropy``.

    Equivalent to ``nll_loss(log_softmax(input, 1), target, ...)`` for class indices, plus torch's
    label smoothing and class-probability targets.

    **Class-index targets** (integer ``target``; shapes as [`nll_loss`][losses_jax.nll_loss]), with
    $\varepsilon$ = ``label_smoothing`` and $C$ classes:

    $$
    \ell_n = (1 - \varepsilon)\, w_{y_n} (-\log p_{n, y_n})
    + \frac{\varepsilon}{C} \sum_c w_c (-\log p_{n, c}),
    \qquad p_n = \operatorname{softmax}(x_n)
    $$

    and $\ell_n = 0$ where $y_n$ is ``ignore_index``. ``'mean'`` divides the sum by
    $\sum_n w_{y_n}$ over non-ignored positions (NaN when it is 0, as torch).

    **Class-probability targets** (floating ``target`` of exactly the input's shape):

    $$
    \ell_n = -\sum_c w_c \, \tilde y_{n, c} \log p_{n, c}, \qquad
    \tilde y = (1 - \varepsilon) y + \varepsilon / C
    $$

    ``'mean'`` divides the sum by the number of positions $N d_1 \cdots d_K$ (weights do
    not enter the normaliser, as in torch); ``ignore_index`` does not apply.

    Numerics: ``logsumexp`` with the max subtracted, so logits of +-1e4 give exact losses;
    ``-inf`` logits for non-target classes are fine (an ``-inf`` target logit gives ``inf``, a
    0 probability on an ``-inf`` logit gives NaN, as in torch). Half-precision inputs are
    computed in float32 and rounded back.

    Args:
      input: logits, ``(C)``, ``(N, C)`` or ``(N, C, d1, ..., dK)``.
      target: class indices (integer, shaped as for [`nll_loss`][losses_jax.nll_loss]) or class
        probabilities (floating, of exactly ``input``'s shape).
      weight: optional rescaling weight per class, ``(C)``.
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      ignore_index: a class-index target value that contributes nothing.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.
      label_smoothing: $\varepsilon$ in ``[0, 1]``.

    Returns:
      A scalar, or the input's shape without the class axis for ``reduction='none'``.

    Raises:
      ValueError: as [`nll_loss`][losses_jax.nll_loss]; also a ``label_smoothing`` outside
        ``[0, 1]``.
      TypeError: an integer target of the input's shape.
      IndexError: as [`nll_loss`][losses_jax.nll_loss].

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> logits = jnp.array([[0.1, 0.2, 0.3]])
      >>> target = jnp.array([1])
      >>> F.cross_entropy(logits, target)                      # the tutorial's number
      Array(1.1019..., dtype=float32)
      >>> F.cross_entropy(logits, jnp.array([[0.0, 0.5, 0.5]]))  # class probabilities
      Array(1.0519..., dtype=float32)
      >>> F.cross_entropy(jnp.array([[0.1, 0.2, 0.3], [1.0, 0.0, -1.0]]), jnp.array([1, -100]))  # -100: ignored
      Array(1.1019..., dtype=float32)
      >>> F.cross_entropy(logits, jnp.array([2]), label_smoothing=0.1)
      Array(1.0119..., dtype=float32)
    """
    fn = "cross_entropy"
    reduction = resolve_reduction(reduction, size_average, reduce)
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    check_floating(input, "input", fn)
    check_label_smoothing(label_smoothing, fn)
    if input.ndim >= 1 and target.shape == input.shape:
        if jnp.issubdtype(target.dtype, jnp.floating):
            return _prob_target_cross_entropy(input, target, weight, reduction, label_smoothing)
        if input.ndim >= 2:
            raise TypeError(
                f"{fn}: a 'target' of the input's shape {tuple(input.shape)} holds class "
                f"probabilities and must be floating point, got dtype {target.dtype}"
            )
    return _checked_index_target_loss(fn, input, target, weight, ignore_index, reduction, label_smoothing)


def _prob_target_cross_entropy(input, target, weight, reduction, label_smoothing):
    fn = "cross_entropy"
    axis = class_axis(input)
    n_classes = input.shape[axis]
    weight = check_class_weight(None if weight is None else as_array(weight, "weight", fn), n_classes, fn)
    work, out = compute_dtype(input.dtype, target.dtype)
    logp = jax.nn.log_softmax(input.astype(work), axis=axis)
    t = target.astype(work)
    if not (isinstance(label_smoothing, (int, float)) and label_smoothing == 0):
        t = t * (1.0 - label_smoothing) + label_smoothing / n_classes
    prod = logp * t
    if weight is not None:
        prod = prod * weight.astype(work).reshape(class_shape(input.ndim, axis, n_classes))
    # 'mean' divides by the number of positions (numel / C), as torch; an empty input gives
    # 0 / 0 = NaN, torch's answer too.
    positions = int(np.prod(input.shape[:axis] + input.shape[axis + 1 :]))
    loss = weighted_reduction(-jnp.sum(prod, axis=axis), reduction, positions)
    return loss.astype(out)


# -- classes -----------------------------------------------------------------------------------


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood loss; see [`losses_jax.nll_loss`][losses_jax.nll_loss].

    ``NLLLoss(weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean')``.
    Shapes: input ``(C)``, ``(N, C)`` or ``(N, C, d1, ..., dK)`` log-probabilities; target
    ``()``, ``(N)`` or ``(N, d1, ..., dK)`` class indices; output scalar or the target's shape.
    """

    _defaults = {"reduction": "mean", "ignore_index": -100}

    def __init__(
        self,
        weight: ArrayLike | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy from logits; see [`losses_jax.cross_entropy`][losses_jax.cross_entropy].

    ``CrossEntropyLoss(weight=None, size_average=None, ignore_index=-100, reduce=None,
    reduction='mean', label_smoothing=0.0)``.
    Shapes: input ``(C)``, ``(N, C)`` or ``(N, C, d1, ..., dK)`` logits; target class indices
    ``()``, ``(N)`` or ``(N, d1, ..., dK)``, or class probabilities of the input's shape; output
    scalar, or the input's shape without the class axis for ``'none'``.
    """

    _defaults = {"reduction": "mean", "ignore_index": -100, "label_smoothing": 0.0}

    def __init__(
        self,
        weight: ArrayLike | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        check_label_smoothing(label_smoothing, "CrossEntropyLoss")

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )
