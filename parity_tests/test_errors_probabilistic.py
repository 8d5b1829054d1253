"""Bad input for huber/smooth_l1, binary cross-entropy (both), kl_div, poisson and gaussian NLL:
where torch raises, losses_jax raises too, a ValueError/TypeError naming the argument; static
mistakes are caught while tracing under ``jit`` too. Data-dependent errors (probabilities outside
[0, 1], negative variances) raise when the values are concrete; their under-``jit`` results
are tested in tests/test_probabilistic.py."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import losses_jax as F
from parity_tests.errors import assert_rejected_like_torch, assert_rejected_while_tracing, to_torch

g = np.random.default_rng(0)
x34 = g.normal(size=(3, 4)).astype(np.float32)
p34 = g.uniform(0.05, 0.95, size=(3, 4)).astype(np.float32)
x234 = g.normal(size=(2, 3, 4)).astype(np.float32)
ones = lambda *s: np.ones(s, np.float32)
ints = lambda *s: np.ones(s, np.int64)

# (description, function, positional args, kwargs, exception, text our message contains)
STATIC = [
    # binary_cross_entropy
    ("bce target size", "binary_cross_entropy", (p34, p34[0]), {}, ValueError, "'target' size"),
    ("bce broadcastable target size", "binary_cross_entropy", (p34[:, :1], p34), {}, ValueError, "'target' size"),
    ("bce integer target", "binary_cross_entropy", (p34, ints(3, 4)), {}, TypeError, "'target'"),
    ("bce integer input", "binary_cross_entropy", (ints(3, 4), p34), {}, TypeError, "'input'"),
    ("bce weight (3,) for (3, 4)", "binary_cross_entropy", (p34, p34), {"weight": ones(3)}, ValueError, "'weight'"),
    (
        "bce weight larger than input",
        "binary_cross_entropy",
        (p34, p34),
        {"weight": ones(2, 3, 4)},
        ValueError,
        "'weight'",
    ),
    (
        "bce unknown reduction",
        "binary_cross_entropy",
        (p34, p34),
        {"reduction": "batchmean"},
        ValueError,
        "batchmean is not a valid value for reduction",
    ),
    # binary_cross_entropy_with_logits
    ("bcel target size", "binary_cross_entropy_with_logits", (x234, x234[0]), {}, ValueError, "'target' size"),
    ("bcel integer target", "binary_cross_entropy_with_logits", (x34, ints(3, 4)), {}, TypeError, "'target'"),
    ("bcel integer input", "binary_cross_entropy_with_logits", (ints(3, 4), p34), {}, TypeError, "'input'"),
    (
        "bcel pos_weight (3,) for (2, 3, 4)",
        "binary_cross_entropy_with_logits",
        (x234, x234),
        {"pos_weight": ones(3)},
        ValueError,
        "'pos_weight'",
    ),
    (
        "bcel pos_weight (5,)",
        "binary_cross_entropy_with_logits",
        (x234, x234),
        {"pos_weight": ones(5)},
        ValueError,
        "'pos_weight'",
    ),
    (
        "bcel pos_weight larger than input",
        "binary_cross_entropy_with_logits",
        (x234, x234),
        {"pos_weight": ones(2, 1, 1, 1)},
        ValueError,
        "'pos_weight'",
    ),
    (
        "bcel weight (3,) for (2, 3, 4)",
        "binary_cross_entropy_with_logits",
        (x234, x234),
        {"weight": ones(3)},
        ValueError,
        "'weight'",
    ),
    (
        "bcel weight larger than input",
        "binary_cross_entropy_with_logits",
        (x234, x234),
        {"weight": ones(2, 1, 1, 1)},
        ValueError,
        "'weight'",
    ),
    (
        "bcel unknown reduction",
        "binary_cross_entropy_with_logits",
        (x34, p34),
        {"reduction": "avg"},
        ValueError,
        "avg is not a valid value for reduction",
    ),
    # huber_loss / smooth_l1_loss
    ("huber delta 0", "huber_loss", (x34, x34), {"delta": 0.0}, ValueError, "'delta'"),
    ("huber delta negative", "huber_loss", (x34, x34), {"delta": -1.0}, ValueError, "'delta'"),
    ("huber delta NaN", "huber_loss", (x34, x34), {"delta": float("nan")}, ValueError, "'delta'"),
    ("huber weight shape", "huber_loss", (x34, x34), {"weight": ones(4)}, ValueError, "'weight'"),
    (
        "huber weight of the broadcast shape",
        "huber_loss",
        (ones(3, 1), ones(3)),
        {"weight": ones(3, 3)},
        ValueError,
        "'weight'",
    ),
    ("huber integer input", "huber_loss", (ints(3), ints(3)), {}, TypeError, "'input'"),
    ("huber shapes that do not broadcast", "huber_loss", (ones(3, 2), ones(3)), {}, ValueError, "'target'"),
    (
        "huber unknown reduction",
        "huber_loss",
        (x34, x34),
        {"reduction": "bad"},
        ValueError,
        "bad is not a valid value for reduction",
    ),
    (
        "huber unknown reduction, weighted",
        "huber_loss",
        (x34, x34),
        {"reduction": "bad", "weight": x34},
        ValueError,
        "reduction",
    ),
    ("smooth_l1 beta negative", "smooth_l1_loss", (x34, x34), {"beta": -0.5}, ValueError, "'beta'"),
    ("smooth_l1 beta NaN", "smooth_l1_loss", (x34, x34), {"beta": float("nan")}, ValueError, "'beta'"),
    ("smooth_l1 integer input", "smooth_l1_loss", (ints(3), ints(3)), {}, TypeError, "'input'"),
    ("smooth_l1 shapes that do not broadcast", "smooth_l1_loss", (ones(3, 2), ones(3)), {}, ValueError, "'target'"),
    (
        "smooth_l1 unknown reduction",
        "smooth_l1_loss",
        (x34, x34),
        {"reduction": "bad"},
        ValueError,
        "bad is not a valid value for reduction",
    ),
    # kl_div
    ("kl integer input", "kl_div", (ints(3, 4), p34), {"reduction": "sum"}, TypeError, "'input'"),
    ("kl integer target", "kl_div", (x34, ints(3, 4)), {"reduction": "sum"}, TypeError, "'target'"),
    (
        "kl unknown reduction",
        "kl_div",
        (x34, p34),
        {"reduction": "batchsum"},
        ValueError,
        "batchsum is not a valid value for reduction",
    ),
    (
        "kl shapes that do not broadcast",
        "kl_div",
        (x34, ones(3)),
        {"reduction": "sum"},
        ValueError,
        "cannot be broadcast",
    ),
    # poisson_nll_loss
    (
        "poisson unknown reduction",
        "poisson_nll_loss",
        (x34, p34),
        {"reduction": "batchmean"},
        ValueError,
        "batchmean is not a valid value for reduction",
    ),
    ("poisson shapes that do not broadcast", "poisson_nll_loss", (x34, ones(3)), {}, ValueError, "cannot be broadcast"),
    # gaussian_nll_loss
    (
        "gaussian var (1, 1, 4)",
        "gaussian_nll_loss",
        (x234, x234, ones(1, 1, 4)),
        {},
        ValueError,
        "'var' is of incorrect size",
    ),
    (
        "gaussian var (2, 1, 1)",
        "gaussian_nll_loss",
        (x234, x234, ones(2, 1, 1)),
        {},
        ValueError,
        "'var' is of incorrect size",
    ),
    (
        "gaussian var (3, 4)",
        "gaussian_nll_loss",
        (x234, x234, ones(3, 4)),
        {},
        ValueError,
        "'var' is of incorrect size",
    ),
    ("gaussian var (4,)", "gaussian_nll_loss", (x234, x234, ones(4)), {}, ValueError, "'var' is of incorrect size"),
    (
        "gaussian var 0-d for 3-D input",
        "gaussian_nll_loss",
        (x234, x234, np.array(1.0, np.float32)),
        {},
        ValueError,
        "'var' is of incorrect size",
    ),
    (
        "gaussian var (2, 3, 5)",
        "gaussian_nll_loss",
        (x234, x234, ones(2, 3, 5)),
        {},
        ValueError,
        "'var' is of incorrect size",
    ),
    (
        "gaussian var (2, 3, 4, 1)",
        "gaussian_nll_loss",
        (x234, x234, ones(2, 3, 4, 1)),
        {},
        ValueError,
        "'var' is of incorrect size",
    ),
    (
        "gaussian var larger than input",
        "gaussian_nll_loss",
        (ones(2, 1), ones(2, 1), ones(2, 3)),
        {},
        ValueError,
        "'var' is of incorrect size",
    ),
    (
        "gaussian var with a zero-size dim",
        "gaussian_nll_loss",
        (x234, x234, ones(2, 0, 4)),
        {},
        ValueError,
        "'var' is of incorrect size",
    ),
    (
        "gaussian var sizes 1 and 0",
        "gaussian_nll_loss",
        (ones(2, 3), ones(2, 3), ones(1, 0)),
        {},
        ValueError,
        "cannot be broadcast",
    ),
    (
        "gaussian 1-element var for 0-d input",
        "gaussian_nll_loss",
        (np.float32(1.0) * ones(), ones(), ones(1)),
        {},
        ValueError,
        "'var' is of incorrect size",
    ),
    (
        "gaussian target that does not broadcast",
        "gaussian_nll_loss",
        (x34, ones(5), ones(3, 4)),
        {},
        ValueError,
        "cannot be broadcast",
    ),
    (
        "gaussian unknown reduction",
        "gaussian_nll_loss",
        (x34, x34, ones(3, 4)),
        {"reduction": "batchmean"},
        ValueError,
        "reduction",
    ),
]


@pytest.mark.parametrize("name,fn,args,kwargs,exc,text", STATIC, ids=[s[0] for s in STATIC])
def test_static_errors_match_torch(name, fn, args, kwargs, exc, text):
    assert_rejected_like_torch(fn, args, kwargs, exc, text)


@pytest.mark.parametrize("name,fn,args,kwargs,exc,text", STATIC, ids=[s[0] for s in STATIC])
def test_static_errors_raise_at_trace_time(name, fn, args, kwargs, exc, text):
    """Under jit the arrays are tracers: static mistakes are still caught, while tracing."""
    assert_rejected_while_tracing(fn, args, kwargs, exc, text)


# Data-dependent: torch raises RuntimeError/ValueError; we raise ValueError naming the argument
# (only possible when the values are concrete).
CONCRETE = [
    (
        "bce input > 1",
        "binary_cross_entropy",
        (np.array([0.5, 1.5], np.float32), np.array([0.5, 0.5], np.float32)),
        {},
        "all elements of 'input' should be between 0 and 1",
    ),
    (
        "bce input < 0",
        "binary_cross_entropy",
        (np.array([-1e-7, 0.5], np.float32), np.array([0.5, 0.5], np.float32)),
        {},
        "'input'",
    ),
    (
        "bce input NaN",
        "binary_cross_entropy",
        (np.array([np.nan, 0.5], np.float32), np.array([0.5, 0.5], np.float32)),
        {},
        "'input'",
    ),
    (
        "bce target > 1",
        "binary_cross_entropy",
        (np.array([0.5, 0.5], np.float32), np.array([1.5, 0.5], np.float32)),
        {},
        "all elements of 'target' should be between 0 and 1",
    ),
    (
        "bce target NaN",
        "binary_cross_entropy",
        (np.array([0.5, 0.5], np.float32), np.array([np.nan, 0.5], np.float32)),
        {},
        "'target'",
    ),
    (
        "gaussian negative var entry",
        "gaussian_nll_loss",
        (x34, x34, np.where(p34 > 0.5, 1.0, -1e-9).astype(np.float32)),
        {},
        "'var' has negative entry/entries",
    ),
    ("gaussian negative float var", "gaussian_nll_loss", (x34, x34, -2.0), {}, "'var' has negative entry/entries"),
]


@pytest.mark.parametrize("name,fn,args,kwargs,text", CONCRETE, ids=[c[0] for c in CONCRETE])
def test_concrete_value_errors(name, fn, args, kwargs, text):
    with pytest.raises((RuntimeError, ValueError)):
        getattr(TF, fn)(*map(to_torch, args), **kwargs)
    with pytest.raises(ValueError) as info:
        getattr(F, fn)(*args, **kwargs)
    assert text in str(info.value)


def test_class_constructor_errors():
    # torch's own constructor check
    with pytest.raises(TypeError):
        torch.nn.HuberLoss(delta=torch.tensor(1.0))
    with pytest.raises(TypeError, match="'delta' must be a float or int"):
        F.HuberLoss(delta=jax.numpy.asarray(1.0))
    # checked when the object is built (torch builds it and raises at the first call)
    with pytest.raises(RuntimeError):
        torch.nn.HuberLoss(delta=-1.0)(torch.ones(2), torch.zeros(2))
    with pytest.raises(ValueError, match="'delta'"):
        F.HuberLoss(delta=-1.0)
    with pytest.raises(RuntimeError):
        torch.nn.SmoothL1Loss(beta=-1.0)(torch.ones(2), torch.zeros(2))
    with pytest.raises(ValueError, match="'beta'"):
        F.SmoothL1Loss(beta=-1.0)
    for cls in (F.BCELoss, F.BCEWithLogitsLoss, F.PoissonNLLLoss, F.HuberLoss, F.SmoothL1Loss):
        with pytest.raises(ValueError, match="batchmean is not a valid value for reduction"):
            cls(reduction="batchmean")
    with pytest.raises(ValueError, match="reduction"):
        F.GaussianNLLLoss(reduction="sum_all")
    with pytest.raises(ValueError, match="bogus is not a valid value for reduction"):
        F.KLDivLoss(reduction="bogus")
    assert F.KLDivLoss(reduction="batchmean").reduction == "batchmean"


def test_traced_hyperparameters_are_rejected():
    """delta and beta select branches (torch takes Python floats): under jit they must be static."""
    with pytest.raises(TypeError, match="'delta'"):
        jax.jit(lambda d: F.huber_loss(x34, x34, delta=d))(1.0)
    with pytest.raises(TypeError, match="'beta'"):
        jax.jit(lambda b: F.smooth_l1_loss(x34, x34, beta=b))(1.0)
