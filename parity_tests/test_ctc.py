"""ctc_loss: hypothesis-drawn problems through the parity harness, and error parity with torch.

Hypothesis draws the structure (T, N, C, S, every length, blank, reduction, zero_infinity, padded
or concatenated targets, normalised or raw scores, traced or concrete lengths, dtype); the
numbers come from a drawn seed. Lengths are drawn freely, so impossible alignments (inf, NaN
gradients) and zero lengths occur naturally.
"""

from __future__ import annotations

import functools
import warnings

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import losses_jax as F
from parity_tests.harness import Case, assert_case


@st.composite
def ctc_problem(draw):
    t = draw(st.integers(1, 8))
    n = draw(st.integers(1, 4))
    c = draw(st.integers(1, 6))
    s = draw(st.integers(0, 5))
    il = draw(st.lists(st.integers(0, t), min_size=n, max_size=n))
    tl = draw(st.lists(st.integers(0, s), min_size=n, max_size=n))
    blank = draw(st.integers(0, c - 1))
    return t, n, c, s, np.array(il), np.array(tl), blank


@settings(max_examples=25)
@given(
    problem=ctc_problem(),
    reduction=st.sampled_from(["none", "mean", "sum"]),
    zero_infinity=st.booleans(),
    concatenated=st.booleans(),
    normalised=st.booleans(),
    avoid_blank=st.booleans(),
    traced=st.booleans(),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_ctc_random(problem, reduction, zero_infinity, concatenated, normalised, avoid_blank, traced, dtype, seed):
    t, n, c, s, il, tl, blank = problem
    g = np.random.default_rng(seed)
    x = g.normal(size=(t, n, c)) * g.choice([0.5, 2.0, 8.0])
    if normalised:
        m = x.max(-1, keepdims=True)
        x = x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))
    targets = g.integers(0, c, size=(n, s))
    if avoid_blank and c > 1:  # the usual case; otherwise blanks inside targets are allowed
        targets = np.where(targets == blank, (blank + 1) % c, targets)
    if concatenated:
        targets = np.concatenate([targets[k, : tl[k]] for k in range(n)]).astype(np.int64)
    kw = {"blank": blank, "reduction": reduction, "zero_infinity": zero_infinity}
    if dtype == "float32":
        # float32 CTC gradients carry ~|nll| * 1e-7 of absolute rounding noise, in torch's kernel
        # as in ours (log-space terms of size |nll| cancel). Against the harness's atol of 1e-6
        # that is only meaningful at moderate nll: larger losses are compared in float64, where
        # the same code is checked to 1e-7.
        ref = TF.ctc_loss(
            torch.from_numpy(x),
            torch.from_numpy(np.asarray(targets, np.int64)),
            torch.from_numpy(il),
            torch.from_numpy(tl),
            blank=blank,
            reduction="none",
            zero_infinity=True,
        )
        if float(ref.abs().max()) > 5.0:
            dtype = "float64"
    extra = {}
    if traced:
        extra = {
            "jax_fn": lambda *a: jax.jit(functools.partial(F.ctc_loss, **kw))(*a),
            "torch_fn": functools.partial(TF.ctc_loss, **kw),
        }
    assert_case(
        Case(
            "hypothesis",
            "ctc_loss",
            (x, targets, il, tl),
            {} if traced else kw,
            dtype=dtype,
            kind="reduction",
            label=f"T={t},N={n},C={c},S={s}",
            **extra,
        )
    )


# -- errors ---------------------------------------------------------------------------------

lp = np.log(np.full((5, 2, 4), 0.25, np.float32))
tg = np.array([[1, 2, 2], [1, 3, 3]])
il = np.array([5, 4])
tl = np.array([3, 2])

# (description, args, kwargs, exception, text our message contains); torch raises on each too
STATIC = [
    ("unknown reduction", (lp, tg, il, tl), {"reduction": "avg"}, ValueError, "avg is not a valid value for reduction"),
    ("log_probs 1-D", (lp[:, 0, 0], tg, il, tl), {}, ValueError, "'log_probs'"),
    ("log_probs 4-D", (lp[None], tg, il, tl), {}, ValueError, "'log_probs'"),
    ("integer log_probs", (np.zeros((5, 2, 4), np.int32), tg, il, tl), {}, TypeError, "'log_probs'"),
    ("empty log_probs (N = 0)", (lp[:, :0], tg[:0], il[:0], tl[:0]), {}, ValueError, "'log_probs'"),
    ("empty log_probs (T = 0)", (lp[:0], tg, np.array([0, 0]), tl), {}, ValueError, "'log_probs'"),
    ("blank = C", (lp, tg, il, tl), {"blank": 4}, ValueError, "'blank'"),
    ("blank negative", (lp, tg, il, tl), {"blank": -1}, ValueError, "'blank'"),
    ("blank float", (lp, tg, il, tl), {"blank": 1.0}, TypeError, "'blank'"),
    ("blank bool", (lp, tg, il, tl), {"blank": True}, TypeError, "'blank'"),
    ("zero_infinity int", (lp, tg, il, tl), {"zero_infinity": 1}, TypeError, "'zero_infinity'"),
    ("targets 3-D", (lp, tg[None], il, tl), {}, ValueError, "'targets'"),
    ("targets 0-D", (lp, np.array(1), il, tl), {}, ValueError, "'targets'"),
    ("padded targets batch mismatch", (lp, tg[:1], il, tl), {}, ValueError, "'targets'"),
    ("input_lengths wrong size", (lp, tg, np.array([5, 4, 3]), tl), {}, ValueError, "'input_lengths'"),
    ("target_lengths wrong size", (lp, tg, il, np.array([3])), {}, ValueError, "'target_lengths'"),
    ("0-d lengths for a batch of 2", (lp, tg, np.array(5), np.array(3)), {}, ValueError, "'input_lengths'"),
    ("float input_lengths", (lp, tg, il.astype(np.float32), tl), {}, TypeError, "'input_lengths'"),
    ("float target_lengths", (lp, tg, il, tl.astype(np.float32)), {}, TypeError, "'target_lengths'"),
    ("bool input_lengths", (lp, tg, il.astype(bool), tl), {}, TypeError, "'input_lengths'"),
]

# data-dependent: torch raises; we raise when the lengths are concrete (NaN under jit: tests/)
CONCRETE = [
    ("input_lengths > T", (lp, tg, np.array([6, 4]), tl), "'input_lengths'"),
    ("input_lengths negative", (lp, tg, np.array([-1, 4]), tl), "'input_lengths'"),
    ("target_lengths negative", (lp, tg, il, np.array([-1, 2])), "'target_lengths'"),
    ("target_lengths negative (concatenated)", (lp, np.array([1, 2, 2]), il, np.array([-1, 4])), "'target_lengths'"),
    ("padded targets too short", (lp, tg[:, :2], il, tl), "'targets'"),
    ("concatenated total != sum", (lp, np.array([1, 2, 2, 1]), il, tl), "'targets'"),
    ("unbatched (S,) longer than the length", (lp[:, 0], np.array([1, 2, 2]), np.array(5), np.array(2)), "'targets'"),
]


def _torch(v):
    if isinstance(v, np.ndarray):
        return torch.from_numpy(v.astype(np.int64) if np.issubdtype(v.dtype, np.integer) else v)
    return v


def _torch_raises(args, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception):
            TF.ctc_loss(*map(_torch, args), **kwargs)


@pytest.mark.parametrize("name,args,kwargs,exc,text", STATIC, ids=[s[0] for s in STATIC])
def test_static_errors_match_torch(name, args, kwargs, exc, text):
    _torch_raises(args, kwargs)
    with pytest.raises(exc) as info:
        F.ctc_loss(*args, **kwargs)
    assert text in str(info.value)


@pytest.mark.parametrize("name,args,kwargs,exc,text", STATIC, ids=[s[0] for s in STATIC])
def test_static_errors_raise_at_trace_time(name, args, kwargs, exc, text):
    with pytest.raises(exc) as info:
        jax.jit(lambda *a: F.ctc_loss(*a, **kwargs))(*args)
    assert text in str(info.value)


@pytest.mark.parametrize("name,args,text", CONCRETE, ids=[s[0] for s in CONCRETE])
def test_data_dependent_errors_match_torch_when_concrete(name, args, text):
    _torch_raises(args, {})
    with pytest.raises(ValueError) as info:
        F.ctc_loss(*args)
    assert text in str(info.value)
    # concrete lengths closed over by a jitted function are still checked
    with pytest.raises(ValueError):
        jax.jit(lambda x: F.ctc_loss(x, *args[1:]))(args[0])


def test_plain_int_lengths_are_rejected_like_torch():
    with pytest.raises(TypeError):
        TF.ctc_loss(torch.from_numpy(lp[:, 0]), torch.tensor([1, 2, 2]), 5, 3)
    with pytest.raises(TypeError, match="'input_lengths'"):
        F.ctc_loss(lp[:, 0], np.array([1, 2, 2]), 5, 3)
    with pytest.raises(TypeError):
        TF.ctc_loss(torch.from_numpy(lp), torch.from_numpy(tg), [5.0, 4.0], [3, 2])
    with pytest.raises(TypeError, match="'input_lengths'"):
        F.ctc_loss(lp, tg, [5.0, 4.0], [3, 2])


def test_half_precision_is_not_in_torch_cpu():
    """Documented difference: torch's CPU kernel rejects half inputs; we compute in float32."""
    with pytest.raises(NotImplementedError):
        TF.ctc_loss(torch.from_numpy(lp).half(), torch.from_numpy(tg), torch.from_numpy(il), torch.from_numpy(tl))
    out = F.ctc_loss(lp.astype(np.float16), tg, il, tl)
    assert out.dtype == np.float16


@pytest.mark.parametrize("bad", [4, -1, 7])
def test_out_of_range_targets_raise_where_torch_reads_out_of_bounds(bad):
    """Deliberately stricter: torch does not check target values (it reads out of bounds and
    returns an arbitrary number); we raise ValueError naming 'targets' when they are concrete."""
    t = tg.copy()
    t[0, 0] = bad
    TF.ctc_loss(
        torch.from_numpy(lp.astype(np.float64)), torch.from_numpy(t), torch.from_numpy(il), torch.from_numpy(tl)
    )  # no error in torch
    with pytest.raises(ValueError, match="'targets'"):
        F.ctc_loss(lp, t, il, tl)
    # beyond the target length the value is padding and is never read, in torch and here
    t2 = tg.copy()
    t2[1, 2] = bad
    assert np.isfinite(float(F.ctc_loss(lp, t2, il, tl)))
