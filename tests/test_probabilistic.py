"""Behaviour that is ours to define for huber/smooth_l1, binary cross-entropy (both), kl_div,
poisson and gaussian NLL: hand-computed numbers, jit/grad/vmap/jvp, the documented under-jit
results of data-dependent errors, warnings, and the classes."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import losses_jax as F

g = np.random.default_rng(0)
X = jnp.asarray(g.normal(size=(4, 5)), jnp.float32)
Y = jnp.asarray(g.normal(size=(4, 5)), jnp.float32)
P = jax.nn.sigmoid(X)
Q = jnp.asarray(g.uniform(size=(4, 5)), jnp.float32)
V = jnp.asarray(g.uniform(0.1, 2.0, size=(4, 5)), jnp.float32)

# Every loss as f(input, target) -> scalar, on valid inputs.
LOSSES = {
    "huber_loss": lambda x, y: F.huber_loss(x, y, delta=0.7),
    "huber_loss weighted": lambda x, y: F.huber_loss(x, y, weight=V),
    "smooth_l1_loss": lambda x, y: F.smooth_l1_loss(x, y, beta=0.5),
    "smooth_l1_loss beta=0": lambda x, y: F.smooth_l1_loss(x, y, beta=0.0),
    "binary_cross_entropy": lambda x, y: F.binary_cross_entropy(jax.nn.sigmoid(x), jax.nn.sigmoid(y), weight=V[0]),
    "binary_cross_entropy_with_logits": lambda x, y: F.binary_cross_entropy_with_logits(
        x, jax.nn.sigmoid(y), weight=V[:, :1], pos_weight=V[0]
    ),
    "kl_div": lambda x, y: F.kl_div(jax.nn.log_softmax(x, -1), jax.nn.softmax(y, -1), reduction="batchmean"),
    "kl_div log_target": lambda x, y: F.kl_div(x, y, reduction="sum", log_target=True),
    "poisson_nll_loss": lambda x, y: F.poisson_nll_loss(x, jnp.abs(y) * 3, full=True),
    "poisson_nll_loss rate": lambda x, y: F.poisson_nll_loss(jnp.exp(x), jnp.abs(y), log_input=False),
    "gaussian_nll_loss": lambda x, y: F.gaussian_nll_loss(x, y, V[:, :1], full=True),
}


# -- hand-computed numbers -------------------------------------------------------------------


def test_binary_cross_entropy_by_hand():
    x, t = np.array([0.8, 0.3]), np.array([1.0, 0.0])
    assert float(F.binary_cross_entropy(x, t)) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2, rel=1e-6)
    w = np.array([2.0, 0.5])
    assert float(F.binary_cross_entropy(x, t, weight=w)) == pytest.approx(
        -(2 * math.log(0.8) + 0.5 * math.log(0.7)) / 2, rel=1e-6
    )
    # probabilities 0 and 1: each log clamped at -100
    out = F.binary_cross_entropy(np.array([0.0, 1.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_array_equal(np.asarray(out), [100.0, 100.0, 0.0, 0.0])
    assert float(F.binary_cross_entropy(np.array([0.0]), np.array([0.5]), reduction="sum")) == pytest.approx(50.0)
    # gradient at 0 and 1: torch's (x - t) / max(x (1 - x), 1e-12)
    gx = jax.grad(lambda x: F.binary_cross_entropy(x, jnp.array([1.0, 0.0, 0.0]), reduction="sum"))(
        jnp.array([0.0, 1.0, 0.0])
    )
    np.testing.assert_allclose(np.asarray(gx), [-1e12, 1e12, 0.0], rtol=1e-6)


def test_binary_cross_entropy_with_logits_by_hand():
    # torch's docstring example: 64 classes, logit 1.5, target 1 -> -log(sigmoid(1.5))
    ref = -math.log(1 / (1 + math.exp(-1.5)))
    out = F.BCEWithLogitsLoss(pos_weight=jnp.ones(64))(jnp.full((10, 64), 1.5), jnp.ones((10, 64)))
    assert float(out) == pytest.approx(ref, rel=1e-5) and ref == pytest.approx(0.2014, abs=1e-4)  # float32 mean of 640
    out = F.binary_cross_entropy_with_logits(
        jnp.full((2, 3), 1.5), jnp.ones((2, 3)), pos_weight=jnp.array([3.0, 1.0, 0.5]), reduction="none"
    )
    np.testing.assert_allclose(np.asarray(out[0]), [3 * ref, ref, 0.5 * ref], rtol=1e-6)
    # huge logits: exact and finite (no log(0), no exp overflow), gradients +-1
    x, t = jnp.array([1e4, -1e4, 1e4, -1e4]), jnp.array([0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(
        np.asarray(F.binary_cross_entropy_with_logits(x, t, reduction="none")), [1e4, 1e4, 0.0, 0.0]
    )
    gx = jax.grad(lambda x: F.binary_cross_entropy_with_logits(x, t, reduction="sum"))(x)
    np.testing.assert_array_equal(np.asarray(gx), [1.0, -1.0, 0.0, 0.0])


def test_robust_by_hand():
    d = np.array([0.5, 2.0, -3.0, 0.0])
    np.testing.assert_allclose(np.asarray(F.huber_loss(d, np.zeros(4), reduction="none")), [0.125, 1.5, 2.5, 0.0])
    np.testing.assert_allclose(
        np.asarray(F.huber_loss(d, np.zeros(4), reduction="none", delta=2.0)), [0.125, 2.0, 4.0, 0.0]
    )
    np.testing.assert_allclose(
        np.asarray(F.smooth_l1_loss(d, np.zeros(4), reduction="none", beta=2.0)), [0.0625, 1.0, 2.0, 0.0]
    )
    np.testing.assert_allclose(np.asarray(F.smooth_l1_loss(d, np.zeros(4), reduction="none", beta=0.0)), np.abs(d))
    # huber's weighted 'mean' is a plain mean of w * loss (torch 2.13), not / sum(w) as l1/mse
    w = np.array([1.0, 2.0, 0.0, 1.0])
    assert float(F.huber_loss(d, np.zeros(4), weight=w)) == pytest.approx((0.125 + 3.0) / 4)
    # gradients at ties are 0; beyond the threshold +-delta (and +-1 for smooth_l1), also at inf
    z = jnp.array([0.0, 0.5, 5.0, -jnp.inf])
    np.testing.assert_array_equal(
        np.asarray(jax.grad(lambda x: F.huber_loss(x, jnp.zeros(4), reduction="sum", delta=2.0))(z)), [0, 0.5, 2, -2]
    )
    np.testing.assert_array_equal(
        np.asarray(jax.grad(lambda x: F.smooth_l1_loss(x, jnp.zeros(4), reduction="sum"))(z)), [0, 0.5, 1, -1]
    )


def test_kl_div_by_hand():
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    q = np.array([[0.25, 0.5, 0.25], [0.2, 0.6, 0.2]])
    terms = np.where(p == 0, 0.0, p * np.log(np.where(p == 0, 1, p) / q))
    logq = np.log(q)
    assert float(F.kl_div(logq, p, reduction="batchmean")) == pytest.approx(terms.sum() / 2, rel=1e-6)
    assert float(F.kl_div(logq, p, reduction="sum")) == pytest.approx(terms.sum(), rel=1e-6)
    with pytest.warns(UserWarning):
        assert float(F.kl_div(logq, p)) == pytest.approx(terms.mean(), rel=1e-6)
    # log_target gives the same numbers; a target 0 is -inf in log space (exp(-inf) * (-inf - x) is
    # NaN in torch and here: use log_target=False for exact zeros)
    assert float(F.kl_div(logq[1], np.log(p[1]), reduction="sum", log_target=True)) == pytest.approx(
        terms[1].sum(), rel=1e-6
    )
    # target 0: the term is 0, the input gradient 0, the target gradient NaN (torch's xlogy derivative)
    gx, gt = jax.grad(lambda x, t: F.kl_div(x, t, reduction="sum"), argnums=(0, 1))(jnp.asarray(logq), jnp.asarray(p))
    assert float(gx[0, 2]) == 0.0 and np.isnan(gt[0, 2])
    assert np.isfinite(np.asarray(gt)[p > 0]).all()
    # batchmean of a 0-d input is the sum (torch: no division)
    assert float(F.kl_div(jnp.array(-1.0), jnp.array(0.5), reduction="batchmean")) == pytest.approx(
        0.5 * (math.log(0.5) + 1)
    )


def test_poisson_by_hand():
    x, t = math.log(2.0), 3.0
    stirling = 3 * math.log(3) - 3 + 0.5 * math.log(2 * math.pi * 3)
    assert float(F.poisson_nll_loss(jnp.array([x]), jnp.array([t]))) == pytest.approx(2 - 3 * x, rel=1e-6)
    assert float(F.poisson_nll_loss(jnp.array([x]), jnp.array([t]), full=True)) == pytest.approx(
        2 - 3 * x + stirling, rel=1e-6
    )
    # no Stirling term where target <= 1
    out = F.poisson_nll_loss(jnp.array([x, x]), jnp.array([1.0, 0.0]), full=True, reduction="none")
    np.testing.assert_allclose(np.asarray(out), [2 - x, 2], rtol=1e-6)
    assert float(F.poisson_nll_loss(jnp.array([2.0]), jnp.array([3.0]), log_input=False, eps=0.0)) == pytest.approx(
        2 - 3 * math.log(2), rel=1e-6
    )
    # integer counts are accepted as targets
    assert float(F.poisson_nll_loss(jnp.array([x]), jnp.array([3]))) == pytest.approx(2 - 3 * x, rel=1e-6)


def test_gaussian_by_hand():
    out = F.gaussian_nll_loss(jnp.array([1.0]), jnp.array([0.0]), jnp.array([2.0]))
    assert float(out) == pytest.approx(0.5 * (math.log(2) + 0.5), rel=1e-6)
    out = F.gaussian_nll_loss(jnp.array([1.0]), jnp.array([0.0]), 2.0, full=True)
    assert float(out) == pytest.approx(0.5 * (math.log(2) + 0.5) + 0.5 * math.log(2 * math.pi), rel=1e-6)
    # var below eps is clamped for the value, but the gradient passes through as if unclamped
    with jax.enable_x64(True):
        x, t, v = jnp.array([1.0]), jnp.array([0.0]), jnp.array([0.0])
        assert float(F.gaussian_nll_loss(x, t, v)) == pytest.approx(0.5 * (math.log(1e-6) + 1e6), rel=1e-12)
        gv = jax.grad(lambda v: F.gaussian_nll_loss(x, t, v))(v)
        assert float(gv[0]) == pytest.approx(0.5 * (1e6 - 1e12), rel=1e-12)
    # homoscedastic: var of one fewer dimension, or with a last dimension of 1
    x, t = jnp.zeros((2, 3)), jnp.ones((2, 3))
    a = F.gaussian_nll_loss(x, t, jnp.array([1.0, 4.0]), reduction="none")
    b = F.gaussian_nll_loss(x, t, jnp.array([[1.0], [4.0]]), reduction="none")
    np.testing.assert_allclose(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(np.asarray(a[1]), 0.5 * (math.log(4) + 0.25), rtol=1e-6)


# -- transforms --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LOSSES))
def test_jit_grad_vmap(name):
    f = LOSSES[name]
    eager = f(X, Y)
    np.testing.assert_allclose(np.asarray(jax.jit(f)(X, Y)), np.asarray(eager), rtol=1e-6)
    gx, gy = jax.jit(jax.grad(f, argnums=(0, 1)))(X, Y)
    assert gx.shape == X.shape and np.isfinite(np.asarray(gx)).all() and np.isfinite(np.asarray(gy)).all()
    # vmap over a leading batch axis equals a loop
    xb, yb = jnp.stack([X, X * 0.5]), jnp.stack([Y, -Y])
    batched = jax.vmap(f)(xb, yb)
    np.testing.assert_allclose(np.asarray(batched), [float(f(xb[i], yb[i])) for i in range(2)], rtol=1e-5)
    # forward mode agrees with reverse mode
    tx = jnp.asarray(np.random.default_rng(1).normal(size=X.shape), jnp.float32)
    _, jvp = jax.jvp(lambda x: f(x, Y), (X,), (tx,))
    assert float(jvp) == pytest.approx(float(jnp.sum(gx * tx)), rel=1e-4, abs=1e-5)


def test_forward_mode_ignores_infinite_partials_of_other_arguments():
    """At p = 0 the target partial of BCE is infinite; a jvp in the input alone must not see it."""
    x, t = jnp.array([0.0, 1.0, 0.5]), jnp.array([0.0, 1.0, 1.0])
    _, tan = jax.jvp(lambda x: F.binary_cross_entropy(x, t, reduction="sum"), (x,), (jnp.ones(3),))
    assert float(tan) == pytest.approx(-2.0)  # 0 + 0 + (0.5 - 1) / 0.25
    jac = jax.jacfwd(lambda x: F.binary_cross_entropy(x, t, reduction="none"))(x)
    np.testing.assert_allclose(np.diag(np.asarray(jac)), [0.0, 0.0, -2.0])


def test_second_derivatives_exist():
    h = jax.hessian(lambda x: F.huber_loss(x, jnp.zeros(3), reduction="sum"))(jnp.array([0.3, 2.0, -5.0]))
    np.testing.assert_allclose(np.diag(np.asarray(h)), [1.0, 0.0, 0.0])
    h = jax.hessian(lambda x: F.binary_cross_entropy_with_logits(x, jnp.ones(2), reduction="sum"))(
        jnp.array([0.0, 2.0])
    )
    s = 1 / (1 + np.exp(-np.array([0.0, 2.0])))
    np.testing.assert_allclose(np.diag(np.asarray(h)), s * (1 - s), rtol=1e-6)


# -- documented under-jit behaviour of data-dependent errors ----------------------------------


def test_bce_out_of_range_is_an_error_eagerly_and_nan_under_jit():
    x, t = jnp.array([0.5, 1.5, 0.2, 0.7]), jnp.array([1.0, 1.0, -0.5, 0.0])
    with pytest.raises(ValueError, match="'input'"):
        F.binary_cross_entropy(x, t)
    loss = jax.jit(lambda x, t: F.binary_cross_entropy(x, t, reduction="none"))(x, t)
    assert np.isnan(loss[1]) and np.isnan(loss[2])  # input 1.5; target -0.5
    assert loss[0] == pytest.approx(math.log(2), rel=1e-6) and loss[3] == pytest.approx(-math.log(0.3), rel=1e-6)
    gx, gt = jax.jit(jax.grad(lambda x, t: F.binary_cross_entropy(x, t, reduction="sum"), argnums=(0, 1)))(x, t)
    assert np.isnan(gx[1]) and np.isnan(gx[2]) and np.isnan(gt[1]) and np.isnan(gt[2])
    assert np.isfinite(np.asarray(gx)[[0, 3]]).all()
    assert np.isnan(float(jax.jit(F.binary_cross_entropy)(x, t)))  # the mean is NaN
    # vmap traces too: same NaN semantics
    assert np.isnan(
        np.asarray(jax.vmap(lambda a, b: F.binary_cross_entropy(a, b))(x[:, None], t[:, None]))[[1, 2]]
    ).all()


def test_gaussian_negative_var_is_an_error_eagerly_and_nan_under_jit():
    x, t, v = jnp.zeros(3), jnp.ones(3), jnp.array([1.0, -0.5, 1e-9])
    with pytest.raises(ValueError, match="'var' has negative entry/entries"):
        F.gaussian_nll_loss(x, t, v)
    loss = jax.jit(lambda v: F.gaussian_nll_loss(x, t, v, reduction="none"))(v)
    assert np.isnan(loss[1]) and np.isfinite(np.asarray(loss)[[0, 2]]).all()
    gv = jax.jit(jax.grad(lambda v: F.gaussian_nll_loss(x, t, v, reduction="sum")))(v)
    assert np.isnan(gv[1]) and np.isfinite(np.asarray(gv)[[0, 2]]).all()


# -- warnings ----------------------------------------------------------------------------------


def test_kl_div_mean_warning_is_torchs():
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        torch.nn.functional.kl_div(torch.zeros(2), torch.ones(2))
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        F.kl_div(jnp.zeros(2), jnp.ones(2))
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    assert ours[0].category is theirs[0].category is UserWarning
    assert ours[0].filename == __file__
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size") as rec:
        F.KLDivLoss()(jnp.zeros(2), jnp.ones(2))
    assert rec[0].filename == __file__
    for kw in (
        {"reduction": "batchmean"},
        {"reduction": "sum"},
        {"size_average": True},
        {"reduction": "elementwise_mean"},
    ):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            F.kl_div(jnp.zeros(2), jnp.ones(2), **kw)
        assert not any("batchmean" in str(w.message) for w in rec), kw


def test_size_mismatch_warnings():
    for fn in (F.huber_loss, F.smooth_l1_loss):
        with pytest.warns(UserWarning, match="Using a target size") as rec:
            fn(jnp.zeros((3, 1)), jnp.zeros(3))
        assert rec[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # these broadcast silently, as torch
        F.kl_div(jnp.zeros((3, 1)), jnp.ones(3), reduction="sum")
        F.poisson_nll_loss(jnp.zeros((3, 1)), jnp.ones(3))
        F.gaussian_nll_loss(jnp.zeros(3), jnp.zeros((2, 3)), jnp.ones(3))


# -- classes -----------------------------------------------------------------------------------

CLASSES = [
    (F.BCELoss(weight=jnp.ones(5)), lambda: (P, Q)),
    (F.BCEWithLogitsLoss(weight=jnp.ones((4, 1)), pos_weight=jnp.full(5, 2.0), reduction="sum"), lambda: (X, Q)),
    (F.KLDivLoss(reduction="batchmean", log_target=True), lambda: (X, Y)),
    (F.PoissonNLLLoss(full=True, eps=1e-3), lambda: (X, jnp.abs(Y))),
    (F.GaussianNLLLoss(full=True, eps=1e-3, reduction="none"), lambda: (X, Y, V)),
    (F.HuberLoss(delta=0.5), lambda: (X, Y)),
    (F.SmoothL1Loss(beta=0.0, reduction="sum"), lambda: (X, Y)),
]


@pytest.mark.parametrize("loss,args", CLASSES, ids=[type(c[0]).__name__ for c in CLASSES])
def test_classes_are_pytrees_and_jit(loss, args):
    a = args()
    leaves, tree = jax.tree_util.tree_flatten(loss)
    rebuilt = jax.tree_util.tree_unflatten(tree, leaves)
    np.testing.assert_allclose(np.asarray(rebuilt(*a)), np.asarray(loss(*a)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.jit(lambda fn, *a: fn(*a))(loss, *a)), np.asarray(loss(*a)), rtol=1e-6)


def test_class_options_and_repr():
    assert repr(F.HuberLoss()) == "HuberLoss()"
    assert repr(F.HuberLoss(delta=2.0)) == "HuberLoss(delta=2.0)"
    assert repr(F.SmoothL1Loss(beta=0.0, reduction="sum")) == "SmoothL1Loss(reduction='sum', beta=0.0)"
    assert repr(F.BCEWithLogitsLoss(pos_weight=jnp.ones(3))) == "BCEWithLogitsLoss(pos_weight=Array(3,))"
    assert repr(F.KLDivLoss(reduction="batchmean")) == "KLDivLoss(reduction='batchmean')"
    assert repr(F.GaussianNLLLoss(full=True)) == "GaussianNLLLoss(full=True)"
    assert repr(F.PoissonNLLLoss(log_input=False)) == "PoissonNLLLoss(log_input=False)"
    with pytest.warns(UserWarning, match="reduction='none'"):
        assert F.PoissonNLLLoss(reduce=False).reduction == "none"
    with pytest.raises(TypeError):
        F.GaussianNLLLoss(True)  # keyword-only, as torch
    # torch's positional order
    assert F.BCEWithLogitsLoss(None, None, None, "sum", jnp.ones(2)).pos_weight.shape == (2,)
    assert F.PoissonNLLLoss(False, True, None, 0.5).eps == 0.5
    assert F.SmoothL1Loss(None, None, "sum", 0.3).beta == 0.3
    assert F.HuberLoss("sum", 0.3).delta == 0.3
    assert F.KLDivLoss(None, None, "sum", True).log_target is True


def test_functional_positional_order():
    # torch's positional order, legacy arguments in their places
    a = F.binary_cross_entropy(P, Q, None, None, None, "sum")
    assert float(a) == pytest.approx(float(F.binary_cross_entropy(P, Q, reduction="sum")))
    b = F.binary_cross_entropy_with_logits(X, Q, None, None, None, "sum", jnp.ones(5))
    assert float(b) == pytest.approx(float(F.binary_cross_entropy_with_logits(X, Q, reduction="sum")), rel=1e-6)
    c = F.poisson_nll_loss(jnp.exp(X), jnp.abs(Y) * 3, False, True, None, 0.5, None, "sum")
    assert float(c) == pytest.approx(
        float(F.poisson_nll_loss(jnp.exp(X), jnp.abs(Y) * 3, log_input=False, full=True, eps=0.5, reduction="sum"))
    )
    assert np.isfinite(float(c))
    assert float(F.huber_loss(X, Y, "sum", 0.5)) == pytest.approx(float(F.huber_loss(X, Y, reduction="sum", delta=0.5)))
    assert float(F.smooth_l1_loss(X, Y, None, None, "sum", 0.5)) == pytest.approx(
        float(F.smooth_l1_loss(X, Y, reduction="sum", beta=0.5))
    )
    assert float(F.gaussian_nll_loss(X, Y, V, True, 0.1, "sum")) == pytest.approx(
        float(F.gaussian_nll_loss(X, Y, V, full=True, eps=0.1, reduction="sum"))
    )


def test_dtypes():
    for dt in (jnp.bfloat16, jnp.float16):
        assert F.binary_cross_entropy(P.astype(dt), Q.astype(dt)).dtype == dt
        assert F.binary_cross_entropy_with_logits(X.astype(dt), Q.astype(dt)).dtype == dt
        assert F.kl_div(X.astype(dt), Q.astype(dt), reduction="sum").dtype == dt
        assert F.poisson_nll_loss(X.astype(dt), Q.astype(dt)).dtype == dt
        assert F.gaussian_nll_loss(X.astype(dt), Y.astype(dt), 1.0).dtype == dt
        assert F.huber_loss(X.astype(dt), Y.astype(dt)).dtype == dt
    with jax.enable_x64(True):
        x64 = jnp.asarray(np.asarray(X), jnp.float64)
        assert F.smooth_l1_loss(x64, x64).dtype == jnp.float64
        assert F.gaussian_nll_loss(x64, x64, jnp.ones((4, 5), jnp.float32)).dtype == jnp.float64
