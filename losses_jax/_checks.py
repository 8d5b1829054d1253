"""Input conversion and the static / concrete checks shared by every loss.

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


def is_concrete(*xs) -> bool:
    """True when every argument holds actual values (not a tracer under jit/vmap/grad)."""
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def check_floating(x, name: str, fn: str) -> None:
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{fn}: argument '{name}' must have a floating-point dtype, got {x.dtype}")


def check_integer(x, name: str, fn: str, hint: str = "") -> None:
    if not jnp.issubdtype(x.dtype, jnp.integer):  # bool is not an integer dtype here, as in torch
        raise TypeError(
            f"{fn}: argument '{name}' must hold integer class indices, got dtype {x.dtype}{hint}"
        )


def compute_dtype(*dtypes):
    """(dtype to compute in, dtype of the result) for arrays of the given dtypes."""
    out = jnp.result_type(*dtypes)
    if not jnp.issubdtype(out, jnp.floating):
        out = jnp.result_type(out, jnp.float32)
    work = jnp.dtype(jnp.float32) if jnp.dtype(out) in _UPCAST else out
    return work, out


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
        try:
            shape = jnp.broadcast_shapes(input.shape, target.shape)
        except ValueError as e:
            raise ValueError(
                f"{fn}: 'input' of shape {tuple(input.shape)} and 'target' of shape "
                f"{tuple(target.shape)} cannot be broadcast together"
            ) from e
        input, target = jnp.broadcast_to(input, shape), jnp.broadcast_to(target, shape)
    return input, target


def concrete_numpy(x):
    """``x`` as a numpy array when it is concrete, else ``None``."""
    return np.asarray(x) if is_concrete(x) else None
