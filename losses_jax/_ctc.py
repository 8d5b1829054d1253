r"""Connectionist Temporal Classification: ``ctc_loss`` and ``CTCLoss`` (torch 2.13.0 semantics).

The negative log-likelihood of each target sequence is the forward (alpha) recursion of Graves et
al. (2006) over the extended label sequence $l' = (b, l_1, b, l_2, \dots, l_S, b)$, in log
space, as one ``lax.scan`` over time that is vectorised over the batch and the $2S + 1$
extended labels. Sequences shorter than the padded input (``input_lengths < T``) freeze their alpha
row once they end, so every sequence is handled by the same scan with static shapes.

**The gradient is torch's, not the plain partial derivative.** torch's CTC kernels return, for the
time steps $t$ < ``input_lengths[n]``,

$$
\frac{\partial}{\partial \log y_{t,n,c}} \;:=\;
y_{t,n,c} - \frac{1}{p_n\, y_{t,n,c}} \sum_{s:\, l'_s = c} \alpha_t(s)\, \beta_t(s)
$$

(``exp(lp) - exp(log(sum alpha*beta) + nll - lp)`` in its source, $\beta$ including the
emission at $t$, eq. 16 of the paper): the gradient with respect to the *unnormalised*
activations through a softmax. When ``log_probs`` come from ``log_softmax`` the extra
$y_{t,n,c}$ term vanishes after the ``log_softmax`` backward, so both conventions give the
same gradient for the activations; for any other ``log_probs`` (unnormalised scores) torch's number
differs from the mathematical partial derivative, and this module reproduces torch's number with
a ``jax.custom_vjp`` whose backward pass runs the beta recursion. Its special values are torch's
too: 0 for $t \ge$ ``input_lengths[n]``; NaN for every $t <$ ``input_lengths[n]`` of a
sequence whose loss is ``inf`` (no alignment exists) or NaN; NaN where ``log_probs`` is ``-inf``;
and, with ``zero_infinity=True``, 0 for all of an ``inf`` sequence. One more torch quirk is kept
for parity: when the *last* target label equals ``blank`` (legal, if unusual), torch's kernel
overwrites instead of adding one term at $t = T_n - 1$, so the blank's gradient there lacks
the final blank state's share; we drop the same term.

Precision: float32 gradients carry an absolute error of about ``|nll| * 1e-7`` (the occupancy is
``exp(alpha + beta + nll - lp)`` with terms of magnitude ``|nll|``), as torch's do; float64
results agree with torch far inside rtol 1e-7.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._base import _Loss
from ._reduction import Reduction, apply_reduction, mean_per_length, resolve_reduction
from ._torch_semantics import as_array, check_floating, compute_dtype, concrete_numpy, is_tracer, static_int

_FN = "ctc_loss"


# ------------------------------------------------------------------------------------------
# argument handling


def _lengths(x, name: str, batch: int):
    """``input_lengths`` / ``target_lengths`` as a ``(N,)`` integer array (torch reads numel).

    Also its values as numpy when they are concrete (read before any jnp op: under an outer
    ``jit`` even an operation on a constant gives a tracer).
    """
    if isinstance(x, (bool, int, float, complex, np.generic)):
        raise TypeError(
            f"{_FN}: argument '{name}' must be an array, list or tuple of integers, got "
            f"{type(x).__name__} (torch rejects a plain number too; use a 0-d array)"
        )
    x_np = concrete_numpy(x)
    if isinstance(x, (list, tuple)):
        if any(not isinstance(v, (int, np.integer)) or isinstance(v, bool) for v in x):
            raise TypeError(f"{_FN}: argument '{name}' must hold integers, got {x!r}")
        x = np.asarray(x, dtype=np.int64).reshape(-1)
        if x.size and np.abs(x).max() < 2**31:
            x = x.astype(np.int32)
    x = as_array(x, name, _FN)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{_FN}: argument '{name}' must be integral, got dtype {x.dtype}")
    if x.size != batch:
        raise ValueError(f"{_FN}: '{name}' must be of size batch_size ({batch}), got shape {tuple(x.shape)}")
    return x.reshape(batch), (None if x_np is None else x_np.reshape(batch).astype(np.int64))


def _padded_targets(targets, targets_np, tl, tl_np, batch: int, n_classes: int):
    """Targets as ``(N, S)`` with a static ``S``; and a per-sequence validity flag (traced checks).

    ``S`` is ``max(target_lengths)`` when the lengths are concrete (torch's bound), else the
    largest value the shapes allow: ``targets.shape[1]`` (padded) or ``targets.shape[0]``
    (concatenated). Data-dependent mistakes raise torch's error when the lengths are concrete;
    under tracing they make ``valid`` False for the affected sequences.
    """
    if targets.ndim == 2:
        if targets.shape[0] != batch:
            raise ValueError(
                f"{_FN}: Expected 'targets' to have size {batch} (the batch size) at dimension 0, "
                f"but got size {targets.shape[0]}"
            )
        width = targets.shape[1]
        if tl_np is not None:
            if (tl_np < 0).any():
                raise ValueError(
                    f"{_FN}: Expected 'target_lengths' to have value at least 0, but got value {tl_np[tl_np < 0][0]}"
                )
            if tl_np.max(initial=0) > width:
                raise ValueError(
                    f"{_FN}: Expected 'targets' to have size at least {tl_np.max()} at dimension 1, "
                    f"but got size {width}"
                )
            width = int(tl_np.max(initial=0))
        labels = targets[:, :width]
        valid = (tl >= 0) & (tl <= targets.shape[1])
    else:
        total = targets.shape[0]
        if tl_np is not None:
            if (tl_np < 0).any():
                raise ValueError(
                    f"{_FN}: Expected 'target_lengths' to have value at least 0, but got value {tl_np[tl_np < 0][0]}"
                )
            if int(tl_np.sum()) != total:
                raise ValueError(
                    f"{_FN}: concatenated 'targets' must have size sum(target_lengths) = "
                    f"{int(tl_np.sum())} at dimension 0, but got size {total}"
                )
            width = int(tl_np.max(initial=0))
        else:
            width = total
        safe_tl = jnp.maximum(tl, 0)
        ends = jnp.cumsum(safe_tl)
        offsets = ends - safe_tl
        idx = offsets[:, None] + jnp.arange(width)[None, :]
        if total == 0:
            labels = jnp.zeros((batch, width), targets.dtype)
        else:
            labels = targets[jnp.clip(idx, 0, total - 1)]
        valid = (tl >= 0) & (ends[-1] == total)
    k = jnp.arange(labels.shape[1])[None, :]
    in_use = k < tl[:, None]
    in_range = (labels >= 0) & (labels < n_classes)
    if targets_np is not None and tl_np is not None:
        if targets.ndim == 2:
            used = targets_np[np.arange(targets_np.shape[1])[None, :] < tl_np[:, None]]
        else:
            used = targets_np.reshape(-1)
        bad = used[(used < 0) | (used >= n_classes)]
        if bad.size:
            raise ValueError(
                f"{_FN}: 'targets' values must be class indices in [0, {n_classes}), got "
                f"{bad[0]} (torch reads out of bounds here)"
            )
    valid = valid & jnp.all(in_range | ~in_use, axis=1)
    labels = jnp.where(in_range, labels, 0)
    return labels, valid


# ------------------------------------------------------------------------------------------
# the recursions


@jax.custom_jvp
def _lse3(a, b, c):
    """``log(exp a + exp b + exp c)`` written as torch's kernel writes it (max shift, 0 if -inf)."""
    m = jnp.maximum(jnp.maximum(a, b), c)
    m = jnp.where(m == -jnp.inf, 0, m)
    return jnp.log(jnp.exp(a - m) + jnp.exp(b - m) + jnp.exp(c - m)) + m


@_lse3.defjvp
def _lse3_jvp(primals, tangents):
    # A custom JVP for neither torch's gradient (the CTC rule below states that) nor speed, but for
    # the transformations: the softmax-weighted tangent, with every ``-inf`` (unreachable) state
    # weighing exactly 0: autodiff of the formula gives ``0 / 0`` where all three are ``-inf``,
    # which would turn the forward-mode derivative of the gradient (``jvp`` of ``grad``,
    # ``hessian``) into NaN.
    out = _lse3(*primals)
    finite_out = jnp.isfinite(out)
    shift = jnp.where(finite_out, out, 0)
    tangent = jnp.zeros_like(out)
    for x, dx in zip(primals, tangents, strict=True):
        w = jnp.exp(x - shift)
        tangent = tangent + jnp.where(w > 0, w * dx, 0)
    return out, jnp.where(finite_out, tangent, 0)


def _shift(x, k: int):
    """``x[..., s - k]`` (``k > 0``) or ``x[..., s + |k|]`` (``k < 0``), ``-inf`` outside."""
    width = x.shape[-1]
    k = max(-width, min(width, k))
    pad = jnp.full(x.shape[:-1] + (abs(k),), -jnp.inf, x.dtype)
    if k > 0:
        return jnp.concatenate([pad, x[..., : width - k]], axis=-1)
    return jnp.concatenate([x[..., -k:], pad], axis=-1)


def _setup(lp, labels, tl, blank):
    """Extended labels, emissions ``(T, N, L)`` and the state masks shared by both passes."""
    n, s_max = labels.shape
    width = 2 * s_max + 1
    ext = jnp.full((n, width), blank, labels.dtype)
    ext = ext.at[:, 1::2].set(labels)
    s = jnp.arange(width)[None, :]
    states = s <= 2 * tl[:, None]  # torch loops s < 2 * target_length + 1
    # a skip s-2 -> s is allowed when l'_s != l'_{s-2} (blanks inside targets included, as torch)
    skip = (s >= 2) & (ext != jnp.concatenate([ext[:, :2], ext[:, :-2]], axis=1))
    emit = jnp.take_along_axis(lp, ext[None], axis=2)  # (T, N, L)
    return ext, emit, states, skip


def _alpha(emit, il, tl, states, skip):
    """All alpha rows ``(T, N, L)`` and the per-sequence negative log-likelihood."""
    t_max, n, width = emit.shape
    neg = jnp.asarray(-jnp.inf, emit.dtype)
    s = jnp.arange(width)[None, :]
    first = jnp.where((s == 0) | ((s == 1) & (tl[:, None] > 0)), emit[0], neg)

    def step(prev, xs):
        e_t, t = xs
        new = _lse3(prev, _shift(prev, 1), jnp.where(skip, _shift(prev, 2), neg)) + e_t
        new = jnp.where(states, new, neg)
        new = jnp.where((t < il)[:, None], new, prev)  # finished sequences keep their last row
        return new, new

    last, rest = jax.lax.scan(step, first, (emit[1:], jnp.arange(1, t_max)))
    alphas = jnp.concatenate([first[None], rest], axis=0)
    end = jnp.clip(2 * tl, 0, width - 1)[:, None]
    l1 = jnp.take_along_axis(last, end, axis=1)[:, 0]
    l2 = jnp.take_along_axis(last, jnp.maximum(end - 1, 0), axis=1)[:, 0]
    m = jnp.maximum(l1, l2)
    m = jnp.where(m == -jnp.inf, 0, m)
    ll = jnp.where(tl > 0, jnp.log(jnp.exp(l1 - m) + jnp.exp(l2 - m)) + m, l1)
    ll = jnp.where(il == 0, jnp.where(tl == 0, 0, -jnp.inf), ll)
    return alphas, -ll


def _beta(emit, il, tl, states, skip):
    """All beta rows ``(T, N, L)`` (beta includes the emission at ``t``, as in torch)."""
    t_max, n, width = emit.shape
    neg = jnp.asarray(-jnp.inf, emit.dtype)
    s = jnp.arange(width)[None, :]
    end = 2 * tl[:, None]
    init_mask = (s == end) | ((s == end - 1) & (tl[:, None] > 0))
    # skip s -> s+2 allowed: skip[s + 2] (False past the end)
    skip_back = jnp.concatenate([skip[:, 2:], jnp.zeros((n, min(2, width)), bool)], axis=1)
    skip_back = skip_back & (s < end - 1)

    def step(nxt, xs):
        e_t, t = xs
        cand = _lse3(nxt, _shift(nxt, -1), jnp.where(skip_back, _shift(nxt, -2), neg)) + e_t
        cand = jnp.where(states, cand, neg)
        init = jnp.where(init_mask, e_t, neg)
        t_last = (il - 1)[:, None]
        new = jnp.where(t == t_last, init, jnp.where(t < t_last, cand, neg))
        return new, new

    start = jnp.full((n, width), neg)
    _, betas = jax.lax.scan(step, start, (emit, jnp.arange(t_max)), reverse=True)
    return betas


# A custom_vjp because torch's CTC gradient is not the derivative of the loss: torch returns
# ``exp(lp) - occupancy`` (the gradient for the activations before a log_softmax), with its own
# NaN / zero conventions. A VJP has no forward mode, so jvp / jacfwd of ctc_loss are unavailable;
# reverse-over-reverse and forward-over-reverse (hessian, jvp of grad) differentiate this rule.
@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _ctc_nll(lp, labels, il, tl, valid, blank, zero_infinity):
    return _ctc_nll_fwd(lp, labels, il, tl, valid, blank, zero_infinity)[0]


def _ctc_nll_fwd(lp, labels, il, tl, valid, blank, zero_infinity):
    t_max = lp.shape[0]
    il_c = jnp.clip(il, 0, t_max)
    tl_c = jnp.clip(tl, 0, labels.shape[1])
    ext, emit, states, skip = _setup(lp, labels, tl_c, blank)
    alphas, nll = _alpha(emit, il_c, tl_c, states, skip)
    nll = jnp.where(valid, nll, jnp.nan)
    return nll, (lp, ext, emit, states, skip, alphas, nll, il_c, tl_c, valid)


def _ctc_nll_bwd(blank, zero_infinity, res, g):
    lp, ext, emit, states, skip, alphas, nll, il, tl, valid = res
    t_max, n, n_classes = lp.shape
    betas = _beta(emit, il, tl, states, skip)
    # occupancy of each extended state: alpha * beta / (p * y), summed per class below
    log_occ = alphas + betas + (nll[None, :, None] - emit)
    occ = jnp.where(states[None], jnp.exp(log_occ), 0)
    # torch quirk, reproduced: at t = input_length - 1 its kernel *assigns* the class total of
    # state 2S - 1 after that of state 2S (assuming a blank and a non-blank), so when the last
    # target label is the blank itself the final blank state's share is dropped.
    width = ext.shape[1]
    s = jnp.arange(width)[None, :]
    last_is_blank = (tl > 0) & (jnp.take_along_axis(ext, jnp.maximum(2 * tl - 1, 0)[:, None], 1)[:, 0] == blank)
    dropped = (s == 2 * tl[:, None]) & last_is_blank[:, None]  # (N, L)
    at_end = jnp.arange(t_max)[:, None] == (il - 1)[None, :]  # (T, N)
    occ = jnp.where(at_end[:, :, None] & dropped[None], 0, occ)

    def scatter(occ_n, ext_n):  # (T, L), (L,) -> (T, C)
        return jnp.zeros((t_max, n_classes), occ_n.dtype).at[:, ext_n].add(occ_n)

    occ_c = jax.vmap(scatter, in_axes=(1, 0), out_axes=1)(occ, ext)
    grad = jnp.exp(lp) - occ_c
    # torch's special values: exp(res + nll - lp) is NaN where lp = -inf (-inf - -inf) and for
    # every class once nll is inf or NaN (res = -inf for all of them, -inf + inf).
    bad = (lp == -jnp.inf) | ~jnp.isfinite(nll)[None, :, None]
    grad = jnp.where(bad, jnp.nan, grad) * g[None, :, None]
    live = jnp.arange(t_max)[:, None] < il[None, :]
    if zero_infinity:
        live = live & (nll != jnp.inf)[None, :]
    grad = jnp.where(live[:, :, None], grad, 0)
    grad = jnp.where(valid[None, :, None], grad, jnp.nan)  # invalid lengths/targets (traced only)
    return grad, None, None, None, None


_ctc_nll.defvjp(_ctc_nll_fwd, _ctc_nll_bwd)


# ------------------------------------------------------------------------------------------
# public API


def ctc_loss(
    log_probs: ArrayLike,
    targets: ArrayLike,
    input_lengths: ArrayLike | Sequence[int],
    target_lengths: ArrayLike | Sequence[int],
    blank: int = 0,
    reduction: Reduction = "mean",
    zero_infinity: bool = False,
) -> jax.Array:
    r"""Connectionist Temporal Classification loss, as ``torch.nn.functional.ctc_loss``.

    For each sequence $n$, with $T_n$ = ``input_lengths[n]`` and the target
    $l = (l_1, \dots, l_{S_n})$, $S_n$ = ``target_lengths[n]``:

    $$
    \ell_n = -\log \sum_{\pi \in \mathcal{B}^{-1}(l)} \prod_{t=1}^{T_n} y_{t, n, \pi_t},
    \qquad y = \exp(\text{log\_probs})
    $$

    where $\mathcal{B}$ removes repeats and then blanks (the paths are counted by the alpha
    recursion in log space). ``'none'`` returns $\ell$ (``(N,)``, or a scalar unbatched);
    ``'sum'`` its sum; ``'mean'`` the batch mean of $\ell_n / \max(S_n, 1)$. A target that
    no path can produce (too short an input) gives ``inf``; ``zero_infinity=True`` turns those
    losses, and their gradients, into 0.

    Args:
      log_probs: ``(T, N, C)`` or unbatched ``(T, C)``; log-probabilities (e.g. ``log_softmax``).
      targets: padded ``(N, S)`` or concatenated ``(sum(target_lengths),)``; unbatched: ``(S,)``
        (concatenated, so ``S = target_length``) or ``(1, S)``. Class indices in ``[0, C)``;
        any integer or floating dtype (truncated, as torch's ``.to(long)``).
      input_lengths: an array (any shape with ``N`` elements), a list or a tuple of ints; a 0-d
        array for unbatched input. ``input_lengths[n] <= T``. Plain Python ints are rejected,
        as torch rejects them.
      target_lengths: as ``input_lengths``; ``target_lengths[n] <= S``.
      blank: the blank class, in ``[0, C)``.
      reduction: ``'none' | 'mean' | 'sum'``.
      zero_infinity: turn infinite losses, and their gradients, into 0.

    Returns:
      A scalar, or ``(N,)`` (``()`` unbatched) for ``reduction='none'``.

    Raises:
      ValueError: shape and ``blank`` mistakes (at trace time); with concrete lengths and
        targets, a length out of range, ``sum(target_lengths) != targets.shape[0]`` or a target
        outside ``[0, C)``.
      TypeError: a plain Python int for a length, a dtype torch refuses, or forward-mode
        differentiation (``jvp``, ``jacfwd``).

    Gradient: torch's, $y - \text{occupancy}$ (see the module docstring); it equals the
    partial derivative plus $y_{t,n,c}$, a term that cancels when ``log_probs`` is a
    ``log_softmax`` output. 0 for time steps beyond ``input_lengths``; NaN for a sequence whose
    loss is ``inf`` (unless ``zero_infinity``) and where ``log_probs`` is ``-inf``, as torch.

    Transformations: ``jit``, ``vmap``, ``grad`` and second derivatives of torch's gradient
    (``hessian``, ``jacrev``/``jvp`` of ``grad``) work. Forward mode of the loss itself (``jvp``,
    ``jacfwd``) raises ``TypeError``: torch's gradient is not the loss's derivative, so it is a
    ``jax.custom_vjp`` rule, and JAX has no forward mode for those.

    Precision: float32 and float64 as given. torch's CPU kernel has no half-precision CTC
    (``NotImplementedError``); here ``float16`` / ``bfloat16`` are computed in float32 and the
    result is rounded back.

    Under ``jit``: the scan runs over all ``T`` steps with a static target bound: the largest
    ``target_lengths`` when the lengths are concrete (torch's), else ``targets.shape[1]`` for
    padded or ``targets.shape[0]`` (the total) for concatenated targets, which costs time but
    gives the same numbers. Shape, dtype and ``blank`` mistakes raise ``ValueError`` /
    ``TypeError`` at trace time. Data-dependent mistakes (a length out of range,
    ``sum(target_lengths) != targets.shape[0]``, a target outside ``[0, C)``) raise
    ``ValueError`` when the lengths and targets are concrete; traced, the affected sequences get
    a NaN loss and NaN gradients (for concatenated targets with a wrong total: every sequence).
    torch does not check target values (it reads out of bounds); we raise instead.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> log_probs = jax.nn.log_softmax(jnp.zeros((4, 1, 3)), axis=2)    # (T, N, C), uniform
      >>> targets = jnp.array([[1, 2]])
      >>> F.ctc_loss(log_probs, targets, input_lengths=[4], target_lengths=[2], reduction='sum')
      Array(1.6863..., dtype=float32)
      >>> F.ctc_loss(log_probs, targets, [4], [2])
      Array(0.8431..., dtype=float32)
    """
    reduction = resolve_reduction(reduction)
    log_probs = as_array(log_probs, "log_probs", _FN)
    check_floating(log_probs, "log_probs", _FN)
    if log_probs.ndim not in (2, 3):
        raise ValueError(
            f"{_FN}: 'log_probs' must be (T, N, C) or unbatched (T, C), got shape {tuple(log_probs.shape)}"
        )
    if log_probs.size == 0:
        raise ValueError(f"{_FN}: 'log_probs' tensor must not be empty, got shape {tuple(log_probs.shape)}")
    batched = log_probs.ndim == 3
    lp = log_probs if batched else log_probs[:, None, :]
    t_max, batch, n_classes = lp.shape
    blank = static_int(blank, "blank", _FN)
    if not 0 <= blank < n_classes:
        raise ValueError(f"{_FN}: 'blank' must be in label range [0, {n_classes}), got {blank}")
    if is_tracer(zero_infinity) or not isinstance(zero_infinity, (bool, np.bool_)):
        raise TypeError(f"{_FN}: argument 'zero_infinity' must be a bool, got {type(zero_infinity).__name__}")
    zero_infinity = bool(zero_infinity)

    targets_np = concrete_numpy(targets)
    targets = as_array(targets, "targets", _FN)
    if targets.ndim not in (1, 2):
        raise ValueError(
            f"{_FN}: 'targets' must have 1 (concatenated) or 2 (padded) dimensions, got shape {tuple(targets.shape)}"
        )
    if jnp.issubdtype(targets.dtype, jnp.complexfloating):
        raise TypeError(f"{_FN}: argument 'targets' must hold class indices, got dtype {targets.dtype}")
    if not jnp.issubdtype(targets.dtype, jnp.integer):
        targets = targets.astype(jnp.int32)  # torch: targets.to(long), truncating floats
        if targets_np is not None:
            targets_np = np.trunc(targets_np.astype(np.float64)).astype(np.int64)
    il, il_np = _lengths(input_lengths, "input_lengths", batch)
    tl, tl_np = _lengths(target_lengths, "target_lengths", batch)

    if il_np is not None:
        if (il_np < 0).any():
            raise ValueError(
                f"{_FN}: Expected 'input_lengths' to have value at least 0, but got value {il_np[il_np < 0][0]}"
            )
        if (il_np > t_max).any():
            raise ValueError(
                f"{_FN}: Expected 'input_lengths' to have value at most {t_max}, but got value "
                f"{il_np[il_np > t_max][0]}"
            )
    labels, valid = _padded_targets(targets, targets_np, tl, tl_np, batch, n_classes)
    valid = valid & (il >= 0) & (il <= t_max)

    return _reduce_nll(
        lp, labels, il, tl, valid, blank=blank, zero_infinity=zero_infinity, reduction=reduction, batched=batched
    )


@functools.partial(jax.jit, static_argnames=("blank", "zero_infinity", "reduction", "batched"))
def _reduce_nll(lp, labels, il, tl, valid, *, blank, zero_infinity, reduction, batched):
    # one compiled program for eager calls (the recursions are many small ops); inlined under jit
    work, out_dtype = compute_dtype(lp.dtype)
    nll = _ctc_nll(
        lp.astype(work),
        labels.astype(jnp.int32),
        il.astype(jnp.int32),
        tl.astype(jnp.int32),
        valid,
        blank,
        zero_infinity,
    )
    nll = jnp.asarray(nll)
    if zero_infinity:
        nll = jnp.where(nll == jnp.inf, jnp.zeros((), nll.dtype), nll)
    if reduction == "mean":
        loss = mean_per_length(nll, tl)
    else:
        loss = apply_reduction(nll if batched else nll[0], reduction)
    return loss.astype(out_dtype)


class CTCLoss(_Loss):
    """Connectionist Temporal Classification loss; see [`losses_jax.ctc_loss`][losses_jax.ctc_loss].

    ``CTCLoss(blank=0, reduction='mean', zero_infinity=False)``; call as
    ``loss(log_probs, targets, input_lengths, target_lengths)``.
    Shapes: log_probs ``(T, N, C)`` or ``(T, C)``; targets ``(N, S)`` or
    ``(sum(target_lengths),)``; lengths ``(N)`` or ``()``; output scalar, or ``(N)`` / ``()``
    for ``'none'``.
    """

    _defaults = {"reduction": "mean", "blank": 0, "zero_infinity": False}

    def __init__(self, blank: int = 0, reduction: Reduction = "mean", zero_infinity: bool = False) -> None:
        super().__init__(reduction=reduction)
        self.blank = static_int(blank, "blank", _FN)
        if not isinstance(zero_infinity, (bool, np.bool_)):
            raise TypeError(f"CTCLoss: argument 'zero_infinity' must be a bool, got {type(zero_infinity).__name__}")
        self.zero_infinity = bool(zero_infinity)

    def forward(
        self,
        log_probs: ArrayLike,
        targets: ArrayLike,
        input_lengths: ArrayLike | Sequence[int],
        target_lengths: ArrayLike | Sequence[int],
    ) -> jax.Array:
        return ctc_loss(
            log_probs,
            targets,
            input_lengths,
            target_lengths,
            blank=self.blank,
            reduction=self.reduction,
            zero_infinity=self.zero_infinity,
        )
