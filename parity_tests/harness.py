"""Run one input set through torch.nn and through losses_jax; compare values and gradients.

A :class:`Case` is data: the loss name, its arguments as numpy arrays and Python values, which
arguments to differentiate, and the dtype to run in. :func:`run_case` evaluates it on both sides
(JAX under ``jit``, or eagerly) and returns a :class:`Result` with the largest value and gradient
errors. The pytest suites, the hypothesis suites and the ``python -m parity_tests`` report all
use this one engine, so what the report shows is exactly what the tests assert.

Error measure: ``max |ours - torch| / max(|torch|, atol / rtol)`` over all elements, i.e. the
relative error, counted as absolute below ``atol / rtol``. A case passes when it is at most
``rtol``. NaN must match NaN and infinities must match exactly (NaN where torch gives NaN is
parity).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import torch

import losses_jax

# (rtol for elementwise outputs, rtol for reductions over many terms, atol) per dtype: the
# README's parity promise.
TOLERANCES = {
    "float64": (1e-7, 1e-7, 1e-12),
    "float32": (1e-5, 2e-4, 1e-6),
    "bfloat16": (1e-2, 1e-2, 1e-2),
    "float16": (1e-2, 1e-2, 1e-3),
}
_TORCH_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
_NP_DTYPES = {
    "float64": np.float64,
    "float32": np.float32,
    "bfloat16": ml_dtypes.bfloat16,
    "float16": np.float16,
}


@dataclasses.dataclass
class Case:
    """One comparison. Floating numpy arrays are cast to ``dtype`` on both sides; integer
    arrays become int64 for torch and JAX's default integer type (int32 without x64).

    fn: the name in ``torch.nn.functional`` and ``losses_jax`` (or, with ``module_kwargs``,
        the class name in ``torch.nn`` and ``losses_jax``).
    grad: positions in ``args`` to differentiate (must be floating arrays).
    module_kwargs: when not None, call ``Class(**module_kwargs)(*args)`` instead of ``fn``.
    torch_fn / jax_fn: override the callables (same signature as ``fn``).
    kind: 'elementwise' or 'reduction' tolerance; default from ``kwargs['reduction']``.
    atol: overrides the dtype's absolute tolerance; only for outputs that are exact
        cancellations of large terms, where the rounding residue scales with those terms (the
        caller states the scale).
    """

    family: str
    fn: str
    args: tuple
    kwargs: dict = dataclasses.field(default_factory=dict)
    grad: tuple = (0,)
    dtype: str = "float32"
    label: str = ""
    module_kwargs: dict | None = None
    torch_fn: Callable | None = None
    jax_fn: Callable | None = None
    kind: str | None = None
    int64_in_jax: bool = False
    atol: float | None = None

    @property
    def id(self) -> str:
        return f"{self.fn}[{self.dtype}]{'[' + self.label + ']' if self.label else ''}"

    def tolerance(self) -> tuple[float, float]:
        elementwise, reduction, atol = TOLERANCES[self.dtype]
        kind = self.kind or ("elementwise" if self.kwargs.get("reduction", "mean") == "none" else "reduction")
        return (elementwise if kind == "elementwise" else reduction), (atol if self.atol is None else self.atol)


@dataclasses.dataclass
class Result:
    case: Case
    value_error: float
    grad_error: float
    passed: bool
    detail: str = ""


def _seed(case: Case) -> int:
    return int.from_bytes(hashlib.sha256(repr((case.family, case.id)).encode()).digest()[:4], "little")


def _is_float_array(v) -> bool:
    return isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating)


def _to_torch(v, dtype: str, requires_grad: bool = False):
    if isinstance(v, np.ndarray):
        if np.issubdtype(v.dtype, np.floating):
            t = torch.tensor(v.astype(np.float64), dtype=_TORCH_DTYPES[dtype])
            return t.requires_grad_(requires_grad)
        if v.dtype == np.bool_:
            return torch.from_numpy(v.copy())
        return torch.from_numpy(v.astype(np.int64))
    if isinstance(v, dict):
        return {k: _to_torch(x, dtype) for k, x in v.items()}
    return v


def _to_jax(v, dtype: str, int64: bool):
    if isinstance(v, np.ndarray):
        if np.issubdtype(v.dtype, np.floating):
            return jnp.asarray(v.astype(_NP_DTYPES[dtype]))
        if v.dtype == np.bool_:
            return jnp.asarray(v)
        return jnp.asarray(v.astype(np.int64 if int64 else np.int32))
    if isinstance(v, dict):
        return {k: _to_jax(x, dtype, int64) for k, x in v.items()}
    return v


def _call(lib, case: Case, args, kwargs, module_kwargs):
    if module_kwargs is not None:
        cls = getattr(torch.nn if lib is torch else losses_jax, case.fn)
        return cls(**module_kwargs)(*args)
    if lib is torch:
        fn = case.torch_fn or getattr(torch.nn.functional, case.fn)
    else:
        fn = case.jax_fn or getattr(losses_jax, case.fn)
    return fn(*args, **kwargs)


def _cotangent(case: Case, shape) -> np.ndarray:
    rng = np.random.default_rng(_seed(case))
    return rng.uniform(0.5, 1.5, size=shape)


def run_torch(case: Case):
    args = [_to_torch(a, case.dtype, i in case.grad) for i, a in enumerate(case.args)]
    kwargs = {k: _to_torch(v, case.dtype) for k, v in case.kwargs.items()}
    mk = None if case.module_kwargs is None else _to_torch(case.module_kwargs, case.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = _call(torch, case, args, kwargs, mk)
    ct = _cotangent(case, tuple(out.shape))
    grads = []
    if out.requires_grad:
        out.backward(torch.tensor(ct, dtype=out.dtype))
    for i in case.grad:
        g = args[i].grad
        grads.append(np.zeros(args[i].shape) if g is None else g.detach().double().numpy())
    return out.detach().double().numpy(), grads


def run_jax(case: Case, *, jit: bool = True):
    ctx = jax.enable_x64(True) if case.dtype == "float64" else contextlib.nullcontext()
    with ctx:
        int64 = case.int64_in_jax and case.dtype == "float64"
        args = [_to_jax(a, case.dtype, int64) for a in case.args]
        kwargs = {k: _to_jax(v, case.dtype, int64) for k, v in case.kwargs.items()}
        mk = None if case.module_kwargs is None else _to_jax(case.module_kwargs, case.dtype, int64)

        def f(*diff):
            full = list(args)
            for i, d in zip(case.grad, diff, strict=True):
                full[i] = d
            return _call(losses_jax, case, full, kwargs, mk)

        if jit:
            f = jax.jit(f)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out, vjp = jax.vjp(f, *[args[i] for i in case.grad])
        ct = _cotangent(case, tuple(out.shape)).astype(out.dtype)
        grads = vjp(jnp.asarray(ct)) if case.grad else ()
        to64 = lambda a: np.asarray(a.astype(jnp.float32) if a.dtype == jnp.bfloat16 else a, np.float64)
        return to64(out), [to64(g) for g in grads]


def max_error(ours: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> float:
    """Largest relative error (absolute below atol/rtol); inf on a shape, NaN or inf mismatch."""
    ours = np.asarray(ours, np.float64)
    ref = np.asarray(ref, np.float64)
    if ours.shape != ref.shape:
        return float("inf")
    if np.any(np.isnan(ours) != np.isnan(ref)):
        return float("inf")
    inf = np.isinf(ref) | np.isinf(ours)
    if np.any(ours[inf] != ref[inf]):
        return float("inf")
    fin = ~(np.isnan(ref) | inf)
    if not fin.any():
        return 0.0
    scale = np.maximum(np.abs(ref[fin]), atol / rtol)
    return float(np.max(np.abs(ours[fin] - ref[fin]) / scale))


def run_case(case: Case, *, jit: bool = True) -> Result:
    rtol, atol = case.tolerance()
    t_val, t_grads = run_torch(case)
    j_val, j_grads = run_jax(case, jit=jit)
    verr = max_error(j_val, t_val, rtol, atol)
    gerr = max((max_error(j, t, rtol, atol) for j, t in zip(j_grads, t_grads, strict=True)), default=0.0)
    passed = verr <= rtol and gerr <= rtol
    detail = ""
    if not passed:
        detail = (
            f"{case.family} / {case.id}: value err {verr:.3g}, grad err {gerr:.3g} (rtol {rtol:g})\n"
            f"  torch value {t_val!r}\n  jax   value {j_val!r}"
        )
        for i, (j, t) in enumerate(zip(j_grads, t_grads, strict=True)):
            if max_error(j, t, rtol, atol) > rtol:
                detail += f"\n  grad of arg {case.grad[i]}:\n  torch {t!r}\n  jax   {j!r}"
    return Result(case, verr, gerr, passed, detail)


def assert_parity(case: Case, *, jit: bool = True) -> Result:
    result = run_case(case, jit=jit)
    assert result.passed, result.detail
    return result
