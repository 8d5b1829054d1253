"""Run one input set through torch.nn and through losses_jax; compare values and gradients.

A :class:`Case` is data: the loss name, its arguments as numpy arrays and Python values, which
arguments to differentiate, and the dtype to run in. :func:`run_case` evaluates it on both sides
(JAX under ``jit``, or eagerly) and returns a :class:`Result` with the largest value and gradient
errors. The pytest suites, the hypothesis suites and the ``python -m parity_tests`` report all
use this one engine, so what the report shows is exactly what the tests assert.

The engine underneath (input casting, both sides' VJPs, the tolerance table and the error
measure) is the public API of ``parity_tests.api``, which users point at their own functions.
Error measure: ``max |ours - torch| / max(|torch|, atol / rtol)`` over all elements, i.e. the
relative error, counted as absolute below ``atol / rtol``. A case passes when it is at most
``rtol``. NaN must match NaN and infinities must match exactly (NaN where torch gives NaN is
parity).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import numpy as np
import torch

import losses_jax

from .api import (
    TOLERANCES,
    max_error,
    random_cotangents,
    run_jax_side,
    run_torch_side,
    to_jax_value,
    to_torch_value,
    tolerance,
    x64,
)

__all__ = [
    "TOLERANCES",
    "Case",
    "Result",
    "assert_parity",
    "compare_case",
    "max_error",
    "run_case",
    "run_jax",
    "run_torch",
]


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
        return tolerance(self.dtype, self.kind, reduction=self.kwargs.get("reduction", "mean"), atol=self.atol)


@dataclasses.dataclass
class Result:
    case: Case
    value_error: float
    grad_error: float
    passed: bool
    detail: str = ""


def _seed(case: Case) -> int:
    return int.from_bytes(hashlib.sha256(repr((case.family, case.id)).encode()).digest()[:4], "little")


def _call(lib, case: Case, args, kwargs, module_kwargs):
    if module_kwargs is not None:
        cls = getattr(torch.nn if lib is torch else losses_jax, case.fn)
        return cls(**module_kwargs)(*args)
    if lib is torch:
        fn = case.torch_fn or getattr(torch.nn.functional, case.fn)
    else:
        fn = case.jax_fn or getattr(losses_jax, case.fn)
    return fn(*args, **kwargs)


def _cotangents(case: Case):
    return lambda shapes: random_cotangents(_seed(case), shapes)


def run_torch(case: Case) -> tuple[np.ndarray, list[np.ndarray]]:
    """The torch side of ``case``: (value, gradients of ``case.grad``), float64."""
    args = [to_torch_value(a, case.dtype, i in case.grad) for i, a in enumerate(case.args)]
    kwargs = {k: to_torch_value(v, case.dtype) for k, v in case.kwargs.items()}
    mk = None if case.module_kwargs is None else to_torch_value(case.module_kwargs, case.dtype)
    fn = lambda *a, **k: _call(torch, case, a, k, mk)
    _, (out,), grads = run_torch_side(fn, args, kwargs, [args[i] for i in case.grad], _cotangents(case))
    return out, grads


def run_jax(case: Case, *, jit: bool = True) -> tuple[np.ndarray, list[np.ndarray]]:
    """The losses_jax side of ``case`` (under ``jit`` unless ``jit=False``): (value, gradients), float64."""
    with x64(case.dtype):
        int64 = case.int64_in_jax and case.dtype == "float64"
        args = [to_jax_value(a, case.dtype, int64) for a in case.args]
        kwargs = {k: to_jax_value(v, case.dtype, int64) for k, v in case.kwargs.items()}
        mk = None if case.module_kwargs is None else to_jax_value(case.module_kwargs, case.dtype, int64)

        def f(*diff):
            full = list(args)
            for i, d in zip(case.grad, diff, strict=True):
                full[i] = d
            return _call(losses_jax, case, full, kwargs, mk)

        _, (out,), grads = run_jax_side(f, [args[i] for i in case.grad], _cotangents(case), jit=jit)
        return out, list(grads)


def compare_case(
    case: Case, jax_side: tuple[np.ndarray, list[np.ndarray]], torch_side: tuple[np.ndarray, list[np.ndarray]]
) -> Result:
    """The one comparison of a JAX result with a torch reference, whether the reference was just
    computed by :func:`run_torch` or read from a fixture file (``parity_tests.fixtures``)."""
    rtol, atol = case.tolerance()
    (j_val, j_grads), (t_val, t_grads) = jax_side, torch_side
    verr = max_error(j_val, t_val, rtol, atol)
    if len(j_grads) != len(t_grads):
        return Result(case, verr, float("inf"), False, f"{case.family} / {case.id}: gradient count differs")
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


def run_case(case: Case, *, jit: bool = True) -> Result:
    """Run ``case`` through torch and losses_jax and compare them (:func:`compare_case`)."""
    return compare_case(case, run_jax(case, jit=jit), run_torch(case))


def assert_parity(case: Case, *, jit: bool = True) -> Result:
    """:func:`run_case`, asserting that the case passes (the suites' form; users' functions go
    through ``parity_tests.assert_parity``)."""
    result = run_case(case, jit=jit)
    assert result.passed, result.detail
    return result
