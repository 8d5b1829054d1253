"""Deterministic input makers shared by the case modules."""

from __future__ import annotations

import hashlib

import numpy as np

REDUCTIONS = ("none", "mean", "sum")
FLOAT_DTYPES = ("float32", "float64")
HALF_DTYPES = ("bfloat16", "float16")


def rng(*key) -> np.random.Generator:
    # hashlib, not hash(): str hashes change from process to process.
    digest = hashlib.sha256(repr(tuple(map(str, key))).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def normal(key, shape, scale=1.0) -> np.ndarray:
    return rng("normal", key, shape).normal(0.0, scale, size=shape)


def with_ties(key, shape) -> np.ndarray:
    """Small integers as floats, so input == target happens (the |x| kink)."""
    return rng("ties", key, shape).integers(-2, 3, size=shape).astype(np.float64)


def class_targets(key, shape, n_classes, ignore=None, ignore_frac=0.0) -> np.ndarray:
    g = rng("targets", key, shape, n_classes)
    t = g.integers(0, n_classes, size=shape)
    if ignore is not None and ignore_frac > 0:
        t = np.where(g.uniform(size=shape) < ignore_frac, ignore, t)
    return t.astype(np.int64)


def probabilities(key, shape, axis) -> np.ndarray:
    z = rng("probs", key, shape).normal(size=shape)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def positive(key, shape, low=0.2, high=2.0) -> np.ndarray:
    return rng("positive", key, shape).uniform(low, high, size=shape)
