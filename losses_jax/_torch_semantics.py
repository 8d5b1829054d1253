"""torch's behaviour, shared by every loss family.

Input conversion, broadcasting with torch's warning, static-argument and concreteness checks, torch's
gradients at clamps, class-index targets (validation and masking), and the symbolic-zero tangent helpers of
the custom JVPs.

Static checks (shapes, ranks, dtypes) run at trace time and raise ``ValueError`` or
``TypeError`` naming the argument. Value checks (a class index out of range) can only run
when the values are concrete, i.e. outside ``jit``/``vmap``/``grad`` tracing; each loss
documents what it returns for such values under tracing.
"""

from __future__ import annotations

import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

# Half-precision inputs are computed in float32 and the result is rounded back, as torch's
# CPU and CUDA kernels accumulate half-precision reductions in float32.
_UPCAST = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


def user_stacklevel() -> int:
    """``stacklevel`` for ``warnings.warn`` that points at the first frame outside losses_jax.

    Call it in the function that calls ``warnings.warn``; the warning then names the user's line
    however deep inside the package it was raised.
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("losses_jax"):
        frame = frame.f_back
        level += 1
    return level


def as_array(x, name: str, fn: str):
    """``x`` as a JAX array (numpy arrays, scalars and lists are accepted)."""
    if isinstance(x, jax.Array):
        return x
    try:
        return jnp.asarray(x)
    except TypeError as e:
        raise TypeError(f"{fn}: argument '{name}' must be an array, got {type(x).__name__}") from e


def is_tracer(x: object) -> bool:
    """True for a traced value (under jit/vmap/grad), whose numbers are not known yet."""
    return isinstance(x, Tracer)


def is_concrete(*xs: object) -> bool:
    """True when every argument holds actual values (not a tracer under jit/vmap/grad)."""
    return not any(is_tracer(x) for x in xs)


def check_floating(x, name: str, fn: str) -> None:
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{fn}: argument '{name}' must have a floating-point dtype, got {x.dtype}")


def check_real(x, name: str, fn: str, allow_bool: bool = False) -> None:
    if (x.dtype == jnp.bool_ and not allow_bool) or jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{fn}: argument '{name}' must have a real numeric dtype, got {x.dtype}")


def check_integer(x, name: str, fn: str, hint: str = "") -> None:
    if not jnp.issubdtype(x.dtype, jnp.integer):  # bool is not an integer dtype here, as in torch
        raise TypeError(f"{fn}: argument '{name}' must hold integer class indices, got dtype {x.dtype}{hint}")


def compute_dtype(*dtypes):
    """(dtype to compute in, dtype of the result) for arrays of the given dtypes."""
    out = jnp.result_type(*dtypes)
    if not jnp.issubdtype(out, jnp.floating):
        out = jnp.result_type(out, jnp.float32)
    work = jnp.dtype(jnp.float32) if jnp.dtype(out) in _UPCAST else out
    return work, out


def fused_f32(fn, x):
    """``fn(x)`` evaluated in float32 and rounded once for half-precision ``x``.

    That is how one fused torch kernel (``sigmoid``, ``log_sigmoid``, ``xlogy``) computes in
    bfloat16/float16.
    """
    if jnp.dtype(x.dtype) in _UPCAST:
        return fn(x.astype(jnp.float32)).astype(x.dtype)
    return fn(x)


@jax.custom_jvp
def sigmoid(x):
    """``torch.sigmoid``, with torch's derivative.

    Half precision is computed in float32 and rounded once (``fused_f32``); the derivative is
    torch's ``sigmoid_backward``, taken from the rounded output.
    """
    return fused_f32(jax.nn.sigmoid, x)


@sigmoid.defjvp
def _sigmoid_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    y = sigmoid(x)
    # torch's sigmoid_backward: g (1 - y) y from the saved (rounded) y, in float32 for half precision.
    return y, fused_f32(lambda g: g * (1 - y.astype(g.dtype)) * y.astype(g.dtype), dx)


def times_scalar(x, c: float):
    """``x * c`` for a Python number ``c`` as torch computes it.

    For half-precision ``x`` the product is taken in float32 (torch's opmath type, the scalar in
    float32 too) and rounded once; JAX's weak typing would round ``c`` to the half-precision dtype
    first.

    The rounding is a ``reduce_precision`` too, which XLA keeps where its excess-precision
    simplification would drop the conversion back to half precision (and so the rounding) when the
    product feeds a sum; its transpose rounds the cotangent likewise, as torch's backward does.
    """
    out = fused_f32(lambda z: z * c, x)
    if jnp.dtype(x.dtype) in _UPCAST:
        f = jnp.finfo(x.dtype)
        out = jax.lax.reduce_precision(out, exponent_bits=f.nexp, mantissa_bits=f.nmant)
    return out


def _describe_shapes(arrays: dict) -> str:
    parts = [f"'{name}' of shape {tuple(a.shape)}" for name, a in arrays.items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def broadcast_shape(fn: str, /, **arrays) -> tuple:
    """The shape the named arrays broadcast to, as ``torch.broadcast_shapes``.

    A ``ValueError`` naming every argument and its shape when they do not broadcast.
    """
    try:
        return jnp.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError as e:
        raise ValueError(f"{fn}: {_describe_shapes(arrays)} cannot be broadcast together") from e


def broadcast_arrays(fn: str, /, **arrays) -> list:
    """``torch.broadcast_tensors`` of the named arrays, in order (errors as `broadcast_shape`)."""
    shape = broadcast_shape(fn, **arrays)
    return [jnp.broadcast_to(a, shape) for a in arrays.values()]


def linear(x, weight, bias=None):
    """Torch's ``F.linear``, ``x @ weight.T + bias``.

    Half-precision products are accumulated in
    float32 and rounded once to ``x``'s dtype, as torch's CPU/GPU matmuls do.
    """
    work, _ = compute_dtype(x.dtype)
    y = jnp.matmul(x, weight.T, preferred_element_type=work)
    if bias is not None:
        y = y + bias.astype(work)
    return y.astype(x.dtype)


def broadcast_pair(input, target, fn: str):
    """``torch.broadcast_tensors(input, target)`` with torch's size-mismatch warning."""
    if input.shape != target.shape:
        warnings.warn(
            f"Using a target size ({tuple(target.shape)}) that is different to the input size "
            f"({tuple(input.shape)}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        input, target = broadcast_arrays(fn, input=input, target=target)
    return input, target


def concrete_numpy(x):
    """The values of ``x`` (an array, or a raw argument such as a list) as numpy.

    ``None`` when they are not concrete (a tracer, or a list holding tracers).
    """
    if not is_concrete(x):
        return None
    try:
        return np.asarray(x)
    except Exception:  # e.g. a list holding tracers
        return None


def static_number(value, name: str, fn: str) -> float:
    """A hyperparameter as a Python float: it selects branches, so it cannot be traced."""
    if is_tracer(value):
        raise TypeError(
            f"{fn}: argument '{name}' must be a concrete Python number, not a traced value "
            "(pass it as a static argument of jit)"
        )
    try:
        return float(value)
    except (TypeError, ValueError) as e:  # float("x") is a ValueError
        raise TypeError(f"{fn}: argument '{name}' must be a number, got {type(value).__name__}") from e


def static_int(v, name: str, fn: str) -> int:
    """An integer argument that shapes the computation (static): a Python or 0-d integer."""
    if is_tracer(v):
        raise TypeError(f"{fn}: argument '{name}' must be a Python int (it is static), got a tracer")
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        if isinstance(v, (np.ndarray, jax.Array)) and v.ndim == 0 and jnp.issubdtype(v.dtype, jnp.integer):
            return int(v)
        raise TypeError(f"{fn}: argument '{name}' must be an int, got {type(v).__name__}")
    return int(v)


# -- torch's gradients at clamps -----------------------------------------------------------------


@jax.custom_jvp
def clamp_min_no_grad(x, eps):
    """``max(x, eps)`` in value (NaN stays NaN), the identity in gradient.

    That is torch's in-place ``clamp_min_`` under ``no_grad``, which autograd does not see. Custom
    JVP for torch's gradient; the one such clamp of the package.
    """
    return jnp.maximum(x, eps)


@clamp_min_no_grad.defjvp
def _clamp_min_no_grad_jvp(primals, tangents):
    x, eps = primals
    tx, _ = tangents
    return clamp_min_no_grad(x, eps), tx


# -- symbolic-zero tangents ----------------------------------------------------------------------

SymbolicZero = jax.custom_derivatives.SymbolicZero


def tangent(g, dt):
    """``g * dt``, or nothing when ``dt`` is a symbolic zero.

    So that an infinite partial, e.g. the
    target gradient of BCE at p = 0, cannot turn into ``inf * 0 = NaN`` in another argument's
    derivative).
    """
    return None if isinstance(dt, SymbolicZero) else g * dt


def sum_tangents(x, *terms):
    """The sum of the non-``None`` ``terms`` (zeros like ``x`` when there are none)."""
    terms = [t for t in terms if t is not None]
    if not terms:
        return jnp.zeros_like(x)
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


# -- class-index targets -------------------------------------------------------------------------


def class_axis(input) -> int:
    """Torch's class dimension: 1, or 0 for an unbatched ``(C,)`` input."""
    return 0 if input.ndim == 1 else 1


def class_shape(ndim: int, axis: int, n: int) -> tuple[int, ...]:
    """The shape that broadcasts a ``(n,)`` per-class vector along ``axis`` of an ``ndim`` array."""
    return tuple(n if d == axis else 1 for d in range(ndim))


def check_index_target(input, target, fn: str):
    """Validate shapes and dtype of a class-index target; return it shaped as torch reads it."""
    if input.ndim == 0:
        raise ValueError(f"{fn}: 'input' must have at least 1 dimension (the class dimension), got a scalar")
    check_integer(
        target,
        "target",
        fn,
        hint=""
        if fn == "nll_loss"
        else (
            f"; class-probability targets must have the input's shape {tuple(input.shape)}, got {tuple(target.shape)}"
        ),
    )
    if input.ndim == 1:
        if target.ndim == 1 and target.shape[0] == 1:
            return target.reshape(())
        if target.ndim == 0:
            return target
        raise ValueError(
            f"{fn}: For 1D input, 1D target must have size 1, but got 'target' size: {tuple(target.shape)}"
        )
    if target.ndim == 0 or target.shape[0] != input.shape[0]:
        got = "a scalar" if target.ndim == 0 else target.shape[0]
        raise ValueError(f"{fn}: Expected input batch_size ({input.shape[0]}) to match target batch_size ({got}).")
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{fn}: Expected 'target' size {expected} for 'input' of shape {tuple(input.shape)}, "
            f"got {tuple(target.shape)}"
        )
    return target


def check_class_weight(weight, n_classes: int, fn: str):
    if weight is None:
        return None
    if weight.ndim != 1 or weight.shape[0] != n_classes:
        raise ValueError(
            f"{fn}: 'weight' tensor should be defined either for all {n_classes} classes or no "
            f"classes but got weight tensor of shape: {tuple(weight.shape)}"
        )
    return weight


def check_label_smoothing(label_smoothing, fn: str):
    if is_tracer(label_smoothing):
        return
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"{fn}: 'label_smoothing' must be between 0.0 and 1.0. Got: {label_smoothing}")


def check_targets_in_range(target, n_classes: int, ignore_index) -> None:
    """Torch's ``IndexError("Target k is out of bounds.")``, when the target values are concrete."""
    t = concrete_numpy(target)
    if t is None or t.size == 0:
        return
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise IndexError(f"Target {t[bad].flat[0]} is out of bounds.")


def class_index_weights(target, n_classes: int, ignore_index, weight, dtype):
    """Torch's masking of class-index targets: ``(valid, safe_target, w_t)``.

    ``valid`` is ``target != ignore_index``; ``safe_target`` is the target where it is a valid
    in-range index and 0 elsewhere (safe to gather with); ``w_t`` is the class weight of each
    position (1 without ``weight``), 0 at ignored positions and NaN at a non-ignored index
    outside ``[0, C)`` (only reachable under tracing), so such a loss is NaN, never plausible.
    """
    valid = target != ignore_index
    in_range = (target >= 0) & (target < n_classes)
    safe_target = jnp.where(valid & in_range, target, 0)
    w_t = jnp.ones(target.shape, dtype) if weight is None else weight[safe_target]
    w_t = jnp.where(valid & ~in_range, jnp.nan, jnp.where(valid, w_t, 0))
    return valid, safe_target, w_t
