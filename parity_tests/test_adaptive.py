"""AdaptiveLogSoftmaxWithLoss beyond the fixed cases (parity_tests/cases/adaptive.py, run by
test_cases.py): torch's errors, NaN for out-of-range targets under jit, the state_dict round trip."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
import torch

import losses_jax

H, C = 8, 20


def _pair(cutoffs=(5, 10, 15), head_bias=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about its zero-element weights
        tm = torch.nn.AdaptiveLogSoftmaxWithLoss(H, C, list(cutoffs), head_bias=head_bias)
    jm = losses_jax.AdaptiveLogSoftmaxWithLoss(H, C, cutoffs, head_bias=head_bias)
    jm.load_state_dict(tm.state_dict())
    return tm, jm


@pytest.mark.parametrize("cutoffs", [[], [0], [5, 5], [6, 5], [20], [25], [2.5], [-1, 3]])
def test_bad_cutoffs_raise_torchs_error(cutoffs):
    with pytest.raises(ValueError) as theirs:
        torch.nn.AdaptiveLogSoftmaxWithLoss(H, C, cutoffs)
    with pytest.raises(ValueError) as ours:
        losses_jax.AdaptiveLogSoftmaxWithLoss(H, C, cutoffs)
    assert str(ours.value) == str(theirs.value)


def test_float_cutoff_is_a_type_error():
    with pytest.raises(TypeError):
        torch.nn.AdaptiveLogSoftmaxWithLoss(H, C, [2.0])
    with pytest.raises(TypeError, match="'cutoffs'"):
        losses_jax.AdaptiveLogSoftmaxWithLoss(H, C, [2.0])


x = np.random.default_rng(0).normal(size=(4, H)).astype(np.float32)
t = np.array([0, 6, 12, 19])
BAD = [
    ("batch sizes", (x, t[:3]), "same size in the batch dimension"),
    ("1-D target, 3-D input", (x[:, None], t), "1D target tensor expects 2D input"),
    ("0-D target, 2-D input", (x, t[0]), "0D target tensor expects 1D input"),
    ("2-D target", (x, t[None]), "multi-target not supported"),
    ("in_features", (x[:, :5], t), "in_features"),
    ("dtype", (x.astype(np.float16), t), "dtype"),
    ("float target", (x, t.astype(np.float32)), "'target'"),
]


@pytest.mark.parametrize("desc,args,text", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_like_torch(desc, args, text):
    tm, jm = _pair()
    with pytest.raises((RuntimeError, ValueError, IndexError, TypeError)):
        tm(*(torch.from_numpy(np.asarray(a)) for a in args))
    with pytest.raises((ValueError, TypeError)) as info:
        jm(*args)
    assert text in str(info.value)
    with pytest.raises((ValueError, TypeError)):
        jax.jit(lambda a, b: jm(a, b))(*args)


@pytest.mark.parametrize("method", ["log_prob", "predict"])
def test_methods_take_batches_only(method):
    tm, jm = _pair()
    with pytest.raises(IndexError):
        getattr(tm, method)(torch.from_numpy(x[0]))
    with pytest.raises(ValueError, match="'input'"):
        getattr(jm, method)(x[0])


@pytest.mark.parametrize("bad", [20, -1])
def test_target_out_of_range(bad):
    tm, jm = _pair()
    tb = np.array([0, bad, 12, 3])
    with pytest.raises(RuntimeError) as theirs:
        tm(torch.from_numpy(x), torch.from_numpy(tb))
    with pytest.raises(ValueError) as ours:
        jm(x, tb)
    assert str(theirs.value) in str(ours.value)
    # under jit the values are unknown: that row, the loss and the gradients are NaN
    out = jax.jit(lambda a, b: jm(a, b))(x, tb)
    assert np.isnan(out.output[1]) and np.isfinite(np.delete(np.asarray(out.output), 1)).all()
    assert np.isnan(out.loss)
    g = jax.jit(jax.grad(lambda a, b: jm(a, b).loss))(x, tb)
    assert np.isnan(np.asarray(g)).any()


@pytest.mark.parametrize("head_bias", [False, True])
def test_state_dict_round_trip_is_exact(head_bias):
    tm, jm = _pair(head_bias=head_bias)
    ours = jm.state_dict()
    assert list(ours) == list(tm.state_dict())
    for k, v in tm.state_dict().items():
        np.testing.assert_array_equal(ours[k], v.numpy())
    fresh = torch.nn.AdaptiveLogSoftmaxWithLoss(H, C, [5, 10, 15], head_bias=head_bias)
    fresh.load_state_dict(jm.state_dict(as_torch=True), strict=True)
    for a, b in zip(fresh.state_dict().values(), tm.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_load_state_dict_checks_keys_and_shapes():
    tm, jm = _pair()
    sd = tm.state_dict()
    with pytest.raises(KeyError, match="head.bias"):
        jm.load_state_dict({k: v for k, v in sd.items() if k != "head.bias"})
    missing = jm.load_state_dict({k: v for k, v in sd.items() if k != "head.bias"}, strict=False)
    assert missing.missing_keys == ["head.bias"] and missing.unexpected_keys == []
    with pytest.raises(ValueError, match="head.weight"):
        jm.load_state_dict(dict(sd, **{"head.weight": torch.zeros(3, 3)}))


def test_init_distribution_and_key():
    a = losses_jax.AdaptiveLogSoftmaxWithLoss(H, C, [5, 10], head_bias=True, key=jax.random.key(1))
    b = losses_jax.AdaptiveLogSoftmaxWithLoss(H, C, [5, 10], head_bias=True, key=jax.random.key(2))
    for name, v in a.params.items():
        fan_in = v.shape[-1] if name != "head.bias" else H
        assert v.size == 0 or np.abs(np.asarray(v)).max() <= 1 / np.sqrt(fan_in)
    assert not np.array_equal(a.params["head.weight"], b.params["head.weight"])
