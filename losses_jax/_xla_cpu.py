"""Rewrites for XLA's CPU backend, applied on CPU only, each equal to the reference formula.

XLA:CPU's reduction fusions cannot read a value that another fusion also reads, so when common
subexpression elimination lets the forward's reduction and the gradient share an intermediate
(``x - y``, a broadcast row max or class weight), that intermediate is materialised: an extra
temporary as large as the input, written and read once more. Putting the gradient's inputs behind
an optimization barrier makes them values of their own, so each fusion recomputes what it needs
from the inputs and the only input-sized buffer is the gradient itself.

:func:`unshared` is the identity in value and derivative. It applies the barrier only when the
computation is lowered for CPU (``jax.lax.platform_dependent``); on other backends, and with
``ENABLED = False`` (for tests comparing with the reference), the values pass through unchanged.
"""

from __future__ import annotations

import jax

#: Module switch: set to False to run the reference formulas on CPU too (tests compare both).
ENABLED = True


def _barrier(*xs):
    return jax.lax.optimization_barrier(xs)


def _identity(*xs):
    return xs


def unshared(*xs):
    """``xs`` unchanged; on CPU behind an optimization barrier, so that XLA cannot share
    intermediates computed from them between a forward reduction and its gradient."""
    if not ENABLED:
        return xs
    return jax.lax.platform_dependent(*xs, cpu=_barrier, default=_identity)
