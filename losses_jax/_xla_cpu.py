"""Rewrites for XLA's CPU backend, applied on CPU only, each equal to the reference formula.

XLA:CPU's reduction fusions cannot read a value that another fusion also reads, so when common
subexpression elimination lets the forward's reduction and the gradient share an intermediate
(``x - y``, a broadcast row max or class weight), that intermediate is materialised: an extra
temporary as large as the input, written and read once more. Putting the gradient's inputs behind
an optimization barrier makes them values of their own, so each fusion recomputes what it needs
from the inputs and the only input-sized buffer is the gradient itself. What each use bought is
in BENCHMARKS.md ("What each change bought").

:func:`unshared` is the identity in value and derivative. Where the barrier applies is decided
when the computation is lowered, by the platform it is lowered for
(``jax.lax.platform_dependent``), not by ``jax.default_backend()`` when it is traced: a
program traced once and lowered for CPU and for an accelerator (``jit(...).trace(...).lower(
lowering_platforms=...)``, ``jax.export``) gets the barrier only in its CPU lowering, and every
transformation sees the same identity.

Within :func:`reference_formulas` the barrier is left out on every platform, so tests can compare
the rewrite with the formula it replaces on the same CPU.
"""

from __future__ import annotations

import jax

# A JAX user context rather than a module flag: its value is part of the trace context, so a
# program traced inside `reference_formulas()` and one traced outside are cached apart (a flag
# flipped by tests left programs traced under the other setting in jit's caches, and the tests
# had to clear every cache around each flip); it is scoped to the `with` block and per thread.
_reference = jax.make_user_context(default_value=False)


def reference_formulas():
    """A context manager under which :func:`unshared` is the plain identity on every platform,
    so the losses trace to the reference formulas on CPU too (for tests comparing the two).

    Example::

        with _xla_cpu.reference_formulas():
            reference = jax.grad(loss)(x)
    """
    return _reference(True)


def _barrier(*xs):
    return jax.lax.optimization_barrier(xs)


def _identity(*xs):
    return xs


def unshared(*xs):
    """``xs`` unchanged; on CPU behind an optimization barrier, so that XLA cannot share
    intermediates computed from them between a forward reduction and its gradient."""
    if _reference.value:
        return xs
    return jax.lax.platform_dependent(*xs, cpu=_barrier, default=_identity)
