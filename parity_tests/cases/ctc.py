"""ctc_loss and CTCLoss: layouts, reductions, zero_infinity, blank, torch's gradient convention.

Every case uses the CTC tolerance of the GUIDE (the reduction rtol: 2e-4 in float32). Inputs are
``log_softmax`` outputs unless a family says otherwise; the "unnormalised" family feeds raw scores,
where torch's gradient (``exp(lp) - occupancy``) differs from the plain partial derivative.
"""

from __future__ import annotations

import functools
import itertools

import jax
import numpy as np
import torch.nn.functional as TF

import losses_jax

from ..harness import Case
from ._data import FLOAT_DTYPES, HALF_DTYPES, REDUCTIONS, normal, rng

T, N, C, S = 7, 4, 5, 3


def _log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _lp(key, shape, scale=2.0):
    return _log_softmax(normal(("ctc", key), shape, scale))


# targets with repeats (2 2), a blank inside a target (0 with blank=0), a length-0 target, and
# inputs shorter than T; "1 1 1" needs 5 steps (1 b 1 b 1) and gets exactly 5.
PADDED = np.array([[1, 2, 2], [3, 0, 4], [1, 1, 1], [4, 4, 4]])
TARGET_LENGTHS = np.array([3, 2, 3, 0])
INPUT_LENGTHS = np.array([7, 6, 5, 3])


def _concat(padded, lengths):
    return np.concatenate([padded[n, : lengths[n]] for n in range(len(lengths))]).astype(np.int64)


def _traced(**kw):
    """losses_jax.ctc_loss with the lengths and targets traced (static bounds from shapes)."""
    return lambda lp, tg, il, tl: jax.jit(functools.partial(losses_jax.ctc_loss, **kw))(lp, tg, il, tl)


def _torch_in_float32(lp, tg, il, tl, **kw):
    # torch's CPU kernel has no half-precision CTC: compare with float32 on the rounded inputs
    return TF.ctc_loss(lp.float(), tg, il, tl, **kw).to(lp.dtype)


def _cases(dtype: str) -> list[Case]:
    out = []
    fam = lambda what: f"ctc_loss: {what}"
    add = lambda what, args, kw, label, **extra: out.append(
        Case(fam(what), "ctc_loss", args, kw, dtype=dtype, label=label, kind="reduction", **extra)
    )
    lp = _lp("x", (T, N, C))
    concat = _concat(PADDED, TARGET_LENGTHS)
    for red in REDUCTIONS:
        kw = {"reduction": red}
        add("padded targets x reductions", (lp, PADDED, INPUT_LENGTHS, TARGET_LENGTHS), kw, red)
        add("concatenated targets x reductions", (lp, concat, INPUT_LENGTHS, TARGET_LENGTHS), kw, red)
        # the torch example's regime: every input full length, longer sequences
        big = _lp("big", (20, 3, 6))
        tg = rng("ctc-big").integers(1, 6, size=(3, 8))
        add("padded targets x reductions", (big, tg, np.array([20, 20, 20]), np.array([8, 5, 6])), kw, f"T=20,{red}")
        # unnormalised scores: torch's gradient convention shows here
        raw = normal(("ctc", "raw"), (T, N, C), 2.0)
        add("unnormalised log_probs (torch's gradient)", (raw, PADDED, INPUT_LENGTHS, TARGET_LENGTHS), kw, red)
        # impossible alignments: inf, or 0 with zero_infinity (NaN / zero gradients as torch)
        imp_il = np.array([7, 3, 4, 0])  # "1 1 1" needs 5 > 4 steps; length 0 with an empty target
        for zi in (False, True):
            add(
                "edge: impossible alignments (inf, zero_infinity)",
                (lp, PADDED, imp_il, TARGET_LENGTHS),
                dict(kw, zero_infinity=zi),
                f"{red},zi={zi}",
            )
        # traced lengths and targets: static bounds from the shapes
        zi = red == "sum"
        add(
            "traced lengths and targets (jit)",
            (lp, PADDED, INPUT_LENGTHS, TARGET_LENGTHS),
            {},
            f"padded,{red},zi={zi}",
            jax_fn=_traced(reduction=red, zero_infinity=zi),
            torch_fn=functools.partial(TF.ctc_loss, reduction=red, zero_infinity=zi),
        )
        add(
            "traced lengths and targets (jit)",
            (lp, concat, imp_il, TARGET_LENGTHS),
            {},
            f"concatenated,impossible,{red},zi={zi}",
            jax_fn=_traced(reduction=red, zero_infinity=zi),
            torch_fn=functools.partial(TF.ctc_loss, reduction=red, zero_infinity=zi),
        )
    # zero_infinity on possible alignments changes nothing
    add(
        "padded targets x reductions",
        (lp, PADDED, INPUT_LENGTHS, TARGET_LENGTHS),
        {"reduction": "mean", "zero_infinity": True},
        "mean,zi=True",
    )
    # padded wider than the longest target
    wide = np.concatenate([PADDED, np.full((N, 2), 3)], axis=1)
    add("padded targets x reductions", (lp, wide, INPUT_LENGTHS, TARGET_LENGTHS), {"reduction": "sum"}, "S=5,sum")
    # zero input lengths: 0 for an empty target, inf (gradient 0, not NaN) otherwise
    for zi in (False, True):
        add(
            "edge: impossible alignments (inf, zero_infinity)",
            (lp, PADDED, np.array([0, 0, 2, 1]), np.array([3, 0, 1, 1])),
            {"reduction": "sum", "zero_infinity": zi},
            f"zero input lengths,zi={zi}",
        )
    # lists and tuples for the lengths
    add(
        "lengths as lists/tuples",
        (lp, PADDED, INPUT_LENGTHS.tolist(), tuple(TARGET_LENGTHS.tolist())),
        {"reduction": "none"},
        "list,tuple",
    )
    # unbatched: (T, C) with (S,) concatenated targets and 0-d lengths, or a (1, S) target
    for red in ("none", "mean"):
        add("unbatched (T, C)", (lp[:, 0], PADDED[0], np.array(6), np.array(3)), {"reduction": red}, f"(S,),{red}")
    add("unbatched (T, C)", (lp[:, 1], PADDED[1:2], np.array([7]), np.array([2])), {"reduction": "none"}, "(1,S)")
    # a non-zero blank: 0 becomes an ordinary label, and the targets may hold the blank
    tg = np.array([[0, 2, 1], [3, 1, 4], [4, 0, 0], [2, 2, 2]])
    for red, blank in (("mean", 1), ("none", C - 1)):
        add(
            "blank index",
            (lp, tg, INPUT_LENGTHS, np.array([3, 3, 2, 1])),
            {"reduction": red, "blank": blank},
            f"blank={blank},{red}",
        )
    # a blank as the *last* target label: torch's kernel drops one term at t = T_n - 1
    tg = np.array([[1, 0], [0, 0], [2, 0], [0, 3]])
    add(
        "edge: blank inside targets",
        (lp, tg, np.array([7, 5, 2, 4]), np.array([2, 2, 2, 2])),
        {"reduction": "none"},
        "log_softmax",
    )
    add(
        "edge: blank inside targets",
        (_lp("raw0", (T, N, C)) * 1.7, tg, np.array([7, 5, 2, 4]), np.array([2, 1, 2, 2])),
        {"reduction": "sum"},
        "unnormalised",
    )
    # -inf log-probabilities (a hard mask) and NaN: torch's NaN gradient pattern
    minf = lp.copy()
    minf[0, 0, 3] = -np.inf  # a class not in the target
    minf[2, 1, 3] = -np.inf  # a class in the target
    minf[1, 2, 0] = -np.inf  # the blank
    minf[6, 3, 2] = -np.inf  # beyond the input length
    add("edge: -inf / NaN log_probs", (minf, PADDED, INPUT_LENGTHS, TARGET_LENGTHS), {"reduction": "none"}, "-inf")
    nan = lp.copy()
    nan[3, 0, 2] = np.nan  # read by the recursion
    nan[1, 1, 1] = np.nan  # a class not in the target
    nan[6, 2, 0] = np.nan  # beyond the input length: no effect
    add("edge: -inf / NaN log_probs", (nan, PADDED, INPUT_LENGTHS, TARGET_LENGTHS), {"reduction": "sum"}, "NaN")
    # extremes: T = 1, C = 1 (only the blank, empty targets), and (float64 only) very peaked
    # distributions: in float32 torch's own gradient there is off by ~1e-5 absolute (log-space
    # terms of magnitude |nll| ~ 500 cancel), beyond what atol 1e-6 can compare.
    add(
        "edge: extreme log_probs, T = 1, C = 1",
        (_lp("t1", (1, 3, 4)), np.array([[2], [1], [3]]), np.array([1, 1, 1]), np.array([1, 0, 1])),
        {"reduction": "none"},
        "T=1",
    )
    add(
        "edge: extreme log_probs, T = 1, C = 1",
        (normal("c1", (4, 2, 1)), np.zeros((2, 0), np.int64), np.array([4, 2]), np.array([0, 0])),
        {"reduction": "mean"},
        "C=1",
    )
    if dtype == "float64":
        add(
            "edge: extreme log_probs, T = 1, C = 1",
            (_lp("peak", (T, N, C), 40.0), PADDED, INPUT_LENGTHS, TARGET_LENGTHS),
            {"reduction": "sum"},
            "peaked",
        )
    else:
        add(
            "edge: extreme log_probs, T = 1, C = 1",
            (_lp("peak4", (T, N, C), 4.0), PADDED, INPUT_LENGTHS, TARGET_LENGTHS),
            {"reduction": "sum"},
            "peaked (x4)",
        )
    for kw in ({}, {"blank": 2, "reduction": "sum"}, {"zero_infinity": True, "reduction": "none"}):
        out.append(
            Case(
                fam("class API"),
                "CTCLoss",
                (lp, PADDED, INPUT_LENGTHS, TARGET_LENGTHS),
                module_kwargs=kw,
                dtype=dtype,
                label=str(sorted(kw)),
                kind="reduction",
            )
        )
    return out


def cases() -> list[Case]:
    out = []
    for dtype in FLOAT_DTYPES:
        out += _cases(dtype)
    lp = _lp("h", (T, N, C))
    for dtype, red in itertools.product(HALF_DTYPES, ("none", "mean")):
        out.append(
            Case(
                "ctc_loss: half precision (torch: float32)",
                "ctc_loss",
                (lp, PADDED, INPUT_LENGTHS, TARGET_LENGTHS),
                {"reduction": red},
                dtype=dtype,
                label=red,
                torch_fn=_torch_in_float32,
                kind="reduction",
            )
        )
    return out
