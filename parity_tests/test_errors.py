"""Bad input: where torch raises, losses_jax raises too, with a ValueError/TypeError/IndexError
that names the argument, at trace time (under ``jit``) for static mistakes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import losses_jax as F
from parity_tests.errors import assert_rejected_like_torch, assert_rejected_while_tracing

x34 = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
t3 = np.array([0, 1, 2])

i2 = lambda *v: np.array(v)  # integer class indices
# (description, function name, positional args, kwargs, expected exception, text our message contains)
STATIC = [
    (
        "unknown reduction",
        "cross_entropy",
        (x34, t3),
        {"reduction": "avg"},
        ValueError,
        "avg is not a valid value for reduction",
    ),
    (
        "unknown reduction l1",
        "l1_loss",
        (x34, x34),
        {"reduction": "max"},
        ValueError,
        "max is not a valid value for reduction",
    ),
    (
        "unknown reduction mse weighted",
        "mse_loss",
        (x34, x34),
        {"reduction": "bad", "weight": x34},
        ValueError,
        "reduction",
    ),
    ("reduction not a string", "nll_loss", (x34, t3), {"reduction": None}, ValueError, "reduction"),
    ("batch size mismatch", "cross_entropy", (x34, i2(0, 1)), {}, ValueError, "batch_size"),
    ("nll batch size mismatch", "nll_loss", (x34, i2(0, 1)), {}, ValueError, "batch_size"),
    (
        "spatial size mismatch",
        "cross_entropy",
        (np.zeros((2, 3, 4, 5), np.float32), np.zeros((2, 4, 6), int)),
        {},
        ValueError,
        "'target' size",
    ),
    (
        "target rank",
        "cross_entropy",
        (np.zeros((2, 3, 4), np.float32), np.zeros((2,), int)),
        {},
        ValueError,
        "'target' size",
    ),
    ("target (N, 1) for (N, C)", "nll_loss", (x34, np.zeros((3, 1), int)), {}, ValueError, "'target' size"),
    (
        "1-D input, target too long",
        "cross_entropy",
        (np.zeros(3, np.float32), i2(1, 2)),
        {},
        ValueError,
        "1D target must have size 1",
    ),
    ("float target of index shape", "cross_entropy", (x34, np.array([0.0, 1.0, 2.0])), {}, TypeError, "'target'"),
    ("bool target", "nll_loss", (x34, np.array([True, False, True])), {}, TypeError, "'target'"),
    ("integer probability target", "cross_entropy", (x34, np.zeros((3, 4), int)), {}, TypeError, "'target'"),
    ("nll probability target", "nll_loss", (x34, x34), {}, TypeError, "'target'"),
    ("weight wrong length", "cross_entropy", (x34, t3), {"weight": np.ones(3, np.float32)}, ValueError, "'weight'"),
    (
        "weight wrong length (prob)",
        "cross_entropy",
        (x34, x34),
        {"weight": np.ones(3, np.float32)},
        ValueError,
        "'weight'",
    ),
    ("weight 2-D", "nll_loss", (x34, t3), {"weight": np.ones((1, 4), np.float32)}, ValueError, "'weight'"),
    ("label_smoothing > 1", "cross_entropy", (x34, t3), {"label_smoothing": 1.5}, ValueError, "'label_smoothing'"),
    ("integer input", "nll_loss", (np.zeros((2, 3), int), i2(0, 1)), {}, TypeError, "'input'"),
    ("integer input l1", "l1_loss", (i2(1, 2), i2(1, 3)), {}, TypeError, "'input'"),
    ("integer input mse", "mse_loss", (i2(1, 2), i2(1, 3)), {}, TypeError, "'input'"),
    (
        "shapes that do not broadcast",
        "mse_loss",
        (np.ones((3, 2), np.float32), np.zeros(3, np.float32)),
        {},
        ValueError,
        "'target'",
    ),
    (
        "weight shape != input shape",
        "mse_loss",
        (np.ones(3, np.float32), np.zeros(3, np.float32)),
        {"weight": np.ones(2, np.float32)},
        ValueError,
        "'weight'",
    ),
    (
        "weight shape != input shape l1",
        "l1_loss",
        (np.ones((3, 1), np.float32), np.zeros(3, np.float32)),
        {"weight": np.ones(3, np.float32)},
        ValueError,
        "'weight'",
    ),
    ("scalar input", "nll_loss", (np.array(0.1, np.float32), np.array(0)), {}, ValueError, "'input'"),
]


@pytest.mark.parametrize("name,fn,args,kwargs,exc,text", STATIC, ids=[s[0] for s in STATIC])
def test_static_errors_match_torch(name, fn, args, kwargs, exc, text):
    assert_rejected_like_torch(fn, args, kwargs, exc, text)


@pytest.mark.parametrize("name,fn,args,kwargs,exc,text", STATIC, ids=[s[0] for s in STATIC])
def test_static_errors_raise_at_trace_time(name, fn, args, kwargs, exc, text):
    """Under jit the arrays are tracers: static mistakes are still caught, while tracing."""
    assert_rejected_while_tracing(fn, args, kwargs, exc, text)


@pytest.mark.parametrize(
    "call,torch_call",
    [
        (lambda t: F.cross_entropy(x34, t), lambda t: TF.cross_entropy(torch.tensor(x34), t)),
        (lambda t: F.nll_loss(x34, t), lambda t: TF.nll_loss(torch.tensor(x34), t)),
        (
            lambda t: F.cross_entropy(x34, t, label_smoothing=0.2),
            lambda t: TF.cross_entropy(torch.tensor(x34), t, label_smoothing=0.2),
        ),
    ],
)
@pytest.mark.parametrize("bad", [4, -1, 100])
def test_out_of_range_target_concrete_raises_like_torch(call, torch_call, bad):
    t = np.array([0, bad, 1])
    with pytest.raises(IndexError) as theirs:
        torch_call(torch.tensor(t))
    with pytest.raises(IndexError) as ours:
        call(jnp.asarray(t))
    assert str(ours.value) == str(theirs.value)  # "Target 4 is out of bounds."


def test_out_of_range_ignored_target_is_fine():
    """An out-of-range value that equals ignore_index is not an error, in torch or here."""
    t = np.array([0, 9, 1])
    ref = TF.cross_entropy(torch.tensor(x34, dtype=torch.float64), torch.tensor(t), ignore_index=9).item()
    with jax.enable_x64(True):
        ours = float(F.cross_entropy(x34.astype(np.float64), t, ignore_index=9))
    assert ours == pytest.approx(ref, rel=1e-12)


def test_negative_label_smoothing_is_rejected_where_torch_ignores_it():
    """Deliberately stricter than torch: torch 2.13 checks only ``label_smoothing <= 1`` and
    silently treats a negative value as 0; a negative smoothing is always a mistake."""
    ref = TF.cross_entropy(torch.tensor(x34), torch.tensor(t3), label_smoothing=-0.1)
    assert ref.item() == pytest.approx(TF.cross_entropy(torch.tensor(x34), torch.tensor(t3)).item())
    with pytest.raises(ValueError, match="'label_smoothing' must be between 0.0 and 1.0"):
        F.cross_entropy(x34, t3, label_smoothing=-0.1)
    with pytest.raises(ValueError, match="'label_smoothing'"):
        F.CrossEntropyLoss(label_smoothing=-0.1)
