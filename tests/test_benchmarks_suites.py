"""The benchmark suites' own logic (not their timings): the before/after baseline loader, the
floor suite's FLOP count, and the ratio spreads every table reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import losses_jax
from benchmarks import common, floor

ROOT = Path(__file__).resolve().parents[1]


def test_baseline_is_another_copy_of_the_package_beside_ours():
    baseline = common.load_baseline(ROOT)
    assert baseline.__name__ == "losses_jax_baseline" and baseline is not losses_jax
    assert baseline.cross_entropy is not losses_jax.cross_entropy
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    t = np.array([0, 4, 2, 1])
    np.testing.assert_array_equal(baseline.cross_entropy(x, t), losses_jax.cross_entropy(x, t))
    # the package directory itself is accepted too
    assert common.load_baseline(ROOT / "losses_jax").mse_loss(x, x) == 0


def test_baseline_without_a_package_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match=r"^error: argument --baseline: no losses_jax package at "):
        common.load_baseline(tmp_path)


def test_floor_flops_are_tuduis_hand_count():
    # batch 64: conv1 0.31, conv2 0.84, conv3 0.42 GFLOP per pass (2 * B * H * W * C_out * C_in * 25)
    counts = [floor.flops(64, size, c_in, c_out) / 1e9 for _, size, c_in, c_out in floor.LAYERS]
    np.testing.assert_allclose(counts, [0.3145728, 0.8388608, 0.4194304])


def test_ratio_spread_is_per_round():
    rounds = common.Rounds({"a": [1.0, 2.0, 6.0], "b": [2.0, 2.0, 2.0]})
    spread = rounds.ratio("a", "b")
    assert (spread.low, spread.median, spread.high) == (0.5, 1.0, 3.0)
    assert str(spread) == "1.00 (0.50-3.00)"
