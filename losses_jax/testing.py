"""Check a torch -> JAX port: values and gradients against torch, with a readable report.

As ``numpy.testing`` and ``torch.testing`` are for their libraries, this module is for ports from
torch to JAX: the functions the project's own parity suite runs every loss through.

Example:
    >>> import numpy as np
    >>> import torch
    >>> import jax.numpy as jnp
    >>> from losses_jax import testing
    >>> def torch_fn(x, y):
    ...     return torch.nn.functional.softplus(x - y).mean()
    >>> def jax_fn(x, y):
    ...     return jnp.logaddexp(0.0, x - y).mean()
    >>> x, y = np.linspace(-2, 2, 8), np.ones(8)
    >>> report = testing.assert_parity(torch_fn, jax_fn, (x, y), grad=(0, 1), kind="reduction")
    >>> report.ok
    True

[`compare`][losses_jax.testing.compare] runs the same numpy inputs through a torch function and a JAX function
(the JAX one under ``jax.jit``), in float32, float64, bfloat16 or float16, and compares every output and the
gradient of every input named in ``grad``: a VJP with the same seeded random cotangent on both sides (a lone
scalar output is differentiated as torch's ``.backward()`` does, cotangent 1). It returns a
[`ParityReport`][losses_jax.testing.ParityReport]; [`assert_parity`][losses_jax.testing.assert_parity] raises
``AssertionError`` with it. [`compare_modules`][losses_jax.testing.compare_modules] does the same for a
``torch.nn.Module`` and a Flax NNX module. [`record`][losses_jax.testing.record] keeps torch's side as a
[`Reference`][losses_jax.testing.Reference], so that a port can be compared where torch is not installed (an
accelerator machine, a CI job without torch).

The compared functions' own arguments travel in ``args`` (a tuple) and ``kwargs`` (a mapping),
never mixed with this module's options, so any function signature can be compared.

Error measure, per element: ``|jax - torch| / max(|torch|, atol / rtol)``, i.e. the relative error, counted as
absolute below ``atol / rtol``; a check passes when its largest is at most ``rtol``. NaN must be exactly where
torch has NaN, and infinities must equal torch's exactly. Default tolerances
([`TOLERANCES`][losses_jax.testing.TOLERANCES]): float64 rtol 1e-7; float32 1e-5 for elementwise results and
2e-4 for reductions over many terms (``kind='reduction'``); bfloat16 / float16 1e-2.

torch (and, for [`compare_modules`][losses_jax.testing.compare_modules], flax) are imported when a function
needs them, never by ``import losses_jax``: ``pip install 'losses-jax[testing]'`` installs both.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import numbers
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "TOLERANCES",
    "Check",
    "ParityReport",
    "Reference",
    "assert_parity",
    "compare",
    "compare_modules",
    "nchw_to_nhwc",
    "nhwc_to_nchw",
    "record",
    "tolerance",
]

Dtype = Literal["float64", "float32", "bfloat16", "float16"]
Kind = Literal["elementwise", "reduction"]

TOLERANCES: dict[str, tuple[float, float, float]] = {
    "float64": (1e-7, 1e-7, 1e-12),
    "float32": (1e-5, 2e-4, 1e-6),
    "bfloat16": (1e-2, 1e-2, 1e-2),
    "float16": (1e-2, 1e-2, 1e-3),
}
"""``dtype -> (rtol for elementwise results, rtol for reductions over many terms, atol)``.

The project's parity promise, and the defaults of [`compare`][losses_jax.testing.compare].
"""
_NP_DTYPES = {"float64": np.float64, "float32": np.float32, "bfloat16": jnp.bfloat16, "float16": np.float16}


def _torch() -> Any:
    """torch, imported on first use; one line naming the extra when it is not installed."""
    try:
        import torch
    except ModuleNotFoundError as e:
        if e.name != "torch":
            raise
        raise ModuleNotFoundError(
            "losses_jax.testing needs PyTorch: pip install 'losses-jax[testing]' (or torch itself)", name="torch"
        ) from None
    return torch


def _nnx() -> Any:
    try:
        from flax import nnx
    except ModuleNotFoundError as e:
        if e.name not in ("flax", "flax.nnx"):
            raise
        raise ModuleNotFoundError(
            "losses_jax.testing.compare_modules needs Flax: pip install 'losses-jax[testing]' (or flax itself)",
            name="flax",
        ) from None
    return nnx


# ------------------------------------------------------------------------------ tolerances


def _check_dtype(dtype: object, fn: str) -> str:
    if not isinstance(dtype, str) or dtype not in TOLERANCES:
        raise ValueError(f"{fn}: 'dtype' must be one of {sorted(TOLERANCES)}, got {dtype!r}")
    return dtype


def tolerance(
    dtype: str, kind: Kind = "elementwise", *, rtol: float | None = None, atol: float | None = None
) -> tuple[float, float]:
    """The ``(rtol, atol)`` a comparison in ``dtype`` uses.

    Args:
      dtype: ``'float64'``, ``'float32'``, ``'bfloat16'`` or ``'float16'``.
      kind: ``'elementwise'`` (the tight float32 rtol, 1e-5) or ``'reduction'`` (2e-4, for
        results that sum many terms, whose rounding grows with the number of terms).
      rtol: overrides the table's relative tolerance (> 0).
      atol: overrides the table's absolute tolerance (>= 0).

    Returns:
      ``(rtol, atol)`` from [`TOLERANCES`][losses_jax.testing.TOLERANCES], unless given.

    Raises:
      ValueError: an unknown ``dtype`` or ``kind``, or a negative / non-numeric tolerance.

    Example:
      >>> from losses_jax.testing import tolerance
      >>> tolerance("float32", "reduction")
      (0.0002, 1e-06)
    """
    _check_dtype(dtype, "tolerance")
    if kind not in ("elementwise", "reduction"):
        raise ValueError(f"tolerance: 'kind' must be 'elementwise' or 'reduction', got {kind!r}")
    elementwise, reduced, default_atol = TOLERANCES[dtype]
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and (not isinstance(value, numbers.Real) or not value >= 0):
            raise ValueError(f"tolerance: {name!r} must be a number >= 0, got {value!r}")
    rtol = (elementwise if kind == "elementwise" else reduced) if rtol is None else float(rtol)
    if rtol <= 0:
        raise ValueError(f"tolerance: 'rtol' must be > 0, got {rtol!r}")
    return rtol, default_atol if atol is None else float(atol)


def _tolerance(fn: str, dtype: str, kind: Any, rtol: Any, atol: Any) -> tuple[float, float]:
    try:
        return tolerance(dtype, kind, rtol=rtol, atol=atol)
    except ValueError as e:
        raise ValueError(f"{fn}: {str(e).removeprefix('tolerance: ')}") from None


# ------------------------------------------------------------------------------ the report


@dataclasses.dataclass(frozen=True)
class Check:
    """One compared tensor: an output or a gradient.

    Attributes:
      name: ``'output'`` (with the path inside a structured output) or ``'grad of arg i'`` /
        ``'grad <torch parameter name>'``.
      shape: the tensor's shape.
      max_abs_err: the largest absolute difference over the finite elements.
      max_rel_err: the error measure (relative, absolute below ``atol / rtol``); ``inf`` on a NaN
        or infinity mismatch.
      index: the worst element (for a NaN / inf mismatch the first one, and ``reason`` says
        which); None for a tensor with no finite element.
      jax_value: the JAX value at ``index``.
      torch_value: torch's value at ``index``.
      rtol: the relative tolerance used.
      atol: the absolute tolerance used.
      reason: why a NaN / inf mismatch failed; empty otherwise.
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
    """The result of [`compare`][losses_jax.testing.compare] / [`compare_modules`][losses_jax.testing.compare_modules].

    ``str(report)`` is a table with one row per [`Check`][losses_jax.testing.Check]: its shape, largest absolute and
    relative errors, the worst element's index with both values, the tolerances and the verdict.
    Test it with ``report.ok``: a report has no truth value (``assert report`` raises), so that
    a forgotten ``.ok`` cannot pass silently.

    Attributes:
      title: what was compared.
      dtype: the dtype both sides ran in.
      outputs: one check per output.
      grads: one check per compared gradient.
    """

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

    @property
    def max_output_error(self) -> float:
        """The largest error measure over the outputs (0 when there is none)."""
        return max((c.max_rel_err for c in self.outputs), default=0.0)

    @property
    def max_grad_error(self) -> float:
        """The largest error measure over the gradients (0 when there is none)."""
        return max((c.max_rel_err for c in self.grads), default=0.0)

    def __bool__(self) -> bool:
        """Refused: ``assert report`` would pass whatever the report says; test ``report.ok``."""
        raise TypeError("a ParityReport has no truth value: test report.ok (assert report.ok, report)")

    def __str__(self) -> str:
        """The report as a table: one row per output and gradient, with a verdict each."""

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


def _check(name: str, ours: Any, ref: Any, rtol: float, atol: float) -> Check:
    """The error measure of two arrays of one shape, with the worst element."""
    ours = np.asarray(ours, np.float64)
    ref = np.asarray(ref, np.float64)
    shape = tuple(ref.shape)

    def at(mask: np.ndarray, reason: str) -> Check:
        index = tuple(int(i) for i in np.argwhere(mask)[0])
        return Check(name, shape, math.inf, math.inf, index, float(ours[index]), float(ref[index]), rtol, atol, reason)

    nan_ours, nan_ref = np.isnan(ours), np.isnan(ref)
    if np.any(nan_ours != nan_ref):
        first = tuple(np.argwhere(nan_ours != nan_ref)[0])
        reason = "NaN where torch has a number" if nan_ours[first] else "a number where torch has NaN"
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
        return Check(name, shape, 0.0, 0.0, None, None, None, rtol, atol)
    diff = np.abs(ours[fin] - ref[fin])
    rel = diff / np.maximum(np.abs(ref[fin]), atol / rtol)
    worst = int(np.argmax(rel))
    index = tuple(int(i) for i in np.argwhere(fin)[worst])
    return Check(
        name, shape, float(np.max(diff)), float(np.max(rel)), index, float(ours[index]), float(ref[index]), rtol, atol
    )


# ------------------------------------------------------------------------------ inputs


def _is_tensor(v: object) -> bool:
    torch = sys.modules.get("torch")  # a torch tensor exists only if torch was imported
    return torch is not None and isinstance(v, torch.Tensor)


def _is_array(v: object) -> bool:
    return isinstance(v, np.ndarray | jax.Array) or _is_tensor(v)


def _as_numpy(v: Any) -> np.ndarray:
    if _is_tensor(v):
        v = v.detach().cpu()
        return (v.double() if v.is_floating_point() else v).numpy()
    return np.asarray(v)


def _to_torch(v: Any, dtype: str, requires_grad: bool = False) -> Any:
    """Values as torch tensors.

    Floating arrays as ``dtype`` tensors, integer arrays as int64, booleans as bool; dicts,
    lists and tuples converted inside; anything else unchanged.
    """
    torch = _torch()
    if _is_array(v):
        v = _as_numpy(v)
        if np.issubdtype(v.dtype, np.floating):
            t = torch.tensor(v.astype(np.float64), dtype=getattr(torch, dtype))
            return t.requires_grad_(requires_grad)
        if v.dtype == np.bool_:
            return torch.from_numpy(v.copy())
        return torch.from_numpy(v.astype(np.int64))
    if isinstance(v, dict):
        return {k: _to_torch(x, dtype) for k, x in v.items()}
    if type(v) in (list, tuple):
        return type(v)(_to_torch(x, dtype) for x in v)
    return v


def _to_jax(v: Any, dtype: str) -> Any:
    """Values as JAX arrays.

    Floating arrays as ``dtype``; integer arrays as JAX's default integer type (int64 in a
    float64 comparison, which runs under x64; else int32); booleans as bool; containers inside.
    """
    if _is_array(v):
        v = _as_numpy(v)
        # jax.device_put, not jnp.asarray: on jax 0.10 (not 0.8) the latter compiles a program (`stage`)
        # for every new shape and dtype, a large part of the parity suite's time (BENCHMARKS.md).
        if np.issubdtype(v.dtype, np.floating):
            return jax.device_put(v.astype(_NP_DTYPES[dtype]))
        if v.dtype == np.bool_:
            return jax.device_put(v)
        return jax.device_put(v.astype(np.int64 if dtype == "float64" else np.int32))
    if isinstance(v, dict):
        return {k: _to_jax(x, dtype) for k, x in v.items()}
    if type(v) in (list, tuple):
        return type(v)(_to_jax(x, dtype) for x in v)
    return v


def _x64(dtype: str) -> contextlib.AbstractContextManager:
    """``jax.enable_x64(True)`` for float64, else a no-op context."""
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


# ------------------------------------------------------------------------------ both sides


def _cotangents(seed: int, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """One float64 cotangent per output, uniform in [0.5, 1.5) from ``seed``.

    1 for a lone scalar output (torch's ``.backward()``).
    """
    if len(shapes) == 1 and shapes[0] == ():
        return [np.ones(())]
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 1.5, size=shape) for shape in shapes]


def _leaves(out: Any) -> tuple[list[str], list[Any]]:
    """Output pytree -> (names, leaves); tuples, lists, dicts and namedtuples are containers."""
    pairs, _ = jax.tree_util.tree_flatten_with_path(out)
    return [jax.tree_util.keystr(path) for path, _ in pairs], [leaf for _, leaf in pairs]


def _torch_side(
    fn: Callable, args: Sequence, kwargs: Mapping, wrt: Sequence[Any], seed: int
) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Torch's side: the outputs and the gradients, float64.

    Calls ``fn(*args, **kwargs)`` (torch values), back-propagates the cotangents through every
    output that requires grad, and returns (output names, outputs, grads of ``wrt``), float64.
    """
    torch = _torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own deprecation / broadcasting warnings
        out = fn(*args, **kwargs)
    names, leaves = _leaves(out)
    outs = [leaf.detach().double().numpy() if _is_tensor(leaf) else np.asarray(leaf, np.float64) for leaf in leaves]
    cts = _cotangents(seed, [o.shape for o in outs])
    diff = [(leaf, ct) for leaf, ct in zip(leaves, cts, strict=True) if getattr(leaf, "requires_grad", False)]
    if diff:
        torch.autograd.backward([leaf for leaf, _ in diff], [torch.tensor(ct, dtype=leaf.dtype) for leaf, ct in diff])
    grads = [np.zeros(w.shape) if w.grad is None else w.grad.detach().double().numpy() for w in wrt]
    return names, outs, grads


def _jax_side(fn: Callable, primals: Sequence, seed: int, *, jit: bool) -> tuple[list[str], list[np.ndarray], Any]:
    """``jax.vjp`` of ``fn`` at ``primals`` with the cotangents.

    Returns (output names, outputs, the gradients of ``primals``), float64.

    Under ``jit`` the value and the VJP are one compiled program (as in a jitted training step),
    the cotangents drawn from the output shapes that ``jax.eval_shape`` gives: one XLA compilation
    instead of one for the forward pass and another for the backward pass.
    """

    def cotangent_leaves(outputs: Sequence[Any]) -> list[Any]:
        # float0 zeros for integer and boolean outputs, which have no gradient.
        cts = _cotangents(seed, [tuple(o.shape) for o in outputs])
        return [
            jax.device_put(ct.astype(o.dtype))
            if jnp.issubdtype(o.dtype, jnp.inexact)
            else np.zeros(o.shape, jax.dtypes.float0)
            for o, ct in zip(outputs, cts, strict=True)
        ]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the port's warnings are the port's business, not the report's
        if jit:
            names, avals = _leaves(jax.eval_shape(fn, *primals))
            cts = cotangent_leaves(avals)
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
            ct_leaves = cotangent_leaves(leaves)
            grads = vjp(jax.tree.unflatten(jax.tree.structure(out), ct_leaves)) if primals else ()

    def as_f64(a: Any) -> np.ndarray:
        return np.asarray(a).astype(np.float64)  # bfloat16 too (ml_dtypes), with no JAX program

    return names, [as_f64(leaf) for leaf in leaves], jax.tree.map(as_f64, grads)


# ------------------------------------------------------------------------------ functions


@dataclasses.dataclass(frozen=True)
class Reference:
    """torch's side of a comparison, kept so that a port can be compared where torch is not.

    Made by [`record`][losses_jax.testing.record] (or from arrays recorded elsewhere) and passed to
    [`compare`][losses_jax.testing.compare] / [`assert_parity`][losses_jax.testing.assert_parity] in place of
    the torch function.

    Attributes:
      title: what was recorded (the torch function's name).
      dtype: the dtype torch ran in.
      grad: the positions in ``args`` whose gradients were recorded.
      seed: the seed of the cotangents.
      output_names: the path of each output inside the returned structure (``''`` for one array).
      outputs: torch's outputs, float64.
      grads: torch's gradients of the ``grad`` positions, float64.
    """

    title: str
    dtype: str
    grad: tuple[int, ...]
    seed: int
    output_names: tuple[str, ...]
    outputs: tuple[np.ndarray, ...]
    grads: tuple[np.ndarray, ...]


def _name(f: object) -> str:
    return getattr(f, "__name__", None) or getattr(type(f), "__qualname__", repr(f))


def _check_call(fn: str, args: object, kwargs: object) -> tuple[tuple, dict]:
    if not isinstance(args, tuple | list):
        raise TypeError(
            f"{fn}: 'args' must be a tuple of the compared functions' positional arguments, "
            f"got {type(args).__name__} (write args=(x,) for one)"
        )
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise TypeError(f"{fn}: 'kwargs' must be a mapping of keyword arguments or None, got {type(kwargs).__name__}")
    return tuple(args), dict(kwargs or {})


def _check_grad(fn: str, grad: object, args: Sequence) -> tuple[int, ...]:
    positions = (grad,) if isinstance(grad, int) and not isinstance(grad, bool) else grad
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


def record(
    torch_fn: Callable,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    grad: int | Sequence[int] = (),
    dtype: Dtype = "float32",
    seed: int = 0,
) -> Reference:
    """Run ``torch_fn`` and keep its outputs and gradients for a later [`compare`][losses_jax.testing.compare].

    Args:
      torch_fn: the torch function.
      args: its positional arguments, as [`compare`][losses_jax.testing.compare] takes them.
      kwargs: its keyword arguments, as [`compare`][losses_jax.testing.compare] takes them.
      grad: positions in ``args`` whose gradients are recorded.
      dtype: the dtype torch runs in.
      seed: the seed of the cotangents.

    Returns:
      A [`Reference`][losses_jax.testing.Reference].

    Raises:
      TypeError: as [`compare`][losses_jax.testing.compare].
      ValueError: as [`compare`][losses_jax.testing.compare].
      ModuleNotFoundError: torch is not installed (one line naming the extra).
    """
    fn = "record"
    if not callable(torch_fn):
        raise TypeError(f"{fn}: 'torch_fn' must be callable, got {type(torch_fn).__name__}")
    args, kwargs = _check_call(fn, args, kwargs)
    _check_dtype(dtype, fn)
    positions = _check_grad(fn, grad, args)
    t_args = [_to_torch(a, dtype, i in positions) for i, a in enumerate(args)]
    t_kwargs = {k: _to_torch(v, dtype) for k, v in kwargs.items()}
    names, outs, grads = _torch_side(torch_fn, t_args, t_kwargs, [t_args[i] for i in positions], seed)
    return Reference(_name(torch_fn), dtype, positions, seed, tuple(names), tuple(outs), tuple(grads))


def compare(
    torch_fn: Callable | Reference,
    jax_fn: Callable,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    grad: int | Sequence[int] | None = None,
    dtype: Dtype | None = None,
    kind: Kind = "elementwise",
    rtol: float | None = None,
    atol: float | None = None,
    seed: int | None = None,
    jit: bool = True,
) -> ParityReport:
    """Run the same inputs through ``torch_fn`` and ``jax_fn``; compare outputs and gradients.

    Both functions are called as ``f(*args, **kwargs)``. The outputs may be one array or tuples,
    lists, dicts and namedtuples of arrays (the same structure on both sides); every floating
    output is back-propagated with a cotangent drawn from ``seed`` (uniform in [0.5, 1.5), the
    same on both sides) or, for a lone scalar output, 1 (torch's ``.backward()``).

    Args:
      torch_fn: the torch function, or a [`Reference`][losses_jax.testing.Reference] recorded from it (then torch is not
        needed, and ``grad``, ``dtype`` and ``seed`` default to the recorded ones).
      jax_fn: the JAX port.
      args: the positional arguments (a tuple): numpy arrays (JAX arrays and torch tensors are
        taken as numpy) and Python values. Floating arrays become ``dtype`` on both sides;
        integer arrays become int64 tensors for torch and JAX's default integer type for JAX
        (int32, or int64 in float64, which runs under x64); booleans stay booleans; dicts, lists
        and tuples are converted inside; other values pass unchanged.
      kwargs: the keyword arguments (a mapping), converted as ``args``.
      grad: positions in ``args`` (floating arrays) whose gradients are compared; default none.
      dtype: ``'float32'`` (default), ``'float64'`` (JAX runs under ``jax.enable_x64``),
        ``'bfloat16'`` or ``'float16'``.
      kind: ``'elementwise'`` (default) or ``'reduction'``: which rtol of [`TOLERANCES`][losses_jax.testing.TOLERANCES]
        (float32: 1e-5, or 2e-4 for results that sum many terms).
      rtol: overrides the relative tolerance.
      atol: overrides the absolute tolerance.
      seed: the seed of the cotangents (default 0).
      jit: run ``jax_fn`` under ``jax.jit`` (default) or eagerly.

    Returns:
      A [`ParityReport`][losses_jax.testing.ParityReport].

    Raises:
      TypeError: a function is not callable, ``args`` is not a tuple, ``kwargs`` not a mapping,
        or ``grad`` not an int or a tuple of ints.
      ValueError: an unknown ``dtype`` or ``kind``, a bad ``rtol`` / ``atol``, a ``grad`` position
        out of range or not a floating array, ``grad`` / ``dtype`` / ``seed`` other than a
        [`Reference`][losses_jax.testing.Reference]'s, or outputs whose structure or shapes differ.
      ModuleNotFoundError: torch is needed and not installed (one line naming the extra).
    """
    return _compare("compare", torch_fn, jax_fn, args, kwargs, grad, dtype, kind, rtol, atol, seed, jit)


def assert_parity(
    torch_fn: Callable | Reference,
    jax_fn: Callable,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    grad: int | Sequence[int] | None = None,
    dtype: Dtype | None = None,
    kind: Kind = "elementwise",
    rtol: float | None = None,
    atol: float | None = None,
    seed: int | None = None,
    jit: bool = True,
) -> ParityReport:
    """[`compare`][losses_jax.testing.compare], raising ``AssertionError`` with the report's table when a check fails.

    Args:
      torch_fn: as in `compare`.
      jax_fn: as in `compare`.
      args: as in `compare`.
      kwargs: as in `compare`.
      grad: as in `compare`.
      dtype: as in `compare`.
      kind: as in `compare`.
      rtol: as in `compare`.
      atol: as in `compare`.
      seed: as in `compare`.
      jit: as in `compare`.

    Returns:
      The passing [`ParityReport`][losses_jax.testing.ParityReport].

    Raises:
      AssertionError: a check fails; the message is the report's table.
      TypeError: bad use, as [`compare`][losses_jax.testing.compare].
      ValueError: bad use, as [`compare`][losses_jax.testing.compare].
    """
    __tracebackhide__ = True
    report = _compare("assert_parity", torch_fn, jax_fn, args, kwargs, grad, dtype, kind, rtol, atol, seed, jit)
    if not report.ok:
        raise AssertionError(str(report))
    return report


def _compare(fn: str, torch_fn, jax_fn, args, kwargs, grad, dtype, kind, rtol, atol, seed, jit) -> ParityReport:
    if not callable(jax_fn):
        raise TypeError(f"{fn}: 'jax_fn' must be callable, got {type(jax_fn).__name__}")
    args, kwargs = _check_call(fn, args, kwargs)
    if isinstance(torch_fn, Reference):
        ref = torch_fn
        for name, given, recorded in (("dtype", dtype, ref.dtype), ("seed", seed, ref.seed)):
            if given is not None and given != recorded:
                raise ValueError(f"{fn}: {name}={given!r}, but the Reference was recorded with {recorded!r}")
        dtype, seed = ref.dtype, ref.seed
        positions = _check_grad(fn, ref.grad if grad is None else grad, args)
        if positions != ref.grad:
            raise ValueError(f"{fn}: grad={grad!r}, but the Reference was recorded with grad={ref.grad!r}")
        title = ref.title
    elif callable(torch_fn):
        dtype = "float32" if dtype is None else dtype
        seed = 0 if seed is None else seed
        _check_dtype(dtype, fn)
        positions = _check_grad(fn, () if grad is None else grad, args)
        ref = None
        title = _name(torch_fn)
    else:
        raise TypeError(f"{fn}: 'torch_fn' must be callable or a Reference, got {type(torch_fn).__name__}")
    rtol, atol = _tolerance(fn, dtype, kind, rtol, atol)
    if ref is None:
        assert callable(torch_fn)
        t_args = [_to_torch(a, dtype, i in positions) for i, a in enumerate(args)]
        t_kwargs = {k: _to_torch(v, dtype) for k, v in kwargs.items()}
        t_names, t_outs, t_grads = _torch_side(torch_fn, t_args, t_kwargs, [t_args[i] for i in positions], seed)
    else:
        t_names, t_outs, t_grads = list(ref.output_names), list(ref.outputs), list(ref.grads)
    with _x64(dtype):
        j_args = [_to_jax(a, dtype) for a in args]
        j_kwargs = {k: _to_jax(v, dtype) for k, v in kwargs.items()}

        def f(*diff):
            full = list(j_args)
            for i, d in zip(positions, diff, strict=True):
                full[i] = d
            return jax_fn(*full, **j_kwargs)

        j_names, j_outs, j_grads = _jax_side(f, [j_args[i] for i in positions], seed, jit=jit)
    outputs = _output_checks(fn, t_names, t_outs, j_names, j_outs, rtol, atol)
    grads = []
    for i, j, t in zip(positions, j_grads, t_grads, strict=True):
        if np.shape(j) != np.shape(t):
            raise ValueError(f"{fn}: the gradient of arg {i} has shape {np.shape(j)} in jax, {np.shape(t)} in torch")
        grads.append(_check(f"grad of arg {i}", j, t, rtol, atol))
    return ParityReport(f"{title} (torch) vs {_name(jax_fn)} (jax)", dtype, outputs, tuple(grads))


def _output_checks(
    fn: str, t_names: list[str], t_outs: list, j_names: list[str], j_outs: list, rtol: float, atol: float
) -> tuple[Check, ...]:
    """One check per output, after the structures and shapes are checked equal."""
    if t_names != j_names:
        torch_shown, jax_shown = ([n or "<the output>" for n in names] for names in (t_names, j_names))
        raise ValueError(
            f"{fn}: the outputs' structures differ: torch returns {len(t_names)} arrays {torch_shown}, "
            f"jax returns {len(j_names)} arrays {jax_shown}"
        )
    for name, t, j in zip(t_names, t_outs, j_outs, strict=True):
        if np.shape(t) != np.shape(j):
            raise ValueError(f"{fn}: output{name} has shape {np.shape(j)} in jax but {np.shape(t)} in torch")
    return tuple(_check(f"output{name}", j, t, rtol, atol) for name, j, t in zip(t_names, j_outs, t_outs, strict=True))


# ------------------------------------------------------------------------------ modules


def _transpose(fn: str, x: Any, shapes: str, perm4: tuple[int, ...], perm3: tuple[int, ...]) -> Any:
    nd = np.ndim(x)
    if nd not in (3, 4):
        raise ValueError(f"{fn}: 'x' must be {shapes}, got shape {np.shape(x)}")
    perm = perm4 if nd == 4 else perm3
    return x.permute(*perm) if _is_tensor(x) else x.transpose(perm)


def nchw_to_nhwc(x: Any) -> Any:
    """Torch's channels-first images ``(N, C, H, W)`` (or ``(C, H, W)``) as channels-last.

    Args:
      x: a numpy or JAX array, or a torch tensor.

    Returns:
      ``x`` transposed to ``(N, H, W, C)`` (or ``(H, W, C)``), of the same type.

    Raises:
      ValueError: ``x`` is neither 3-d nor 4-d.
    """
    return _transpose("nchw_to_nhwc", x, "(N, C, H, W) or (C, H, W)", (0, 2, 3, 1), (1, 2, 0))


def nhwc_to_nchw(x: Any) -> Any:
    """Channels-last images ``(N, H, W, C)`` (or ``(H, W, C)``) as torch's channels-first.

    Args:
      x: a numpy or JAX array, or a torch tensor.

    Returns:
      ``x`` transposed to ``(N, C, H, W)`` (or ``(C, H, W)``), of the same type.

    Raises:
      ValueError: ``x`` is neither 3-d nor 4-d.
    """
    return _transpose("nhwc_to_nchw", x, "(N, H, W, C) or (H, W, C)", (0, 3, 1, 2), (2, 0, 1))


#: ``{torch parameter name: NNX path}`` or ``{torch parameter name: (NNX path, transform)}``.
WeightMap = Mapping[str, "str | tuple[str | tuple, Callable[[jax.Array], jax.Array]] | tuple"]


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
    weights: WeightMap | Callable[[dict[str, jax.Array]], Mapping[Any, jax.Array]],
    layout: Literal["nhwc"] | None = None,
    dtype: Dtype = "float32",
    kind: Kind = "elementwise",
    rtol: float | None = None,
    atol: float | None = None,
    seed: int = 0,
    jit: bool = True,
) -> ParityReport:
    """Copy a torch module's weights into an NNX module; compare outputs and every gradient.

    The gradients compared are those of every torch parameter, in torch's names and layouts: on
    the JAX side, of the torch-named parameters through the ``weights`` transforms, whose VJP
    puts them back into torch's layout. Neither module is modified: both are copied, and cast to
    ``dtype``. Only parameters are copied, not buffers (e.g. BatchNorm's running statistics): set
    those on the NNX module yourself.

    Args:
      torch_module: a ``torch.nn.Module``.
      nnx_module: a ``flax.nnx.Module`` of the same architecture.
      inputs: one array (numpy; torch tensors are taken as numpy) or a tuple of positional inputs,
        in torch's layout; floating ones are cast to ``dtype``.
      weights: how torch's parameters become the NNX module's: a mapping
        ``{torch parameter name: NNX path}``, the path as ``'conv1.kernel'`` or a tuple, or
        ``{name: (path, transform)}`` with ``transform`` a JAX function from the torch array to
        the NNX one (e.g. ``lambda w: w.T`` for a Linear weight); every torch parameter and every
        NNX parameter must be named. Or a callable ``{torch name: array} -> {NNX path: array}``,
        written in ``jax.numpy``.
      layout: None (the same arrays on both sides) or ``'nhwc'``: the NNX module takes and
        returns channels-last images, so 4-d inputs go through
        [`nchw_to_nhwc`][losses_jax.testing.nchw_to_nhwc] and 4-d NNX outputs through
        [`nhwc_to_nchw`][losses_jax.testing.nhwc_to_nchw] before comparing.
      dtype: as in `compare`.
      kind: as in `compare`.
      rtol: as in `compare`.
      atol: as in `compare`.
      seed: as in `compare`.
      jit: as in `compare`.

    Returns:
      A [`ParityReport`][losses_jax.testing.ParityReport]: a check per output and one per torch parameter's gradient.

    Raises:
      TypeError: ``torch_module`` is not a ``torch.nn.Module``, ``nnx_module`` not an NNX module,
        or ``weights`` neither a mapping nor a callable.
      ValueError: a bad ``weights`` mapping (unknown or missing names, shapes), ``layout``,
        ``dtype`` or tolerance; outputs whose structure or shapes differ.
      ModuleNotFoundError: torch or flax is not installed (one line naming the extra).
    """
    torch = _torch()
    nnx = _nnx()
    from flax import traverse_util

    fn = "compare_modules"
    if not isinstance(torch_module, torch.nn.Module):
        raise TypeError(f"{fn}: 'torch_module' must be a torch.nn.Module, got {type(torch_module).__name__}")
    if not isinstance(nnx_module, nnx.Module):
        raise TypeError(f"{fn}: 'nnx_module' must be a flax.nnx.Module, got {type(nnx_module).__name__}")
    if not isinstance(weights, Mapping) and not callable(weights):
        raise TypeError(f"{fn}: 'weights' must be a mapping or a callable, got {type(weights).__name__}")
    _check_dtype(dtype, fn)
    if layout not in (None, "nhwc"):
        raise ValueError(f"{fn}: 'layout' must be None or 'nhwc', got {layout!r}")
    rtol, atol = _tolerance(fn, dtype, kind, rtol, atol)
    inputs = tuple(inputs) if isinstance(inputs, tuple | list) else (inputs,)

    # torch: a copy in dtype, its parameters' gradients in named_parameters order.
    net = copy.deepcopy(torch_module).to(getattr(torch, dtype))
    net.zero_grad(set_to_none=True)
    names = [n for n, _ in net.named_parameters()]
    params_t = [p for _, p in net.named_parameters()]
    t_inputs = [_to_torch(x, dtype) for x in inputs]
    t_names, t_outs, t_grads = _torch_side(net, t_inputs, {}, params_t, seed)

    with _x64(dtype):
        np_dtype = _NP_DTYPES[dtype]
        model = nnx.clone(nnx_module)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
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

        def convert(tp: dict[str, jax.Array]) -> dict[tuple, jax.Array]:
            if isinstance(weights, Mapping):
                return {table[n][0]: table[n][1](tp[n]) for n in names}
            return {_nnx_path(fn, k, flat): v for k, v in weights(tp).items()}

        torch_params = {
            n: jnp.asarray(p.detach().double().numpy().astype(np_dtype)) for n, p in zip(names, params_t, strict=True)
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
        j_inputs = [_to_jax(x, dtype) for x in inputs]
        if layout == "nhwc":
            j_inputs = [nchw_to_nhwc(x) if np.ndim(x) == 4 else x for x in j_inputs]

        def run(tp):
            pure = traverse_util.unflatten_dict({k: v.astype(np_dtype) for k, v in convert(tp).items()})
            state = jax.tree.map(lambda x: x, params)
            nnx.replace_by_pure_dict(state, pure)
            out = nnx.merge(graphdef, state, rest)(*j_inputs)
            if layout == "nhwc":
                out = jax.tree.map(lambda o: nhwc_to_nchw(o) if o.ndim == 4 else o, out)
            return out

        j_names, j_outs, (g,) = _jax_side(run, [torch_params], seed, jit=jit)
    outputs = _output_checks(fn, t_names, t_outs, j_names, j_outs, rtol, atol)
    grads = []
    for n, t in zip(names, t_grads, strict=True):
        grads.append(_check(f"grad {n}", g[n], t, rtol, atol))
    title = f"{type(torch_module).__qualname__} (torch) vs {type(nnx_module).__qualname__} (nnx)"
    return ParityReport(title, dtype, outputs, tuple(grads))
