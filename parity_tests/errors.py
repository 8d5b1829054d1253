"""Bad-input checks shared by the ``test_errors*.py`` suites.

A static mistake is rejected by torch too, and by us with the expected exception type and a
message naming the argument, both eagerly and while tracing under ``jit`` (where the arrays are
tracers, so the check cannot rely on values).
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import losses_jax


def to_torch(v):
    """numpy -> torch as torch code would hold it: integer arrays as int64, bool and float as is."""
    if isinstance(v, np.ndarray):
        if v.dtype == np.bool_ or not np.issubdtype(v.dtype, np.integer):
            return torch.from_numpy(v)
        return torch.from_numpy(v.astype(np.int64))
    return v


def assert_rejected_like_torch(fn: str, args, kwargs, exc, text: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception):  # torch rejects this input too
            getattr(TF, fn)(*map(to_torch, args), **{k: to_torch(v) for k, v in kwargs.items()})
        with pytest.raises(exc) as info:
            getattr(losses_jax, fn)(*args, **kwargs)
    assert text in str(info.value)


def assert_rejected_while_tracing(fn: str, args, kwargs, exc, text: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc) as info:
            jax.jit(lambda *a: getattr(losses_jax, fn)(*a, **kwargs))(*args)
    assert text in str(info.value)
