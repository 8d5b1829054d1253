"""ctc_loss / CTCLoss: hand-computed values, an independent brute-force reference (every path
enumerated), torch's gradient convention, jit / grad / vmap, and the documented under-jit results."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import losses_jax as F


def _log_softmax(x):
    x = np.asarray(x, np.float64)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


# -- closed forms -------------------------------------------------------------------------------


def test_tiny_cases_by_hand():
    with jax.enable_x64(True):
        lp = _log_softmax(np.array([[0.3, 1.2, -0.5], [0.1, -0.7, 0.9], [1.1, 0.2, 0.0]]))  # (T=3, C=3)
        y = np.exp(lp)
        one = lambda tgt, t, **kw: float(
            F.ctc_loss(lp[:t], np.array(tgt, np.int64), np.array(t), np.array(len(tgt)), reduction="sum", **kw)
        )
        # T = 1, target "1": the single path "1"
        assert one([1], 1) == pytest.approx(-lp[0, 1], rel=1e-12)
        # T = 2, target "1": paths "1 1", "b 1", "1 b"
        p = y[0, 1] * y[1, 1] + y[0, 0] * y[1, 1] + y[0, 1] * y[1, 0]
        assert one([1], 2) == pytest.approx(-math.log(p), rel=1e-12)
        # T = 2, empty target: "b b"; target "1 2": "1 2"; target "1 1": impossible
        assert float(F.ctc_loss(lp[:2], np.zeros((1, 0), np.int64), np.array([2]), np.array([0]))) == pytest.approx(
            -(lp[0, 0] + lp[1, 0]), rel=1e-12
        )
        assert one([1, 2], 2) == pytest.approx(-(lp[0, 1] + lp[1, 2]), rel=1e-12)
        assert one([1, 1], 2) == math.inf
        assert one([1, 1], 2, zero_infinity=True) == 0.0
        # T = 3, target "1 1": only "1 b 1"
        assert one([1, 1], 3) == pytest.approx(-(lp[0, 1] + lp[1, 0] + lp[2, 1]), rel=1e-12)
        # blank = 2: target "0" over T = 2: "0 0", "2 0", "0 2"
        p = y[0, 0] * y[1, 0] + y[0, 2] * y[1, 0] + y[0, 0] * y[1, 2]
        assert one([0], 2, blank=2) == pytest.approx(-math.log(p), rel=1e-12)


def test_mean_divides_by_clamped_target_lengths():
    with jax.enable_x64(True):
        lp = _log_softmax(np.random.default_rng(0).normal(size=(4, 3, 3)))
        tg = np.array([[1, 2], [2, 2], [1, 1]])
        il, tl = np.array([4, 4, 3]), np.array([2, 0, 1])
        per = np.asarray(F.ctc_loss(lp, tg, il, tl, reduction="none"))
        assert float(F.ctc_loss(lp, tg, il, tl)) == pytest.approx(np.mean(per / np.array([2, 1, 1])), rel=1e-12)
        assert float(F.ctc_loss(lp, tg, il, tl, reduction="sum")) == pytest.approx(per.sum(), rel=1e-12)
        assert float(F.CTCLoss()(lp, tg, il, tl)) == pytest.approx(np.mean(per / np.array([2, 1, 1])), rel=1e-12)


# -- an independent reference: enumerate every path ----------------------------------------------


def _collapse(path, blank):
    out, prev = [], None
    for c in path:
        if c != prev and c != blank:
            out.append(c)
        prev = c
    return tuple(out)


def _brute_nll(lp, target, blank):
    """-log sum over all C^T paths that collapse to ``target`` (jnp, so autodiff gives the plain
    partial derivative)."""
    t_len, c = lp.shape
    paths = [p for p in itertools.product(range(c), repeat=t_len) if _collapse(p, blank) == tuple(target)]
    if not paths:
        return jnp.inf
    idx = jnp.array(paths)
    scores = lp[jnp.arange(t_len)[None, :], idx].sum(1)
    return -jax.nn.logsumexp(scores)


@pytest.mark.parametrize("seed", range(6))
def test_against_brute_force_and_torchs_gradient_convention(seed):
    """Values equal the path sum; gradients equal the plain partial derivative + exp(lp) for
    t < input_length (torch's convention, even for unnormalised scores) and 0 beyond."""
    g = np.random.default_rng(seed)
    t_max, c = 4, 3
    blank = int(g.integers(0, c))
    labels = [k for k in range(c) if k != blank]
    with jax.enable_x64(True):
        x = g.normal(size=(t_max, 2, c)) * 1.5  # unnormalised on purpose
        tg = np.array([[labels[0], labels[1]], [labels[1], labels[1]]])
        il, tl = np.array([4, 3]), np.array([2, 1 + seed % 2])
        grad = jax.grad(lambda z: F.ctc_loss(z, tg, il, tl, blank=blank, reduction="sum"))(jnp.asarray(x))
        for n in range(2):
            ref = lambda z: _brute_nll(z, tg[n, : tl[n]], blank)
            sub = jnp.asarray(x[: il[n], n])
            assert float(F.ctc_loss(x, tg, il, tl, blank=blank, reduction="none")[n]) == pytest.approx(
                float(ref(sub)), rel=1e-12
            )
            expected = np.asarray(jax.grad(ref)(sub)) + np.exp(x[: il[n], n])
            np.testing.assert_allclose(np.asarray(grad[: il[n], n]), expected, rtol=1e-10, atol=1e-12)
            np.testing.assert_array_equal(np.asarray(grad[il[n] :, n]), 0.0)


def test_log_softmax_inputs_give_the_true_gradient():
    """Through log_softmax, torch's extra exp(lp) term cancels: the gradient w.r.t. the logits is
    the exact derivative of the path sum."""
    g = np.random.default_rng(3)
    with jax.enable_x64(True):
        z = jnp.asarray(g.normal(size=(4, 1, 3)))
        tg = np.array([[1, 2]])
        ours = jax.grad(
            lambda z: F.ctc_loss(jax.nn.log_softmax(z, -1), tg, np.array([4]), np.array([2]), reduction="sum")
        )(z)
        ref = jax.grad(lambda z: _brute_nll(jax.nn.log_softmax(z[:, 0], -1), (1, 2), 0))(z)
        np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-10, atol=1e-12)


def test_grad_closed_form_t1():
    """T = 1, target "1": the occupancy is 1 on class 1, so torch's gradient is exp(lp) - onehot."""
    x = np.array([[[0.5, -1.0, 2.0]]])
    grad = jax.grad(lambda z: F.ctc_loss(z, np.array([[1]]), np.array([1]), np.array([1]), reduction="sum"))(x)
    np.testing.assert_allclose(np.asarray(grad)[0, 0], np.exp(x[0, 0]) - np.array([0, 1, 0]), rtol=1e-6)


# -- transforms ---------------------------------------------------------------------------------

LP = _log_softmax(np.random.default_rng(1).normal(size=(6, 3, 4))).astype(np.float32)
TG = np.array([[1, 2, 2], [3, 1, 0], [2, 3, 1]])
IL = np.array([6, 5, 4])
TL = np.array([3, 2, 1])


@pytest.mark.parametrize("concatenated", [False, True])
def test_jit_with_traced_lengths_matches_eager(concatenated):
    tg = np.concatenate([TG[n, : TL[n]] for n in range(3)]) if concatenated else TG
    for red in ("none", "mean", "sum"):
        eager = F.ctc_loss(LP, tg, IL, TL, reduction=red)
        jitted = jax.jit(lambda *a: F.ctc_loss(*a, reduction=red))(LP, tg, IL, TL)
        np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-6)
        g_e = jax.grad(lambda x: F.ctc_loss(x, tg, IL, TL, reduction=red).sum())(LP)
        g_j = jax.jit(jax.grad(lambda x, *a: F.ctc_loss(x, *a, reduction=red).sum()))(LP, tg, IL, TL)
        np.testing.assert_allclose(np.asarray(g_j), np.asarray(g_e), rtol=1e-5, atol=1e-7)


def test_vmap_over_problems_matches_a_loop():
    g = np.random.default_rng(2)
    lps = _log_softmax(g.normal(size=(4, 6, 3, 4))).astype(np.float32)
    ils = np.array([[6, 5, 4], [3, 6, 2], [6, 6, 6], [1, 2, 3]])
    f = lambda x, il: F.ctc_loss(x, TG, il, TL, reduction="sum", zero_infinity=True)
    batched = jax.vmap(f)(lps, ils)
    loop = np.array([float(f(lps[k], ils[k])) for k in range(4)])
    np.testing.assert_allclose(np.asarray(batched), loop, rtol=1e-6)
    gb = jax.vmap(jax.grad(f))(lps, ils)
    gl = np.stack([np.asarray(jax.grad(f)(lps[k], ils[k])) for k in range(4)])
    np.testing.assert_allclose(np.asarray(gb), gl, rtol=1e-5, atol=1e-7)


def test_class_is_a_pytree_and_jits():
    loss = F.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
    assert repr(loss) == "CTCLoss(reduction='sum', zero_infinity=True)"
    assert repr(F.CTCLoss()) == "CTCLoss()"
    out = jax.jit(lambda m, x: m(x, TG, IL, TL))(loss, LP)
    assert float(out) == pytest.approx(float(F.ctc_loss(LP, TG, IL, TL, reduction="sum")), rel=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        F.CTCLoss(reduction="avg")


# -- documented behaviour under jit: data-dependent mistakes give NaN ----------------------------


@pytest.mark.parametrize(
    "il,tl,tg,bad",
    [
        (np.array([7, 5, 4]), TL, TG, [0]),  # input length > T
        (np.array([6, -1, 4]), TL, TG, [1]),  # negative input length
        (IL, np.array([3, 4, 1]), TG, [1]),  # target length > S
        (IL, TL, np.array([[1, 2, 2], [3, 9, 0], [2, 3, 1]]), [1]),  # target value >= C
        (IL, TL, np.array([1, 2, 2, 3, 1]), [0, 1, 2]),  # concatenated: sum(target_lengths) != 5
    ],
)
def test_invalid_values_under_jit_give_nan(il, tl, tg, bad):
    f = jax.jit(lambda x, a, b, c: F.ctc_loss(x, a, b, c, reduction="none"))
    out = np.asarray(f(LP, tg, il, tl))
    grad = np.asarray(jax.jit(jax.grad(lambda x, a, b, c: F.ctc_loss(x, a, b, c, reduction="sum")))(LP, tg, il, tl))
    for n in range(3):
        if n in bad:
            assert np.isnan(out[n])
            assert np.isnan(grad[:, n]).any()
        else:
            assert np.isfinite(out[n])
            assert np.isfinite(grad[:, n]).all()


# -- numerics ------------------------------------------------------------------------------------


def test_float32_long_sequences_are_stable():
    g = np.random.default_rng(4)
    x = _log_softmax(g.normal(size=(300, 2, 20)) * 6)  # peaked: per-step probabilities down to e^-60
    tg = g.integers(1, 20, size=(2, 60))
    il, tl = np.array([300, 250]), np.array([60, 45])
    with jax.enable_x64(True):
        ref = np.asarray(F.ctc_loss(x, tg, il, tl, reduction="none"))
        gref = np.asarray(jax.grad(lambda z: F.ctc_loss(z, tg, il, tl))(x))
    ours = np.asarray(F.ctc_loss(x.astype(np.float32), tg, il, tl, reduction="none"))
    gours = np.asarray(jax.grad(lambda z: F.ctc_loss(z, tg, il, tl))(x.astype(np.float32)))
    assert np.isfinite(ref).all() and ref.min() > 100
    np.testing.assert_allclose(ours, ref, rtol=2e-5)
    np.testing.assert_allclose(gours, gref, rtol=2e-3, atol=2e-5)


def test_half_inputs_compute_in_float32():
    for dt in (jnp.float16, jnp.bfloat16):
        x = jnp.asarray(LP, dt)
        out = F.ctc_loss(x, TG, IL, TL)
        ref = F.ctc_loss(x.astype(jnp.float32), TG, IL, TL)
        assert out.dtype == dt
        assert float(out) == pytest.approx(float(ref.astype(dt)), rel=0)
        g = jax.grad(lambda z: F.ctc_loss(z, TG, IL, TL).astype(jnp.float32))(x)
        assert g.dtype == dt and np.isfinite(np.asarray(g, np.float32)).all()


def test_float_targets_are_truncated_like_torch():
    out = F.ctc_loss(LP, TG.astype(np.float32) + 0.7, IL, TL, reduction="none")
    np.testing.assert_array_equal(np.asarray(out), np.asarray(F.ctc_loss(LP, TG, IL, TL, reduction="none")))
