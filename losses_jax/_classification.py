"""Multi-class losses: ``nll_loss`` and ``cross_entropy`` (torch.nn.functional semantics).

Layout is torch's: the class dimension is axis 1, or axis 0 for an unbatched ``(C,)`` input.

Class-index targets share one core (:func:`_index_target_loss`). Cross-entropy is evaluated as
``log(sum(exp(x - max))) - (x[target] - max)`` rather than through a materialised ``log_softmax``:
the same numbers (torch shifts by the max the same way), but XLA fuses it into reductions over the
logits, which keeps the forward and backward passes close to one read of the logits each.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import as_array, check_floating, check_integer, compute_dtype, concrete_numpy
from ._reduction import resolve_reduction

_SymbolicZero = jax.custom_derivatives.SymbolicZero


def _class_axis(input) -> int:
    return 0 if input.ndim == 1 else 1


def _check_index_target(input, target, fn: str):
    """Validate shapes and dtype of a class-index target; return it shaped as torch reads it."""
    if input.ndim == 0:
        raise ValueError(
            f"{fn}: 'input' must have at least 1 dimension (the class dimension), got a scalar"
        )
    check_integer(
        target,
        "target",
        fn,
        hint=""
        if fn == "nll_loss"
        else (
            f"; class-probability targets must have the input's shape {tuple(input.shape)}, "
            f"got {tuple(target.shape)}"
        ),
    )
    if input.ndim == 1:
        if target.ndim == 1 and target.shape[0] == 1:
            return target.reshape(())
        if target.ndim == 0:
            return target
        raise ValueError(
            f"{fn}: For 1D input, 1D target must have size 1, but got 'target' size: "
            f"{tuple(target.shape)}"
        )
    if target.ndim == 0 or target.shape[0] != input.shape[0]:
        got = "a scalar" if target.ndim == 0 else target.shape[0]
        raise ValueError(
            f"{fn}: Expected input batch_size ({input.shape[0]}) to match target batch_size ({got})."
        )
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{fn}: Expected 'target' size {expected} for 'input' of shape {tuple(input.shape)}, "
            f"got {tuple(target.shape)}"
        )
    return target


def _check_weight(weight, n_classes: int, fn: str):
    if weight is None:
        return None
    if weight.ndim != 1 or weight.shape[0] != n_classes:
        raise ValueError(
            f"{fn}: 'weight' tensor should be defined either for all {n_classes} classes or no "
            f"classes but got weight tensor of shape: {tuple(weight.shape)}"
        )
    return weight


def _check_label_smoothing(label_smoothing, fn: str):
    if isinstance(label_smoothing, jax.core.Tracer):
        return
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(
            f"{fn}: 'label_smoothing' must be between 0.0 and 1.0. Got: {label_smoothing}"
        )


def _check_targets_in_range(target, n_classes: int, ignore_index) -> None:
    """torch's ``IndexError("Target k is out of bounds.")``, when the target values are concrete."""
    t = concrete_numpy(target)
    if t is None or t.size == 0:
        return
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise IndexError(f"Target {t[bad].flat[0]} is out of bounds.")


def _class_shape(ndim: int, axis: int, n: int) -> list[int]:
    shape = [1] * ndim
    shape[axis] = n
    return shape


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _softmax_cross_entropy_parts(x, target, weight, axis, smoothing):
    """Per position: ``nll = -log_softmax(x)[target]`` and, when ``smoothing``,
    ``smooth = sum_c w_c * -log_softmax(x)_c`` (``w`` = 1 when ``weight`` is None).

    log_softmax is computed as torch computes it: shifted by the row max first, so large logits
    keep every digit (``logsumexp(x) - x_t`` loses them: float32's spacing at 1e4 is 1e-3).

    The custom JVP states the derivative with ``p = softmax(x)``,
    ``d nll = sum_c (p_c - onehot_c) dx_c`` (and the smoothing part likewise), linearly in the
    tangents: reverse mode is its transpose, the fused ``g (p - onehot)`` over the logits, where
    autodiff of the gather would scatter the picked logit's gradient into a separate buffer.
    Being a JVP, forward mode (``jvp``, ``jacfwd``, ``hessian``) works too.
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
            w = weight.reshape(_class_shape(x.ndim, axis, x.shape[axis]))
            smooth = jnp.sum(weight) * lse + jnp.sum(w * (m - x), axis=axis)
    return nll, smooth, m, lse


def _softmax_cross_entropy_jvp(axis, smoothing, primals, tangents):
    x, target, weight = primals
    tx, _, tw = tangents
    nll, smooth, m, lse = _softmax_cross_entropy_terms(x, target, weight, axis, smoothing)
    lse = jnp.expand_dims(lse, axis)
    m, weight_b = jax.lax.optimization_barrier((m, weight))
    p = jnp.exp((x - m) - lse)
    classes = jax.lax.broadcasted_iota(target.dtype, x.shape, axis)
    onehot = classes == jnp.expand_dims(target, axis)
    t_nll = jnp.zeros_like(nll)
    t_smooth = None if smooth is None else jnp.zeros_like(smooth)
    if not isinstance(tx, _SymbolicZero):
        # Both parts are written through one ``sum_c p_c dx_c``, and the picked logit through a
        # select rather than a gather: the transpose is then a single elementwise expression,
        # ``p (g_nll + sum(w) g_smooth) - onehot g_nll - w g_smooth``, with no scatter and no
        # second N x C term.
        p_dx = jnp.sum(p * tx, axis=axis)
        t_nll = p_dx - jnp.sum(jnp.where(onehot, tx, 0), axis=axis)
        if smoothing:
            n = x.shape[axis]
            if weight is None:
                t_smooth = n * p_dx - jnp.sum(tx, axis=axis)
            else:
                w = weight_b.reshape(_class_shape(x.ndim, axis, n))
                t_smooth = jnp.sum(weight_b) * p_dx - jnp.sum(w * tx, axis=axis)
    if smoothing and weight is not None and not isinstance(tw, _SymbolicZero):
        # d/dw_c of sum_c w_c (-log p_c) is -log p_c
        neg_logp = lse - (x - m)
        w_shape = _class_shape(x.ndim, axis, x.shape[axis])
        t_smooth = t_smooth + jnp.sum(tw.reshape(w_shape) * neg_logp, axis=axis)
    return (nll, smooth), (t_nll, t_smooth)


_softmax_cross_entropy_parts.defjvp(_softmax_cross_entropy_jvp, symbolic_zeros=True)


def _index_target_loss(
    x, target, weight, ignore_index, reduction, label_smoothing, *, from_logits: bool
):
    """Per-position loss for class-index targets, then torch's weighted reduction.

    ``x`` holds logits (``from_logits``) or log-probabilities, class axis 1 (or 0 when 1-D).
    Ignored positions contribute exactly 0 to the loss and to every gradient. A non-ignored
    index outside ``[0, C)`` (only reachable under tracing) gets a NaN weight, so the loss and
    its gradient are NaN rather than a plausible number.
    """
    axis = _class_axis(x)
    n_classes = x.shape[axis]
    valid = target != ignore_index
    in_range = (target >= 0) & (target < n_classes)
    safe_target = jnp.where(valid & in_range, target, 0)
    if weight is None:
        w_t = jnp.ones(target.shape, x.dtype)
    else:
        w_t = weight[safe_target]
    w_t = jnp.where(valid & ~in_range, jnp.nan, jnp.where(valid, w_t, 0))

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
        if reduction == "none":
            return loss
        return jnp.sum(loss) if reduction == "sum" else jnp.sum(loss) / total_weight

    # torch: (1 - eps) * nll + eps / C * smooth, smooth_n = sum_c w_c * (-log_softmax(x)_n,c),
    # 0 at ignored positions. Under 'mean' each part is divided by the total target weight on
    # its own, as torch does (so 0/0 + s/0 is NaN, not inf).
    smooth = jnp.where(valid, smooth, 0)
    if reduction == "none":
        nll, smooth = loss, smooth
    elif reduction == "sum":
        nll, smooth = jnp.sum(loss), jnp.sum(smooth)
    else:
        nll, smooth = jnp.sum(loss) / total_weight, jnp.sum(smooth) / total_weight
    return (1.0 - label_smoothing) * nll + (label_smoothing / n_classes) * smooth


def _checked_index_target_loss(fn, input, target, weight, ignore_index, reduction, label_smoothing):
    """Validate a class-index problem, then :func:`_index_target_loss` in the compute dtype."""
    target = _check_index_target(input, target, fn)
    n_classes = input.shape[_class_axis(input)]
    weight = _check_weight(None if weight is None else as_array(weight, "weight", fn), n_classes, fn)
    _check_targets_in_range(target, n_classes, ignore_index)
    work, out = compute_dtype(input.dtype)
    w = None if weight is None else weight.astype(work)
    loss = _index_target_loss(
        input.astype(work), target, w, ignore_index, reduction, label_smoothing,
        from_logits=fn != "nll_loss",
    )
    return loss.astype(out)


def nll_loss(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index=-100,
    reduce=None,
    reduction="mean",
):
    r"""Negative log-likelihood loss, as ``torch.nn.functional.nll_loss``.

    .. math::
        \ell_n = -w_{y_n} \, x_{n, y_n} \cdot \mathbb{1}[y_n \ne \text{ignore\_index}]

    ``'sum'`` sums :math:`\ell`; ``'mean'`` divides that sum by :math:`\sum_n w_{y_n}` over the
    non-ignored positions (NaN when that total is 0, e.g. every target ignored, as in torch).

    Shapes:
      input: ``(C)``, ``(N, C)`` or ``(N, C, d1, ..., dK)``: log-probabilities.
      target: ``()`` (or ``(1,)``) for a ``(C)`` input, else ``(N)`` or ``(N, d1, ..., dK)``;
        integer class indices in ``[0, C)`` or ``ignore_index``. Any integer dtype is accepted
        (torch wants int64; JAX's default is int32).
      weight: ``(C)``, a rescaling weight per class.
      output: scalar, or the target's shape for ``reduction='none'``.

    Bad input: shape and dtype mistakes raise ``ValueError`` / ``TypeError`` at trace time. A
    target outside ``[0, C)`` raises torch's ``IndexError`` when the target is concrete; under
    ``jit``/``vmap``/``grad`` tracing the values cannot be checked, and such positions give a
    NaN loss (and NaN gradients), never a plausible number.
    """
    fn = "nll_loss"
    reduction = resolve_reduction(reduction, size_average, reduce)
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    check_floating(input, "input", fn)
    return _checked_index_target_loss(fn, input, target, weight, ignore_index, reduction, 0.0)


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index=-100,
    reduce=None,
    reduction="mean",
    label_smoothing=0.0,
):
    r"""Cross-entropy between logits and a target, as ``torch.nn.functional.cross_entropy``.

    Equivalent to ``nll_loss(log_softmax(input, 1), target, ...)`` for class indices, plus torch's
    label smoothing and class-probability targets.

    **Class-index targets** (integer ``target``; shapes as :func:`nll_loss`), with
    :math:`\varepsilon` = ``label_smoothing`` and :math:`C` classes:

    .. math::
        \ell_n = (1 - \varepsilon)\, w_{y_n} (-\log p_{n, y_n})
                 + \frac{\varepsilon}{C} \sum_c w_c (-\log p_{n, c}),
        \qquad p_n = \operatorname{softmax}(x_n)

    and :math:`\ell_n = 0` where :math:`y_n` is ``ignore_index``. ``'mean'`` divides the sum by
    :math:`\sum_n w_{y_n}` over non-ignored positions (NaN when it is 0, as torch).

    **Class-probability targets** (floating ``target`` of exactly the input's shape):

    .. math::
        \ell_n = -\sum_c w_c \, \tilde y_{n, c} \log p_{n, c}, \qquad
        \tilde y = (1 - \varepsilon) y + \varepsilon / C

    ``'mean'`` divides the sum by the number of positions :math:`N d_1 \cdots d_K` (weights do
    not enter the normaliser, as in torch); ``ignore_index`` does not apply.

    Shapes: input ``(C)``, ``(N, C)`` or ``(N, C, d1, ..., dK)`` of logits; weight ``(C)``;
    output scalar, or the input's shape without the class axis for ``reduction='none'``.

    Numerics: ``logsumexp`` with the max subtracted, so logits of +-1e4 give exact losses;
    ``-inf`` logits for non-target classes are fine (an ``-inf`` target logit gives ``inf``, a
    0 probability on an ``-inf`` logit gives NaN, as in torch). Half-precision inputs are
    computed in float32 and rounded back.

    Bad input: as :func:`nll_loss`; additionally ``label_smoothing`` outside ``[0, 1]`` raises
    ``ValueError``, an integer target of the input's shape raises ``TypeError``.
    """
    fn = "cross_entropy"
    reduction = resolve_reduction(reduction, size_average, reduce)
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    check_floating(input, "input", fn)
    _check_label_smoothing(label_smoothing, fn)
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
    axis = _class_axis(input)
    n_classes = input.shape[axis]
    weight = _check_weight(None if weight is None else as_array(weight, "weight", fn), n_classes, fn)
    work, out = compute_dtype(input.dtype, target.dtype)
    logp = jax.nn.log_softmax(input.astype(work), axis=axis)
    t = target.astype(work)
    if not (isinstance(label_smoothing, (int, float)) and label_smoothing == 0):
        t = t * (1.0 - label_smoothing) + label_smoothing / n_classes
    prod = logp * t
    if weight is not None:
        shape = [1] * input.ndim
        shape[axis] = n_classes
        prod = prod * weight.astype(work).reshape(shape)
    if reduction == "none":
        loss = -jnp.sum(prod, axis=axis)
    elif reduction == "sum":
        loss = -jnp.sum(prod)
    else:
        # torch divides by the number of positions (numel / C); an empty input gives 0 / 0 = NaN,
        # torch's answer too.
        positions = int(np.prod(input.shape[:axis] + input.shape[axis + 1 :]))
        loss = -jnp.sum(prod) / positions
    return loss.astype(out)
