"""Parity evidence: the same inputs through torch.nn and through losses_jax / models / train.

The public API checks users' own ports the same way (``parity_tests.api``)::

    from parity_tests import assert_parity, compare, compare_modules

Its names are imported on first use, so ``import parity_tests`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import (
        TOLERANCES,
        Check,
        ParityReport,
        assert_parity,
        compare,
        compare_modules,
        nchw_to_nhwc,
        nhwc_to_nchw,
    )

__all__ = [
    "TOLERANCES",
    "Check",
    "ParityReport",
    "assert_parity",
    "compare",
    "compare_modules",
    "nchw_to_nhwc",
    "nhwc_to_nchw",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'parity_tests' has no attribute {name!r}")
