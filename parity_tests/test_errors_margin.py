"""Bad input for the margin / embedding losses and the distances: where torch raises, we raise a
ValueError or TypeError that names the argument, at trace time (under ``jit``) for static
mistakes; out-of-range class indices raise when concrete and give NaN under ``jit``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import losses_jax as F
from parity_tests.errors import assert_rejected_like_torch, assert_rejected_while_tracing

f = lambda *shape: np.random.default_rng(len(shape)).normal(size=shape).astype(np.float32)  # noqa: E731
i = lambda *v: np.array(v)  # noqa: E731  integer class indices
x34, x23 = f(3, 4), f(2, 3)

# (description, function name, positional args, kwargs, expected exception, text our message contains)
STATIC = [
    # hinge_embedding_loss
    (
        "hinge: unknown reduction",
        "hinge_embedding_loss",
        (x34, np.ones((3, 4))),
        {"reduction": "avg"},
        ValueError,
        "avg is not a valid value for reduction",
    ),
    ("hinge: shapes do not broadcast", "hinge_embedding_loss", (f(3, 2), np.ones(3)), {}, ValueError, "'target'"),
    ("hinge: integer input", "hinge_embedding_loss", (i(1, 2), i(1, -1)), {}, TypeError, "'input'"),
    # margin_ranking_loss
    ("ranking: ranks differ", "margin_ranking_loss", (f(3), f(3, 1), f(3)), {}, ValueError, "'input2'"),
    ("ranking: shapes do not broadcast", "margin_ranking_loss", (f(3), f(2), f(3)), {}, ValueError, "'input2'"),
    (
        "ranking: bool target",
        "margin_ranking_loss",
        (f(3), f(3), np.array([True, False, True])),
        {},
        TypeError,
        "'target'",
    ),
    (
        "ranking: unknown reduction",
        "margin_ranking_loss",
        (f(3), f(3), f(3)),
        {"reduction": "max"},
        ValueError,
        "reduction",
    ),
    # soft_margin_loss
    ("soft: target enlarges input", "soft_margin_loss", (f(3, 1), f(3)), {}, ValueError, "'target'"),
    ("soft: target does not broadcast", "soft_margin_loss", (f(3, 1), f(2)), {}, ValueError, "'target'"),
    ("soft: integer input", "soft_margin_loss", (i(1, 2), f(2)), {}, TypeError, "'input'"),
    (
        "soft: unknown reduction",
        "soft_margin_loss",
        (f(3), f(3)),
        {"reduction": "x"},
        ValueError,
        "x is not a valid value for reduction",
    ),
    # cosine_embedding_loss
    ("cosine emb: 2-D target", "cosine_embedding_loss", (x23, x23, np.ones((1, 2))), {}, ValueError, "'target'"),
    (
        "cosine emb: 1-D target, 1-D inputs",
        "cosine_embedding_loss",
        (f(3), f(3), np.ones(1)),
        {},
        ValueError,
        "'input1'",
    ),
    (
        "cosine emb: 0-d target, 2-D inputs",
        "cosine_embedding_loss",
        (x23, x23, np.array(1.0)),
        {},
        ValueError,
        "'input1'",
    ),
    (
        "cosine emb: feature sizes differ",
        "cosine_embedding_loss",
        (x23, f(2, 2), np.ones(2)),
        {},
        ValueError,
        "'input2'",
    ),
    ("cosine emb: target length", "cosine_embedding_loss", (x23, x23, np.ones(3)), {}, ValueError, "'target'"),
    (
        "cosine emb: unknown reduction",
        "cosine_embedding_loss",
        (x23, x23, np.ones(2)),
        {"reduction": "all"},
        ValueError,
        "reduction",
    ),
    # multi_margin_loss
    ("multi margin: p=3", "multi_margin_loss", (x34, i(0, 1, 2)), {"p": 3}, ValueError, "'p'"),
    (
        "multi margin: 2-D weight",
        "multi_margin_loss",
        (x34, i(0, 1, 2)),
        {"weight": np.ones((1, 4), np.float32)},
        ValueError,
        "'weight'",
    ),
    (
        "multi margin: 0-d weight",
        "multi_margin_loss",
        (x34, i(0, 1, 2)),
        {"weight": np.float32(1.0) * np.ones((), np.float32)},
        ValueError,
        "'weight'",
    ),
    (
        "multi margin: weight length",
        "multi_margin_loss",
        (x34, i(0, 1, 2)),
        {"weight": np.ones(3, np.float32)},
        ValueError,
        "'weight'",
    ),
    ("multi margin: 3-D input", "multi_margin_loss", (f(2, 3, 4), i(0, 1)), {}, ValueError, "'input'"),
    (
        "multi margin: no classes",
        "multi_margin_loss",
        (np.zeros((2, 0), np.float32), i(0, 0)),
        {},
        ValueError,
        "'input'",
    ),
    (
        "multi margin: empty 1-D input",
        "multi_margin_loss",
        (np.zeros(0, np.float32), np.zeros(0, int)),
        {},
        ValueError,
        "'input'",
    ),
    ("multi margin: (N, 1) target", "multi_margin_loss", (x34, np.zeros((3, 1), int)), {}, ValueError, "'target'"),
    ("multi margin: target length", "multi_margin_loss", (f(4), i(1, 2)), {}, ValueError, "'target'"),
    ("multi margin: float target", "multi_margin_loss", (x34, np.zeros(3, np.float32)), {}, TypeError, "'target'"),
    ("multi margin: integer input", "multi_margin_loss", (np.zeros((2, 3), int), i(0, 1)), {}, TypeError, "'input'"),
    (
        "multi margin: unknown reduction",
        "multi_margin_loss",
        (x34, i(0, 1, 2)),
        {"reduction": "bad"},
        ValueError,
        "bad is not a valid value for reduction",
    ),
    # multilabel_margin_loss
    (
        "multilabel margin: 3-D input",
        "multilabel_margin_loss",
        (f(2, 3, 4), np.zeros((2, 3, 4), int)),
        {},
        ValueError,
        "'input'",
    ),
    (
        "multilabel margin: no classes",
        "multilabel_margin_loss",
        (np.zeros((2, 0), np.float32), np.zeros((2, 0), int)),
        {},
        ValueError,
        "'input'",
    ),
    ("multilabel margin: target shape", "multilabel_margin_loss", (x23, i(0, 1)), {}, ValueError, "'target'"),
    (
        "multilabel margin: (1, C) target for (C)",
        "multilabel_margin_loss",
        (f(3), np.zeros((1, 3), int)),
        {},
        ValueError,
        "'target'",
    ),
    (
        "multilabel margin: float target",
        "multilabel_margin_loss",
        (x23, np.zeros((2, 3), np.float32)),
        {},
        TypeError,
        "'target'",
    ),
    (
        "multilabel margin: integer input",
        "multilabel_margin_loss",
        (np.zeros((2, 3), int), np.zeros((2, 3), int)),
        {},
        TypeError,
        "'input'",
    ),
    # multilabel_soft_margin_loss
    (
        "multilabel soft: 0-d input",
        "multilabel_soft_margin_loss",
        (np.float32(0.5) * np.ones((), np.float32), np.ones((), np.float32)),
        {},
        ValueError,
        "'input'",
    ),
    (
        "multilabel soft: bool target",
        "multilabel_soft_margin_loss",
        (x23, np.ones((2, 3), bool)),
        {},
        TypeError,
        "'target'",
    ),
    (
        "multilabel soft: target does not broadcast",
        "multilabel_soft_margin_loss",
        (x23, np.ones((2, 2), np.float32)),
        {},
        ValueError,
        "'target'",
    ),
    (
        "multilabel soft: weight does not broadcast",
        "multilabel_soft_margin_loss",
        (x23, np.ones((2, 3), np.float32)),
        {"weight": np.ones(2, np.float32)},
        ValueError,
        "'weight'",
    ),
    (
        "multilabel soft: unknown reduction",
        "multilabel_soft_margin_loss",
        (x23, np.ones((2, 3), np.float32)),
        {"reduction": "bad"},
        ValueError,
        "reduction",
    ),
    # triplet_margin_loss
    ("triplet: margin 0", "triplet_margin_loss", (x34, x34, x34), {"margin": 0.0}, ValueError, "'margin'"),
    ("triplet: negative margin", "triplet_margin_loss", (x34, x34, x34), {"margin": -1.0}, ValueError, "'margin'"),
    ("triplet: ranks differ", "triplet_margin_loss", (x34, f(4), x34), {}, ValueError, "'positive'"),
    ("triplet: feature sizes differ", "triplet_margin_loss", (x34, x34, f(3, 5)), {}, ValueError, "'negative'"),
    (
        "triplet: unknown reduction",
        "triplet_margin_loss",
        (x34, x34, x34),
        {"reduction": "x"},
        ValueError,
        "x is not a valid value for reduction",
    ),
    # triplet_margin_with_distance_loss
    (
        "triplet dist: negative margin",
        "triplet_margin_with_distance_loss",
        (x34, x34, x34),
        {"margin": -1.0},
        ValueError,
        "'margin'",
    ),
    (
        "triplet dist: unknown reduction",
        "triplet_margin_with_distance_loss",
        (x34, x34, x34),
        {"reduction": "x"},
        ValueError,
        "x is not a valid value for reduction",
    ),
    (
        "triplet dist: legacy alias not accepted",
        "triplet_margin_with_distance_loss",
        (x34, x34, x34),
        {"reduction": "elementwise_mean"},
        ValueError,
        "reduction",
    ),
    ("triplet dist: ranks differ", "triplet_margin_with_distance_loss", (x34, x34, f(4)), {}, ValueError, "'negative'"),
    (
        "triplet dist: feature sizes differ",
        "triplet_margin_with_distance_loss",
        (x34, f(3, 5), x34),
        {},
        ValueError,
        "'positive'",
    ),
    # pairwise_distance / cosine_similarity
    ("pairwise: feature sizes differ", "pairwise_distance", (x34, f(3, 5)), {}, ValueError, "'x2'"),
    ("pairwise: bool input", "pairwise_distance", (np.ones(3, bool), np.zeros(3, bool)), {}, TypeError, "'x1'"),
    (
        "cosine sim: integer inputs",
        "cosine_similarity",
        (np.ones((2, 3), int), np.ones((2, 3), int)),
        {},
        TypeError,
        "'x1'",
    ),
    ("cosine sim: negative eps", "cosine_similarity", (x23, x23), {"eps": -1.0}, ValueError, "'eps'"),
    ("cosine sim: dim out of range", "cosine_similarity", (x23, x23), {"dim": 2}, ValueError, "'dim'"),
    ("cosine sim: dim 1 of 1-D inputs", "cosine_similarity", (f(4), f(4)), {}, ValueError, "'dim'"),
    ("cosine sim: float dim", "cosine_similarity", (x23, x23), {"dim": 1.0}, TypeError, "'dim'"),
    ("cosine sim: shapes do not broadcast", "cosine_similarity", (x34, f(2, 4)), {}, ValueError, "'x2'"),
]


@pytest.mark.parametrize("name,fn,args,kwargs,exc,text", STATIC, ids=[s[0] for s in STATIC])
def test_static_errors_match_torch(name, fn, args, kwargs, exc, text):
    assert_rejected_like_torch(fn, args, kwargs, exc, text)


@pytest.mark.parametrize("name,fn,args,kwargs,exc,text", STATIC, ids=[s[0] for s in STATIC])
def test_static_errors_raise_at_trace_time(name, fn, args, kwargs, exc, text):
    """Under jit the arrays are tracers: static mistakes are still caught, while tracing."""
    assert_rejected_while_tracing(fn, args, kwargs, exc, text)


def test_dim_error_is_also_torchs_index_error():
    with pytest.raises(IndexError):
        TF.cosine_similarity(torch.ones(2, 3), torch.ones(2, 3), dim=2)
    with pytest.raises(IndexError, match="'dim'"):
        F.cosine_similarity(x23, x23, dim=2)


# (class, constructor kwargs, exception, text)
CLASSES = [
    ("MultiMarginLoss", {"p": 3}, ValueError, "'p'"),
    ("MultiMarginLoss", {"weight": np.ones((2, 2), np.float32)}, ValueError, "'weight'"),
    ("TripletMarginLoss", {"margin": 0.0}, ValueError, "'margin'"),
    ("TripletMarginWithDistanceLoss", {"margin": -1.0}, ValueError, "'margin'"),
    ("HingeEmbeddingLoss", {"reduction": "avg"}, ValueError, "reduction"),
    ("MultiLabelSoftMarginLoss", {"reduction": "avg"}, ValueError, "reduction"),
]


@pytest.mark.parametrize("cls,kwargs,exc,text", CLASSES, ids=[f"{c[0]}{sorted(c[1])}" for c in CLASSES])
def test_class_constructor_errors(cls, kwargs, exc, text):
    tkw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    if "reduction" not in kwargs:  # torch checks reduction at call time; these at construction
        with pytest.raises(ValueError):
            getattr(torch.nn, cls)(**tkw)
    with pytest.raises(exc, match=text):
        getattr(F, cls)(**kwargs)


# -- data-dependent: out-of-range class indices ------------------------------------------------

MULTI = np.array([[0.1, 0.2, 0.4], [0.3, -0.2, 1.0], [0.0, 0.5, 0.5]], np.float32)


@pytest.mark.parametrize("bad", [3, -1, 7])
def test_multi_margin_out_of_range_target(bad):
    t = np.array([0, bad, 2])
    with pytest.raises(RuntimeError, match="target out of range"):
        TF.multi_margin_loss(torch.from_numpy(MULTI), torch.from_numpy(t))
    with pytest.raises(ValueError, match="'target' out of range"):
        F.multi_margin_loss(MULTI, t)
    per = np.asarray(jax.jit(lambda x, t: F.multi_margin_loss(x, t, reduction="none"))(MULTI, t))
    assert np.isnan(per[1]) and np.isfinite(per[[0, 2]]).all()
    assert np.isnan(float(jax.jit(F.multi_margin_loss)(MULTI, t)))
    ok = TF.multi_margin_loss(torch.from_numpy(MULTI), torch.tensor([0, 1, 2]), reduction="none").numpy()
    np.testing.assert_allclose(per[[0, 2]], ok[[0, 2]], rtol=1e-6)


@pytest.mark.parametrize("bad", [3, -2, 9])
def test_multilabel_margin_out_of_range_target(bad):
    # an out-of-range entry is an error even after the first -1, as torch checks every entry
    t = np.array([[0, -1, 1], [1, -1, bad], [2, 0, -1]])
    with pytest.raises(RuntimeError, match="out of range"):
        TF.multilabel_margin_loss(torch.from_numpy(MULTI), torch.from_numpy(t))
    with pytest.raises(ValueError, match="'target' is out of range"):
        F.multilabel_margin_loss(MULTI, t)
    per = np.asarray(jax.jit(lambda x, t: F.multilabel_margin_loss(x, t, reduction="none"))(MULTI, t))
    assert np.isnan(per[1]) and np.isfinite(per[[0, 2]]).all()
    assert np.isnan(float(jax.jit(F.multilabel_margin_loss)(MULTI, jnp.asarray(t))))
