"""``linear_cross_entropy``: cross-entropy of ``input @ linear_weight.T + linear_bias`` (torch 2.13).

Two paths, chosen by ``options`` exactly as in torch:

* ``options=None`` (the default): the reference path, ``cross_entropy(linear(input, W, b), ...)``.
  It materialises the ``(N, C, d1, ..., dK)`` logits and supports every JAX transformation
  (``jvp``, ``hessian``, gradients with respect to ``weight``).
* ``options=LinearCrossEntropyOptions(...)``: the chunked path. Rows of ``input`` are processed
  ``batch_chunk_size`` at a time inside ``lax.scan``; neither the value nor the gradient ever holds
  more than one ``(batch_chunk_size, C * d1 * ... * dK)`` block of logits. It is a
  ``jax.custom_vjp``: for ``'mean'``/``'sum'`` the forward pass also computes the gradients
  (three matmuls in all, as torch's chunked op does), for ``'none'`` the backward pass recomputes
  each block's logits (four matmuls). Unlike torch's chunked op it also handles label smoothing,
  class-probability targets and K-dimensional ``linear_weight`` (torch falls back to the
  reference path for those, with a warning; we do not warn).

The per-position formulas are those of [`losses_jax._classification`][losses_jax._classification] (the same max shift,
``ignore_index`` handling, NaN for out-of-range targets under tracing, torch's ``'mean'``
normalisers), so both paths give ``cross_entropy``'s numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from ._base import _WeightedLoss
from ._classification import cross_entropy
from ._reduction import Reduction, resolve_reduction, smoothed_parts
from ._torch_semantics import (
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
    linear,
)

_FN = "linear_cross_entropy"

# Logits block budget of the "auto" chunking method (bytes of one (chunk, C*d1*...*dK) block).
_AUTO_BLOCK_BYTES = 16 * 2**20
_ACC_POLICIES = ("auto", "accurate", "balanced", "compact")


@dataclasses.dataclass(frozen=True)
class LinearCrossEntropyOptions:
    """Opt-in to the chunked path of [`linear_cross_entropy`][losses_jax.linear_cross_entropy].

    torch's class, with the same fields.

    The chunked path processes the rows of ``input`` ``batch_chunk_size`` at a time, so the full
    ``(N, C)`` logits are never materialised, in the value or in the gradient.

    Fields (validated as torch validates them):

    * ``batch_chunk_size`` (``int > 0`` or ``None``): rows per chunk. ``None`` and
      ``chunking_method=None`` mean a single chunk. A chunk size that does not divide ``N`` is
      fine (the last chunk is padded; padding never reaches the value or the gradients).
    * ``chunking_method`` (``'auto'`` | ``'aspect_ratio'`` | ``'aspect_ratio:K'`` | ``None``):
      picks ``batch_chunk_size`` from the shapes. ``'aspect_ratio[:K]'`` is torch's formula
      (a block the size of ``input``, divided by ``K``). ``'auto'`` is ours: the largest power of
      two whose logits block fits 16 MiB (torch's ``'auto'`` picks ``'aspect_ratio:2'``, whose
      blocks of a few rows are too small for an efficient XLA matmul). An explicit
      ``batch_chunk_size`` overrides ``'auto'``; with any other method it must agree
      (``ValueError`` otherwise), as in torch.
    * ``acc_policy``, ``acc_dtype``, ``allow_retain_graph``: accepted and validated for source
      compatibility, without effect. We always accumulate half-precision inputs in float32
      (torch's CPU choice, ``'accurate'``), and JAX gradients can be taken any number of times.
    """

    allow_retain_graph: bool = False
    batch_chunk_size: int | None = None
    chunking_method: str | None = "auto"
    acc_policy: str = "auto"
    acc_dtype: Any = None

    def __post_init__(self):
        if self.acc_policy not in _ACC_POLICIES:
            raise ValueError(f"invalid acc_policy: {self.acc_policy!r}")
        if self.chunking_method is not None and self.chunking_method != "auto":
            name, sep, factor = str(self.chunking_method).partition(":")
            if not sep:
                factor = "1"
            if not (name == "aspect_ratio" and factor.isdigit() and int(factor) > 0):
                raise ValueError(f"invalid chunking_method: {self.chunking_method!r}")
        bcs = self.batch_chunk_size
        if not (bcs is None or (isinstance(bcs, int) and not isinstance(bcs, bool) and bcs > 0)):
            raise ValueError(f"batch_chunk_size must be positive int or None, got {bcs!r}")
        if self.acc_dtype is not None:
            try:
                ok = jnp.dtype(self.acc_dtype) in (
                    jnp.dtype(jnp.float16),
                    jnp.dtype(jnp.bfloat16),
                    jnp.dtype(jnp.float32),
                    jnp.dtype(jnp.float64),
                )
            except TypeError:
                ok = False
            if not ok:
                raise ValueError(
                    "acc_dtype must be one of {None, float16, bfloat16, float32, float64}, got "
                    f"{self.acc_dtype!r}. Pass acc_dtype=None to let the op pick automatically."
                )

    def resolve_batch_chunk_size(self, num_batches: int, in_features: int, num_classes: int, itemsize: int = 4) -> int:
        """The rows per chunk for these shapes (``num_classes`` counts ``C * d1 * ... * dK``)."""
        method = self.chunking_method
        if method == "auto":
            if self.batch_chunk_size is not None:
                method = None
            else:
                rows = max(1, _AUTO_BLOCK_BYTES // max(1, num_classes * itemsize))
                return max(1, min(1 << (rows.bit_length() - 1), num_batches))
        size = num_batches if self.batch_chunk_size is None else min(self.batch_chunk_size, num_batches)
        if method is not None:
            factor = int(method.split(":", 1)[1]) if ":" in method else 1
            inc = -(-num_classes // max(in_features, 1))
            target = -(-num_batches // max(inc, 1))
            chunk = 1 << (target - 1).bit_length() if target > 0 else 1
            computed = min(chunk // factor, num_batches)
            if self.batch_chunk_size is not None and self.batch_chunk_size != computed:
                raise ValueError(
                    f"batch_chunk_size (={self.batch_chunk_size}) and chunking_method "
                    f"('{method}') give different chunk sizes ({self.batch_chunk_size} vs "
                    f"{computed}); pass only one."
                )
            size = computed
        return max(1, size)


# ----------------------------------------------------------------------------------------------
# Validation shared by both paths.


def _validate(input, linear_weight, target, linear_bias, weight, ignore_index, label_smoothing):
    """Torch's checks, in torch's order. Returns (logits shape, prob-target flag, ignore_index)."""
    if input.ndim < 1 or input.ndim > 2:
        raise ValueError(f"{_FN}: expected 'input' with dimensionality 1 or 2, got {input.ndim}")
    if linear_weight.ndim < 2:
        raise ValueError(f"{_FN}: expected 'linear_weight' with dimensionality at least 2, got {linear_weight.ndim}")
    check_floating(input, "input", _FN)
    check_floating(linear_weight, "linear_weight", _FN)
    in_features = input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise ValueError(
            f"{_FN}: expected equal 'input' and 'linear_weight' last dimensions (in_features), "
            f"got {in_features} and {linear_weight.shape[-1]}, respectively"
        )
    if linear_weight.dtype != input.dtype:
        raise TypeError(
            f"{_FN}: 'input' and 'linear_weight' must have the same dtype, got {input.dtype} and {linear_weight.dtype}"
        )
    num_classes = linear_weight.shape[0]
    out_features = tuple(linear_weight.shape[1:-1])
    if linear_bias is not None:
        if tuple(linear_bias.shape) != (num_classes, *out_features):
            raise ValueError(
                f"{_FN}: expected 'linear_bias' shape {(num_classes, *out_features)}, got {tuple(linear_bias.shape)}"
            )
        if linear_bias.dtype != input.dtype:
            raise TypeError(f"{_FN}: 'linear_bias' must have the input's dtype {input.dtype}, got {linear_bias.dtype}")
    if out_features and input.ndim == 1:
        raise ValueError(
            f"{_FN}: K-dimensional loss defined by 'linear_weight' shape "
            f"{tuple(linear_weight.shape)} requires batched input, (N, {in_features}), got "
            f"unbatched 'input' with shape {tuple(input.shape)}"
        )
    logits_shape = (*input.shape[:-1], num_classes, *out_features)
    probs = tuple(target.shape) == logits_shape
    if probs and ignore_index is not None:
        raise ValueError(f"{_FN}: 'ignore_index' cannot be specified when target contains probabilities")
    check_label_smoothing(label_smoothing, _FN)
    return logits_shape, probs, (-100 if ignore_index is None else ignore_index)


def linear_cross_entropy(
    input: ArrayLike,
    linear_weight: ArrayLike,
    target: ArrayLike,
    *,
    linear_bias: ArrayLike | None = None,
    weight: ArrayLike | None = None,
    reduction: Reduction = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    options: LinearCrossEntropyOptions | None = None,
) -> jax.Array:
    r"""Cross-entropy of a linear layer's output, as ``torch.nn.functional.linear_cross_entropy``.

    Equal to ``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``:

    $$
    z_{n, c, d} = \sum_h x_{n, h} W_{c, d, h} + b_{c, d}, \qquad
    \ell = \operatorname{cross\_entropy}(z, y)
    $$

    with every option of [`losses_jax.cross_entropy`][losses_jax.cross_entropy] (``weight``, ``ignore_index``,
    ``reduction``, ``label_smoothing``, class-probability targets, K-dimensional losses).
    ``ignore_index=None`` (the default) means ``-100`` for class-index targets; giving it with a
    probability target raises ``ValueError`` (torch's rule).

    Shapes below: ``H`` in_features, ``C`` classes, optional ``d1, ..., dK``.

    Args:
      input: ``(H)`` or ``(N, H)`` (K-dimensional losses need the batched form).
      linear_weight: ``(C, H)`` or ``(C, d1, ..., dK, H)``; the logits are
        ``(N, C, d1, ..., dK)``, the class axis 1 as in ``cross_entropy``.
      target: class indices ``()``, ``(N)`` or ``(N, d1, ..., dK)``; or class probabilities of
        the logits' shape (floating).
      linear_bias: ``(C)`` or ``(C, d1, ..., dK)``.
      weight: optional rescaling weight per class, ``(C)``.
      reduction: ``'none' | 'mean' | 'sum'``.
      ignore_index: as in ``cross_entropy``; ``None`` means ``-100`` for class indices.
      label_smoothing: as in ``cross_entropy``.
      options: ``None`` (the reference path) or a
        [`LinearCrossEntropyOptions`][losses_jax.LinearCrossEntropyOptions] (the chunked path,
        below).

    Returns:
      A scalar, or ``()``, ``(N)``, ``(N, d1, ..., dK)`` for ``reduction='none'``.

    Raises:
      ValueError: shapes that do not fit, an unknown ``reduction``, or ``ignore_index`` given
        with a probability target; otherwise as ``cross_entropy``.
      TypeError: forward-mode differentiation (``jvp``, ``jacfwd``) of the chunked path.

    ``options`` (a [`LinearCrossEntropyOptions`][losses_jax.LinearCrossEntropyOptions], keyword only):
    ``None`` is the reference path, which materialises the logits. An options object selects the chunked path:
    the rows of ``input`` go through in blocks of ``batch_chunk_size`` inside ``lax.scan`` with a
    ``jax.custom_vjp``, so value and gradient hold one ``(chunk, C*d1*...*dK)`` block of logits at a time
    instead of all ``N``. It supports everything the reference path does (label smoothing, probability targets
    and K-dimensional losses included; torch falls back to its reference path for those) and works under
    ``jit``, ``grad``, ``vmap``; it has no forward-mode derivative (``jvp``, ``jacfwd``, ``hessian``) and
    gives zero gradients for the class ``weight`` (torch's chunked op has neither). Half-precision inputs are
    computed in float32 there (no rounding of the logits to half precision), so they may differ from the
    reference path by half-precision rounding.

    Bad input: torch's ``RuntimeError`` s (dimensionality, ``in_features`` mismatch, bias
    shape, K-dimensional loss with unbatched input, ``ignore_index`` with probabilities,
    ``input``/``linear_weight``/``linear_bias`` dtypes differing) are ``ValueError`` /
    ``TypeError`` naming the argument; the rest is as in [`losses_jax.cross_entropy`][losses_jax.cross_entropy].

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> hidden = jnp.array([[1.0, -1.0], [0.5, 2.0]])
      >>> classifier = jnp.array([[0.1, 0.2], [0.3, -0.4], [1.0, 0.0]])
      >>> target = jnp.array([2, 0])
      >>> F.linear_cross_entropy(hidden, classifier, target)
      Array(0.7990..., dtype=float32)
      >>> F.linear_cross_entropy(hidden, classifier, target, options=F.LinearCrossEntropyOptions(batch_chunk_size=1))
      Array(0.7990..., dtype=float32)
    """
    reduction = resolve_reduction(reduction)
    input = as_array(input, "input", _FN)
    linear_weight = as_array(linear_weight, "linear_weight", _FN)
    target = as_array(target, "target", _FN)
    if linear_bias is not None:
        linear_bias = as_array(linear_bias, "linear_bias", _FN)
    if weight is not None:
        weight = as_array(weight, "weight", _FN)
    if options is not None and not isinstance(options, LinearCrossEntropyOptions):
        raise TypeError(f"{_FN}: 'options' must be a LinearCrossEntropyOptions or None, got {type(options).__name__}")
    logits_shape, probs, ignore = _validate(
        input, linear_weight, target, linear_bias, weight, ignore_index, label_smoothing
    )
    if options is None or input.size == 0 or linear_weight.size == 0:
        return _reference(
            input, linear_weight, target, linear_bias, weight, reduction, ignore, label_smoothing, logits_shape
        )

    # Static checks of the target / weight against the logits' shape, without making them.
    spec = jax.ShapeDtypeStruct(logits_shape, input.dtype)
    num_classes = logits_shape[class_axis(spec)]
    if probs:
        if not jnp.issubdtype(target.dtype, jnp.floating):
            raise TypeError(
                f"{_FN}: a 'target' of the logits' shape {logits_shape} holds class "
                f"probabilities and must be floating point, got dtype {target.dtype}"
            )
    else:
        target = check_index_target(spec, target, _FN)
        check_targets_in_range(target, num_classes, ignore)
    check_class_weight(weight, num_classes, _FN)

    unbatched = input.ndim == 1
    if unbatched:
        input, target = input[None], target[None]
    n, in_features = input.shape
    per_row = int(np.prod(logits_shape[1 if not unbatched else 0 :], dtype=np.int64))
    work, _ = compute_dtype(input.dtype)
    chunk = options.resolve_batch_chunk_size(n, in_features, per_row, jnp.dtype(work).itemsize)
    loss = _chunked_linear_cross_entropy(
        input,
        linear_weight,
        target,
        linear_bias,
        weight,
        label_smoothing,
        reduction=reduction,
        ignore_index=ignore,
        probs=probs,
        chunk=chunk,
    )
    return loss[0] if unbatched and reduction == "none" else loss


def _reference(input, linear_weight, target, linear_bias, weight, reduction, ignore, ls, logits_shape):
    """Torch's reference path: ``cross_entropy(linear(input, W, b).reshape(logits), ...)``."""
    w2 = linear_weight.reshape(-1, input.shape[-1])
    logits = linear(input, w2, None if linear_bias is None else linear_bias.reshape(-1)).reshape(logits_shape)
    return cross_entropy(logits, target, weight=weight, ignore_index=ignore, reduction=reduction, label_smoothing=ls)


# ----------------------------------------------------------------------------------------------
# The chunked path.
#
# Per block of rows: z = x_c @ W^T + b (class axis 1), m = max_c z (no gradient), s = z - m,
# lse = log sum_c exp(s), p = exp(s - lse). Class-index targets (as _index_target_loss):
#   nll_n    = w_{y_n} (lse_n - s_{n, y_n})                  (0 where y_n is ignored)
#   smooth_n = sum_c w_c (lse_n - s_{n, c})                  (0 where ignored; only if eps != 0)
#   loss     = (1 - eps) * R(nll) + eps / C * R(smooth)      (R: torch's reduction of each part)
# and with a_n, e_n the cotangents of nll_n and smooth_n:
#   dL/dz_{n,c} = p_{n,c} (a_n w_{y_n} + e_n sum_c' w_c') - a_n w_{y_n} [c = y_n] - e_n w_c.
# Probability targets (as _prob_target_cross_entropy), q = (1 - eps) y + eps / C:
#   loss_n = -sum_c w_c q_{n,c} (s_{n,c} - lse_n)
#   dL/dz_{n,c} = a_n (p_{n,c} sum_c' w_c' q_{n,c'} - w_c q_{n,c}),
#   dL/dy_{n,c} = -a_n (1 - eps) w_c (s_{n,c} - lse_n).
# Then dx_c = G W, dW += G^T x_c, db += sum_n G: the logits block is the only O(chunk * C) memory.


@dataclasses.dataclass(frozen=True)
class _Config:
    reduction: str
    ignore_index: int
    probs: bool
    chunk: int
    n: int
    tail: tuple  # (C, d1, ..., dK)
    smoothing: bool  # label smoothing may be non-zero
    has_bias: bool
    has_weight: bool
    work: Any  # compute dtype


def _chunked_linear_cross_entropy(x, lw, target, bias, weight, ls, *, reduction, ignore_index, probs, chunk):
    n, in_features = x.shape
    tail = tuple(lw.shape[:-1])
    dtypes = [x.dtype] + ([target.dtype] if probs else [])
    work, out = compute_dtype(*dtypes)
    smoothing = not (isinstance(ls, (int, float)) and ls == 0)
    cfg = _Config(
        reduction,
        int(ignore_index),
        probs,
        int(chunk),
        int(n),
        tail,
        smoothing,
        bias is not None,
        weight is not None,
        jnp.dtype(work),
    )
    ls_arr = jnp.asarray(ls if smoothing else 0.0, work)
    w = None if weight is None else weight.astype(work)
    loss = _make(cfg)(x, lw, bias, target, w, ls_arr)
    return loss.astype(out)


def _pad_rows(a, total, value=0):
    if a.shape[0] == total:
        return a
    pad = [(0, total - a.shape[0])] + [(0, 0)] * (a.ndim - 1)
    return jnp.pad(a, pad, constant_values=value)


def _block(cfg, xc, w2, b, tc, weight, ls, ct_a, ct_e, want_grad: bool):
    """Loss parts of one block of rows and, if ``want_grad``, the logits' cotangent ``G``.

    ``ct_a`` / ``ct_e``: per-position cotangents of the nll / smooth parts (class indices) or of
    the loss (``ct_a``, probabilities). Returns (parts, G as (B, C*d), dtarget block or None).
    """
    bsz = xc.shape[0]
    z = jnp.dot(xc.astype(cfg.work), w2.T, preferred_element_type=cfg.work)
    if b is not None:
        z = z + b
    z = z.reshape((bsz,) + cfg.tail)
    n_classes = cfg.tail[0]
    cshape = class_shape(z.ndim, 1, n_classes)
    m = jnp.max(z, axis=1, keepdims=True)
    s = z - m
    lse = jnp.log(jnp.sum(jnp.exp(s), axis=1, keepdims=True))
    wc = None if weight is None else weight.reshape(cshape)
    if not cfg.probs:
        valid, safe, w_t = class_index_weights(tc, n_classes, cfg.ignore_index, weight, cfg.work)
        onehot = jnp.arange(n_classes).reshape(cshape) == safe[:, None]
        picked = jnp.sum(jnp.where(onehot, s, 0), axis=1)
        nll = jnp.where(valid, w_t * (lse[:, 0] - picked), 0)
        parts = [nll]
        if cfg.smoothing:
            neg = lse - s
            if wc is not None:
                neg = neg * wc
            parts.append(jnp.where(valid, jnp.sum(neg, axis=1), 0))
        if not want_grad:
            return parts, None, None
        aw = ct_a * w_t
        coef = aw
        if cfg.smoothing:
            wsum = n_classes if weight is None else jnp.sum(weight)
            coef = coef + ct_e * wsum
        g = jnp.exp(s - lse) * coef[:, None] - jnp.where(onehot, aw[:, None], 0)
        if cfg.smoothing:
            g = g - ct_e[:, None] * (1.0 if wc is None else wc)
        g = jnp.where(valid[:, None], g, 0)
        return parts, g.reshape(bsz, -1), None

    t = tc.astype(cfg.work)
    q = t * (1.0 - ls) + ls / n_classes if cfg.smoothing else t
    logp = s - lse
    wq = q if wc is None else q * wc
    loss = -jnp.sum(logp * wq, axis=1)
    if not want_grad:
        return [loss], None, None
    g = ct_a[:, None] * (jnp.exp(logp) * jnp.sum(wq, axis=1, keepdims=True) - wq)
    dt = -ct_a[:, None] * logp
    if wc is not None:
        dt = dt * wc
    if cfg.smoothing:
        dt = dt * (1.0 - ls)
    return [loss], g.reshape(bsz, -1), dt


def _total_weight(cfg, target, weight):
    """Torch's 'mean' normaliser for class indices: sum of w_{y_n} over non-ignored positions."""
    n_classes = cfg.tail[0]
    return jnp.sum(class_index_weights(target, n_classes, cfg.ignore_index, weight, cfg.work)[2])


def _combine(cfg, sums, ls, total):
    """Reduced parts -> the loss, with torch's per-part 'mean' division."""
    if cfg.reduction == "mean":
        sums = [p / total for p in sums]
    if cfg.probs or not cfg.smoothing:
        return sums[0]
    return smoothed_parts(sums[0], sums[1], ls, cfg.tail[0])


def _scalar_cotangents(cfg, ls, total, g):
    """Per-position cotangents (a, e) of the parts for a scalar reduction, given d loss = g."""
    scale = g / total if cfg.reduction == "mean" else g
    if cfg.probs:
        return scale, None
    if not cfg.smoothing:
        return scale, None
    return scale * (1.0 - ls), scale * (ls / cfg.tail[0])


def _blocks(cfg, x, target):
    """Pad rows to a multiple of the chunk and split into (n_chunks, chunk, ...) blocks."""
    n_chunks = -(-cfg.n // cfg.chunk)
    total = n_chunks * cfg.chunk
    # Padding rows get the ignore_index (class indices) or zero cotangents (probabilities).
    xp = _pad_rows(x, total).reshape((n_chunks, cfg.chunk) + x.shape[1:])
    tp = _pad_rows(target, total, 0 if cfg.probs else cfg.ignore_index)
    tp = tp.reshape((n_chunks, cfg.chunk) + target.shape[1:])
    rows = (jnp.arange(total) < cfg.n).reshape(n_chunks, cfg.chunk)
    return xp, tp, rows


def _positions_mask(rows, like):
    return rows.reshape(rows.shape + (1,) * (like.ndim - 1))


def _denominator(cfg, target, weight):
    if cfg.reduction != "mean":
        return None
    if cfg.probs:
        return cfg.n * int(np.prod(cfg.tail[1:], dtype=np.int64))
    return _total_weight(cfg, target, weight)


def _accumulate_dw(cfg, dw, g, xc):
    """``dw + g.T @ xc``, in row tiles of ``dw`` no larger than the logits block.

    XLA's CPU backend writes a dot's result to a fresh buffer before adding it, so the plain
    form holds a second ``(C, H)`` temporary; updating ``dw`` in place tile by tile bounds that
    temporary by the block size (``g``'s), which is what keeps the peak at one block.
    """
    rows, h = dw.shape
    tile = max(1, -(-g.size // max(h, 1)))
    if tile >= rows:
        return dw + jnp.dot(g.T, xc, preferred_element_type=cfg.work)
    n_tiles, rem = divmod(rows, tile)

    def update(dw, start, size):
        gt = jax.lax.dynamic_slice_in_dim(g, start, size, axis=1)
        old = jax.lax.dynamic_slice_in_dim(dw, start, size, axis=0)
        new = old + jnp.dot(gt.T, xc, preferred_element_type=cfg.work)
        return jax.lax.dynamic_update_slice_in_dim(dw, new, start, axis=0)

    dw = jax.lax.fori_loop(0, n_tiles, lambda i, dw: update(dw, i * tile, tile), dw)
    if rem:
        dw = update(dw, n_tiles * tile, rem)
    return dw


@functools.cache
def _make(cfg: _Config):
    """The custom_vjp function for one static configuration."""

    def prepared(lw, bias):
        w2 = lw.reshape(-1, lw.shape[-1]).astype(cfg.work)
        b = None if bias is None else bias.reshape(-1).astype(cfg.work)
        return w2, b

    def per_position(x, lw, bias, target, weight, ls):
        """(parts per position,) with the padding rows dropped, via lax.map over blocks."""
        w2, b = prepared(lw, bias)
        xp, tp, _ = _blocks(cfg, x, target)

        def body(args):
            xc, tc = args
            parts, _, _ = _block(cfg, xc, w2, b, tc, weight, ls, None, None, False)
            return parts

        parts = jax.lax.map(body, (xp, tp))
        return [p.reshape((-1,) + p.shape[2:])[: cfg.n] for p in parts]

    def primal(x, lw, bias, target, weight, ls):
        parts = per_position(x, lw, bias, target, weight, ls)
        if cfg.reduction == "none":
            return _combine(cfg, parts, ls, None)
        sums = [jnp.sum(p) for p in parts]
        return _combine(cfg, sums, ls, _denominator(cfg, target, weight))

    def grad_pass(x, lw, bias, target, weight, ls, ct_a, ct_e):
        """One scan over blocks: loss parts and gradients for per-position cotangents.

        ``ct_a`` / ``ct_e``: scalars (scalar reductions) or per-position arrays (``'none'``).
        """
        w2, b = prepared(lw, bias)
        xp, tp, rows = _blocks(cfg, x, target)
        per_pos = jnp.ndim(ct_a) > 0
        n_chunks = xp.shape[0]
        if per_pos:
            cts = [ct_a] + ([] if ct_e is None else [ct_e])
            cts = [_pad_rows(c, n_chunks * cfg.chunk).reshape((n_chunks, cfg.chunk) + c.shape[1:]) for c in cts]
        else:
            cts = []
        pos_shape = (cfg.chunk,) + tuple(cfg.tail[1:])

        def body(carry, args):
            dw, db = carry
            xc, tc, rc = args[:3]
            blk = args[3:]
            mask = _positions_mask(rc, jnp.zeros(pos_shape, bool))
            if per_pos:
                a = blk[0]
                e = blk[1] if len(blk) > 1 else None
            else:
                a = jnp.broadcast_to(ct_a, pos_shape)
                e = None if ct_e is None else jnp.broadcast_to(ct_e, pos_shape)
            a = jnp.where(mask, a, 0)
            e = None if e is None else jnp.where(mask, e, 0)
            parts, g, dt = _block(cfg, xc, w2, b, tc, weight, ls, a, e, True)
            assert g is not None  # want_grad=True
            dxc = jnp.dot(g, w2, preferred_element_type=cfg.work)
            dw = _accumulate_dw(cfg, dw, g, xc.astype(cfg.work))
            if db is not None:
                db = db + jnp.sum(g, axis=0)
            return (dw, db), (parts, dxc, dt)

        init = (jnp.zeros(w2.shape, cfg.work), None if b is None else jnp.zeros(b.shape, cfg.work))
        (dw, db), (parts, dx, dt) = jax.lax.scan(body, init, (xp, tp, rows, *cts))

        def drop(a):
            return a.reshape((-1,) + a.shape[2:])[: cfg.n]

        parts = [drop(p) for p in parts]
        dx = drop(dx).astype(x.dtype)
        dw = dw.reshape(lw.shape).astype(lw.dtype)
        db = None if db is None else db.reshape(bias.shape).astype(bias.dtype)
        dt = None if dt is None else drop(dt).astype(target.dtype)
        return parts, (dx, dw, db, dt)

    # A custom_vjp for memory, on every backend (not for torch's gradient, which autodiff of the
    # scan gives too): autodiff of the scan would save every block's logits (all N x C of them)
    # for the backward pass; this rule recomputes or pre-accumulates them block by block (peak
    # +146 MiB against the reference path's +1.5 GiB at 4096 x 256 -> 65536, BENCHMARKS.md).
    # So no forward mode (jvp / jacfwd raise TypeError); reverse-over-reverse, hessian and jvp of
    # grad differentiate the rule (with zero class-weight gradients, as documented).
    @jax.custom_vjp
    def f(x, lw, bias, target, weight, ls):
        return primal(x, lw, bias, target, weight, ls)

    def fwd(x, lw, bias, target, weight, ls):
        if cfg.reduction == "none":
            out = primal(x, lw, bias, target, weight, ls)
            return out, (x, lw, bias, target, weight, ls)
        total = _denominator(cfg, target, weight)
        a, e = _scalar_cotangents(cfg, ls, total, jnp.ones((), cfg.work))
        parts, grads = grad_pass(x, lw, bias, target, weight, ls, a, e)
        sums = [jnp.sum(p) for p in parts]
        out = _combine(cfg, sums, ls, total)
        return out, (grads, target, weight, ls)

    def bwd(res, g):
        if cfg.reduction == "none":
            x, lw, bias, target, weight, ls = res
            g = g.astype(cfg.work)
            if cfg.probs or not cfg.smoothing:
                a, e = g, None
            else:
                a, e = g * (1.0 - ls), g * (ls / cfg.tail[0])
            _, (dx, dw, db, dt) = grad_pass(x, lw, bias, target, weight, ls, a, e)
        else:
            (dx, dw, db, dt), target, weight, ls = res
            g = g.astype(cfg.work)
            dx = (dx * g).astype(dx.dtype)
            dw = (dw * g).astype(dw.dtype)
            db = None if db is None else (db * g).astype(db.dtype)
            dt = None if dt is None else (dt * g).astype(dt.dtype)
        if not cfg.probs:
            dt = None
        dweight = None if weight is None else jnp.zeros_like(weight)
        return dx, dw, db, dt, dweight, jnp.zeros_like(ls)

    f.defvjp(fwd, bwd)
    return f


# ----------------------------------------------------------------------------------------------
# The class.


class LinearCrossEntropyLoss(_WeightedLoss):
    r"""A linear layer and cross-entropy in one; see [`linear_cross_entropy`][losses_jax.linear_cross_entropy].

    ``LinearCrossEntropyLoss(in_features, num_classes, *, out_features=(), bias=False,
    device=None, dtype=None, reduction='mean', weight=None, ignore_index=None,
    label_smoothing=0.0, options=None, key=None)``; call as ``loss(input, target)``.

    Like torch's class it owns the linear layer's parameters, stored flat as torch stores
    ``self.linear``: ``linear_weight`` of shape ``(C * prod(out_features), in_features)`` (torch's
    ``linear.weight``) and ``linear_bias`` ``(C * prod(out_features),)`` or ``None`` (torch's
    ``linear.bias``); both are initialised as ``torch.nn.Linear`` does,
    $U(-1/\\sqrt{H}, 1/\\sqrt{H})$, from ``key`` (a ``jax.random`` key; ``None`` uses
    ``jax.random.key(0)``, since JAX has no global generator). ``dtype`` is the parameters'
    dtype (default float32); ``device`` is accepted and ignored. The instance is a pytree whose
    leaves are ``weight``, ``linear_weight`` and ``linear_bias``, so ``jax.grad`` of a function of
    the loss object gives the parameters' gradients.

    Shapes: input ``(H)`` or ``(N, H)``; target ``()``, ``(N)``, ``(N, *out_features)`` class
    indices, or class probabilities ``(C)`` / ``(N, C, *out_features)``; output scalar, or the
    target's position shape for ``'none'``.
    """

    _arrays = ("weight", "linear_weight", "linear_bias")
    _defaults = {
        "reduction": "mean",
        "out_features": (),
        "ignore_index": None,
        "label_smoothing": 0.0,
        "options": None,
    }

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        out_features: Sequence[int] = (),
        bias: bool = False,
        device: object = None,
        dtype: DTypeLike | None = None,
        reduction: Reduction = "mean",
        weight: ArrayLike | None = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        options: LinearCrossEntropyOptions | None = None,
        key: jax.Array | None = None,
    ) -> None:
        if weight is not None and tuple(jnp.shape(weight)) != (num_classes,):
            raise ValueError(
                f"LinearCrossEntropyLoss: expected 'weight' shape to be {(num_classes,)}, got "
                f"{tuple(jnp.shape(weight))}"
            )
        if label_smoothing < 0 or label_smoothing > 1.0:
            raise ValueError(
                f"LinearCrossEntropyLoss: expected 'label_smoothing' to be in range [0, 1], got {label_smoothing}"
            )
        if options is not None and not isinstance(options, LinearCrossEntropyOptions):
            raise TypeError("LinearCrossEntropyLoss: 'options' must be a LinearCrossEntropyOptions or None")
        super().__init__(weight, None, None, reduction)
        self.in_features = int(in_features)
        self.num_classes = int(num_classes)
        self.out_features = tuple(int(d) for d in out_features)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.options = options
        rows = math.prod(self.out_features, start=self.num_classes)
        dtype = jnp.dtype(jnp.float32 if dtype is None else dtype)
        key = jax.random.key(0) if key is None else key
        kw, kb = jax.random.split(key)
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        self.linear_weight = jax.random.uniform(kw, (rows, self.in_features), dtype, -bound, bound)
        self.linear_bias = jax.random.uniform(kb, (rows,), dtype, -bound, bound) if bias else None

    def forward(self, input: ArrayLike, target: ArrayLike) -> jax.Array:
        lw = jnp.reshape(self.linear_weight, (self.num_classes, *self.out_features, self.in_features))
        lb = None if self.linear_bias is None else jnp.reshape(self.linear_bias, (self.num_classes, *self.out_features))
        return linear_cross_entropy(
            input,
            lw,
            target,
            linear_bias=lb,
            weight=self.weight,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            options=self.options,
        )
