"""Margin / embedding losses and distances: hand-computed numbers, jit/grad/vmap (including a
non-default ``distance_function``), the class API, and the documented places where we differ
from torch eager on purpose."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import losses_jax as F

R = np.random.default_rng(0)
A, P, N = (jnp.asarray(R.normal(size=(6, 4)), jnp.float32) for _ in range(3))
S = jnp.asarray(np.where(R.uniform(size=(6, 4)) < 0.5, -1.0, 1.0), jnp.float32)
T = jnp.array([0, 3, 1, 2, 3, 0])
ML = jnp.array([[0, 2, -1, 1], [3, -1, 0, 0], [1, 2, 3, 0], [-1, 0, 1, 2], [2, -1, -1, -1], [0, 0, -1, 3]])
W4 = jnp.array([0.5, 1.0, 2.0, 1.5])


def cosine_distance(x, y):
    return 1.0 - F.cosine_similarity(x, y, dim=-1)


# -- hand-computed numbers ------------------------------------------------------------------------


def test_torch_docstring_examples_by_hand():
    x = np.array([[0.1, 0.2, 0.4, 0.8]])
    # MultiLabelMarginLoss: labels 3 and 0, not the 1 after the -1
    expected = 0.25 * ((1 - (0.1 - 0.2)) + (1 - (0.1 - 0.4)) + (1 - (0.8 - 0.2)) + (1 - (0.8 - 0.4)))
    assert float(F.MultiLabelMarginLoss()(x, np.array([[3, 0, -1, 1]]))) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.85)
    # MultiMarginLoss
    terms = np.array([1 - (0.8 - 0.1), 1 - (0.8 - 0.2), 1 - (0.8 - 0.4)])
    assert float(F.multi_margin_loss(x, np.array([3]))) == pytest.approx(terms.sum() / 4, rel=1e-6)
    assert float(F.multi_margin_loss(x, np.array([3]), p=2)) == pytest.approx((terms**2).sum() / 4, rel=1e-6)
    w = np.array([1.0, 1.0, 1.0, 2.0])
    assert float(F.MultiMarginLoss(weight=w)(x, np.array([3]))) == pytest.approx(2 * terms.sum() / 4, rel=1e-6)


def test_pointwise_losses_by_hand():
    x, t = np.array([0.3, 2.0, -1.0]), np.array([1.0, -1.0, -1.0])
    np.testing.assert_allclose(F.hinge_embedding_loss(x, t, reduction="none"), [0.3, 0.0, 2.0], rtol=1e-6)
    assert float(F.HingeEmbeddingLoss(margin=3.0)(x, t)) == pytest.approx((0.3 + 1.0 + 4.0) / 3, rel=1e-6)
    x1, x2, y = np.array([1.0, 2.0]), np.array([2.0, 1.0]), np.array([1.0, 1.0])
    np.testing.assert_allclose(F.margin_ranking_loss(x1, x2, y, margin=0.5, reduction="none"), [1.5, 0.0])
    assert float(F.MarginRankingLoss()(x1, x2, -y)) == pytest.approx(0.5)
    assert float(F.soft_margin_loss(np.zeros(3), np.ones(3))) == pytest.approx(math.log(2), rel=1e-6)
    assert float(F.soft_margin_loss(np.array([2.0]), np.array([-1.0]))) == pytest.approx(
        math.log1p(math.e**2), rel=1e-6
    )
    assert float(F.multilabel_soft_margin_loss(np.zeros((2, 4)), np.ones((2, 4)), weight=W4)) == pytest.approx(
        math.log(2) * float(W4.mean()), rel=1e-6
    )


def test_cosine_embedding_and_distances_by_hand():
    with jax.enable_x64(True):
        a, b = np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[1.0, 1.0], [1.0, 2.0]])
        out = F.cosine_embedding_loss(a, b, np.array([1.0, 1.0]), reduction="none")
        # torch adds float32(1e-12) to each squared norm: a zero vector has cos 0 -> loss 1
        np.testing.assert_allclose(out, [1 - 1 / math.sqrt(2), 1.0], rtol=1e-11)
        neg = F.cosine_embedding_loss(a[0], b[0], np.array(-1.0), margin=0.5)
        assert float(neg) == pytest.approx(1 / math.sqrt(2) - 0.5, rel=1e-11)
        z, v = np.zeros(2), np.array([3.0, 4.0])
        assert float(F.pairwise_distance(z, v, eps=0.0)) == 5.0
        assert float(F.pairwise_distance(z, v, p=1, eps=0.0)) == 7.0
        assert float(F.pairwise_distance(z, v, p=math.inf, eps=0.0)) == 4.0
        assert float(F.pairwise_distance(z, v, p=0, eps=0.0)) == 2.0
        # eps is added to the difference: identical vectors are eps * sqrt(D) apart
        assert float(F.pairwise_distance(v, v)) == pytest.approx(1e-6 * math.sqrt(2), rel=1e-9)
        assert F.PairwiseDistance(keepdim=True)(v[None], z[None]).shape == (1, 1)
        assert float(F.cosine_similarity(np.array([1.0, 0.0]), np.array([1.0, 1.0]), dim=0)) == pytest.approx(
            1 / math.sqrt(2), rel=1e-12
        )
        assert float(F.CosineSimilarity(dim=0)(z, v)) == 0.0
        # triplet: d(a,p) = 5, d(a,n) = 10
        a3, p3, n3 = z[None], v[None], 2 * v[None]
        assert float(F.triplet_margin_loss(a3, p3, n3, eps=0.0)) == 0.0
        assert float(F.triplet_margin_loss(a3, p3, n3, margin=6.0, eps=0.0)) == pytest.approx(1.0)
        # swap: d(p, n) = 5 < d(a, n) = 10
        assert float(F.triplet_margin_loss(a3, p3, n3, margin=6.0, eps=0.0, swap=True)) == pytest.approx(6.0)


def test_gradients_at_kinks_by_hand():
    # hinge: margin - x == 0 passes the gradient (torch's clamp_min), value 0
    g = jax.grad(lambda x: F.hinge_embedding_loss(x, jnp.array([-1.0]), reduction="sum"))(jnp.array([1.0]))
    assert float(g[0]) == -1.0
    # multi-margin: z == 0 gives no gradient (torch's kernel tests z > 0)
    g = jax.grad(lambda x: F.multi_margin_loss(x, jnp.array([1]), margin=0.5, reduction="sum"))(
        jnp.array([[0.0, 1.0, 0.5]])
    )
    np.testing.assert_array_equal(g, [[0.0, 0.0, 0.0]])
    # triplet swap tie d(a,n) == d(p,n): the min's gradient is split in half
    f = lambda n: F.triplet_margin_loss(jnp.array([[0.0, 0.0]]), jnp.array([[2.0, 0.0]]), n, p=1, eps=0.0, swap=True)
    np.testing.assert_allclose(jax.grad(f)(jnp.array([[1.0, 0.0]])), [[0.0, 0.0]], atol=0)  # +0.5 and -0.5 cancel
    # pairwise distance of identical vectors with eps=0: gradient 0, not NaN
    g = jax.grad(lambda x: F.pairwise_distance(x, jnp.ones(3), eps=0.0))(jnp.ones(3))
    np.testing.assert_array_equal(g, np.zeros(3))


def test_cosine_similarity_gradient_below_eps_is_torchs_straight_through_clamp():
    """torch clamps the norms in place under no_grad: autograd sees the unclamped norm."""
    with jax.enable_x64(True):
        eps = 0.1
        x1, x2 = jnp.array([0.01, 0.02, -0.02]), jnp.array([1.0, -2.0, 0.5])
        g = jax.grad(lambda a: F.cosine_similarity(a, x2, dim=0, eps=eps))(x1)
        n1, n2 = float(jnp.linalg.norm(x1)), float(jnp.linalg.norm(x2))
        c1 = max(n1, eps)  # = eps: the clamp is active
        dot = float(x1 @ x2)
        expected = x2 / (c1 * n2) - dot / (c1**2 * n2) * x1 / n1
        np.testing.assert_allclose(g, expected, rtol=1e-12)
        # a true clamp (constant denominator) would give x2 / (eps * n2) instead
        assert not np.allclose(g, x2 / (c1 * n2))


# -- documented differences from torch eager ------------------------------------------------------


def test_soft_margin_is_finite_where_torch_overflows():
    """torch computes log1p(exp(-y x)) literally: inf (and a NaN gradient) past ~88.7 in float32."""
    torch = pytest.importorskip("torch")
    ref = torch.nn.functional.soft_margin_loss(torch.tensor([-100.0]), torch.tensor([1.0]))
    assert math.isinf(ref.item())
    assert float(F.soft_margin_loss(jnp.array([-100.0]), jnp.array([1.0]))) == pytest.approx(100.0)
    g = jax.grad(lambda x: F.soft_margin_loss(x, jnp.array([1.0])))(jnp.array([-100.0]))
    assert float(g[0]) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "fn,x,t",
    [
        (F.multi_margin_loss, jnp.zeros((0, 3)), jnp.zeros((0,), jnp.int32)),
        (F.multilabel_margin_loss, jnp.zeros((0, 3)), jnp.zeros((0, 3), jnp.int32)),
    ],
)
def test_empty_batch_is_nan_mean_and_zero_sum(fn, x, t):
    """torch 2.13 returns uninitialised memory here; we return the empty mean / sum."""
    assert np.isnan(float(fn(x, t)))
    assert float(fn(x, t, reduction="sum")) == 0.0
    assert fn(x, t, reduction="none").shape == (0,)


@pytest.mark.parametrize("dt", [jnp.bfloat16, jnp.float16])
def test_half_precision_multi_margin_losses(dt):
    """torch's CPU kernels for these two have no half-precision version; ours compute in float32."""
    x = A[:, :4]
    for fn, t in ((F.multi_margin_loss, T), (F.multilabel_margin_loss, ML)):
        out = fn(x.astype(dt), t)
        assert out.dtype == dt
        assert float(out) == pytest.approx(float(fn(x.astype(dt).astype(jnp.float32), t)), rel=1e-2)


# -- transforms -----------------------------------------------------------------------------------

CALLS = {
    "hinge_embedding_loss": lambda a, p, n: F.hinge_embedding_loss(a, S, margin=0.5),
    "margin_ranking_loss": lambda a, p, n: F.margin_ranking_loss(a, p, S, margin=0.2, reduction="sum"),
    "soft_margin_loss": lambda a, p, n: F.soft_margin_loss(a, S),
    "cosine_embedding_loss": lambda a, p, n: F.cosine_embedding_loss(a, p, S[:, 0], margin=0.1),
    "multi_margin_loss": lambda a, p, n: F.multi_margin_loss(a, T, p=2, weight=W4),
    "multilabel_margin_loss": lambda a, p, n: F.multilabel_margin_loss(a, ML),
    "multilabel_soft_margin_loss": lambda a, p, n: F.multilabel_soft_margin_loss(a, jax.nn.sigmoid(p), weight=W4),
    "triplet_margin_loss": lambda a, p, n: F.triplet_margin_loss(a, p, n, p=3, swap=True),
    "triplet_cosine_distance": lambda a, p, n: F.triplet_margin_with_distance_loss(
        a, p, n, distance_function=cosine_distance, margin=0.5, swap=True
    ),
    "triplet_l1_class": lambda a, p, n: F.TripletMarginWithDistanceLoss(
        distance_function=F.PairwiseDistance(p=1), margin=2.0
    )(a, p, n),
    "pairwise_distance": lambda a, p, n: jnp.sum(F.pairwise_distance(a, p, p=1.5) * jnp.arange(6.0)),
    "cosine_similarity": lambda a, p, n: jnp.sum(F.cosine_similarity(a, p, dim=0) * jnp.arange(4.0)),
}


@pytest.mark.parametrize("name", CALLS)
def test_jit_matches_eager(name):
    f = CALLS[name]
    np.testing.assert_allclose(jax.jit(f)(A, P, N), f(A, P, N), rtol=2e-6)
    g_eager = jax.grad(f, argnums=(0, 1, 2))(A, P, N)
    g_jit = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(A, P, N)
    for ge, gj in zip(g_eager, g_jit, strict=True):
        np.testing.assert_allclose(gj, ge, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", CALLS)
def test_grad_matches_finite_differences(name):
    f = CALLS[name]
    with jax.enable_x64(True):
        xs = [x.astype(jnp.float64) for x in (A, P, N)]
        grads = jax.grad(f, argnums=(0, 1, 2))(*xs)
        ds = [jnp.asarray(np.random.default_rng(k).normal(size=A.shape)) for k in range(3)]
        h = 1e-6
        fd = (
            f(*[x + h * d for x, d in zip(xs, ds, strict=True)]) - f(*[x - h * d for x, d in zip(xs, ds, strict=True)])
        ) / (2 * h)
        directional = sum(float(jnp.vdot(g, d)) for g, d in zip(grads, ds, strict=True))
        assert directional == pytest.approx(float(fd), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("name", CALLS)
def test_vmap_over_a_batch_of_problems(name):
    f = CALLS[name]
    stack = lambda x: jnp.stack([x, 2 * x, x - 0.5])
    batched = jax.vmap(f)(stack(A), stack(P), stack(N))
    looped = jnp.stack([f(a, p, n) for a, p, n in zip(stack(A), stack(P), stack(N), strict=True)])
    np.testing.assert_allclose(batched, looped, rtol=2e-6, atol=1e-7)


def test_vmap_per_example_is_the_none_reduction():
    """vmap over examples sees torch's unbatched layouts: (D) vectors, 0-d targets, (C) rows."""
    cases = [
        (
            lambda a, p, n: F.triplet_margin_loss(a, p, n, swap=True),
            (A, P, N),
            lambda: F.triplet_margin_loss(A, P, N, swap=True, reduction="none"),
        ),
        (
            lambda a, p, t: F.cosine_embedding_loss(a, p, t),
            (A, P, S[:, 0]),
            lambda: F.cosine_embedding_loss(A, P, S[:, 0], reduction="none"),
        ),
        (lambda a, t: F.multi_margin_loss(a, t), (A, T), lambda: F.multi_margin_loss(A, T, reduction="none")),
        (
            lambda a, t: F.multilabel_margin_loss(a, t),
            (A, ML),
            lambda: F.multilabel_margin_loss(A, ML, reduction="none"),
        ),
        (
            lambda a, t: F.multilabel_soft_margin_loss(a, t),
            (A, jax.nn.sigmoid(P)),
            lambda: F.multilabel_soft_margin_loss(A, jax.nn.sigmoid(P), reduction="none"),
        ),
        (
            lambda a, p, n: F.triplet_margin_with_distance_loss(a, p, n, distance_function=cosine_distance),
            (A, P, N),
            lambda: F.triplet_margin_with_distance_loss(A, P, N, distance_function=cosine_distance, reduction="none"),
        ),
    ]
    for f, args, none in cases:
        np.testing.assert_allclose(jax.vmap(f)(*args), none(), rtol=2e-6, atol=1e-7)


def test_non_default_distance_function_matches_its_formula():
    loss = F.triplet_margin_with_distance_loss(
        A, P, N, distance_function=cosine_distance, margin=0.5, swap=True, reduction="none"
    )
    dp, dn, ds = cosine_distance(A, P), cosine_distance(A, N), cosine_distance(P, N)
    np.testing.assert_allclose(loss, jnp.maximum(0.5 + dp - jnp.minimum(dn, ds), 0), rtol=1e-6)
    # the default is pairwise_distance with its defaults, as torch
    np.testing.assert_allclose(F.triplet_margin_with_distance_loss(A, P, N), F.triplet_margin_loss(A, P, N), rtol=1e-6)


# -- classes and warnings --------------------------------------------------------------------------


def test_classes_are_pytrees_and_cross_jit():
    crit = F.MultiMarginLoss(p=2, margin=0.5, weight=W4)
    leaves, _ = jax.tree_util.tree_flatten(crit)
    assert len(leaves) == 1 and leaves[0].shape == (4,)
    via_jit = jax.jit(lambda c, x: c(x, T))(crit, A)
    np.testing.assert_allclose(via_jit, F.multi_margin_loss(A, T, p=2, margin=0.5, weight=W4), rtol=1e-6)
    trip = F.TripletMarginWithDistanceLoss(distance_function=cosine_distance, swap=True)
    np.testing.assert_allclose(jax.jit(lambda c, a, p, n: c(a, p, n))(trip, A, P, N), trip(A, P, N), rtol=1e-6)
    assert F.TripletMarginWithDistanceLoss().distance_function == F.PairwiseDistance()
    # the distance modules hold options only: static pytrees that can be jit arguments too
    for mod in (F.PairwiseDistance(p=1, keepdim=True), F.CosineSimilarity(dim=0, eps=0.5)):
        assert jax.tree_util.tree_leaves(mod) == []
        np.testing.assert_allclose(jax.jit(lambda d, a, p: d(a, p))(mod, A, P), mod(A, P), rtol=1e-6)
    assert hash(F.PairwiseDistance(p=1)) == hash(F.PairwiseDistance(p=1.0))
    assert F.CosineSimilarity(dim=0) != F.CosineSimilarity(dim=1)


def test_class_reprs_show_non_defaults():
    assert repr(F.TripletMarginLoss(margin=0.5, swap=True)) == "TripletMarginLoss(margin=0.5, swap=True)"
    assert repr(F.MultiMarginLoss(weight=W4)) == "MultiMarginLoss(weight=Array(4,))"
    assert repr(F.HingeEmbeddingLoss()) == "HingeEmbeddingLoss()"
    assert repr(F.PairwiseDistance()) == "PairwiseDistance(p=2.0, eps=1e-06, keepdim=False)"


def test_legacy_arguments_warn_at_the_callers_line():
    with pytest.warns(UserWarning, match=r"reduction='sum'") as rec:
        out = F.hinge_embedding_loss(np.array([0.5, 2.0]), np.array([1.0, -1.0]), size_average=False)
    assert rec[0].filename == __file__
    assert float(out) == pytest.approx(0.5)
    with pytest.warns(UserWarning, match=r"reduction='none'") as rec:
        F.TripletMarginLoss(reduce=False)
    assert rec[0].filename == __file__


def test_no_warning_for_broadcast_targets():
    """torch broadcasts these targets silently (unlike l1/mse), and so do we."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.hinge_embedding_loss(np.ones((3, 1)), np.ones(4))
        F.multilabel_soft_margin_loss(np.ones((2, 3)), np.ones(3))


def test_multilabel_soft_margin_custom_jvp_matches_autodiff_of_the_formula():
    """The custom JVP (forward and reverse mode, in input and target) equals autodiff of
    -(t log_sigmoid(x) + (1 - t) log_sigmoid(-x)) averaged over classes; values at +-inf are
    torch's (inf where one term is -inf, NaN where torch's 0 * -inf is NaN)."""
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.standard_normal((5, 7)) * 4)
        t = jnp.asarray(rng.uniform(size=(5, 7)))
        tx, tt = jnp.asarray(rng.standard_normal(x.shape)), jnp.asarray(rng.standard_normal(x.shape))

        def reference(x, t):
            return jnp.mean(-jnp.mean(t * jax.nn.log_sigmoid(x) + (1 - t) * jax.nn.log_sigmoid(-x), axis=-1))

        for a, b in zip(
            jax.grad(F.multilabel_soft_margin_loss, (0, 1))(x, t), jax.grad(reference, (0, 1))(x, t), strict=True
        ):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-15)
        for tangents in ((tx, tt), (tx, jnp.zeros_like(tt)), (jnp.zeros_like(tx), tt)):
            _, ours = jax.jvp(F.multilabel_soft_margin_loss, (x, t), tangents)
            _, ref = jax.jvp(reference, (x, t), tangents)
            np.testing.assert_allclose(float(ours), float(ref), rtol=1e-12)
    edge = F.multilabel_soft_margin_loss(
        jnp.array([[-jnp.inf, jnp.inf, jnp.inf, -jnp.inf]]), jnp.array([[1.0, 0.0, 1.0, 0.0]]), reduction="none"
    )
    per_term = [
        F.multilabel_soft_margin_loss(jnp.array([[v]]), jnp.array([[c]]), reduction="none")[0]
        for v, c in ((-jnp.inf, 1.0), (jnp.inf, 0.0), (jnp.inf, 1.0), (-jnp.inf, 0.0))
    ]
    assert [float(v) for v in per_term[:2]] == [math.inf, math.inf]
    assert all(np.isnan(float(v)) for v in per_term[2:]) and np.isnan(float(edge[0]))
