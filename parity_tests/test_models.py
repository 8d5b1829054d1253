"""models.Tudui / models.LeNet against their torch twins (parity_tests/torch_models.py).

Same weights (torch's fresh init loaded through ``load_torch_state_dict``), same uint8 images
(ToTensor on the torch side, ``models.to_tensor`` on ours): logits, cross-entropy, the gradient of
every parameter (compared in torch's layout), max pooling at ties and NaN, every tutorial's
state_dict naming, round trips, the init distribution, and a 20-step SGD trajectory.

Error measure (as parity_tests/harness.py): ``max |ours - torch| / max |torch|`` per tensor.
Tolerances: the project's float32 ``1e-5`` (values), ``2e-4`` (reductions over many terms: gradients).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F
from flax import nnx

import losses_jax
import models
from parity_tests import torch_models as tm

PAIRS = [(models.Tudui, tm.Tudui), (models.LeNet, tm.LeNet)]
IDS = ["Tudui", "LeNet"]
RTOL_VALUE = 1e-5
RTOL_GRAD = 2e-4


def _rel(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))


def _images(seed: int, n: int, flat: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """uint8 NHWC images and labels. ``flat``: 8x8 constant blocks, so conv outputs tie exactly
    inside blocks and max pooling routes gradients among ties (torch: first maximum)."""
    rng = np.random.default_rng(seed)
    if flat:
        x = np.repeat(np.repeat(rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8), 8, 1), 8, 2)
    else:
        x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return x, rng.integers(0, 10, n)


def _torch_input(x_uint8: np.ndarray) -> torch.Tensor:
    """torchvision's ToTensor on a batch: NHWC uint8 -> NCHW float32 / 255."""
    return torch.from_numpy(x_uint8).permute(0, 3, 1, 2).contiguous().to(torch.float32).div(255)


def _twins(jax_cls, torch_cls, seed: int):
    torch.manual_seed(seed)
    net = torch_cls()
    model = models.load_torch_state_dict(jax_cls(rngs=nnx.Rngs(seed)), net.state_dict())
    return model, net


def _loss(model, x, y):
    return losses_jax.cross_entropy(model(x), y)


# Module-level jitted functions: nnx.jit caches per (network, dtype, shapes) across tests.
_value_and_grad = nnx.jit(nnx.value_and_grad(_loss))
_forward = nnx.jit(lambda model, x: model(x))


# The same under models.jit, which train compiles with (on CPU: XLA's own convolutions), and with
# the convolutions written for YNNPACK (cpu_impl="ynnpack", the CPU default compile options' choice).
def _apply(layer, h):
    return layer(h)


_value_and_grad_models_jit = models.jit(nnx.value_and_grad(_loss))
# name -> (value_and_grad, layer call, cpu_impl of the models)
JITS = {
    "nnx.jit": (_value_and_grad, _apply, "xla"),
    "nnx.jit-ynnpack": (_value_and_grad, _apply, "ynnpack"),
    "models.jit": (_value_and_grad_models_jit, models.jit(_apply), "xla"),
}


@nnx.jit
def _sgd_step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(_loss)(model, x, y)
    optimizer.update(model, grads)
    return loss


def _grads_torch_layout(model, grads) -> dict:
    """Put a gradient State into a copy of the model and export it: torch keys and layouts."""
    holder = nnx.clone(model)
    nnx.update(holder, grads)
    return models.to_torch_state_dict(holder)


def test_to_tensor_matches_torch_to_tensor():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    ours = np.asarray(models.to_tensor(x))
    theirs = _torch_input(x).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(ours, theirs)  # bit for bit, all 256 values
    np.testing.assert_array_equal(np.asarray(jax.jit(models.to_tensor)(jnp.asarray(x))), theirs)


@pytest.mark.parametrize("jax_cls,torch_cls", PAIRS, ids=IDS)
def test_logits_match_torch(jax_cls, torch_cls):
    model, net = _twins(jax_cls, torch_cls, seed=0)
    x, _ = _images(1, 16)
    with torch.no_grad():
        theirs = net(_torch_input(x)).numpy()
    ours = np.asarray(_forward(model, models.to_tensor(x)))
    assert ours.shape == theirs.shape == (16, 10)
    assert _rel(ours, theirs) <= RTOL_VALUE


def _as_float64(model):
    """Cast the parameters to float64 (call inside ``jax.enable_x64(True)``); the model then
    computes in float64, since it casts its input to the parameters' dtype."""
    nnx.update(model, jax.tree.map(lambda p: p.astype(jnp.float64), nnx.state(model, nnx.Param)))
    return model


def _mixed_batch(seed: int, n: int):
    """Half noise images, half flat-block images (exact ties inside blocks)."""
    x1, y1 = _images(seed, n // 2)
    x2, y2 = _images(seed + 1, n - n // 2, flat=True)
    return np.concatenate([x1, x2]), np.concatenate([y1, y2])


def _pool_decision_flips(model, net, x, conv=_apply) -> list[int]:
    """Per max-pool stage, the number of 2x2 windows where torch and we pick a different
    element (each side fed its own activations). f32 convolutions round differently in torch
    (oneDNN) and XLA, so a window whose two largest values are within ~1e-7 can pick different
    elements: the forward value differs by that 1e-7, but the whole gradient of that window goes
    to a different position, a visible gradient difference. float64 makes this vanishingly rare."""
    convs_t = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    convs_j = [layer for _, layer in model.layers() if isinstance(layer, models.Conv2d)]
    h_t = _torch_input(x).to(next(net.parameters()).dtype)
    h_j = models.to_tensor(x).astype(model.conv1.kernel.dtype)
    flips = []

    def choice(a):  # (N, H, W, C) -> first-maximum index per window, torch's scan order
        n, h, w, c = a.shape
        return (
            a.reshape(n, h // 2, 2, w // 2, 2, c)
            .transpose(0, 1, 3, 5, 2, 4)
            .reshape(n, h // 2, w // 2, c, 4)
            .argmax(-1)
        )

    for conv_t, conv_j in zip(convs_t, convs_j, strict=True):
        with torch.no_grad():
            c_t = conv_t(h_t)
        c_j = conv(conv_j, h_j)
        flips.append(int((choice(c_t.permute(0, 2, 3, 1).numpy()) != choice(np.asarray(c_j))).sum()))
        h_t, h_j = F.max_pool2d(c_t, 2), models.max_pool_2x2(c_j)
    return flips


def _loss_and_grad_errors(model, net, x, y, value_and_grad=_value_and_grad) -> tuple[float, dict]:
    net.zero_grad()
    dtype = next(net.parameters()).dtype
    loss_t = F.cross_entropy(net(_torch_input(x).to(dtype)), torch.from_numpy(y))
    loss_t.backward()
    loss, grads = value_and_grad(model, models.to_tensor(x), jnp.asarray(y))
    ours = _grads_torch_layout(model, grads)
    theirs = {k: p.grad.numpy() for k, p in net.named_parameters()}
    assert list(ours) == list(theirs)
    assert all(ours[k].dtype == theirs[k].dtype for k in theirs)
    return _rel(loss, loss_t.detach().numpy()), {k: _rel(ours[k], theirs[k]) for k in theirs}


@pytest.mark.parametrize("jit", list(JITS))
@pytest.mark.parametrize("jax_cls,torch_cls", PAIRS, ids=IDS)
def test_loss_and_every_gradient_match_torch_float64(jax_cls, torch_cls, jit):
    """Same computation in float64 on both sides: loss and every parameter gradient agree to
    the float64 tolerance, on noise and flat (tie-heavy) images alike."""
    x, y = _mixed_batch(4, 16)
    value_and_grad, _, cpu_impl = JITS[jit]
    with jax.enable_x64(True):
        torch.manual_seed(3)
        net = torch_cls().double()
        model = models.load_torch_state_dict(
            _as_float64(jax_cls(cpu_impl=cpu_impl, rngs=nnx.Rngs(3))), net.state_dict()
        )
        loss_err, grad_errs = _loss_and_grad_errors(model, net, x, y, value_and_grad)
    assert loss_err <= 1e-7
    assert max(grad_errs.values()) <= 1e-7, grad_errs


@pytest.mark.parametrize("jit", list(JITS))
@pytest.mark.parametrize("jax_cls,torch_cls", PAIRS, ids=IDS)
def test_loss_and_every_gradient_match_torch_float32(jax_cls, torch_cls, jit):
    """float32, the dtype the models train in. Premise checked first: torch and we make the
    same max-pool choices on this batch (see _pool_decision_flips); ties are resolved alike
    (flat images), near-ties from different f32 rounding are what the float64 test covers."""
    value_and_grad, conv, cpu_impl = JITS[jit]
    model, net = _twins(functools.partial(jax_cls, cpu_impl=cpu_impl), torch_cls, seed=3)
    x, y = _mixed_batch(20, 16)
    flips = _pool_decision_flips(model, net, x, conv)
    assert not any(flips), f"near-tie pool decisions differ ({flips}): pick another batch"
    loss_err, grad_errs = _loss_and_grad_errors(model, net, x, y, value_and_grad)
    assert loss_err <= RTOL_VALUE
    assert max(grad_errs.values()) <= RTOL_GRAD, grad_errs


def test_float32_gradient_difference_is_a_pool_decision_flip():
    """The documented f32 exception, pinned: on this batch (with torch 2.13 / jax 0.10.2 on
    x86 CPU) one max-pool window's two largest values are within f32 rounding and torch and XLA
    pick different elements; the gradients then differ visibly (~1% of the largest conv1
    gradient), while the loss still agrees to f32 precision. Without a flip (other versions or
    hardware) the gradients must agree to the f32 tolerance instead."""
    model, net = _twins(models.Tudui, tm.Tudui, seed=3)
    x, y = _images(4, 32)
    flips = _pool_decision_flips(model, net, x)
    loss_err, grad_errs = _loss_and_grad_errors(model, net, x, y)
    assert loss_err <= RTOL_VALUE
    if sum(flips) == 0:
        assert max(grad_errs.values()) <= RTOL_GRAD, grad_errs
    else:
        assert max(grad_errs.values()) < 0.05, grad_errs  # local: one window's gradient moved


# ------------------------------------------------------------------------------ max pooling


def _pool_parity(x_nhwc: np.ndarray, g_nhwc: np.ndarray):
    xt = torch.from_numpy(x_nhwc).permute(0, 3, 1, 2).requires_grad_()
    yt = F.max_pool2d(xt, 2)
    yt.backward(torch.from_numpy(g_nhwc).permute(0, 3, 1, 2))
    y, vjp = jax.vjp(models.max_pool_2x2, jnp.asarray(x_nhwc))
    (gx,) = vjp(jnp.asarray(g_nhwc))
    np.testing.assert_array_equal(np.asarray(y), yt.detach().permute(0, 2, 3, 1).numpy())
    np.testing.assert_array_equal(np.asarray(gx), xt.grad.permute(0, 2, 3, 1).numpy())


def test_max_pool_ties_route_gradient_like_torch():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, (4, 8, 8, 5)).astype(np.float32)  # most windows hold ties
    g = rng.standard_normal((4, 4, 4, 5)).astype(np.float32)
    _pool_parity(x, g)
    block = np.ones((1, 2, 2, 1), np.float32)  # one all-tied window: torch -> the first element
    (gx,) = jax.vjp(models.max_pool_2x2, jnp.asarray(block))[1](jnp.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(np.asarray(gx)[0, :, :, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_max_pool_nan_inf_and_odd_sizes_like_torch():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 7, 9, 3)).astype(np.float32)  # floor mode drops a row and a column
    x[0, 0, 0, 0] = np.nan
    x[0, 2, 2, 1] = x[0, 3, 3, 1] = np.nan  # two NaNs in one window
    x[1, 4:6, 4:6, 2] = -np.inf
    x[1, 0, 1, 0] = np.inf
    g = rng.standard_normal((2, 3, 4, 3)).astype(np.float32)
    _pool_parity(x, g)


# ------------------------------------------------------------------------- state_dict I/O


@pytest.mark.parametrize("torch_cls", tm.TWINS["Tudui"] + tm.TWINS["LeNet"], ids=lambda c: c.__name__)
def test_every_tutorial_naming_loads(torch_cls):
    jax_cls = models.Tudui if torch_cls in tm.TWINS["Tudui"] else models.LeNet
    model, net = _twins(jax_cls, torch_cls, seed=7)
    x, _ = _images(8, 16)
    with torch.no_grad():
        theirs = net(_torch_input(x)).numpy()
    assert _rel(np.asarray(_forward(model, models.to_tensor(x))), theirs) <= RTOL_VALUE
    # Export uses the canonical keys; by order it loads back into any naming.
    exported = models.to_torch_state_dict(model, as_torch=True)
    fresh = torch_cls()
    fresh.load_state_dict(dict(zip(fresh.state_dict(), exported.values(), strict=True)))
    for a, b in zip(fresh.state_dict().values(), net.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("jax_cls,torch_cls", PAIRS, ids=IDS)
def test_round_trips_are_exact(jax_cls, torch_cls):
    model, net = _twins(jax_cls, torch_cls, seed=9)
    exported = models.to_torch_state_dict(model)
    original = net.state_dict()
    assert list(exported) == list(original)  # tutorial keys, torch order
    for key, value in original.items():
        assert exported[key].dtype == np.float32 and exported[key].flags.c_contiguous
        np.testing.assert_array_equal(exported[key], value.numpy())
    # torch's own load_state_dict takes the export (as tensors), strict.
    reloaded = torch_cls()
    reloaded.load_state_dict(models.to_torch_state_dict(model, as_torch=True), strict=True)
    for key, value in original.items():
        assert torch.equal(reloaded.state_dict()[key], value)
    # JAX -> torch -> JAX: a fresh JAX model's parameters survive exactly.
    fresh = jax_cls(rngs=nnx.Rngs(11))
    again = models.load_torch_state_dict(jax_cls(rngs=nnx.Rngs(12)), models.to_torch_state_dict(fresh))
    for a, b in zip(
        jax.tree.leaves(nnx.state(fresh, nnx.Param)), jax.tree.leaves(nnx.state(again, nnx.Param)), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_load_accepts_requires_grad_and_half_tensors():
    net = tm.Tudui()
    model = models.load_torch_state_dict(models.Tudui(rngs=nnx.Rngs(0)), dict(net.named_parameters()))
    np.testing.assert_array_equal(
        models.to_torch_state_dict(model)["model1.7.weight"], net.model1[7].weight.detach().numpy()
    )
    half = {k: v.to(torch.bfloat16) for k, v in net.state_dict().items()}
    model = models.load_torch_state_dict(model, half)
    np.testing.assert_array_equal(
        models.to_torch_state_dict(model)["model1.0.bias"], half["model1.0.bias"].float().numpy()
    )


# ----------------------------------------------------------------------------- init


def _uniform_ks(samples: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance of samples in [-1, 1] from U(-1, 1)."""
    s = np.sort(samples.ravel())
    n = s.size
    cdf = (s + 1) / 2
    return float(max((np.arange(1, n + 1) / n - cdf).max(), (cdf - np.arange(n) / n).max()))


@pytest.mark.parametrize("jax_cls,torch_cls", PAIRS, ids=IDS)
def test_init_distribution_matches_torch(jax_cls, torch_cls):
    """Per layer: torch's bound is 1/sqrt(fan_in) (read off torch's own init) and ours is the
    same; weights and biases, scaled by that bound, are U(-1, 1) on both sides (KS test, pooled
    over seeds), with matching mean and standard deviation."""
    seeds = range(6)
    ours = [models.to_torch_state_dict(jax_cls(rngs=nnx.Rngs(s))) for s in seeds]
    theirs = []
    for s in seeds:
        torch.manual_seed(s)
        theirs.append({k: v.numpy() for k, v in torch_cls().state_dict().items()})
    for key in theirs[0]:
        weight_key = key.replace(".bias", ".weight")
        shape = theirs[0][weight_key].shape
        bound = 1 / math.sqrt(math.prod(shape[1:]))  # fan_in = in * kh * kw, or in_features
        ours_k = np.concatenate([sd[key].ravel() for sd in ours]) / bound
        theirs_k = np.concatenate([sd[key].ravel() for sd in theirs]) / bound
        for name, scaled in (("ours", ours_k), ("torch", theirs_k)):
            assert np.abs(scaled).max() <= 1.0, (key, name)
            n = scaled.size
            assert _uniform_ks(scaled) < 1.95 / math.sqrt(n), (key, name)  # KS at alpha ~0.001
            assert abs(scaled.mean()) < 4 * math.sqrt(1 / 3 / n), (key, name)
            assert abs(scaled.std() - math.sqrt(1 / 3)) < 1.3 / math.sqrt(n), (key, name)  # ~5 sd
        if ours_k.size >= 1000:  # the bound is attained: not a narrower distribution
            assert np.abs(ours_k).max() > 0.99 and np.abs(theirs_k).max() > 0.99, key
    # Fresh models differ across seeds and are deterministic per seed.
    again = models.to_torch_state_dict(jax_cls(rngs=nnx.Rngs(0)))
    for key in again:
        np.testing.assert_array_equal(again[key], ours[0][key])
        assert not np.array_equal(ours[0][key], ours[1][key])


# ------------------------------------------------------------------------- training


def _trajectory(model, net, batch: int, steps: int = 20):
    """``steps`` SGD steps (lr 0.01, cross-entropy) on the same batches on both sides; returns
    the per-step losses of each and the final weights of each (torch layout)."""
    dtype = next(net.parameters()).dtype
    initial = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    optimizer = nnx.Optimizer(model, optax.sgd(0.01), wrt=nnx.Param)
    torch_opt = torch.optim.SGD(net.parameters(), lr=0.01)

    losses_t, losses_j = [], []
    for i in range(steps):
        x, y = _images(100 + i, batch)
        torch_opt.zero_grad()
        loss_t = F.cross_entropy(net(_torch_input(x).to(dtype)), torch.from_numpy(y))
        loss_t.backward()
        torch_opt.step()
        losses_t.append(loss_t.item())
        losses_j.append(float(_sgd_step(model, optimizer, models.to_tensor(x), jnp.asarray(y))))
    theirs = {k: v.numpy() for k, v in net.state_dict().items()}
    return losses_j, losses_t, models.to_torch_state_dict(model), theirs, initial


@pytest.mark.parametrize("jax_cls,torch_cls", PAIRS, ids=IDS)
def test_sgd_trajectory_matches_torch(jax_cls, torch_cls):
    """The tutorials' recipe: SGD lr 0.01, batch 64, cross-entropy, float32; same initial
    weights and batches; 20 steps with nnx.Optimizer(optax.sgd) in a jitted nnx step.
    Losses agree to 1e-4 relative. Final weights: within 1e-3 of the largest weight of each
    tensor; not tighter in float32 because a max-pool near-tie choice (see
    _pool_decision_flips) occasionally differs and its gradient goes to another element
    (the float64 trajectory below agrees to 1e-9; measured ~1e-13)."""
    model, net = _twins(jax_cls, torch_cls, seed=13)
    losses_j, losses_t, ours, theirs, initial = _trajectory(model, net, batch=64)
    np.testing.assert_allclose(losses_j, losses_t, rtol=1e-4, atol=0)
    for key in theirs:
        assert _rel(ours[key], theirs[key]) <= 1e-3, key
        # what the 20 steps changed agrees too (measured: <= 6e-3, the near-tie flips)
        assert _rel(ours[key] - initial[key], theirs[key] - initial[key]) <= 2e-2, key


@pytest.mark.parametrize("jax_cls,torch_cls", PAIRS, ids=IDS)
def test_sgd_trajectory_matches_torch_float64(jax_cls, torch_cls):
    with jax.enable_x64(True):
        torch.manual_seed(14)
        net = torch_cls().double()
        model = models.load_torch_state_dict(_as_float64(jax_cls(rngs=nnx.Rngs(14))), net.state_dict())
        losses_j, losses_t, ours, theirs, initial = _trajectory(model, net, batch=8)
    np.testing.assert_allclose(losses_j, losses_t, rtol=1e-12, atol=0)
    for key in theirs:
        assert ours[key].dtype == np.float64
        assert _rel(ours[key], theirs[key]) <= 1e-9, key
        assert _rel(ours[key] - initial[key], theirs[key] - initial[key]) <= 1e-9, key
