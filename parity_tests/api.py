"""Check your own torch -> JAX port: values and gradients against torch, with a readable report.

    from parity_tests import assert_parity

    assert_parity(torch_focal_loss, jax_focal_loss, logits, targets, grad=(0,))

:func:`compare` runs the same numpy inputs through a torch function and a JAX function (the JAX
one under ``jax.jit``), in float32, float64, bfloat16 or float16, and compares every output and
the gradient of every input named in ``grad``: a VJP with the same seeded random cotangent on both
sides (a lone scalar output is differentiated as torch's ``.backward()`` does, cotangent 1). It
returns a :class:`ParityReport`; :func:`assert_parity` raises ``AssertionError`` with it.
:func:`compare_modules` does the same for a ``torch.nn.Module`` and a Flax NNX module: it copies
the torch weights into the NNX module and compares the outputs and the gradient of every torch
parameter, in torch's names and layouts.

This is the engine of the project's own parity suite too (``parity_tests/harness.py`` runs every
loss case through it), so the tolerances and the error measure are the project's:

* error measure, per element: ``|jax - torch| / max(|torch|, atol / rtol)``, i.e. the relative
  error, counted as absolute below ``atol / rtol``; a check passes when its largest is at most
  ``rtol``;
* NaN must be exactly where torch has NaN, and infinities must equal torch's exactly;
* default tolerances (:data:`TOLERANCES`): float64 rtol 1e-7; float32 1e-5 for elementwise
  results and 2e-4 for reductions over many terms; bfloat16 / float16 1e-2.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import torch

__all__ = [
    "TOLERANCES",
    "Check",
    "ParityReport",
    "assert_parity",
    "compare",
    "compare_modules",
    "max_error",
    "nchw_to_nhwc",
    "nhwc_to_nchw",
    "random_cotangents",
    "run_jax_side",
    "run_torch_side",
    "to_jax_value",
    "to_torch_value",
    "tolerance",
    "x64",
]

Dtype = Literal["float64", "float32", "bfloat16", "float16"]
Kind = Literal["elementwise", "reduction"]

#: ``dtype -> (rtol for elementwise results, rtol for reductions over many terms, atol)``: the
#: README's parity promise, and the defaults of :func:`compare`.
TOLERANCES: dict[str, tuple[float, float, float]] = {
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


# ------------------------------------------------------------------------------ tolerances


def _check_dtype(dtype: object, fn: str) -> str:
    if not isinstance(dtype, str) or dtype not in TOLERANCES:
        raise ValueError(f"{fn}: 'dtype' must be one of {sorted(TOLERANCES)}, got {dtype!r}")
    return dtype


def tolerance(
    dtype: str,
    kind: Kind | str | None = None,
    *,
    reduction: str = "mean",
    rtol: float | None = None,
    atol: float | None = None,
) -> tuple[float, float]:
    """``(rtol, atol)`` for ``dtype`` from :data:`TOLERANCES`, unless given.

    ``kind``: ``'elementwise'`` or ``'reduction'``; None picks by ``reduction`` as torch's losses
    name it: elementwise for ``'none'``, else reduction.
    """
    _check_dtype(dtype, "tolerance")
    if kind is None:
        kind = "elementwise" if reduction == "none" else "reduction"
    if kind not in ("elementwise", "reduction"):
        raise ValueError(f"tolerance: 'kind' must be 'elementwise', 'reduction' or None, got {kind!r}")
    elementwise, reduced, default_atol = TOLERANCES[dtype]
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and (not isinstance(value, numbers.Real) or not value >= 0):
            raise ValueError(f"tolerance: {name!r} must be a number >= 0, got {value!r}")
    rtol = (elementwise if kind == "elementwise" else reduced) if rtol is None else float(rtol)
    if rtol <= 0:
        raise ValueError(f"tolerance: 'rtol' must be > 0, got {rtol!r}")
    return rtol, default_atol if atol is None else float(atol)


# ------------------------------------------------------------------------------ error measure


@dataclasses.dataclass(frozen=True)
class _Measure:
    error: float  # the largest |ours - ref| / max(|ref|, atol / rtol); inf on a NaN / inf mismatch
    max_abs: float
    index: tuple[int, ...] | None  # the worst element (the first mismatch for NaN / inf)
    ours: float | None
    ref: float | None
    reason: str = ""


def _measure(ours: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> _Measure:
    """The error measure of two arrays of one shape, with the worst element."""
    ours = np.asarray(ours, np.float64)
    ref = np.asarray(ref, np.float64)

    def at(mask: np.ndarray, reason: str) -> _Measure:
        index = tuple(int(i) for i in np.argwhere(mask)[0])
        return _Measure(math.inf, math.inf, index, float(ours[index]), float(ref[index]), reason)

    nan_ours, nan_ref = np.isnan(ours), np.isnan(ref)
    if np.any(nan_ours != nan_ref):
        first = np.argwhere(nan_ours != nan_ref)[0]
        reason = "NaN where torch has a number" if nan_ours[tuple(first)] else "a number where torch has NaN"
        return at(nan_ours != nan_ref, reason)
    inf = np.isinf(ref) | np.isinf(ours)
    if np.any(ours[inf] != ref[inf]):
        first = tuple(np.argwhere(inf & (ours != ref))[0])
        if np.isinf(ref[first]) and np.isinf(ours[first]):
            reason = "infinities differ"
        else:
            reason = "inf where torch has a number" if np.isinf(ours[first]) else "a number where torch has inf"
        return at(inf & (ours != ref), reason)
    fin = ~(nan_ref | inf)
    if not fin.any():
        return _Measure(0.0, 0.0, None, None, None)
    diff = np.abs(ours[fin] - ref[fin])
    rel = diff / np.maximum(np.abs(ref[fin]), atol / rtol)
    worst = int(np.argmax(rel))
    index = tuple(int(i) for i in np.argwhere(fin)[worst])
    return _Measure(float(np.max(rel)), float(np.max(diff)), index, float(ours[index]), float(ref[index]))


def max_error(ours: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> float:
    """Largest relative error (absolute below atol/rtol); inf on a shape, NaN or inf mismatch."""
    if np.shape(ours) != np.shape(ref):
        return math.inf
    return _measure(ours, ref, rtol, atol).error


# ------------------------------------------------------------------------------ the report


@dataclasses.dataclass(frozen=True)
class Check:
    """One compared tensor: an output or a gradient.

    ``max_rel_err`` is the error measure (relative, absolute below ``atol / rtol``) and passes at
    most ``rtol``; ``index`` is its worst element (for a NaN / inf mismatch: the first one, and
    ``reason`` says which), ``jax_value`` / ``torch_value`` the values there.
    """

    name: str
    shape: tuple[int, ...]
    max_abs_err: float
    max_rel_err: float
    index: tuple[int, ...] | None
    jax_value: float | None
    torch_value: float | None
    rtol: float
    atol: float
    reason: str = ""

    @property
    def ok(self) -> bool:
        """Whether this tensor is within tolerance."""
        return self.max_rel_err <= self.rtol


@dataclasses.dataclass(frozen=True)
class ParityReport:
    """The result of :func:`compare` / :func:`compare_modules`: one :class:`Check` per output
    and per gradient; ``str(report)`` is a table of them."""

    title: str
    dtype: str
    outputs: tuple[Check, ...]
    grads: tuple[Check, ...]

    @property
    def checks(self) -> tuple[Check, ...]:
        """The outputs' checks, then the gradients'."""
        return self.outputs + self.grads

    @property
    def ok(self) -> bool:
        """Whether every output and every gradient is within tolerance."""
        return all(c.ok for c in self.checks)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        def num(x: float | None) -> str:
            return "-" if x is None else f"{x:.9g}"

        rows = [("check", "shape", "max abs err", "max rel err", "worst index", "torch", "jax", "rtol", "atol", "")]
        for c in self.checks:
            verdict = "PASS" if c.ok else "FAIL" + (f" ({c.reason})" if c.reason else "")
            index = "-" if c.index is None else str(c.index)
            rows.append(
                (
                    c.name, str(c.shape), f"{c.max_abs_err:.3g}", f"{c.max_rel_err:.3g}", index,
                    num(c.torch_value), num(c.jax_value), f"{c.rtol:g}", f"{c.atol:g}", verdict,
                )
            )  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        failed = sum(not c.ok for c in self.checks)
        head = f"parity {'PASS' if self.ok else 'FAIL'}: {self.title} [{self.dtype}]"
        if failed:
            head += f", {failed} of {len(self.checks)} checks fail"
        return "\n".join([head, *("  " + line for line in lines)])


def _check(name: str, ours: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> Check:
    m = _measure(ours, ref, rtol, atol)
    return Check(name, tuple(np.shape(ref)), m.max_abs, m.error, m.index, m.ours, m.ref, rtol, atol, m.reason)


# ------------------------------------------------------------------------------ inputs


def _is_array(v: object) -> bool:
    return isinstance(v, np.ndarray | jax.Array | torch.Tensor)


def _as_numpy(v: Any) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu()
        return (v.double() if v.is_floating_point() else v).numpy()
    return np.asarray(v)


def to_torch_value(v: Any, dtype: str, requires_grad: bool = False) -> Any:
    """An input for the torch side: floating arrays as ``dtype`` tensors, integer arrays as int64,
    booleans as bool; dicts, lists and tuples converted inside; anything else unchanged."""
    if _is_array(v):
        v = _as_numpy(v)
        if np.issubdtype(v.dtype, np.floating):
            t = torch.tensor(v.astype(np.float64), dtype=_TORCH_DTYPES[dtype])
            return t.requires_grad_(requires_grad)
        if v.dtype == np.bool_:
            return torch.from_numpy(v.copy())
        return torch.from_numpy(v.astype(np.int64))
    if isinstance(v, dict):
        return {k: to_torch_value(x, dtype) for k, x in v.items()}
    if type(v) in (list, tuple):
        return type(v)(to_torch_value(x, dtype) for x in v)
    return v


def to_jax_value(v: Any, dtype: str, int64: bool = False) -> Any:
    """An input for the JAX side: floating arrays as ``dtype``, integer arrays as int32 (int64 with
    ``int64``, which needs x64), booleans as bool; dicts, lists and tuples converted inside."""
    if _is_array(v):
        v = _as_numpy(v)
        # jax.device_put, not jnp.asarray: on jax 0.10 (not 0.8) the latter compiles a program (`stage`)
        # for every new shape and dtype, a large part of the parity cases' time (BENCHMARKS.md).
        if np.issubdtype(v.dtype, np.floating):
            return jax.device_put(v.astype(_NP_DTYPES[dtype]))
        if v.dtype == np.bool_:
            return jax.device_put(v)
        return jax.device_put(v.astype(np.int64 if int64 else np.int32))
    if isinstance(v, dict):
        return {k: to_jax_value(x, dtype, int64) for k, x in v.items()}
    if type(v) in (list, tuple):
        return type(v)(to_jax_value(x, dtype, int64) for x in v)
    return v


# ------------------------------------------------------------------------------ both sides


def random_cotangents(seed: int, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """One float64 cotangent per output, uniform in [0.5, 1.5), drawn in order from ``seed``."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 1.5, size=shape) for shape in shapes]


def _leaves(out: Any) -> tuple[list[str], list[Any]]:
    """Output pytree -> (names, leaves); tuples, lists, dicts and namedtuples are containers."""
    pairs, _ = jax.tree_util.tree_flatten_with_path(out)
    return [jax.tree_util.keystr(path) for path, _ in pairs], [leaf for _, leaf in pairs]


def _torch_to_f64(t: Any) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().double().numpy()
    return np.asarray(t, np.float64)


def _jax_to_f64(a: Any) -> np.ndarray:
    return np.asarray(a).astype(np.float64)  # bfloat16 too (ml_dtypes), with no JAX program


def run_torch_side(
    fn: Callable, args: Sequence, kwargs: Mapping, wrt: Sequence[torch.Tensor], cotangents: Callable
) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Call ``fn(*args, **kwargs)`` (torch values), back-propagate ``cotangents(shapes)`` through
    every output that requires grad, and return (output names, outputs, grads of ``wrt``), float64."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(*args, **kwargs)
    names, leaves = _leaves(out)
    outs = [_torch_to_f64(leaf) for leaf in leaves]
    cts = cotangents([o.shape for o in outs])
    diff = [(leaf, ct) for leaf, ct in zip(leaves, cts, strict=True) if getattr(leaf, "requires_grad", False)]
    if diff:
        torch.autograd.backward([leaf for leaf, _ in diff], [torch.tensor(ct, dtype=leaf.dtype) for leaf, ct in diff])
    grads = [np.zeros(w.shape) if w.grad is None else w.grad.detach().double().numpy() for w in wrt]
    return names, outs, grads


def run_jax_side(
    fn: Callable, primals: Sequence, cotangents: Callable, *, jit: bool = True
) -> tuple[list[str], list[np.ndarray], Any]:
    """``jax.vjp`` of ``fn`` at ``primals`` (under ``jax.jit`` unless ``jit=False``) with
    ``cotangents(shapes)``; returns (output names, outputs, the gradients of ``primals``), float64.

    Under ``jit`` the value and the VJP are one compiled program (as in a jitted training step),
    the cotangents drawn from the output shapes that ``jax.eval_shape`` gives: one XLA compilation
    instead of one for the forward pass and another for the backward pass."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if jit:
            shapes = jax.eval_shape(fn, *primals)
            names, avals = _leaves(shapes)
            cts = _cotangent_leaves(avals, cotangents([tuple(a.shape) for a in avals]))
            inexact = [i for i, a in enumerate(avals) if jnp.issubdtype(a.dtype, jnp.inexact)]

            def value_and_vjp(p, ct_inexact):
                out, vjp = jax.vjp(fn, *p)
                full = list(cts)
                for i, ct in zip(inexact, ct_inexact, strict=True):
                    full[i] = ct
                return out, (vjp(jax.tree.unflatten(jax.tree.structure(out), full)) if p else ())

            out, grads = jax.jit(value_and_vjp)(list(primals), [cts[i] for i in inexact])
            _, leaves = _leaves(out)
        else:
            out, vjp = jax.vjp(fn, *primals)
            names, leaves = _leaves(out)
            leaves = [jnp.asarray(leaf) for leaf in leaves]
            ct_leaves = _cotangent_leaves(leaves, cotangents([tuple(leaf.shape) for leaf in leaves]))
            grads = vjp(jax.tree.unflatten(jax.tree.structure(out), ct_leaves)) if primals else ()
    return names, [_jax_to_f64(leaf) for leaf in leaves], jax.tree.map(_jax_to_f64, grads)


def _cotangent_leaves(outputs: Sequence[Any], cts: Sequence[np.ndarray]) -> list[Any]:
    """Each float64 cotangent in its output's dtype; float0 zeros for integer and boolean outputs."""
    return [
        jax.device_put(ct.astype(o.dtype))
        if jnp.issubdtype(o.dtype, jnp.inexact)
        else np.zeros(o.shape, jax.dtypes.float0)
        for o, ct in zip(outputs, cts, strict=True)
    ]


def x64(dtype: str) -> contextlib.AbstractContextManager:
    """``jax.enable_x64(True)`` for float64, else a no-op context."""
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


# ------------------------------------------------------------------------------ compare


def _title(torch_fn: object, jax_fn: object) -> str:
    def name(f: object) -> str:
        return getattr(f, "__name__", None) or getattr(type(f), "__qualname__", repr(f))

    return f"{name(torch_fn)} (torch) vs {name(jax_fn)} (jax)"


def _user_cotangents(seed: int) -> Callable[[Sequence[tuple[int, ...]]], list[np.ndarray]]:
    """Random cotangents from ``seed``; 1 for a lone scalar output (torch's ``.backward()``)."""

    def cotangents(shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
        if len(shapes) == 1 and shapes[0] == ():
            return [np.ones(())]
        return random_cotangents(seed, shapes)

    return cotangents


def _tolerance(fn: str, dtype: str, kind, reduction: str, rtol, atol) -> tuple[float, float]:
    try:
        return tolerance(dtype, kind, reduction=reduction, rtol=rtol, atol=atol)
    except ValueError as e:
        raise ValueError(f"{fn}: {str(e).removeprefix('tolerance: ')}") from None


def _output_checks(
    fn: str, t_names: list[str], t_outs: list, j_names: list[str], j_outs: list, rtol: float, atol: float
) -> tuple[Check, ...]:
    """One check per output, after the structures and shapes are checked equal."""
    _check_outputs(fn, t_names, t_outs, j_names, j_outs)
    return tuple(_check(f"output{name}", j, t, rtol, atol) for name, j, t in zip(t_names, j_outs, t_outs, strict=True))


def _check_outputs(fn: str, t_names: list[str], t_outs: list, j_names: list[str], j_outs: list) -> None:
    if t_names != j_names:
        show = lambda names: [n or "<the output>" for n in names]
        raise ValueError(
            f"{fn}: the outputs' structures differ: torch returns {len(t_names)} arrays {show(t_names)}, "
            f"jax returns {len(j_names)} arrays {show(j_names)}"
        )
    for name, t, j in zip(t_names, t_outs, j_outs, strict=True):
        if t.shape != j.shape:
            raise ValueError(f"{fn}: output{name} has shape {j.shape} in jax but {t.shape} in torch")


def _check_grad(fn: str, grad: object, args: Sequence) -> tuple[int, ...]:
    positions = (grad,) if isinstance(grad, int) else grad
    if not isinstance(positions, tuple | list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in positions
    ):
        raise TypeError(f"{fn}: 'grad' must be an int or a tuple of ints (positions in args), got {grad!r}")
    out = []
    for i in positions:
        if not -len(args) <= i < len(args):
            raise ValueError(f"{fn}: 'grad' position {i} is out of range for {len(args)} positional args")
        i %= len(args)
        a = args[i]
        if not _is_array(a) or not np.issubdtype(_as_numpy(a).dtype, np.floating):
            kind = _as_numpy(a).dtype if _is_array(a) else type(a).__name__
            raise ValueError(
                f"{fn}: 'grad' names arg {i}, which is not differentiable ({kind}); only floating arrays are"
            )
        out.append(i)
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}: 'grad' names a position twice: {grad!r}")
    return tuple(out)


def compare(
    torch_fn: Callable,
    jax_fn: Callable,
    *args: Any,
    grad: int | Sequence[int] = (),
    dtype: Dtype = "float32",
    rtol: float | None = None,
    atol: float | None = None,
    seed: int = 0,
    kind: Kind | None = None,
    jit: bool = True,
    **kwargs: Any,
) -> ParityReport:
    """Run the same inputs through ``torch_fn`` and ``jax_fn``; compare outputs and gradients.

    args / kwargs: numpy arrays (JAX arrays and torch tensors are taken as numpy) and Python values.
      Floating arrays become ``dtype`` on both sides; integer arrays become int64 tensors for
      torch and int32 arrays for JAX; booleans stay booleans; dicts, lists and tuples are
      converted inside; other values pass unchanged. Both functions get the same positional and
      keyword arguments. (A keyword the functions share with this signature, such as ``dtype``,
      must be bound beforehand with ``functools.partial``.)
    grad: positions in ``args`` (floating arrays) whose gradients are compared. The outputs may be
      one array or tuples, lists, dicts and namedtuples of arrays (the same structure on both
      sides); every floating output is back-propagated with a cotangent drawn from ``seed``
      (uniform in [0.5, 1.5), the same on both sides) or, for a lone scalar output, 1 (torch's
      ``.backward()``).
    dtype: 'float32', 'float64' (JAX runs under ``jax.enable_x64``), 'bfloat16' or 'float16'.
    rtol / atol: default to :data:`TOLERANCES` for ``dtype`` and ``kind``.
    kind: 'elementwise' or 'reduction' (the looser float32 rtol 2e-4, for results that sum many
      terms); None: elementwise when ``kwargs['reduction'] == 'none'``, else reduction.
    jit: run ``jax_fn`` under ``jax.jit`` (default) or eagerly.

    Raises:
      TypeError: a function is not callable, or ``grad`` is not an int or a tuple of ints.
      ValueError: unknown ``dtype`` or ``kind``, bad ``rtol`` / ``atol``, a ``grad`` position out
        of range or not a floating array, or outputs whose structure or shapes differ.
    """
    return _compare("compare", torch_fn, jax_fn, args, kwargs, grad, dtype, rtol, atol, seed, kind, jit)


def _compare(fn: str, torch_fn, jax_fn, args, kwargs, grad, dtype, rtol, atol, seed, kind, jit) -> ParityReport:
    for name, f in (("torch_fn", torch_fn), ("jax_fn", jax_fn)):
        if not callable(f):
            raise TypeError(f"{fn}: {name!r} must be callable, got {type(f).__name__}")
    _check_dtype(dtype, fn)
    rtol, atol = _tolerance(fn, dtype, kind, kwargs.get("reduction", "mean"), rtol, atol)
    positions = _check_grad(fn, grad, args)
    cotangents = _user_cotangents(seed)
    t_args = [to_torch_value(a, dtype, i in positions) for i, a in enumerate(args)]
    t_kwargs = {k: to_torch_value(v, dtype) for k, v in kwargs.items()}
    t_names, t_outs, t_grads = run_torch_side(torch_fn, t_args, t_kwargs, [t_args[i] for i in positions], cotangents)
    with x64(dtype):
        j_args = [to_jax_value(a, dtype) for a in args]
        j_kwargs = {k: to_jax_value(v, dtype) for k, v in kwargs.items()}

        def f(*diff):
            full = list(j_args)
            for i, d in zip(positions, diff, strict=True):
                full[i] = d
            return jax_fn(*full, **j_kwargs)

        j_names, j_outs, j_grads = run_jax_side(f, [j_args[i] for i in positions], cotangents, jit=jit)
    outputs = _output_checks(fn, t_names, t_outs, j_names, j_outs, rtol, atol)
    grads = tuple(
        _check(f"grad of arg {i}", j, t, rtol, atol) for i, j, t in zip(positions, j_grads, t_grads, strict=True)
    )
    return ParityReport(_title(torch_fn, jax_fn), dtype, outputs, grads)


def assert_parity(
    torch_fn: Callable,
    jax_fn: Callable,
    *args: Any,
    grad: int | Sequence[int] = (),
    dtype: Dtype = "float32",
    rtol: float | None = None,
    atol: float | None = None,
    seed: int = 0,
    kind: Kind | None = None,
    jit: bool = True,
    **kwargs: Any,
) -> ParityReport:
    """:func:`compare`, raising ``AssertionError`` with the report's table when a check fails;
    returns the report otherwise. Bad use raises as :func:`compare` does."""
    __tracebackhide__ = True
    report = _compare("assert_parity", torch_fn, jax_fn, args, kwargs, grad, dtype, rtol, atol, seed, kind, jit)
    if not report.ok:
        raise AssertionError(str(report))
    return report


# ------------------------------------------------------------------------------ modules


def nchw_to_nhwc(x: Any) -> Any:
    """torch's channels-first images ``(N, C, H, W)`` (or ``(C, H, W)``) -> channels-last."""
    nd = np.ndim(x)
    if nd not in (3, 4):
        raise ValueError(f"nchw_to_nhwc: 'x' must be (N, C, H, W) or (C, H, W), got shape {np.shape(x)}")
    perm = (0, 2, 3, 1) if nd == 4 else (1, 2, 0)
    return x.permute(*perm) if isinstance(x, torch.Tensor) else x.transpose(perm)


def nhwc_to_nchw(x: Any) -> Any:
    """Channels-last images ``(N, H, W, C)`` (or ``(H, W, C)``) -> torch's channels-first."""
    nd = np.ndim(x)
    if nd not in (3, 4):
        raise ValueError(f"nhwc_to_nchw: 'x' must be (N, H, W, C) or (H, W, C), got shape {np.shape(x)}")
    perm = (0, 3, 1, 2) if nd == 4 else (2, 0, 1)
    return x.permute(*perm) if isinstance(x, torch.Tensor) else x.transpose(perm)


WeightMap = Mapping[str, "str | tuple[str, Callable]"]


def _nnx_path(fn: str, path: object, flat: Mapping[tuple, Any]) -> tuple:
    by_name = {".".join(map(str, k)): k for k in flat}
    key = ".".join(map(str, path)) if isinstance(path, tuple) else path
    if not isinstance(key, str) or key not in by_name:
        raise ValueError(
            f"{fn}: 'weights' names NNX parameter {path!r}, which the module lacks; it has {list(by_name)}"
        )
    return by_name[key]


def compare_modules(
    torch_module: torch.nn.Module,
    nnx_module: Any,
    inputs: Any,
    *,
    weights: Literal["models"] | WeightMap | Callable = "models",
    layout: Literal["nhwc"] | None = None,
    dtype: Dtype = "float32",
    rtol: float | None = None,
    atol: float | None = None,
    seed: int = 0,
    kind: Kind | None = None,
    jit: bool = True,
) -> ParityReport:
    """Copy ``torch_module``'s weights into ``nnx_module`` and compare outputs and the gradient
    of every torch parameter (in torch's names and layouts). Neither module is modified: both
    are copied, and cast to ``dtype``.

    inputs: one array (numpy; torch tensors are taken as numpy) or a tuple of positional inputs,
      in torch's layout; floating ones are cast to ``dtype``.
    weights: how torch's parameters become the NNX module's:

      * ``'models'``: the converters of the ``models`` package (``models.Tudui`` / ``models.LeNet``:
        ``load_torch_state_dict``; gradients come back through ``to_torch_state_dict``);
      * a mapping ``{torch parameter name: NNX path}``, the path as ``'conv1.kernel'`` or a
        tuple; or ``{name: (path, transform)}`` with ``transform`` a JAX function from the torch
        array to the NNX one (e.g. ``lambda w: w.T`` for a Linear weight). Every torch
        parameter and every NNX parameter must be named;
      * a callable ``{torch name: array} -> {NNX path: array}``, written in ``jax.numpy``.

      With a mapping or a callable the gradients are those of the torch-named parameters through
      the transforms (the transforms' VJP puts them back into torch's layout). Only parameters
      are copied, not buffers (e.g. BatchNorm's running statistics): set those on the NNX module
      yourself.
    layout: None (the same arrays on both sides) or ``'nhwc'``: the NNX module takes and returns
      channels-last images, so 4-d inputs go through :func:`nchw_to_nhwc` and 4-d NNX outputs
      through :func:`nhwc_to_nchw` before comparing.
    dtype, rtol, atol, seed, kind, jit: as :func:`compare` (the cotangent, the tolerances).

    Raises:
      TypeError: ``torch_module`` is not a ``torch.nn.Module``, or ``weights='models'`` with an
        NNX module that is not a ``models`` network.
      ValueError: a bad ``weights`` mapping (unknown or missing names, shapes), ``layout``,
        ``dtype`` or tolerance; outputs whose structure or shapes differ.
    """
    from flax import nnx, traverse_util

    fn = "compare_modules"
    if not isinstance(torch_module, torch.nn.Module):
        raise TypeError(f"{fn}: 'torch_module' must be a torch.nn.Module, got {type(torch_module).__name__}")
    if not isinstance(nnx_module, nnx.Module):
        raise TypeError(f"{fn}: 'nnx_module' must be a flax.nnx.Module, got {type(nnx_module).__name__}")
    _check_dtype(dtype, fn)
    if layout not in (None, "nhwc"):
        raise ValueError(f"{fn}: 'layout' must be None or 'nhwc', got {layout!r}")
    rtol, atol = _tolerance(fn, dtype, kind, "mean", rtol, atol)
    inputs = tuple(inputs) if isinstance(inputs, tuple | list) else (inputs,)

    cotangents = _user_cotangents(seed)

    # torch: a copy in dtype, its parameters' gradients in named_parameters order.
    net = copy.deepcopy(torch_module).to(_TORCH_DTYPES[dtype])
    net.zero_grad(set_to_none=True)
    names = [n for n, _ in net.named_parameters()]
    params_t = [p for _, p in net.named_parameters()]
    t_inputs = [to_torch_value(x, dtype) for x in inputs]
    t_names, t_outs, t_grads = run_torch_side(net, t_inputs, {}, params_t, cotangents)

    with x64(dtype):
        np_dtype = _NP_DTYPES[dtype]
        model = nnx.clone(nnx_module)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        params = jax.tree.map(lambda p: jnp.asarray(p).astype(np_dtype), params)
        j_inputs = [to_jax_value(x, dtype) for x in inputs]
        if layout == "nhwc":
            j_inputs = [nchw_to_nhwc(x) if np.ndim(x) == 4 else x for x in j_inputs]

        def run(state) -> Any:
            out = nnx.merge(graphdef, state, rest)(*j_inputs)
            if layout == "nhwc":
                out = jax.tree.map(lambda o: nhwc_to_nchw(o) if o.ndim == 4 else o, out)
            return out

        if isinstance(weights, str):
            if weights != "models":
                raise ValueError(f"{fn}: 'weights' must be 'models', a mapping or a callable, got {weights!r}")
            import models

            if not isinstance(nnx_module, models.Tudui | models.LeNet):
                raise TypeError(
                    f"{fn}: weights='models' converts only models.Tudui / models.LeNet, got "
                    f"{type(nnx_module).__name__}; pass a mapping or a callable as 'weights'"
                )
            nnx.update(model, params)
            models.load_torch_state_dict(model, {n: p.detach() for n, p in net.state_dict().items()})
            _, params, _ = nnx.split(model, nnx.Param, ...)
            j_names, j_outs, (g,) = run_jax_side(run, [params], cotangents, jit=jit)
            holder = nnx.clone(model)
            nnx.update(holder, g)
            j_grads = [np.asarray(v, np.float64) for v in models.to_torch_state_dict(holder).values()]
            if len(j_grads) != len(names):
                raise ValueError(f"{fn}: the models converters give {len(j_grads)} tensors, torch has {len(names)}")
        else:
            flat: dict[tuple, Any] = dict(traverse_util.flatten_dict(nnx.to_pure_dict(params)))
            if isinstance(weights, Mapping):
                unknown = sorted(set(weights) - set(names))
                missing = [n for n in names if n not in weights]
                if unknown or missing:
                    raise ValueError(
                        f"{fn}: 'weights' must name every torch parameter exactly: unknown {unknown}, missing {missing}"
                    )
                table = {}
                for n in names:
                    entry = weights[n]
                    path, transform = (
                        entry
                        if isinstance(entry, tuple) and len(entry) == 2 and callable(entry[1])
                        else (entry, lambda w: w)
                    )
                    table[n] = (_nnx_path(fn, path, flat), transform)
                convert = lambda tp: {table[n][0]: table[n][1](tp[n]) for n in names}
            elif callable(weights):
                convert = lambda tp: {_nnx_path(fn, k, flat): v for k, v in weights(tp).items()}
            else:
                raise TypeError(
                    f"{fn}: 'weights' must be 'models', a mapping or a callable, got {type(weights).__name__}"
                )
            torch_params = {
                n: jnp.asarray(p.detach().double().numpy().astype(np_dtype))
                for n, p in zip(names, params_t, strict=True)
            }

            shapes = jax.eval_shape(convert, torch_params)
            absent = [".".join(map(str, k)) for k in flat if k not in shapes]
            if absent:
                raise ValueError(f"{fn}: 'weights' leaves NNX parameters without a torch value: {absent}")
            for k, v in shapes.items():
                if tuple(v.shape) != tuple(flat[k].shape):
                    raise ValueError(
                        f"{fn}: 'weights' gives NNX parameter {'.'.join(map(str, k))} shape {tuple(v.shape)}, "
                        f"it has {tuple(flat[k].shape)}"
                    )

            def run_torch_named(tp):
                pure = traverse_util.unflatten_dict({k: v.astype(flat[k].dtype) for k, v in convert(tp).items()})
                state = jax.tree.map(lambda x: x, params)
                nnx.replace_by_pure_dict(state, pure)
                return run(state)

            j_names, j_outs, (g,) = run_jax_side(run_torch_named, [torch_params], cotangents, jit=jit)
            j_grads = [g[n] for n in names]
    outputs = _output_checks(fn, t_names, t_outs, j_names, j_outs, rtol, atol)
    grads = []
    for n, j, t in zip(names, j_grads, t_grads, strict=True):
        if j.shape != t.shape:
            raise ValueError(f"{fn}: the gradient of {n} has shape {j.shape} from the NNX module, {t.shape} in torch")
        grads.append(_check(f"grad {n}", j, t, rtol, atol))
    title = f"{type(torch_module).__qualname__} (torch) vs {type(nnx_module).__qualname__} (nnx)"
    return ParityReport(title, dtype, outputs, tuple(grads))
