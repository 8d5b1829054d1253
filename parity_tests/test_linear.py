"""linear_cross_entropy against torch beyond the fixed cases (parity_tests/cases/linear.py, run by
test_cases.py): bad input, where torch's two paths disagree, and hypothesis-drawn problems."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import losses_jax
from losses_jax import LinearCrossEntropyOptions
from parity_tests.cases._data import class_targets, normal, positive, probabilities
from parity_tests.cases.linear import _fns
from parity_tests.harness import Case, assert_case

x64 = normal("lx", (6, 4)).astype(np.float32)
w54 = normal("lw", (5, 4)).astype(np.float32)
t6 = np.array([0, 1, 2, 3, 4, 0])
p65 = probabilities("lp", (6, 5), 1).astype(np.float32)

# (description, args, kwargs, text our message contains); torch raises on each too.
BAD = [
    ("3-D input", (x64[None], w54, t6), {}, "'input'"),
    ("0-D input", (np.float32(1.0), w54, t6), {}, "'input'"),
    ("1-D linear_weight", (x64, w54[0], t6), {}, "'linear_weight'"),
    ("in_features mismatch", (x64, w54[:, :3], t6), {}, "'linear_weight'"),
    ("bias shape", (x64, w54, t6), {"linear_bias": np.zeros(4, np.float32)}, "'linear_bias'"),
    (
        "bias shape K-dim",
        (x64, normal("k", (5, 2, 4)).astype(np.float32), np.zeros((6, 2), int)),
        {"linear_bias": np.zeros(5, np.float32)},
        "'linear_bias'",
    ),
    ("K-dim unbatched", (x64[0], normal("k", (5, 2, 4)).astype(np.float32), np.zeros(2, int)), {}, "batched"),
    ("ignore_index with probabilities", (x64, w54, p65), {"ignore_index": -100}, "'ignore_index'"),
    ("weight length", (x64, w54, t6), {"weight": np.ones(4, np.float32)}, "'weight'"),
    ("label_smoothing > 1", (x64, w54, t6), {"label_smoothing": 1.5}, "'label_smoothing'"),
    ("reduction", (x64, w54, t6), {"reduction": "avg"}, "avg is not a valid value for reduction"),
    ("batch size", (x64, w54, t6[:5]), {}, "batch_size"),
    ("dtype mismatch", (x64, w54.astype(np.float16), t6), {}, "'linear_weight'"),
    ("float target of index shape", (x64, w54, t6.astype(np.float32)), {}, "'target'"),
]


@pytest.mark.parametrize("chunked", [False, True], ids=["reference", "chunked"])
@pytest.mark.parametrize("desc,args,kw,text", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_like_torch(desc, args, kw, text, chunked):
    targs = [torch.from_numpy(np.asarray(a)) for a in args]
    tkw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    topts = torch.nn.LinearCrossEntropyOptions() if chunked else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((RuntimeError, ValueError, IndexError, TypeError)):
            TF.linear_cross_entropy(*targs, options=topts, **tkw)
    opts = LinearCrossEntropyOptions(batch_chunk_size=2) if chunked else None
    with pytest.raises((ValueError, TypeError)) as info:
        losses_jax.linear_cross_entropy(*args, options=opts, **kw)
    assert text in str(info.value)
    # static mistakes are found at trace time, under jit too
    with pytest.raises((ValueError, TypeError)):
        jax.jit(lambda *a: losses_jax.linear_cross_entropy(*a, options=opts, **kw))(*args)


@pytest.mark.parametrize("chunked", [False, True])
def test_out_of_bounds_target(chunked):
    t = np.array([0, 1, 7, 3, 4, 0])
    with pytest.raises((IndexError, RuntimeError)):
        TF.linear_cross_entropy(
            torch.from_numpy(x64),
            torch.from_numpy(w54),
            torch.from_numpy(t),
            options=torch.nn.LinearCrossEntropyOptions() if chunked else None,
        )
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        losses_jax.linear_cross_entropy(x64, w54, t, options=LinearCrossEntropyOptions() if chunked else None)


def test_options_type_checked():
    with pytest.raises(TypeError, match="'options'"):
        losses_jax.linear_cross_entropy(x64, w54, t6, options=torch.nn.LinearCrossEntropyOptions())


@pytest.mark.parametrize("target", [np.full(6, -100), np.array(-100)], ids=["batched", "unbatched"])
def test_torch_paths_disagree_when_every_target_is_ignored(target):
    """torch 2.13's chunked op gives NaN gradients for 'mean' with every target ignored, where
    its reference path (and cross_entropy) gives zeros. Ours gives zeros on both paths: the
    chunked path keeps cross_entropy's semantics. (An exact record of the difference: if torch
    changes, this test says so.)"""
    x = x64[0] if target.ndim == 0 else x64
    grads = {}
    for name, opts in [("reference", None), ("chunked", torch.nn.LinearCrossEntropyOptions())]:
        xt = torch.from_numpy(x).requires_grad_()
        loss = TF.linear_cross_entropy(xt, torch.from_numpy(w54), torch.from_numpy(target), options=opts)
        loss.backward()
        assert torch.isnan(loss)
        grads[name] = xt.grad.numpy()
    assert (grads["reference"] == 0).all() and np.isnan(grads["chunked"]).all()
    for opts in (None, LinearCrossEntropyOptions(batch_chunk_size=4)):
        val, g = jax.value_and_grad(lambda x: losses_jax.linear_cross_entropy(x, w54, target, options=opts))(x)
        assert np.isnan(val) and (np.asarray(g) == 0).all()


@st.composite
def problems(draw):
    n = draw(st.integers(0, 9))
    h = draw(st.integers(1, 5))
    c = draw(st.integers(1, 6))
    dk = draw(st.sampled_from([(), (2,)]))
    probs = draw(st.booleans())
    red = draw(st.sampled_from(["none", "mean", "sum"]))
    chunk = draw(st.sampled_from([None, 1, 2, 3, 5, 16, "auto"]))
    unbatched = not dk and draw(st.booleans())
    kw = {"reduction": red}
    if draw(st.booleans()):
        kw["weight"] = positive(("hw", c), (c,))
    if draw(st.booleans()):
        kw["label_smoothing"] = draw(st.sampled_from([0.05, 0.5, 1.0]))
    key = (n, h, c, dk, probs)
    x = normal(("hx", key), (h,) if unbatched else (n, h), 2.0)
    w = normal(("hw", key), (c, *dk, h))
    lead = () if unbatched else (n,)
    if probs:
        t = probabilities(("ht", key), (*lead, c, *dk), 0 if unbatched else 1)
    else:
        ignore = draw(st.sampled_from([None, 0, -1]))
        if ignore is not None:
            kw["ignore_index"] = ignore
        t = class_targets(
            ("ht", key, ignore), (*lead, *dk), c, ignore=-100 if ignore is None else ignore, ignore_frac=0.3
        )
    args = (x, w, t)
    if draw(st.booleans()):
        args += (normal(("hb", key), (c, *dk)),)
    dtype = draw(st.sampled_from(["float32", "float64"]))
    return args, kw, chunk, dtype, probs


@settings(max_examples=25)
@given(problems())
def test_hypothesis_against_torch(problem):
    args, kw, chunk, dtype, probs = problem
    # Compared with torch's reference path: its chunked op departs from it (NaN gradients) when
    # the 'mean' normaliser is 0, which random problems hit (test above).
    tf, jf = _fns(chunk, torch_reference=True)
    grad = (0, 1) + ((2,) if probs else ()) + ((3,) if len(args) > 3 else ())
    assert_case(
        Case(
            "linear_cross_entropy: hypothesis",
            "linear_cross_entropy",
            args,
            kw,
            grad=grad,
            dtype=dtype,
            torch_fn=tf,
            jax_fn=jf,
            label=f"chunk={chunk}",
        )
    )
