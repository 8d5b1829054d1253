"""Run one input set through torch.nn and through losses_jax; compare values and gradients.

A :class:`Case` is data: the loss name, its arguments as numpy arrays and Python values, which
arguments to differentiate, and the dtype to run in. :func:`run_case` evaluates it on both sides
(JAX under ``jit``, or eagerly) and returns a :class:`Result`. The pytest suites, the hypothesis
suites and the ``python -m parity_tests`` report all go through here, and here goes through
``losses_jax.testing``, the public API users check their own ports with: one engine, one
tolerance table, one report. What the evidence shows is exactly what the tests assert.

Error measure: ``max |ours - torch| / max(|torch|, atol / rtol)`` over all elements, i.e. the
relative error, counted as absolute below ``atol / rtol``. A case passes when it is at most
``rtol``. NaN must match NaN and infinities must match exactly (NaN where torch gives NaN is
parity).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

import losses_jax
from losses_jax import testing

__all__ = ["Case", "Result", "assert_case", "record_torch", "reference", "run_case"]


@dataclasses.dataclass
class Case:
    """One comparison. Floating numpy arrays are cast to ``dtype`` on both sides; integer
    arrays become int64 for torch and JAX's default integer type (int64 in float64, else int32).

    fn: the name in ``torch.nn.functional`` and ``losses_jax`` (or, with ``module_kwargs``,
        the class name in ``torch.nn`` and ``losses_jax``).
    grad: positions in ``args`` to differentiate (must be floating arrays).
    module_kwargs: when not None, call ``Class(**module_kwargs)(*args)`` instead of ``fn``.
    torch_fn / jax_fn: override the callables (same signature as ``fn``).
    kind: 'elementwise' or 'reduction' tolerance; default from ``kwargs['reduction']``
        (elementwise for 'none').
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
    atol: float | None = None

    @property
    def id(self) -> str:
        return f"{self.fn}[{self.dtype}]{'[' + self.label + ']' if self.label else ''}"

    @property
    def tolerance_kind(self) -> testing.Kind:
        if self.kind is not None:
            return self.kind  # type: ignore[return-value]
        return "elementwise" if self.kwargs.get("reduction", "mean") == "none" else "reduction"

    def tolerance(self) -> tuple[float, float]:
        return testing.tolerance(self.dtype, self.tolerance_kind, atol=self.atol)

    @property
    def seed(self) -> int:
        """The cotangents' seed: a function of the case's name, so each case draws its own."""
        return int.from_bytes(hashlib.sha256(repr((self.family, self.id)).encode()).digest()[:4], "little")


@dataclasses.dataclass
class Result:
    """A case and its report (``str(result.report)`` is the table of every checked tensor), or
    the error that ended it (``python -m parity_tests`` reports a crash as a failed row)."""

    case: Case
    report: testing.ParityReport | None
    error: str = ""

    @property
    def passed(self) -> bool:
        return self.report is not None and self.report.ok

    @property
    def value_error(self) -> float:
        return float("inf") if self.report is None else self.report.max_output_error

    @property
    def grad_error(self) -> float:
        return float("inf") if self.report is None else self.report.max_grad_error

    @property
    def detail(self) -> str:
        if self.passed:
            return ""
        return f"{self.case.family} / {self.case.id}\n{self.report if self.report is not None else self.error}"


def _sides(case: Case) -> tuple[Callable, Callable, dict[str, Any]]:
    """(torch function, JAX function, keyword arguments) for ``testing.compare``."""
    if case.module_kwargs is not None:
        if case.kwargs:
            raise ValueError(f"{case.id}: a class case takes its options in module_kwargs, not kwargs")
        torch_cls, jax_cls = getattr(torch.nn, case.fn), getattr(losses_jax, case.fn)

        def torch_fn(*args, module_kwargs):
            return torch_cls(**module_kwargs)(*args)

        def jax_fn(*args, module_kwargs):
            return jax_cls(**module_kwargs)(*args)

        torch_fn.__name__ = jax_fn.__name__ = case.fn  # the report's title
        kwargs = {"module_kwargs": case.module_kwargs}
    else:
        torch_fn = case.torch_fn or getattr(torch.nn.functional, case.fn)
        jax_fn = case.jax_fn or getattr(losses_jax, case.fn)
        kwargs = case.kwargs
    return torch_fn, jax_fn, kwargs


def record_torch(case: Case) -> testing.Reference:
    """The torch side of ``case``, kept for a later :func:`run_case` (``parity_tests.fixtures``)."""
    torch_fn, _, kwargs = _sides(case)
    return testing.record(torch_fn, case.args, kwargs, grad=case.grad, dtype=case.dtype, seed=case.seed)  # type: ignore[arg-type]


def reference(case: Case, value: np.ndarray, grads: Sequence[np.ndarray]) -> testing.Reference:
    """A :class:`losses_jax.testing.Reference` for ``case`` from torch's recorded value and gradients."""
    grad = tuple(i % len(case.args) for i in case.grad)
    return testing.Reference(case.id, case.dtype, grad, case.seed, ("",), (value,), tuple(grads))


def run_case(case: Case, *, jit: bool = True, torch_side: testing.Reference | None = None) -> Result:
    """Run ``case`` through torch (or take ``torch_side``, recorded) and losses_jax; compare them."""
    torch_fn, jax_fn, kwargs = _sides(case)
    report = testing.compare(
        torch_fn if torch_side is None else torch_side,
        jax_fn,
        case.args,
        kwargs,
        grad=case.grad,
        dtype=case.dtype,  # type: ignore[arg-type]
        kind=case.tolerance_kind,
        atol=case.atol,
        seed=case.seed,
        jit=jit,
    )
    return Result(case, report)


def assert_case(case: Case, *, jit: bool = True) -> Result:
    """:func:`run_case`, asserting that the case passes (the suites' form)."""
    __tracebackhide__ = True
    result = run_case(case, jit=jit)
    assert result.passed, result.detail
    return result
