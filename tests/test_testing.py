"""The public parity API, ``losses_jax.testing``: it catches wrong gradients, small float64
errors and misplaced NaNs, passes on our own losses and models, reports where the worst element
is, compares against a recorded torch side, and rejects bad use by naming the argument."""

from __future__ import annotations

import collections
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from flax import nnx

import losses_jax
import models
from losses_jax import testing
from losses_jax.testing import (
    TOLERANCES,
    ParityReport,
    Reference,
    assert_parity,
    compare,
    compare_modules,
    nchw_to_nhwc,
    nhwc_to_nchw,
    record,
)
from parity_tests import harness
from parity_tests import torch_models as tm

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 5))
Y = RNG.standard_normal((4, 5))
LABELS = RNG.integers(0, 5, 4)


# ------------------------------------------------------------------------------ catches errors


@jax.custom_vjp
def _square_wrong_grad(x):
    return x * x


_square_wrong_grad.defvjp(lambda x: (x * x, x), lambda x, g: (3 * x * g,))  # should be 2 * x * g


def test_catches_a_wrong_gradient():
    report = compare(lambda x: (x * x).sum(), lambda x: _square_wrong_grad(x).sum(), (X,), grad=0)
    assert [c.ok for c in report.outputs] == [True]
    (g,) = report.grads
    assert not g.ok and not report.ok
    assert g.max_rel_err == pytest.approx(0.5, rel=1e-6)  # 3x against 2x
    with pytest.raises(AssertionError, match=r"grad of arg 0 .* FAIL"):
        assert_parity(lambda x: (x * x).sum(), lambda x: _square_wrong_grad(x).sum(), (X,), grad=0)


def test_catches_a_1e_4_relative_error_in_float64():
    report = compare(torch.exp, lambda x: jnp.exp(x) * (1 + 1e-4), (X,), grad=0, dtype="float64")
    assert not report.ok
    for check in report.checks:
        assert check.rtol == 1e-7
        assert check.max_rel_err == pytest.approx(1e-4, rel=1e-6)
    # ... while float64 rounding passes, and the same error passes at a looser, explicit rtol.
    assert compare(torch.exp, lambda x: jnp.exp(x) * (1 + 1e-15), (X,), grad=0, dtype="float64").ok
    assert compare(torch.exp, lambda x: jnp.exp(x) * (1 + 1e-4), (X,), grad=0, dtype="float64", rtol=2e-4).ok


def test_catches_a_nan_where_torch_has_a_number():
    jax_fn = lambda x: jnp.where(x > 1.0, jnp.nan, x)
    report = compare(lambda x: x * 1.0, jax_fn, (X,), grad=0)
    out = report.outputs[0]
    first = tuple(int(i) for i in np.argwhere(X > 1.0)[0])
    assert not out.ok and out.index == first and math.isnan(out.jax_value or 0.0)
    assert out.torch_value == pytest.approx(X[first]) and out.reason == "NaN where torch has a number"
    assert "NaN where torch has a number" in str(report)
    inf = compare(lambda x: x * 1.0, lambda x: jnp.where(x > 1.0, jnp.inf, x), (X,)).outputs[0]
    assert inf.index == first and inf.reason == "inf where torch has a number"
    # NaN where torch has NaN, and equal infinities, are parity.
    both = lambda x: x.log() if isinstance(x, torch.Tensor) else jnp.log(x)
    assert compare(both, both, (np.array([-1.0, 0.0, 1.0, 2.0]),), grad=0).ok


def test_report_names_the_worst_element_and_both_values():
    bad = np.zeros((3, 4))
    bad[2, 1] = 1e-3
    report = compare(lambda x: x + 0, lambda x: x + jnp.asarray(bad, x.dtype), (X[:3, :4],), dtype="float64")
    (out,) = report.outputs
    assert out.index == (2, 1)
    assert out.torch_value == X[2, 1] and out.jax_value == pytest.approx(X[2, 1] + 1e-3)
    text = str(report)
    assert "(2, 1)" in text and f"{X[2, 1]:.9g}" in text and f"{X[2, 1] + 1e-3:.9g}" in text
    assert text.startswith("parity FAIL") and "FAIL" in text.splitlines()[-1]
    assert f"{out.max_abs_err:.3g}" in text and "1e-07" in text


# ------------------------------------------------------------------------------ passes


def test_passes_on_our_cross_entropy_mse_and_ctc():
    r = assert_parity(TF.cross_entropy, losses_jax.cross_entropy, (X, LABELS), grad=0, kind="reduction")
    assert r.ok and r.outputs[0].rtol == TOLERANCES["float32"][1]
    smoothing = {"label_smoothing": 0.1}
    assert_parity(TF.cross_entropy, losses_jax.cross_entropy, (X, LABELS), smoothing, grad=0, dtype="float64")
    r = assert_parity(TF.mse_loss, losses_jax.mse_loss, (X, Y), {"reduction": "none"}, grad=(0, 1))
    assert r.outputs[0].rtol == TOLERANCES["float32"][0]  # the default kind: elementwise
    assert_parity(TF.mse_loss, losses_jax.mse_loss, (X, Y), grad=(0, 1), dtype="bfloat16")
    log_probs = np.log(RNG.dirichlet(np.ones(4), size=(6, 2)))  # (T, N, C)
    targets = RNG.integers(1, 4, (2, 3))
    lengths = (np.array([6, 5]), np.array([3, 2]))
    assert_parity(TF.ctc_loss, losses_jax.ctc_loss, (log_probs, targets, *lengths), grad=0, kind="reduction")
    assert_parity(TF.l1_loss, losses_jax.l1_loss, (X, Y), grad=0, dtype="float64", jit=False)


def test_the_compared_functions_keywords_never_meet_the_options():
    """A function with its own ``dtype``, ``grad`` or ``kind`` parameter is compared as it is."""

    def torch_fn(x, dtype="float", grad=False, kind=1):
        return x * kind if dtype == "double" and grad else x

    def jax_fn(x, dtype="float", grad=False, kind=1):
        return x * kind if dtype == "double" and grad else x

    opts = {"dtype": "double", "grad": True, "kind": 3}
    report = assert_parity(torch_fn, jax_fn, (X,), opts, grad=0, dtype="float64")
    assert report.outputs[0].torch_value == pytest.approx(3 * X[report.outputs[0].index])
    wrong = lambda x, dtype="float", grad=False, kind=1: x * 2
    assert not compare(torch_fn, wrong, (X,), opts).ok


def test_a_recorded_reference_stands_in_for_torch():
    ref = record(TF.mse_loss, (X, Y), {"reduction": "sum"}, grad=(0, 1), dtype="float64", seed=3)
    assert isinstance(ref, Reference) and ref.grad == (0, 1) and ref.output_names == ("",)
    assert ref.outputs[0] == pytest.approx(float(((X - Y) ** 2).sum()), rel=1e-12)
    live = compare(TF.mse_loss, losses_jax.mse_loss, (X, Y), {"reduction": "sum"}, grad=(0, 1), dtype="float64", seed=3)
    recorded = compare(ref, losses_jax.mse_loss, (X, Y), {"reduction": "sum"})  # grad, dtype, seed from ref
    assert recorded.ok and recorded.checks == live.checks
    assert not compare(ref, losses_jax.l1_loss, (X, Y), {"reduction": "sum"}).ok
    with pytest.raises(ValueError, match=r"dtype='float32', but the Reference was recorded with 'float64'"):
        compare(ref, losses_jax.mse_loss, (X, Y), dtype="float32")
    with pytest.raises(ValueError, match=r"grad=0, but the Reference was recorded with grad=\(0, 1\)"):
        compare(ref, losses_jax.mse_loss, (X, Y), grad=0)


def test_pytree_outputs_and_integer_outputs():
    Pair = collections.namedtuple("Pair", "value argmax")

    def torch_fn(x, y):
        return {"pair": Pair((x * y).sum(1), x.argmax(1)), "list": [x - y, x.exp()]}

    def jax_fn(x, y):
        return {"pair": Pair((x * y).sum(1), x.argmax(1)), "list": [x - y, jnp.exp(x)]}

    report = assert_parity(torch_fn, jax_fn, (X, Y), grad=(0, 1), dtype="float64")
    assert [c.name for c in report.checks] == [
        "output['list'][0]",
        "output['list'][1]",
        "output['pair'].value",
        "output['pair'].argmax",
        "grad of arg 0",
        "grad of arg 1",
    ]


def test_the_parity_suite_runs_on_this_engine():
    case = harness.Case("f", "mse_loss", (X, Y), dtype="float64")
    assert case.tolerance() == testing.tolerance("float64", "reduction")
    result = harness.run_case(case)
    direct = compare(
        TF.mse_loss, losses_jax.mse_loss, (X, Y), grad=0, dtype="float64", kind="reduction", seed=case.seed
    )
    assert result.report is not None and result.report.checks == direct.checks


# ------------------------------------------------------------------------------ modules


@pytest.mark.parametrize("jax_cls,torch_cls", [(models.Tudui, tm.Tudui)])  # LeNet: the same converters
def test_compare_modules_with_the_models_weight_map(jax_cls, torch_cls):
    """float32, as the models train (float64 agrees to ~1e-12 too, slower to compile); no
    max-pool near-tie on this batch (see test_models.py's _pool_decision_flips)."""
    torch.manual_seed(0)
    net = torch_cls()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    images = np.random.default_rng(1).random((2, 3, 32, 32), np.float32)  # torch's NCHW
    model = jax_cls(rngs=nnx.Rngs(0))
    weights = models.torch_weight_map(model, net.state_dict())
    report = compare_modules(net, model, images, weights=weights, layout="nhwc")
    assert report.ok, str(report)
    assert [c.name for c in report.grads] == [f"grad {n}" for n, _ in net.named_parameters()]
    assert report.outputs[0].shape == (2, 10) and report.grads[0].shape == next(net.parameters()).shape
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # the user's module untouched


class _TorchMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(5, 8)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))


class _NnxMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.l1 = nnx.Linear(5, 8, rngs=rngs)
        self.l2 = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        return self.l2(jnp.tanh(self.l1(x)))


MLP_MAP = {
    "hidden.weight": ("l1.kernel", lambda w: w.T),
    "hidden.bias": "l1.bias",
    "out.weight": (("l2", "kernel"), lambda w: w.T),
    "out.bias": "l2.bias",
}


def test_compare_modules_with_a_mapping_or_a_callable():
    torch.manual_seed(1)
    net, mlp = _TorchMLP(), _NnxMLP(nnx.Rngs(0))
    report = compare_modules(net, mlp, X, weights=MLP_MAP)
    assert report.ok, str(report)
    assert report.grads[0].shape == (8, 5)  # torch's layout
    convert = lambda p: {
        "l1.kernel": p["hidden.weight"].T,
        "l1.bias": p["hidden.bias"],
        "l2.kernel": p["out.weight"].T,
        "l2.bias": p["out.bias"],
    }
    assert compare_modules(net, mlp, X, weights=convert, dtype="float64").ok
    # A wrong transform (no transpose of a square weight would pass silently; here a sign) fails.
    wrong = dict(MLP_MAP, **{"out.bias": ("l2.bias", lambda b: -b)})
    assert not compare_modules(net, mlp, X, weights=wrong).ok


# ------------------------------------------------------------------------------ bad use


def test_bad_use_raises_naming_the_argument():
    same = lambda x: x
    with pytest.raises(ValueError, match="structures differ"):
        compare(lambda x: (x, x), same, (X,))
    with pytest.raises(ValueError, match=r"shape \(5, 4\) in jax but \(4, 5\) in torch"):
        compare(same, lambda x: x.T, (X,))
    with pytest.raises(ValueError, match="'grad' names arg 1, which is not differentiable"):
        compare(TF.cross_entropy, losses_jax.cross_entropy, (X, LABELS), grad=(0, 1))
    with pytest.raises(ValueError, match="'grad' position 2 is out of range"):
        compare(TF.cross_entropy, losses_jax.cross_entropy, (X, LABELS), grad=2)
    with pytest.raises(TypeError, match="'grad' must be an int or a tuple"):
        compare(same, same, (X,), grad="0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'dtype' must be one of"):
        compare(same, same, (X,), dtype="float8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'kind' must be"):
        compare(same, same, (X,), kind="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'rtol' must be"):
        assert_parity(same, same, (X,), rtol=-1.0)
    with pytest.raises(TypeError, match="'jax_fn' must be callable"):
        compare(same, "x", (X,))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"'args' must be a tuple .* got ndarray \(write args=\(x,\) for one\)"):
        compare(same, same, X)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'kwargs' must be a mapping"):
        compare(same, same, (X,), [("reduction", "sum")])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"has no truth value: test report.ok"):
        assert compare(same, same, (X,))
    net, mlp = _TorchMLP(), _NnxMLP(nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"unknown \['nope'\], missing \['out.bias'\]"):
        compare_modules(net, mlp, X, weights={**{k: v for k, v in MLP_MAP.items() if k != "out.bias"}, "nope": "x"})
    with pytest.raises(ValueError, match="NNX parameter 'l3.bias', which the module lacks"):
        compare_modules(net, mlp, X, weights=dict(MLP_MAP, **{"out.bias": "l3.bias"}))
    with pytest.raises(ValueError, match=r"l2.kernel shape \(3, 8\), it has \(8, 3\)"):
        compare_modules(net, mlp, X, weights=dict(MLP_MAP, **{"out.weight": "l2.kernel"}))
    with pytest.raises(TypeError, match="'weights' must be a mapping or a callable"):
        compare_modules(net, mlp, X, weights="models")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'layout' must be"):
        compare_modules(net, mlp, X, weights=MLP_MAP, layout="nchw")  # type: ignore[arg-type]


def test_layout_helpers():
    x = RNG.random((2, 3, 4, 5))
    assert nchw_to_nhwc(x).shape == (2, 4, 5, 3)
    np.testing.assert_array_equal(nhwc_to_nchw(nchw_to_nhwc(x)), x)
    np.testing.assert_array_equal(nchw_to_nhwc(torch.from_numpy(x)).numpy(), nchw_to_nhwc(x))
    assert nchw_to_nhwc(x[0]).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="'x' must be"):
        nchw_to_nhwc(x[0, 0])


def test_report_type():
    report = compare(torch.exp, jnp.exp, (X,))
    assert isinstance(report, ParityReport) and report.ok and report.grads == ()
    assert str(report).startswith("parity PASS: exp (torch) vs exp (jax) [float32]")


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_losses_jax_imports_neither_torch_nor_flax():
    proc = _fresh(
        "import sys, losses_jax, losses_jax.testing; "
        "print(sorted(m for m in ('torch', 'flax', 'optax') if m in sys.modules))"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_without_torch_one_line_names_the_extra():
    proc = _fresh(
        "import sys; sys.modules['torch'] = None\n"  # as if torch were not installed
        "import numpy as np, jax.numpy as jnp\n"
        "from losses_jax import testing\n"
        "try:\n"
        "    testing.compare(lambda x: x, jnp.exp, (np.ones(3),))\n"
        "except ModuleNotFoundError as e:\n"
        "    print(e)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "losses_jax.testing needs PyTorch: pip install 'losses-jax[testing]' (or torch itself)"
    )
