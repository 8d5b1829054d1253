"""What the installed jax/jaxlib can do, probed once, for tests that depend on one XLA release.

Most tests check numbers, which every supported jaxlib must get right. A few read what XLA made
of a program: compiled HLO text, buffer sizes from ``memory_analysis``, or an experimental
compile option. Those skip with a reason where the installed jaxlib lacks the feature, so the
suite passes on every jax/jaxlib that ``pyproject.toml`` declares.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jaxlib
import pytest

# The models' CPU compile option (models/_cpu.py): experimental, so it may be absent or renamed.
YNN_FUSION_OPTION = "xla_cpu_experimental_ynn_fusion_type"
YNN_FUSION_VALUE = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"

# The temporary-buffer bounds in the tests were measured with the XLA of these jaxlib releases;
# older XLA (jaxlib 0.8.0 was checked) fuses value-and-grad differently and keeps a full-size
# temporary, which costs memory but gives the same numbers.
MEMORY_BOUNDS_JAXLIB = (0, 10, 0)


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        digits = part[: len(part) - len(part.lstrip("0123456789"))]  # "0rc1" -> "0"; "dev2025" -> ""
        if not digits:
            break
        parts.append(int(digits))
        if digits != part:
            break
    return tuple(parts)


@functools.cache
def jaxlib_version() -> tuple[int, ...]:
    """The installed jaxlib's release as a tuple of ints, e.g. ``(0, 10, 2)``."""
    return _release(jaxlib.__version__)


def _compiled(**jit_kwargs):
    return (
        jax.jit(lambda a, b: (a @ b).sum(), **jit_kwargs)
        .lower(jax.ShapeDtypeStruct((8, 8), jnp.float32), jax.ShapeDtypeStruct((8, 8), jnp.float32))
        .compile()
    )


@functools.cache
def has_compile_option(name: str, value: str | bool | int = True) -> bool:
    """Whether this jaxlib's XLA accepts the compile option ``name=value`` (unknown ones raise)."""
    try:
        _compiled(compiler_options={name: value})
    except Exception:  # XLA rejects an unknown option or a bad value with a runtime error
        return False
    return True


@functools.cache
def hlo_text_available() -> bool:
    """Whether a compiled executable prints its optimised HLO module."""
    try:
        text = _compiled().as_text()
    except Exception:
        return False
    return isinstance(text, str) and "ENTRY" in text


@functools.cache
def memory_analysis_available() -> bool:
    """Whether a compiled executable reports its buffer sizes."""
    try:
        memory = _compiled().memory_analysis()
    except Exception:
        return False
    return memory is not None and hasattr(memory, "temp_size_in_bytes") and hasattr(memory, "output_size_in_bytes")


@functools.cache
def memory_bounds_measured() -> bool:
    """Whether buffer-size bounds measured on :data:`MEMORY_BOUNDS_JAXLIB` apply here."""
    return memory_analysis_available() and jaxlib_version() >= MEMORY_BOUNDS_JAXLIB


@functools.cache
def ynn_fusion_available() -> bool:
    """Whether XLA's CPU backend fuses into YNNPACK here and takes the option that steers it:
    the option compiles, and a dot's compiled HLO names a ``__ynn_fusion``."""
    if jax.default_backend() != "cpu" or not hlo_text_available():
        return False
    if not has_compile_option(YNN_FUSION_OPTION, YNN_FUSION_VALUE):
        return False
    return "__ynn_fusion" in _compiled().as_text()


requires_memory_bounds = pytest.mark.skipif(
    not memory_bounds_measured(),
    reason=f"buffer-size bounds are measured on jaxlib >= {'.'.join(map(str, MEMORY_BOUNDS_JAXLIB))} "
    f"with memory_analysis; this is jaxlib {jaxlib.__version__}",
)
requires_ynn_fusion = pytest.mark.skipif(
    not ynn_fusion_available(),
    reason=f"reads compiled HLO for YNNPACK fusions steered by {YNN_FUSION_OPTION}, which jaxlib "
    f"{jaxlib.__version__} on {jax.default_backend()} lacks",
)

__all__ = [
    "MEMORY_BOUNDS_JAXLIB",
    "YNN_FUSION_OPTION",
    "has_compile_option",
    "hlo_text_available",
    "jaxlib_version",
    "memory_analysis_available",
    "memory_bounds_measured",
    "requires_memory_bounds",
    "requires_ynn_fusion",
    "ynn_fusion_available",
]
