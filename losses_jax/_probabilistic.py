"""Likelihood-based losses, with their ``torch.nn`` classes.

Binary cross-entropy (on probabilities and on logits), KL divergence, Poisson and Gaussian negative
log-likelihoods.

Where torch's backward is a formula of its own rather than the derivative of its forward (the
``-100`` log clamp and ``1e-12`` denominator of ``binary_cross_entropy``, the ``sigmoid(x) - y``
of ``binary_cross_entropy_with_logits``, ``xlogy``'s derivative, the clamp of the variance that
autograd does not see), the elementwise core is a ``jax.custom_jvp`` that states torch's formula,
so values and gradients match torch at the edges (probabilities 0 and 1, huge logits, zero
targets, tiny variances), not only in the interior.

_composite_note: half precision. torch evaluates ``binary_cross_entropy`` in one fused kernel
(float32 inside, rounded once), but ``binary_cross_entropy_with_logits``, ``kl_div``,
``poisson_nll_loss`` and ``gaussian_nll_loss`` as chains of ops that each round to the input's
bfloat16/float16. The first is computed in float32 here; the others in the input's dtype, op by
op (XLA, like torch's kernels, evaluates each op in float32 and rounds it), with torch's fused
pieces (``log_sigmoid``, ``sigmoid``, ``xlogy``) in float32 - which is what reproduces torch's
half-precision numbers.
"""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._base import _Loss, _WeightedLoss
from ._reduction import KLDivReduction, Reduction, apply_reduction, batchmean, resolve_reduction
from ._torch_semantics import (
    as_array,
    broadcast_shape,
    check_floating,
    clamp_min_no_grad,
    compute_dtype,
    concrete_numpy,
    fused_f32,
    is_concrete,
    sigmoid,
    sum_tangents,
    tangent,
    user_stacklevel,
)
from ._xla_cpu import unshared


def _check_same_shape(input, target, fn: str) -> None:
    if input.shape != target.shape:
        raise ValueError(
            f"{fn}: Using a 'target' size {tuple(target.shape)} that is different to the 'input' "
            f"size {tuple(input.shape)} is not supported (torch raises too). Please ensure they "
            "have the same size."
        )


def _check_broadcasts_to(w, shape, name: str, fn: str) -> None:
    try:
        ok = jnp.broadcast_shapes(w.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{fn}: '{name}' of shape {tuple(w.shape)} must broadcast to the input shape {tuple(shape)}")


# -- binary_cross_entropy --------------------------------------------------------------------


def _unit_interval(x):
    return (x >= 0) & (x <= 1)  # False for NaN, as torch's check


# Custom JVP for torch's gradient: torch's backward formulas, which are not the derivative of the
# clamped forward (finite at probabilities 0 and 1, unclamped in the target).
@jax.custom_jvp
def _bce(x, t):
    # torch's CPU kernel, term for term: (t - 1) * max(log1p(-x), -100) - t * max(log(x), -100).
    loss = (t - 1) * jnp.maximum(jnp.log1p(-x), -100.0) - t * jnp.maximum(jnp.log(x), -100.0)
    # Out-of-range probabilities or targets (torch raises; only reachable under tracing): NaN.
    return jnp.where(_unit_interval(x) & _unit_interval(t), loss, jnp.nan)


def _bce_jvp(primals, tangents):
    x, t = primals
    dx, dt = tangents
    bad = ~(_unit_interval(x) & _unit_interval(t))
    # torch's binary_cross_entropy_backward: (x - t) / max(x (1 - x), 1e-12), finite at 0 and 1.
    gx = jnp.where(bad, jnp.nan, (x - t) / jnp.maximum(x * (1 - x), 1e-12))
    # torch's binary_cross_entropy_target_backward: -logit(x), unclamped (+-inf at 1 and 0).
    gt = jnp.where(bad, jnp.nan, jnp.log1p(-x) - jnp.log(x))
    return _bce(x, t), sum_tangents(x, tangent(gx, dx), tangent(gt, dt))


_bce.defjvp(_bce_jvp, symbolic_zeros=True)


def _check_unit_interval_concrete(x, name: str, fn: str) -> None:
    v = concrete_numpy(x)
    if v is None or v.size == 0:
        return
    v = v.astype(np.float32) if v.dtype.itemsize < 4 else v  # bfloat16/float16 via ml_dtypes
    if not np.all((v >= 0) & (v <= 1)):
        raise ValueError(f"{fn}: all elements of '{name}' should be between 0 and 1")


def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    r"""Binary cross-entropy on probabilities, as ``torch.nn.functional.binary_cross_entropy``.

    $$
    \ell_i = -w_i \left[ y_i \max(\log x_i, -100) + (1 - y_i) \max(\log(1 - x_i), -100) \right]
    $$

    reduced by ``reduction``: ``'none'``, ``'sum'``, or ``'mean'`` (the plain mean of
    $\ell$, also with ``weight``, as torch).

    Args:
      input: probabilities in ``[0, 1]``, any shape, floating point.
      target: values in ``[0, 1]`` of exactly ``input``'s shape (``ValueError`` otherwise, as
        torch), floating point (``TypeError`` for integer targets, as torch).
      weight: optional rescaling weight that broadcasts to ``input``'s shape (e.g. ``(C,)`` for
        ``(N, C)``); ``ValueError`` naming ``'weight'`` when it does not.
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.

    Each log term is clamped at -100, as in torch, so probabilities 0 and 1 give finite losses
    (at most ``100 w``). Gradients are torch's backward formulas: with respect to ``input``
    $w (x - y) / \max(x(1-x), 10^{-12})$ (finite at 0 and 1), with respect to ``target``
    $-w\,\mathrm{logit}(x)$ (infinite at 0 and 1, as in torch). torch refuses gradients for
    ``weight``; here ``weight`` is differentiable (the gradient is the unweighted loss).

    Values outside ``[0, 1]`` (NaN included) in ``input`` or ``target``: when the arrays are
    concrete this raises ``ValueError`` (torch raises ``RuntimeError``); under ``jit``/``vmap``
    the check cannot run and the loss and its gradients at those positions are NaN.

    Returns:
      A scalar, or ``input``'s shape for ``'none'``.

    Raises:
      ValueError: an unknown ``reduction``, a ``target`` or ``weight`` of the wrong shape, or
        (concrete values only) a value outside ``[0, 1]``.
      TypeError: an integer ``input`` or ``target``.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> p = jnp.array([0.9, 0.2, 0.6])
      >>> y = jnp.array([1.0, 0.0, 0.0])
      >>> F.binary_cross_entropy(p, y)
      Array(0.4149..., dtype=float32)
      >>> F.binary_cross_entropy(jnp.array([0.0, 0.5]), jnp.array([1.0, 1.0]), reduction='none').round(4)
      Array([100.    ,   0.6931], dtype=float32)
    """
    fn = "binary_cross_entropy"
    reduction = resolve_reduction(reduction, size_average, reduce)
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    check_floating(input, "input", fn)
    check_floating(target, "target", fn)
    _check_same_shape(input, target, fn)
    if weight is not None:
        weight = as_array(weight, "weight", fn)
        _check_broadcasts_to(weight, input.shape, "weight", fn)
    _check_unit_interval_concrete(input, "input", fn)
    _check_unit_interval_concrete(target, "target", fn)
    work, out = compute_dtype(input.dtype, target.dtype)
    loss = _bce(input.astype(work), target.astype(work))
    if weight is not None:
        loss = loss * weight.astype(work)
    return apply_reduction(loss, reduction).astype(out)


# -- binary_cross_entropy_with_logits --------------------------------------------------------


def _log_sigmoid(x):
    # torch's CPU log_sigmoid: min(x, 0) - log1p(exp(-|x|)); exact for large |x| of either sign.
    return fused_f32(lambda z: jnp.minimum(z, 0) - jnp.log1p(jnp.exp(-jnp.abs(z))), x)


# Custom JVPs for torch's gradient: torch's formulas (`sigmoid(x) - t` and its pos_weight form);
# autodiff of the stable log_sigmoid's `min` and `|x|` gives another value at x == 0 (-t where
# torch gives 0.5 - t).
@jax.custom_jvp
def _bce_logits(x, t):
    return (1 - t) * x - _log_sigmoid(x)


def _bce_logits_jvp(primals, tangents):
    x, t = primals
    dx, dt = tangents
    # torch's binary_cross_entropy_with_logits_backward: sigmoid(x) - t; target: -x.
    gx = sigmoid(x) - t
    return _bce_logits(x, t), sum_tangents(x, tangent(gx, dx), tangent(-x, dt))


_bce_logits.defjvp(_bce_logits_jvp, symbolic_zeros=True)


@jax.custom_jvp
def _bce_logits_pw(x, t, pw):
    log_weight = (pw - 1) * t + 1
    return (1 - t) * x - _log_sigmoid(x) * log_weight


def _bce_logits_pw_jvp(primals, tangents):
    x, t, pw = primals
    dx, dt, dpw = tangents
    # torch: ((pw t + 1 - t) sigmoid(x) - pw t) for the input; log_sigmoid(-x) - pw log_sigmoid(x)
    # for the target. torch refuses gradients for pos_weight; ours is the derivative, -t log_sigmoid(x).
    pt = pw * t
    gx = (pt + 1 - t) * sigmoid(x) - pt
    ls = _log_sigmoid(x)
    gt = _log_sigmoid(-x) - ls * pw
    gpw = -t * ls
    # pw broadcasts to x's shape (checked by the caller), so every partial has x's shape.
    return _bce_logits_pw(x, t, pw), sum_tangents(
        x,
        tangent(gx, dx),
        tangent(gt, dt),
        tangent(gpw, dpw),
    )


_bce_logits_pw.defjvp(_bce_logits_pw_jvp, symbolic_zeros=True)


def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    pos_weight: ArrayLike | None = None,
) -> jax.Array:
    r"""Binary cross-entropy on logits, as ``torch.nn.functional.binary_cross_entropy_with_logits``.

    $$
    \ell_i = -w_i \left[ p_i\, y_i \log \sigma(x_i) + (1 - y_i) \log(1 - \sigma(x_i)) \right]
    = w_i \left[ (1 - y_i)\, x_i - (1 + (p_i - 1) y_i) \log \sigma(x_i) \right]
    $$

    with $\log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})$ (torch's formula: exact for any
    logit, no overflow), reduced by ``reduction`` (plain mean or sum, as torch).

    Args:
      input: logits, any shape, floating point.
      target: of exactly ``input``'s shape (``ValueError`` otherwise), floating point; values
        outside ``[0, 1]`` are accepted and used as is, as in torch.
      weight: optional rescaling weight broadcasting to ``input``'s shape.
      pos_weight: optional weight of the positive term, broadcasting to ``input``'s shape: for
        ``(N, C)`` or ``(N, C, H, W)`` inputs torch's broadcasting aligns a ``(C,)`` pos_weight with
        the *last* dimension (use ``(C, 1, 1)`` for the channel of an image-shaped target).
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.

    Gradients are torch's formulas: ``w (sigmoid(x) - y)`` for the input (``w ((p y + 1 - y)
    sigmoid(x) - p y)`` with ``pos_weight``) and ``-w x`` (``w (log_sigmoid(-x) - p
    log_sigmoid(x))``) for the target. ``weight`` and ``pos_weight`` are differentiable here;
    torch refuses gradients for them.

    Returns:
      A scalar, or ``input``'s shape for ``'none'``.

    Raises:
      ValueError: an unknown ``reduction``, or a ``target``, ``weight`` or ``pos_weight`` of the
        wrong shape.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> logits = jnp.array([2.0, -1.0, 0.5])
      >>> y = jnp.array([1.0, 0.0, 0.0])
      >>> F.binary_cross_entropy_with_logits(logits, y)
      Array(0.4714..., dtype=float32)
      >>> F.binary_cross_entropy_with_logits(logits, y, pos_weight=jnp.array([2.0, 2.0, 2.0]))
      Array(0.5137..., dtype=float32)
    """
    fn = "binary_cross_entropy_with_logits"
    reduction = resolve_reduction(reduction, size_average, reduce)
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    check_floating(input, "input", fn)
    check_floating(target, "target", fn)
    if input.shape != target.shape:
        raise ValueError(
            f"{fn}: 'target' size {tuple(target.shape)} must be the same as 'input' size {tuple(input.shape)}"
        )
    for name, w in (("weight", weight), ("pos_weight", pos_weight)):
        if w is not None:
            _check_broadcasts_to(as_array(w, name, fn), input.shape, name, fn)
    _, work = compute_dtype(input.dtype, target.dtype)  # see _composite_note
    x, t = input.astype(work), target.astype(work)
    if pos_weight is None:
        loss = _bce_logits(x, t)
    else:
        loss = _bce_logits_pw(x, t, as_array(pos_weight, "pos_weight", fn).astype(work))
    if weight is not None:
        loss = loss * as_array(weight, "weight", fn).astype(work)
    return apply_reduction(loss, reduction)


# -- kl_div ------------------------------------------------------------------------------------


# Custom JVP for torch's gradient: torch's xlogy derivative as torch rounds it, log(t) rounded to
# the input's dtype and then t / t added (NaN at t == 0); autodiff of the float32 form rounds
# once, an ulp away in bfloat16/float16.
@jax.custom_jvp
def _xlogx(t):
    # torch's xlogy(t, t): 0 where t == 0, NaN for NaN, t log t otherwise.
    return fused_f32(lambda z: jnp.where(z == 0, 0, z * jnp.log(z)), t)


@_xlogx.defjvp
def _xlogx_jvp(primals, tangents):
    (t,), (dt,) = primals, tangents
    # torch's xlogy derivative, both arguments being t: xlogy(t != 0, t) + t / t
    # (NaN at t == 0, as in torch: 0 / 0).
    g = fused_f32(lambda z: jnp.where(z != 0, jnp.log(z), 0), t) + t / t
    return _xlogx(t), g * dt


_KL_MEAN_WARNING = (
    "reduction: 'mean' divides the total loss by both the batch size and the support size."
    "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
    "'mean' will be changed to behave the same as 'batchmean' in the next major release."
)


def kl_div(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: KLDivReduction = "mean",
    log_target: bool = False,
) -> jax.Array:
    r"""Kullback-Leibler divergence loss, as ``torch.nn.functional.kl_div``.

    ``input`` holds log-probabilities $x$; ``target`` probabilities $y$ (or their logs
    $\log y$ when ``log_target=True``):

    $$
    \ell_i = y_i (\log y_i - x_i) \quad\text{(with } 0 \log 0 = 0\text{, torch's xlogy)},
    \qquad \ell_i = e^{\log y_i} (\log y_i - x_i) \text{ when log\_target}
    $$

    reduced by ``reduction``: ``'none'``, ``'sum'``, ``'mean'`` (over all elements: warns, with
    torch's text and ``UserWarning``, that it is not the KL divergence) or ``'batchmean'``
    (the sum divided by ``input.shape[0]``; the sum for a 0-d input), the mathematically correct
    one.

    Args:
      input: log-probabilities, any shape, floating point (``TypeError`` for integers, as torch).
      target: probabilities (or log-probabilities), floating point. Shapes broadcast, silently,
        as in torch.
      size_average: deprecated torch flag; when given, it overrides ``reduction`` (and then no
        'mean' warning, as torch).
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'batchmean' | 'mean' | 'sum'``; ``'batchmean'`` divides the sum by
        the batch size (the mathematical KL divergence), ``'mean'`` by the number of elements.
      log_target: whether ``target`` is given in log space.

    Where ``target == 0`` (not log space) the term is exactly 0 and the input gradient is 0; the
    target gradient there is NaN, as torch's (``xlogy``'s derivative has ``0 / 0``). Negative
    targets give NaN, as in torch.

    Returns:
      A scalar, or the broadcast shape for ``'none'``.

    Raises:
      ValueError: an unknown ``reduction``.
      TypeError: an integer ``input``.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> log_q = jax.nn.log_softmax(jnp.array([[0.1, 0.2, 0.7], [1.0, 0.0, 0.0]]), axis=1)
      >>> p = jnp.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
      >>> F.kl_div(log_q, p, reduction='batchmean')
      Array(0.0047..., dtype=float32)
      >>> F.kl_div(log_q, jnp.log(p), reduction='batchmean', log_target=True)
      Array(0.0047..., dtype=float32)
    """
    fn = "kl_div"
    if size_average is None and reduce is None and isinstance(reduction, str) and reduction == "mean":
        warnings.warn(_KL_MEAN_WARNING, UserWarning, stacklevel=user_stacklevel())
    reduction = resolve_reduction(reduction, size_average, reduce, extra=("batchmean",))
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    for name, a in (("input", input), ("target", target)):
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise TypeError(f"{fn}: Integral inputs not supported: argument '{name}' has dtype {a.dtype}")
    shape = broadcast_shape(fn, input=input, target=target)
    _, work = compute_dtype(input.dtype, target.dtype)  # see _composite_note
    x = jnp.broadcast_to(input.astype(work), shape)
    t = jnp.broadcast_to(target.astype(work), shape)
    if log_target:
        loss = jnp.exp(t) * (t - x)
    else:
        loss = _xlogx(t) - t * x
    if reduction == "batchmean":
        return batchmean(loss, input.shape[0] if input.ndim else 1)
    return apply_reduction(loss, reduction)


# -- poisson_nll_loss --------------------------------------------------------------------------


def poisson_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    r"""Poisson negative log-likelihood, as ``torch.nn.functional.poisson_nll_loss``.

    $$
    \ell_i = e^{x_i} - y_i x_i \quad\text{(log\_input)}, \qquad
    \ell_i = x_i - y_i \log(x_i + \varepsilon) \quad\text{(otherwise)}
    $$

    plus, when ``full``, Stirling's approximation of $\log(y_i!)$,
    $y_i \log y_i - y_i + \tfrac12 \log(2\pi y_i)$, only where $y_i > 1$ (0
    elsewhere, as torch). Reduced by ``reduction`` (``'none' | 'mean' | 'sum'``; legacy
    ``size_average``/``reduce`` override it with torch's warning).

    Args:
      input: the rate's log (``log_input=True``) or the rate itself, any shape.
      target: counts; integer or floating, broadcast with ``input`` silently, as in torch.
      log_input: a Python bool: ``input`` is the rate's log (``True``) or the rate.
      full: a Python bool: add the Stirling approximation term, as torch.
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      eps: added to the rate before its log when ``log_input=False``.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.

    Gradients are autodiff of torch's expression, including its NaN target gradient at
    ``target == 0`` (or negative) when ``full`` (the masked-off Stirling term's ``0 * log 0``).

    Returns:
      A scalar, or the broadcast shape for ``'none'``.

    Raises:
      ValueError: an unknown ``reduction``.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> log_rate = jnp.array([0.0, 1.0, -1.0])
      >>> counts = jnp.array([1.0, 3.0, 0.0])
      >>> F.poisson_nll_loss(log_rate, counts)
      Array(0.3620..., dtype=float32)
      >>> F.poisson_nll_loss(jnp.exp(log_rate), counts, log_input=False)
      Array(0.3620..., dtype=float32)
    """
    fn = "poisson_nll_loss"
    reduction = resolve_reduction(reduction, size_average, reduce)
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    shape = broadcast_shape(fn, input=input, target=target)
    _, work = compute_dtype(input.dtype, target.dtype)  # see _composite_note
    x = jnp.broadcast_to(input.astype(work), shape)
    t = jnp.broadcast_to(target.astype(work), shape)
    if log_input:
        loss = jnp.exp(x) - t * x
    else:
        loss = x - t * jnp.log(x + eps)
    if full:
        stirling = t * jnp.log(t) - t + 0.5 * jnp.log(2 * math.pi * t)
        loss = loss + jnp.where(t <= 1, 0, stirling)
    return apply_reduction(loss, reduction)


# -- gaussian_nll_loss -------------------------------------------------------------------------


def _clamped_var(v, eps):
    # torch clamps var in place under no_grad (clamp_min_no_grad). A negative var (only reachable
    # under tracing; torch raises) becomes NaN; this select outside the clamp, not inside, keeps
    # XLA:CPU from materialising a var-sized temporary in value+grad.
    return jnp.where(v < 0, jnp.nan, clamp_min_no_grad(v, jnp.asarray(eps, v.dtype)))


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _gaussian_nll(x, t, v, eps):
    """``0.5 (log(vc) + (x - t)^2 / vc)`` with ``vc`` the clamped variance.

    The clamp is invisible to gradients, as torch's in-place clamp under ``no_grad``: the
    derivative is taken at ``vc`` and passed to ``var`` even where ``var < eps``.

    Custom JVP for speed on XLA:CPU: autodiff of the formula through ``clamp_min_no_grad`` gives
    the same gradient (up to rounding), 1.15-1.40x slower in value+grad; the rule reads its inputs
    through ``_xla_cpu.unshared`` (BENCHMARKS.md "gaussian_nll_loss: one custom JVP").
    """
    vc = _clamped_var(v, eps)
    return 0.5 * (jnp.log(vc) + (x - t) ** 2 / vc)


def _gaussian_nll_jvp(eps, primals, tangents):
    x, t, v = primals
    dx, dt, dv = tangents
    xb, tb, vb = unshared(x, t, v)  # see _xla_cpu
    vc = _clamped_var(vb, eps)
    z = (xb - tb) / vc
    gv = 0.5 * (1 / vc - z * z)
    return _gaussian_nll(x, t, v, eps), sum_tangents(x, tangent(z, dx), tangent(-z, dt), tangent(gv, dv))


_gaussian_nll.defjvp(_gaussian_nll_jvp, symbolic_zeros=True)


def _gaussian_var_shape(var, input, fn: str):
    """Torch 2.13's accepted var shapes; returns var shaped to broadcast against input."""
    if var.shape == input.shape:
        return var
    if tuple(input.shape[:-1]) == tuple(var.shape):
        return var[..., None]  # homoscedastic: one fewer dimension
    if input.ndim == var.ndim and sum(v for i, v in zip(input.shape, var.shape, strict=True) if i != v) == 1:
        return var  # one dimension where var is 1 (torch's test: the mismatched sizes of var sum to 1)
    raise ValueError(
        f"{fn}: 'var' is of incorrect size: {tuple(var.shape)} for 'input' of shape "
        f"{tuple(input.shape)}; expected the input's shape, the input's shape without its last "
        "dimension, or the input's shape with one dimension of size 1"
    )


def gaussian_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    var: ArrayLike | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: Reduction = "mean",
) -> jax.Array:
    r"""Gaussian negative log-likelihood, as ``torch.nn.functional.gaussian_nll_loss``.

    $$
    \ell_i = \tfrac12 \left( \log \max(v_i, \varepsilon)
    + \frac{(x_i - y_i)^2}{\max(v_i, \varepsilon)} \right)
    \;[+\ \tfrac12 \log 2\pi \text{ when full}]
    $$

    reduced by ``reduction`` (``'none' | 'mean' | 'sum'``; plain mean over the broadcast shape).

    Args:
      input: means, shape ``(N, *)`` or ``(*)``.
      target: samples; broadcast with ``input`` (unchecked, as in torch).
      var: variances: a Python number, or an array of ``input``'s shape, of ``input``'s shape
        without its last dimension (homoscedastic), or of ``input``'s shape with sizes 1 where
        they differ, their sizes summing to 1 (torch's rule: in practice one dimension of size 1).
        Any other shape raises ``ValueError`` naming ``'var'`` (torch's "var is of incorrect
        size"). A 0-d array is accepted only for a 1-D input (torch's rule too).
      full: add the constant $\tfrac12\log 2\pi$.
      eps: ``var`` is clamped at ``eps``.
      reduction: ``'none' | 'mean' | 'sum'``.

    The clamp is invisible to gradients, as torch's in-place clamp under ``no_grad``: the
    gradient with respect to ``var`` is $\tfrac12 (1/\bar v - (x - y)^2/\bar v^2)$ at the
    clamped $\bar v$, passed to ``var`` even where ``var < eps``.

    Negative variances: with concrete values this raises ``ValueError`` (torch's "var has
    negative entry/entries"); under ``jit``/``vmap`` the loss and gradients at those positions
    are NaN. A Python ``int`` var is accepted as a number (torch 2.13 raises ``TypeError`` for it).

    Returns:
      A scalar, or the broadcast shape for ``'none'``.

    Raises:
      ValueError: an unknown ``reduction``, a ``var`` of a shape torch refuses, or (concrete
        values only) a negative variance.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> mean = jnp.array([[0.0, 1.0], [2.0, 0.5]])
      >>> x = jnp.array([[0.5, 1.0], [1.0, 0.0]])
      >>> var = jnp.array([[1.0], [0.5]])
      >>> F.gaussian_nll_loss(mean, x, var)
      Array(0.1704..., dtype=float32)
      >>> F.gaussian_nll_loss(mean, x, var, full=True)
      Array(1.0894..., dtype=float32)
    """
    fn = "gaussian_nll_loss"
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    if isinstance(var, (int, float)) and not isinstance(var, bool):  # a Python number
        if var < 0:
            raise ValueError(f"{fn}: 'var' has negative entry/entries: {var}")
        _, work = compute_dtype(input.dtype, target.dtype)  # see _composite_note
        v = jnp.full(input.shape, var, work)
    else:
        var = as_array(var, "var", fn)
        if is_concrete(var):
            vn = np.asarray(var)
            if vn.size and np.any(vn.astype(np.float64) < 0):
                raise ValueError(f"{fn}: 'var' has negative entry/entries")
        v = _gaussian_var_shape(var, input, fn)
        _, work = compute_dtype(input.dtype, target.dtype, var.dtype)  # see _composite_note
        v = v.astype(work)
    reduction = resolve_reduction(reduction)
    broadcast_shape(fn, input=input, target=target, var=v)
    x, t, v = jnp.broadcast_arrays(input.astype(work), target.astype(work), v)
    loss = _gaussian_nll(x, t, v, eps)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return apply_reduction(loss, reduction)


# -- classes -----------------------------------------------------------------------------------


class BCELoss(_WeightedLoss):
    """Binary cross-entropy on probabilities; see [`losses_jax.binary_cross_entropy`][losses_jax.binary_cross_entropy].

    ``BCELoss(weight=None, size_average=None, reduce=None, reduction='mean')``; call as
    ``loss(input, target)``. Shapes: input ``(*)`` probabilities, target ``(*)`` the same shape,
    weight broadcasting to it; output scalar, or ``(*)`` for ``'none'``.
    """

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits.

    See [`binary_cross_entropy_with_logits`][losses_jax.binary_cross_entropy_with_logits].

    ``BCEWithLogitsLoss(weight=None, size_average=None, reduce=None, reduction='mean',
    pos_weight=None)``. Shapes: input ``(*)`` logits, target ``(*)`` the same shape, weight and
    pos_weight broadcasting to it (a ``(C,)`` pos_weight aligns with the last dimension); output
    scalar, or ``(*)`` for ``'none'``.
    """

    _arrays = ("weight", "pos_weight")

    def __init__(
        self,
        weight: ArrayLike | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
        pos_weight: ArrayLike | None = None,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.weight = None if weight is None else jnp.asarray(weight)
        self.pos_weight = None if pos_weight is None else jnp.asarray(pos_weight)

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return binary_cross_entropy_with_logits(
            input, target, self.weight, pos_weight=self.pos_weight, reduction=self.reduction
        )


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence; see [`losses_jax.kl_div`][losses_jax.kl_div].

    ``KLDivLoss(size_average=None, reduce=None, reduction='mean', log_target=False)``;
    ``reduction`` also accepts ``'batchmean'``. Shapes: input ``(*)`` log-probabilities, target
    ``(*)`` the same shape; output scalar, or ``(*)`` for ``'none'``. With ``reduction='mean'``
    every call warns, as torch's class does.
    """

    _defaults = {"reduction": "mean", "log_target": False}

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: KLDivReduction = "mean",
        log_target: bool = False,
    ) -> None:
        self.reduction = resolve_reduction(reduction, size_average, reduce, extra=("batchmean",))
        self.log_target = log_target

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class PoissonNLLLoss(_Loss):
    """Poisson negative log-likelihood; see [`losses_jax.poisson_nll_loss`][losses_jax.poisson_nll_loss].

    ``PoissonNLLLoss(log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
    reduction='mean')``. Shapes: input ``(*)``, target ``(*)`` the same shape; output scalar, or
    ``(*)`` for ``'none'``.
    """

    _defaults = {"reduction": "mean", "log_input": True, "full": False, "eps": 1e-8}

    def __init__(
        self,
        log_input: bool = True,
        full: bool = False,
        size_average: bool | None = None,
        eps: float = 1e-8,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input: bool, target: ArrayLike) -> jax.Array:
        return poisson_nll_loss(
            log_input, target, log_input=self.log_input, full=self.full, eps=self.eps, reduction=self.reduction
        )


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood; see [`losses_jax.gaussian_nll_loss`][losses_jax.gaussian_nll_loss].

    ``GaussianNLLLoss(*, full=False, eps=1e-6, reduction='mean')``; call as
    ``loss(input, target, var)``. Shapes: input ``(N, *)`` or ``(*)``; target the same (or
    broadcastable); var the input's shape, without its last dimension, with one dimension of
    size 1, or a number; output scalar, or the broadcast shape for ``'none'``.
    """

    _defaults = {"reduction": "mean", "full": False, "eps": 1e-6}

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: Reduction = "mean") -> None:
        super().__init__(None, None, reduction)
        self.full = full
        self.eps = eps

    def forward(self, input: ArrayLike, target: ArrayLike, var: ArrayLike | float) -> jax.Array:
        return gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps, reduction=self.reduction)
