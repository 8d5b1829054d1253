"""Margin and embedding losses (torch.nn.functional names, arguments and semantics, torch 2.13.0).

``hinge_embedding_loss``, ``margin_ranking_loss``, ``soft_margin_loss``,
``cosine_embedding_loss``, ``multi_margin_loss``, ``multilabel_margin_loss``,
``multilabel_soft_margin_loss``, ``triplet_margin_loss``, ``triplet_margin_with_distance_loss``
and their classes.

Inputs that torch differentiates must be floating point here (torch also accepts integer
``input`` for some of these and returns integer or float results); targets may be any real dtype
where torch accepts them.

Kinks follow torch, which is not uniform across these losses:

* ``max(0, z)`` written as ``clamp_min`` in torch (hinge embedding, margin ranking, cosine
  embedding, triplet) passes the gradient *at* ``z == 0`` and blocks it for NaN;
* the C++ kernels of ``multi_margin_loss`` and ``multilabel_margin_loss`` test ``z > 0``: no
  gradient at ``z == 0``, and a NaN term counts as 0 (in value too: torch skips it);
* ``min(a, b)`` of the triplet ``swap`` splits the gradient evenly at a tie.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._base import _Loss, _WeightedLoss
from ._distance import PairwiseDistance, pairwise_distance
from ._reduction import REDUCTIONS, Reduction, apply_reduction, resolve_reduction
from ._torch_semantics import (
    as_array,
    broadcast_arrays,
    check_floating,
    check_integer,
    check_real,
    compute_dtype,
    is_concrete,
    is_tracer,
    sum_tangents,
    tangent,
)
from ._xla_cpu import unshared

# torch's cosine_embedding_loss adds this to the squared norms; it is the C++ float constant
# 1e-12 (static_cast<float>), i.e. 9.999999960041972e-13 when the computation is in float64.
_COSINE_EPSILON = float(np.float32(1e-12))


# -- torch's kinks -----------------------------------------------------------------------------


def _clamp_min0(z):
    """``torch.clamp_min(z, 0)``, with torch's gradient.

    NaN stays NaN; the gradient is 1 where ``z >= 0`` (the kink included), 0 elsewhere and at NaN.
    """
    kept = jnp.where(z >= 0, z, jnp.zeros_like(z))
    return jnp.where(jnp.isnan(z), jax.lax.stop_gradient(z), kept)


@jax.custom_jvp
def _minimum(a, b):
    """``torch.minimum``, with torch's gradient.

    NaN propagates; the gradient is split in half at a tie, and at NaN it goes to both sides
    (torch's comparisons are all false there). Custom JVP for torch's gradient (``jnp.minimum``'s
    gives both sides 0 at NaN).
    """
    return jnp.minimum(a, b)


@_minimum.defjvp
def _minimum_jvp(primals, tangents):
    a, b = primals
    ta, tb = tangents
    half = jnp.asarray(0.5, a.dtype)
    one, zero = jnp.ones((), a.dtype), jnp.zeros((), a.dtype)
    wa = jnp.where(a == b, half, jnp.where(a > b, zero, one))
    wb = jnp.where(a == b, half, jnp.where(a < b, zero, one))
    return _minimum(a, b), wa * ta + wb * tb


# -- shared checks -------------------------------------------------------------------------------


def _check_margin_positive(margin, fn: str):
    if is_tracer(margin):
        return
    if not float(margin) > 0:
        raise ValueError(f"{fn}: 'margin' must be greater than 0, got {margin}")


def _check_same_ndim(anchor, positive, negative, fn: str):
    a, p, n = anchor.ndim, positive.ndim, negative.ndim
    if not (a == p == n):
        raise ValueError(
            f"{fn}: The 'anchor', 'positive', and 'negative' tensors are expected to have the same "
            f"number of dimensions, but got: anchor {a}D, positive {p}D, and negative {n}D inputs"
        )


def _frames_and_classes(input, fn: str) -> tuple[int, int]:
    """Torch's ``(nframe, dim)`` of a multi-class margin input.

    The input is ``(N, C)``, ``(C)`` or 0-d (one class); more dimensions or no class raise torch's
    message as a ``ValueError``.
    """
    dim = 1 if input.ndim == 0 else input.shape[-1]
    if input.ndim > 2 or dim == 0:
        raise ValueError(
            f"{fn}: Expected non-empty vector or matrix with optional 0-dim batch size for "
            f"'input', but got: {tuple(input.shape)}"
        )
    return (1 if input.ndim <= 1 else input.shape[0]), dim


def _nan_where_invalid(loss, valid):
    return jnp.where(valid, loss, jnp.full_like(loss, jnp.nan))


# -- pointwise margin losses ---------------------------------------------------------------------


def hinge_embedding_loss(
    input: ArrayLike,
    target: ArrayLike,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    r"""Hinge embedding loss, as ``torch.nn.functional.hinge_embedding_loss``.

    $$
    \ell_i = [y_i \ne 1]\,\max(0, \Delta - x_i) + [y_i \ne -1]\,x_i
    $$

    i.e. $x_i$ for $y_i = 1$, $\max(0, \Delta - x_i)$ for $y_i = -1$
    ($\Delta$ = ``margin``); any other target value gets both terms, as in torch.

    Args:
      input: distances (or any values), floating point.
      target: ``1`` or ``-1``, broadcasting with ``input`` (no warning, as torch).
      margin: $\Delta$.
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.

    Returns:
      A scalar, or the broadcast shape for ``'none'``; dtype is ``input``'s.

    Raises:
      ValueError: an unknown ``reduction`` or shapes that do not broadcast.

    The gradient at
    $\Delta - x_i = 0$ is -1 (torch's ``clamp_min``); NaN inputs give NaN values with a
    zero gradient on the clamped branch, as in torch.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> x = jnp.array([0.3, 1.5, 0.2])
      >>> y = jnp.array([1, -1, -1])
      >>> F.hinge_embedding_loss(x, y)
      Array(0.3666..., dtype=float32)
      >>> F.hinge_embedding_loss(x, y, margin=0.5, reduction='none')
      Array([0.3, 0. , 0.3], dtype=float32)
    """
    fn = "hinge_embedding_loss"
    reduction = resolve_reduction(reduction, size_average, reduce)
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    check_floating(input, "input", fn)
    check_real(target, "target", fn, allow_bool=True)
    x, t = broadcast_arrays(fn, input=input, target=target)
    work, out = compute_dtype(input.dtype)
    x = x.astype(work)
    margin_clamp = _clamp_min0(jnp.asarray(margin, work) - x)
    zero = jnp.zeros((), work)
    loss = jnp.where(t != 1, margin_clamp, zero) + jnp.where(t != -1, x, zero)
    return apply_reduction(loss, reduction).astype(out)


def margin_ranking_loss(
    input1: ArrayLike,
    input2: ArrayLike,
    target: ArrayLike,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    r"""Margin ranking loss, as ``torch.nn.functional.margin_ranking_loss``.

    $$
    \ell_i = \max\big(0, -y_i\,(x_{1,i} - x_{2,i}) + \Delta\big)
    $$

    All three inputs must have the same number of dimensions (``ValueError`` otherwise, as
    torch's ``RuntimeError``) and broadcast together. ``target`` is differentiable, as in torch.
    The gradient at the kink (argument exactly 0) passes, as torch's ``clamp_min``.

    Args:
      input1: scores of the first item.
      input2: scores of the second item, of ``input1``'s number of dimensions.
      target: ``1`` where ``input1`` should rank higher, ``-1`` where ``input2`` should.
      margin: $\Delta$.
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.

    Returns:
      A scalar, or the broadcast shape for ``'none'``.

    Raises:
      ValueError: inputs of different numbers of dimensions, shapes that do not broadcast, or
        an unknown ``reduction``.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> x1 = jnp.array([1.0, 0.2, 0.5])
      >>> x2 = jnp.array([0.5, 0.4, 0.5])
      >>> y = jnp.array([1, 1, -1])
      >>> F.margin_ranking_loss(x1, x2, y)
      Array(0.0666..., dtype=float32)
      >>> F.margin_ranking_loss(x1, x2, y, margin=0.5)
      Array(0.4000..., dtype=float32)
    """
    fn = "margin_ranking_loss"
    reduction = resolve_reduction(reduction, size_average, reduce)
    input1 = as_array(input1, "input1", fn)
    input2 = as_array(input2, "input2", fn)
    target = as_array(target, "target", fn)
    if not (input1.ndim == input2.ndim == target.ndim):
        raise ValueError(
            f"{fn}: All input tensors should have same dimension but got sizes: 'input1': "
            f"{tuple(input1.shape)}, 'input2': {tuple(input2.shape)}, 'target': {tuple(target.shape)}"
        )
    check_floating(input1, "input1", fn)
    check_floating(input2, "input2", fn)
    check_real(target, "target", fn)
    a, b, t = broadcast_arrays(fn, input1=input1, input2=input2, target=target)
    work, out = compute_dtype(input1.dtype, input2.dtype, target.dtype)
    a, b, t = a.astype(work), b.astype(work), t.astype(work)
    loss = _clamp_min0(-t * (a - b) + jnp.asarray(margin, work))
    return apply_reduction(loss, reduction).astype(out)


def soft_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    r"""Two-class logistic loss, as ``torch.nn.functional.soft_margin_loss``.

    $$
    \ell_i = \log\big(1 + e^{-y_i x_i}\big)
    $$

    evaluated stably as ``softplus(-y x)``. **Differs from torch deliberately**: torch computes
    ``log1p(exp(-y x))`` literally, which overflows to ``inf`` (with a NaN gradient) once
    ``-y x`` exceeds ~88.7 in float32 / ~709.8 in float64; here the value is the finite
    ``-y x`` and the gradient ``-y``. Everywhere else the numbers agree to rounding.

    Args:
      input: scores, any shape, floating point.
      target: ``1`` or ``-1``; must broadcast to ``input``'s shape (torch writes into an
        input-shaped output, so a target that would enlarge it is a ``ValueError``).
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.

    Returns:
      A scalar, or ``input``'s shape for ``'none'``; dtype is ``input``'s.

    Raises:
      ValueError: an unknown ``reduction`` or a ``target`` that does not broadcast to ``input``.

    ``target`` is not
    differentiable in torch; here its gradient is simply the math. Output dtype is ``input``'s.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> x = jnp.array([2.0, -0.5, 0.1])
      >>> y = jnp.array([1, -1, -1])
      >>> F.soft_margin_loss(x, y)
      Array(0.4484..., dtype=float32)
      >>> F.soft_margin_loss(x, y, reduction='sum')
      Array(1.3454..., dtype=float32)
    """
    fn = "soft_margin_loss"
    reduction = resolve_reduction(reduction, size_average, reduce)
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    check_floating(input, "input", fn)
    check_real(target, "target", fn, allow_bool=True)
    try:
        shape = jnp.broadcast_shapes(input.shape, target.shape)
    except ValueError:
        shape = None
    if shape != tuple(input.shape):
        raise ValueError(
            f"{fn}: 'target' of shape {tuple(target.shape)} must broadcast to the shape of 'input' {tuple(input.shape)}"
        )
    work, out = compute_dtype(input.dtype)
    x = input.astype(work)
    t = jnp.broadcast_to(target, shape).astype(work)
    loss = jax.nn.softplus(-x * t)
    return apply_reduction(loss, reduction).astype(out)


def cosine_embedding_loss(
    input1: ArrayLike,
    input2: ArrayLike,
    target: ArrayLike,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    r"""Cosine embedding loss, as ``torch.nn.functional.cosine_embedding_loss``.

    $$
    \cos_i = \frac{\sum_d x_{1,id} x_{2,id}}
    {\sqrt{(\sum_d x_{1,id}^2 + \epsilon)(\sum_d x_{2,id}^2 + \epsilon)}},
    \qquad
    \ell_i = \begin{cases} 1 - \cos_i & y_i = 1 \\ \max(0, \cos_i - \Delta) & y_i = -1
    \\ 0 & \text{otherwise} \end{cases}
    $$

    with torch's $\epsilon$ = ``float32(1e-12)`` added to each squared norm (so zero
    vectors give $\cos = 0$ and finite gradients, exactly as torch).

    Args:
      input1: ``(N, D)`` or unbatched ``(D)``.
      input2: as ``input1``, broadcasting with it.
      target: ``(N)`` (a 0-d target for unbatched inputs), ``1`` for similar pairs and ``-1``
        for dissimilar ones.
      margin: $\Delta$, for the dissimilar pairs.
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.

    Returns:
      A scalar, or ``(N)`` / ``()`` for ``'none'``.

    Raises:
      ValueError: shapes torch refuses or an unknown ``reduction``.

    ``target`` is not differentiated (its only use is ``== 1`` / ``== -1``).

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> x1 = jnp.array([[1.0, 0.0], [1.0, 1.0]])
      >>> x2 = jnp.array([[1.0, 1.0], [1.0, 1.0]])
      >>> y = jnp.array([1, -1])
      >>> F.cosine_embedding_loss(x1, x2, y)
      Array(0.6464..., dtype=float32)
      >>> F.cosine_embedding_loss(x1, x2, y, margin=0.5, reduction='none').round(4)
      Array([0.2929, 0.5   ], dtype=float32)
    """
    fn = "cosine_embedding_loss"
    reduction = resolve_reduction(reduction, size_average, reduce)
    input1 = as_array(input1, "input1", fn)
    input2 = as_array(input2, "input2", fn)
    target = as_array(target, "target", fn)
    if target.ndim not in (0, 1):
        raise ValueError(
            f"{fn}: 0D or 1D 'target' tensor expected, multi-target not supported; got shape {tuple(target.shape)}"
        )
    want = 2 if target.ndim == 1 else 1
    if input1.ndim != want or input2.ndim != want:
        raise ValueError(
            f"{fn}: {target.ndim}D 'target' tensor expects {want}D input tensors, but found inputs "
            f"with sizes 'input1': {tuple(input1.shape)} and 'input2': {tuple(input2.shape)}."
        )
    check_floating(input1, "input1", fn)
    check_floating(input2, "input2", fn)
    check_real(target, "target", fn, allow_bool=True)
    broadcast_arrays(fn, input1=input1, input2=input2)
    work, out = compute_dtype(input1.dtype, input2.dtype)
    a, b = input1.astype(work), input2.astype(work)
    axis = target.ndim
    eps = jnp.asarray(_COSINE_EPSILON, work)
    prod_sum = jnp.sum(a * b, axis=axis)
    mag1 = jnp.sum(a * a, axis=axis) + eps
    mag2 = jnp.sum(b * b, axis=axis) + eps
    cos = prod_sum / jnp.sqrt(mag1 * mag2)
    cos, t = broadcast_arrays(fn, cosine=cos, target=target)
    zero = jnp.zeros((), work)
    loss = jnp.where(t == 1, 1 - cos, zero) + jnp.where(t == -1, _clamp_min0(cos - jnp.asarray(margin, work)), zero)
    return apply_reduction(loss, reduction).astype(out)


# -- multi-class / multi-label margin losses -----------------------------------------------------


def _check_p(p, fn: str):
    if not (p == 1 or p == 2):
        raise ValueError(f"{fn}: only p == 1 and p == 2 supported, got 'p' = {p!r}")


def multi_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    p: float = 1,
    margin: float = 1.0,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    r"""Multi-class hinge loss, as ``torch.nn.functional.multi_margin_loss``.

    $$
    \ell_n = \frac{1}{C} \sum_{c \ne y_n} w_{y_n} \max(0, \Delta - x_{n,y_n} + x_{n,c})^p,
    \qquad p \in \{1, 2\}
    $$

    Args:
      input: scores, ``(N, C)``, ``(C)`` or a 0-d scalar (one class).
      target: class indices, ``(N)`` (``()`` or ``(1)`` for an unbatched input).
      p: 1 or 2, the hinge's power.
      margin: $\Delta$.
      weight: optional rescaling weight per class, ``(C)``.
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.

    Returns:
      A scalar, or ``(N)`` (the target's shape for an unbatched input) for ``'none'``.

    Raises:
      ValueError: a ``p`` other than 1 or 2, shapes that do not fit, an unknown ``reduction``,
        or (concrete values only) a target outside ``[0, C)``.

    ``'mean'`` averages over samples (not a weighted mean).

    As torch's kernel, a term counts only where its hinge argument is ``> 0``: no gradient at
    exactly 0, and a NaN term is skipped (value 0), so NaN inputs do not propagate.
    An empty batch gives ``'sum'`` 0 and ``'mean'`` NaN (torch 2.13 returns uninitialised memory).

    Target values outside ``[0, C)`` raise ``ValueError`` when concrete (torch: ``RuntimeError:
    target out of range``); under ``jit`` that sample's loss is NaN. ``weight`` is not
    differentiable in torch; here its gradient is simply the math.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> x = jnp.array([[0.1, 0.2, 0.4, 0.8]])
      >>> y = jnp.array([3])
      >>> F.multi_margin_loss(x, y)
      Array(0.325, dtype=float32)
      >>> F.multi_margin_loss(x, y, p=2, margin=0.5)
      Array(0.0025, dtype=float32)
    """
    fn = "multi_margin_loss"
    reduction = resolve_reduction(reduction, size_average, reduce)
    _check_p(p, fn)
    if weight is not None:
        weight = as_array(weight, "weight", fn)
        if weight.ndim != 1:
            raise ValueError(f"{fn}: 'weight' must be one-dimensional, got shape {tuple(weight.shape)}")
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    check_floating(input, "input", fn)
    check_integer(target, "target", fn)
    nd = input.ndim
    nframe, dim = _frames_and_classes(input, fn)
    if target.ndim > 1 or target.size != nframe:
        raise ValueError(
            f"{fn}: 'target' should be 1-D with size equal to the number of input samples (batch "
            f"size). Expected target size ({nframe},), but got {tuple(target.shape)}. Input has "
            f"shape {tuple(input.shape)}."
        )
    if weight is not None and weight.size != dim:
        raise ValueError(f"{fn}: inconsistent 'weight' size, expected {dim} but got {tuple(weight.shape)}")
    if is_concrete(target) and target.size:
        tv = np.asarray(target)
        if tv.min() < 0 or tv.max() >= dim:
            raise ValueError(f"{fn}: 'target' out of range: values must be in [0, {dim}), got {tv.tolist()}")

    dtypes = (input.dtype,) if weight is None else (input.dtype, weight.dtype)
    work, out = compute_dtype(*dtypes)
    x = input.astype(work).reshape(nframe, dim)
    t = target.reshape(nframe)
    valid = (t >= 0) & (t < dim)
    ts = jnp.where(valid, t, 0)
    u = jnp.take_along_axis(x, ts[:, None], axis=1)
    z = (jnp.asarray(margin, work) - u) + x
    keep = (jnp.arange(dim)[None, :] != ts[:, None]) & (z > 0)
    z = jnp.where(keep, z, jnp.zeros((), work))  # before squaring: no NaN * 0 in the gradient
    terms = z if p == 1 else z * z
    if weight is not None:
        terms = terms * weight.astype(work)[ts][:, None]
    loss = _nan_where_invalid(jnp.sum(terms, axis=1) / dim, valid)
    if reduction == "none":
        return (loss.reshape(target.shape) if nd <= 1 else loss).astype(out)
    return apply_reduction(loss, reduction).astype(out)


def _multilabel_hinge_pass(x, others, ts, listed):
    """Per row, the multi-label hinge sum and its derivative in ``x``.

    The sum is ``sum_j sum_c [z > 0] z`` with ``z = (1 - x[ts_j]) + others_c`` over the listed
    targets ``j``; the derivative counts the counted terms. One ``O(N C)`` step
    per target column, for as many columns as the longest list has (a while loop).
    """
    n, dim = x.shape
    rows = jnp.arange(n)
    zero = jnp.zeros((), x.dtype)

    def body(j, carry):
        total, grad = carry
        tj = ts[:, j]
        z = (1 - x[rows, tj])[:, None] + others
        keep = listed[:, j][:, None] & (z > 0)
        total = total + jnp.sum(jnp.where(keep, z, zero), axis=1)
        counted = keep.astype(x.dtype)
        grad = (grad + counted).at[rows, tj].add(-jnp.sum(counted, axis=1))
        return total, grad

    steps = jnp.max(jnp.sum(listed, axis=1, dtype=jnp.int32), initial=0)
    return jax.lax.fori_loop(0, steps, body, (jnp.zeros((n,), x.dtype), jnp.zeros_like(x)))


@jax.custom_jvp
def _multilabel_hinge_sums(x, others, ts, listed):
    """Per row ``sum_j sum_c [z > 0] z`` (see `_multilabel_hinge_pass`), with its derivative.

    The derivative is what that loop collects: torch's kernel counts a term only where ``z > 0``, and the counts are
    known only after the loop. The rule is linear in ``x``'s tangent, so forward and reverse mode
    both work.

    Custom JVP for speed and memory: the loop over target columns (torch's kernel) replaces an
    N x C x C comparison (on XLA:CPU 7.8x torch's time -> 0.3-0.45, BENCHMARKS.md
    "multilabel_margin_loss"), and its trip count is data-dependent (a ``while_loop``, which
    reverse mode cannot differentiate), so the derivative is stated: the counts the loop
    collects, torch's gradient.
    """
    return _multilabel_hinge_pass(x, others, ts, listed)[0]


@_multilabel_hinge_sums.defjvp
def _multilabel_hinge_sums_jvp(primals, tangents):
    x, others, ts, listed = primals
    tx = tangents[0]
    # ``others`` is ``x`` with targets and NaNs masked; the counts already hold the derivative
    # through both of ``x``'s roles, so ``others``' tangent is not used.
    total, counts = _multilabel_hinge_pass(x, others, ts, listed)
    return total, jnp.sum(counts * tx, axis=1)


@jax.jit
def _multilabel_margin_rows(x, t):
    """Per-row loss of ``multilabel_margin_loss`` for ``(N, C)`` input and target.

    NaN for a row with an out-of-range target. Jitted as a whole so that eager calls compile the loop once per
    shape instead of dispatching its pieces one by one.
    """
    n, dim = x.shape
    valid = jnp.all((t >= -1) & (t < dim), axis=1)
    listed = jnp.cumprod((t >= 0).astype(jnp.int32), axis=1).astype(bool)  # before the first -1
    ts = jnp.where(listed, t, 0)
    is_target = jnp.zeros((n, dim), bool).at[jnp.arange(n)[:, None], ts].max(listed)
    # Targets and NaNs (whose terms torch skips) become -inf, which no hinge term counts.
    others = jnp.where(is_target | jnp.isnan(x), -jnp.inf, x)
    return _nan_where_invalid(_multilabel_hinge_sums(x, others, ts, listed) / dim, valid)


def multilabel_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    r"""Multi-label hinge loss, as ``torch.nn.functional.multilabel_margin_loss``.

    $$
    \ell_n = \frac{1}{C} \sum_{j \in J_n} \sum_{c \notin J_n} \max(0, 1 - x_{n,j} + x_{n,c})
    $$

    where $J_n$ is the list of target indices of row ``n``: ``target[n]`` read up to
    (excluding) its first ``-1``; later entries are ignored. A class listed twice counts twice,
    as in torch.

    Args:
      input: scores, ``(N, C)``, ``(C)`` or 0-d.
      target: of ``input``'s shape, integer, values in ``[-1, C)`` (all entries are checked,
        after the first ``-1`` too, as torch).
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.

    Returns:
      A scalar, or ``(N)`` / ``()`` for ``'none'``.

    Raises:
      ValueError: shapes that differ, an unknown ``reduction``, or (concrete values only) a
        target outside ``[-1, C)``.

    Out-of-range values raise ``ValueError`` when concrete; under
    ``jit`` that row's loss is NaN. As torch's kernel, terms count only where the hinge argument
    is ``> 0`` (no gradient at 0; NaN terms are skipped). Empty batch: ``'sum'`` 0, ``'mean'``
    NaN (torch 2.13 returns uninitialised memory).

    Cost: like torch's kernel, one pass over the row per listed target: a loop of ``J`` steps
    of ``O(N C)`` each, where ``J`` is the largest number of listed targets in any row (not
    ``C``), so memory stays ``O(N C)``. Every hinge term is formed as torch forms it,
    ``(1 - x_j) + x_c``; the per-element counts of the counted terms, collected in the same
    loop, are the gradient (a custom JVP, linear in the tangent: forward and reverse mode).

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> x = jnp.array([[0.1, 0.2, 0.4, 0.8]])
      >>> y = jnp.array([[3, 0, -1, 1]])    # classes 3 and 0; -1 ends the list
      >>> F.multilabel_margin_loss(x, y)
      Array(0.85, dtype=float32)
    """
    fn = "multilabel_margin_loss"
    reduction = resolve_reduction(reduction, size_average, reduce)
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    check_floating(input, "input", fn)
    check_integer(target, "target", fn)
    nd = input.ndim
    nframe, dim = _frames_and_classes(input, fn)
    if target.shape != input.shape:
        raise ValueError(
            f"{fn}: inconsistent 'target' size: {tuple(target.shape)} for 'input' of size: {tuple(input.shape)}"
        )
    if is_concrete(target) and target.size:
        tv = np.asarray(target)
        if tv.min() < -1 or tv.max() >= dim:
            raise ValueError(f"{fn}: 'target' is out of range: values must be in [-1, {dim}), got {tv.tolist()}")

    work, out = compute_dtype(input.dtype)
    x = input.astype(work).reshape(nframe, dim)
    t = target.reshape(nframe, dim)
    loss = _multilabel_margin_rows(x, t)
    if reduction == "none":
        return (loss.reshape(()) if nd <= 1 else loss).astype(out)
    return apply_reduction(loss, reduction).astype(out)


@jax.custom_jvp
def _soft_margin_terms(x, t):
    """``-(t log_sigmoid(x) + (1 - t) log_sigmoid(-x))``, torch's expression.

    log_sigmoid is computed as torch's CPU kernel computes it, ``min(x, 0) - log1p(exp(-|x|))``; the log1p
    term is the same for ``x`` and ``-x`` and computed once (one exp and one log1p per element, where two
    ``jax.nn.log_sigmoid`` calls cost two of each and several selects).

    The JVP is torch's: ``-(t sigmoid(-x) - (1 - t) sigmoid(x))`` in ``x`` and
    ``-(log_sigmoid(x) - log_sigmoid(-x)) = -x`` in ``t`` (exactly: the log1p terms cancel). The
    rule reads ``x`` and ``t`` through [`unshared`][losses_jax._xla_cpu.unshared] (on CPU, XLA then does
    not materialise intermediates shared by the forward's reduction and the gradient).

    Custom JVP for torch's gradient (its formulas, where autodiff of the shared ``|x|`` would pick
    a subgradient at ``x == 0``) and for speed on XLA:CPU: 0.3 of torch's time, was 0.64-1.07
    (BENCHMARKS.md "multilabel_soft_margin_loss").
    """
    e = jnp.log1p(jnp.exp(-jnp.abs(x)))
    return -(t * (jnp.minimum(x, 0) - e) + (1 - t) * (jnp.minimum(-x, 0) - e))


def _soft_margin_terms_jvp(primals, tangents):
    x, t = primals
    tx, tt = tangents
    xb, tb = unshared(x, t)
    grad_x = -(tb * jax.nn.sigmoid(-xb) - (1 - tb) * jax.nn.sigmoid(xb))
    return _soft_margin_terms(x, t), sum_tangents(x, tangent(grad_x, tx), tangent(-xb, tt))


_soft_margin_terms.defjvp(_soft_margin_terms_jvp, symbolic_zeros=True)


def multilabel_soft_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    r"""Multi-label one-versus-all logistic loss, as ``F.multilabel_soft_margin_loss``.

    $$
    \ell_n = -\frac{1}{C} \sum_c w_c \big(y_{n,c} \log\sigma(x_{n,c})
    + (1 - y_{n,c}) \log\sigma(-x_{n,c})\big)
    $$

    with stable ``log_sigmoid`` (as torch). ``C`` is the size of ``input``'s last dimension and
    the sum runs over axis ``input.ndim - 1`` of the broadcast of ``input``, ``target`` and
    ``weight`` -- torch's exact (broadcasting) rule. Shapes: input ``(N, C)`` or ``(C)``
    (any rank >= 1); output ``(N)`` or ``()`` for ``'none'``. ``target`` and ``weight`` are
    differentiable, as in torch.

    Args:
      input: scores, ``(N, C)`` or ``(C)`` (any rank >= 1).
      target: ``1`` or ``0`` per class, broadcasting with ``input``.
      weight: optional rescaling weight per class, broadcasting with ``input``.
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.

    Returns:
      A scalar, or ``(N)`` / ``()`` for ``'none'``.

    Raises:
      ValueError: shapes that do not broadcast or an unknown ``reduction``.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> x = jnp.array([[0.1, 0.2, 0.4, 0.8]])
      >>> y = jnp.array([[1.0, 0.0, 0.0, 1.0]])
      >>> F.multilabel_soft_margin_loss(x, y)
      Array(0.6816..., dtype=float32)
      >>> F.multilabel_soft_margin_loss(x, y, weight=jnp.array([1.0, 1.0, 2.0, 2.0]))
      Array(1.0026..., dtype=float32)
    """
    fn = "multilabel_soft_margin_loss"
    reduction = resolve_reduction(reduction, size_average, reduce)
    input = as_array(input, "input", fn)
    target = as_array(target, "target", fn)
    check_floating(input, "input", fn)
    check_real(target, "target", fn)
    if input.ndim == 0:
        raise ValueError(f"{fn}: 'input' must have at least 1 dimension (the class dimension), got a scalar")
    arrays = {"input": input, "target": target}
    if weight is not None:
        weight = as_array(weight, "weight", fn)
        check_real(weight, "weight", fn)
        arrays["weight"] = weight
    bcast = broadcast_arrays(fn, **arrays)
    work, out = compute_dtype(*(a.dtype for a in arrays.values()))
    x, t = bcast[0].astype(work), bcast[1].astype(work)
    loss = _soft_margin_terms(x, t)
    if weight is not None:
        loss = loss * bcast[2].astype(work)
    loss = jnp.sum(loss, axis=input.ndim - 1) / input.shape[-1]
    return apply_reduction(loss, reduction).astype(out)


# -- triplet losses ------------------------------------------------------------------------------


def triplet_margin_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    r"""Triplet margin loss, as ``torch.nn.functional.triplet_margin_loss``.

    $$
    \ell_i = \max\big(0, \Delta + d(a_i, p_i) - d(a_i, n_i)\big), \qquad
    d(x, y) = \lVert x - y + \epsilon \rVert_p
    $$

    ([`pairwise_distance`][losses_jax.pairwise_distance]). With ``swap=True`` the negative distance is
    $\min(d(a_i, n_i), d(p_i, n_i))$ (gradient split in half at a tie, as torch).

    Args:
      anchor: ``(N, D)`` or ``(D)``.
      positive: as ``anchor``, of its rank, broadcastable.
      negative: as ``anchor``, of its rank, broadcastable.
      margin: $\Delta$, > 0.
      p: the norm's degree.
      eps: added to the differences, as [`pairwise_distance`][losses_jax.pairwise_distance].
      swap: use the smaller of the two negative distances.
      size_average: deprecated torch flag; when given, it overrides ``reduction`` and warns,
        exactly as torch maps it.
      reduce: deprecated torch flag, as ``size_average``.
      reduction: ``'none' | 'mean' | 'sum'``.

    Returns:
      A scalar, or ``(N)`` / ``()`` for ``'none'``.

    Raises:
      ValueError: a ``margin`` that is not > 0, inputs of different ranks or shapes that do not
        broadcast, or an unknown ``reduction``.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> anchor = jnp.array([[0.0, 0.0], [1.0, 1.0]])
      >>> positive = jnp.array([[0.0, 1.0], [1.0, 1.5]])
      >>> negative = jnp.array([[0.0, 1.5], [3.0, 1.0]])
      >>> F.triplet_margin_loss(anchor, positive, negative)
      Array(0.25, dtype=float32)
      >>> F.triplet_margin_loss(anchor, positive, negative, p=1, swap=True, reduction='none')
      Array([1.5, 0. ], dtype=float32)
    """
    fn = "triplet_margin_loss"
    reduction = resolve_reduction(reduction, size_average, reduce)
    _check_margin_positive(margin, fn)
    return _triplet(
        anchor,
        positive,
        negative,
        lambda x, y: pairwise_distance(x, y, p, eps),
        margin,
        swap,
        reduction,
        fn,
        check_broadcast=True,
    )


def _triplet(anchor, positive, negative, distance, margin, swap, reduction, fn, check_broadcast):
    anchor = as_array(anchor, "anchor", fn)
    positive = as_array(positive, "positive", fn)
    negative = as_array(negative, "negative", fn)
    _check_same_ndim(anchor, positive, negative, fn)
    if check_broadcast:  # the default distance broadcasts the two inputs of each pair it sees
        broadcast_arrays(fn, anchor=anchor, positive=positive)
        broadcast_arrays(fn, anchor=anchor, negative=negative)
        if swap:
            broadcast_arrays(fn, positive=positive, negative=negative)
    dist_pos = jnp.asarray(distance(anchor, positive))
    dist_neg = jnp.asarray(distance(anchor, negative))
    if swap:
        dist_swap = jnp.asarray(distance(positive, negative))
        dist_neg, dist_swap = jnp.broadcast_arrays(dist_neg, dist_swap)
        dtype = jnp.result_type(dist_neg, dist_swap)
        dist_neg = _minimum(dist_neg.astype(dtype), dist_swap.astype(dtype))
    loss = _clamp_min0(margin + dist_pos - dist_neg)
    return apply_reduction(loss, reduction)


def triplet_margin_with_distance_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    *,
    distance_function: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: Reduction = "mean",
) -> jax.Array:
    r"""Triplet margin loss with any distance, as ``F.triplet_margin_with_distance_loss``.

    $$
    \ell_i = \max\big(0, \Delta + d(a_i, p_i) - d(a_i, n_i)\big)
    $$

    ``distance_function`` is any JAX-traceable callable ``(x, y) -> distances`` (default:
    [`pairwise_distance`][losses_jax.pairwise_distance] with its defaults, as torch). ``swap`` uses
    $\min(d(a, n), d(p, n))$. Keyword-only options, as torch; ``reduction`` must be one of
    ``'none' | 'mean' | 'sum'`` (no legacy aliases here, as torch); ``margin`` > 0.

    Args:
      anchor: ``(N, D)`` or ``(D)``.
      positive: as ``anchor``.
      negative: as ``anchor``.
      distance_function: ``(x, y) -> distances``; ``None`` is
        [`pairwise_distance`][losses_jax.pairwise_distance].
      margin: $\Delta$, > 0.
      swap: use the smaller of the two negative distances.
      reduction: ``'none' | 'mean' | 'sum'``.

    Returns:
      A scalar, or ``(N)`` / ``()`` for ``'none'``.

    Raises:
      ValueError: a ``margin`` that is not > 0 or an unknown ``reduction``.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> anchor = jnp.array([[0.0, 0.0], [1.0, 1.0]])
      >>> positive = jnp.array([[0.0, 1.0], [1.0, 1.5]])
      >>> negative = jnp.array([[0.0, 1.5], [3.0, 1.0]])
      >>> F.triplet_margin_with_distance_loss(anchor, positive, negative)
      Array(0.25, dtype=float32)
      >>> cosine_distance = lambda a, b: 1 - F.cosine_similarity(a, b)
      >>> F.triplet_margin_with_distance_loss(anchor, positive, negative, distance_function=cosine_distance)
      Array(0.9569..., dtype=float32)
    """
    fn = "triplet_margin_with_distance_loss"
    if not (isinstance(reduction, str) and reduction in REDUCTIONS):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    _check_margin_positive(margin, fn)
    default = distance_function is None
    if default:
        distance_function = pairwise_distance
    elif not callable(distance_function):
        raise TypeError(f"{fn}: 'distance_function' must be callable, got {type(distance_function).__name__}")
    return _triplet(anchor, positive, negative, distance_function, margin, swap, reduction, fn, check_broadcast=default)


# -- classes -------------------------------------------------------------------------------------


class HingeEmbeddingLoss(_Loss):
    """Hinge embedding loss; see [`losses_jax.hinge_embedding_loss`][losses_jax.hinge_embedding_loss].

    ``HingeEmbeddingLoss(margin=1.0, size_average=None, reduce=None, reduction='mean')``.
    Shapes: input ``(*)``, target ``(*)`` of +-1; output scalar or ``(*)`` for ``'none'``.
    """

    _defaults = {"reduction": "mean", "margin": 1.0}

    def __init__(
        self,
        margin: float = 1.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class MarginRankingLoss(_Loss):
    """Margin ranking loss; see [`losses_jax.margin_ranking_loss`][losses_jax.margin_ranking_loss].

    ``MarginRankingLoss(margin=0.0, size_average=None, reduce=None, reduction='mean')``; call as
    ``loss(input1, input2, target)``. Shapes: ``(N)`` or ``()``; output scalar or ``(N)``.
    """

    _defaults = {"reduction": "mean", "margin": 0.0}

    def __init__(
        self,
        margin: float = 0.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: ArrayLike, input2: ArrayLike, target: ArrayLike) -> jax.Array:
        return margin_ranking_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """Two-class logistic loss; see [`losses_jax.soft_margin_loss`][losses_jax.soft_margin_loss].

    ``SoftMarginLoss(size_average=None, reduce=None, reduction='mean')``.
    Shapes: input ``(*)``, target ``(*)``; output scalar or ``(*)`` for ``'none'``.
    """

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return soft_margin_loss(input, target, reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    """Cosine embedding loss; see [`losses_jax.cosine_embedding_loss`][losses_jax.cosine_embedding_loss].

    ``CosineEmbeddingLoss(margin=0.0, size_average=None, reduce=None, reduction='mean')``; call as
    ``loss(input1, input2, target)``. Shapes: ``(N, D)``/``(D)`` inputs, ``(N)``/``()`` target.
    """

    _defaults = {"reduction": "mean", "margin": 0.0}

    def __init__(
        self,
        margin: float = 0.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: ArrayLike, input2: ArrayLike, target: ArrayLike) -> jax.Array:
        return cosine_embedding_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    """Multi-class hinge loss; see [`losses_jax.multi_margin_loss`][losses_jax.multi_margin_loss].

    ``MultiMarginLoss(p=1, margin=1.0, weight=None, size_average=None, reduce=None,
    reduction='mean')``; ``p`` and ``weight``'s rank are checked when built, as torch.
    Shapes: input ``(N, C)`` or ``(C)``, target ``(N)`` or ``()``; output scalar, ``(N)`` for
    ``'none'``.
    """

    _defaults = {"reduction": "mean", "p": 1, "margin": 1.0}

    def __init__(
        self,
        p: float = 1,
        margin: float = 1.0,
        weight: ArrayLike | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        _check_p(p, "MultiMarginLoss")
        if self.weight is not None and self.weight.ndim != 1:
            raise ValueError(
                f"MultiMarginLoss: expected 'weight' to be None or 1D tensor, got {self.weight.ndim}D instead"
            )
        self.p = p
        self.margin = margin

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return multi_margin_loss(
            input, target, p=self.p, margin=self.margin, weight=self.weight, reduction=self.reduction
        )


class MultiLabelMarginLoss(_Loss):
    """Multi-label hinge loss; see [`losses_jax.multilabel_margin_loss`][losses_jax.multilabel_margin_loss].

    ``MultiLabelMarginLoss(size_average=None, reduce=None, reduction='mean')``.
    Shapes: input ``(N, C)`` or ``(C)``; target of the same shape, indices padded with -1;
    output scalar or ``(N)`` for ``'none'``.
    """

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return multilabel_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """Multi-label logistic loss; see [`multilabel_soft_margin_loss`][losses_jax.multilabel_soft_margin_loss].

    ``MultiLabelSoftMarginLoss(weight=None, size_average=None, reduce=None, reduction='mean')``.
    Shapes: input ``(N, C)``, target ``(N, C)``, weight ``(C)``; output scalar or ``(N)``.
    """

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        return multilabel_soft_margin_loss(input, target, weight=self.weight, reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """Triplet margin loss; see [`losses_jax.triplet_margin_loss`][losses_jax.triplet_margin_loss].

    ``TripletMarginLoss(margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None, reduce=None,
    reduction='mean')``; ``margin > 0`` is checked when built. Call as
    ``loss(anchor, positive, negative)``; shapes ``(N, D)`` or ``(D)``; output scalar or ``(N)``.
    """

    _defaults = {"reduction": "mean", "margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False}

    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        if not margin > 0:
            raise ValueError(f"TripletMarginLoss: expected 'margin' to be greater than 0, got {margin} instead")
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def forward(self, anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike) -> jax.Array:
        return triplet_margin_loss(
            anchor,
            positive,
            negative,
            margin=self.margin,
            p=self.p,
            eps=self.eps,
            swap=self.swap,
            reduction=self.reduction,
        )


class TripletMarginWithDistanceLoss(_Loss):
    """Triplet margin loss with a custom distance.

    See [`triplet_margin_with_distance_loss`][losses_jax.triplet_margin_with_distance_loss].

    ``TripletMarginWithDistanceLoss(*, distance_function=None, margin=1.0, swap=False,
    reduction='mean')``; the default distance is ``PairwiseDistance()``, as torch. The
    ``distance_function`` is static pytree data: pass a hashable callable (a function, or a
    ``PairwiseDistance`` / ``CosineSimilarity``-based callable) when the object crosses ``jit``.
    """

    _defaults = {"reduction": "mean", "margin": 1.0, "swap": False}

    def __init__(
        self,
        *,
        distance_function: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
        margin: float = 1.0,
        swap: bool = False,
        reduction: Reduction = "mean",
    ) -> None:
        if not (isinstance(reduction, str) and reduction in REDUCTIONS):
            raise ValueError(f"{reduction} is not a valid value for reduction")
        super().__init__(None, None, reduction)
        if not margin > 0:
            raise ValueError(
                f"TripletMarginWithDistanceLoss: expected 'margin' to be greater than 0, got {margin} instead"
            )
        self.distance_function = distance_function if distance_function is not None else PairwiseDistance()
        self.margin = margin
        self.swap = swap

    def forward(self, anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike) -> jax.Array:
        return triplet_margin_with_distance_loss(
            anchor,
            positive,
            negative,
            distance_function=self.distance_function,
            margin=self.margin,
            swap=self.swap,
            reduction=self.reduction,
        )
