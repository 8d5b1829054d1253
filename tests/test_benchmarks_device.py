"""The accelerator check's fixtures and its tiny CPU mode, end to end."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from parity_tests.cases import all_cases
from parity_tests.fixtures import FixtureError, build, case_key, load, reference
from parity_tests.harness import record_torch

LIMIT = 6


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("fx") / "f.npz"
    assert build(path, LIMIT) == LIMIT
    return path


def test_fixtures_equal_a_fresh_torch_run_bit_for_bit(fixture_file):
    data = load(fixture_file)
    for case in all_cases()[:LIMIT]:
        recorded, fresh = reference(data, case, fixture_file), record_torch(case)
        np.testing.assert_array_equal(recorded.outputs, fresh.outputs)
        assert len(recorded.grads) == len(fresh.grads)
        for g, g_fresh in zip(recorded.grads, fresh.grads, strict=True):
            np.testing.assert_array_equal(g, g_fresh)


def test_missing_and_stale_fixtures_say_how_to_build_them(tmp_path, fixture_file):
    with pytest.raises(FixtureError, match="python -m parity_tests.fixtures") as e:
        load(tmp_path / "absent.npz")
    assert "\n" not in str(e.value)
    data = load(fixture_file)
    case = all_cases()[0]
    data[f"{case_key(case)}|hash"] = np.asarray("0" * 16)
    with pytest.raises(FixtureError, match="stale") as e:
        reference(data, case, fixture_file)
    assert "\n" not in str(e.value) and "python -m parity_tests.fixtures" in str(e.value)


def _device(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "--device", "--tiny", *args], capture_output=True, text=True, env=env
    )


def test_tiny_device_mode_end_to_end(tmp_path, fixture_file):
    out = tmp_path / "device.md"
    proc = _device("--fixtures", str(fixture_file), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    for section in (
        "Machine:",
        "### Parity against torch fixtures",
        "### cross_entropy against copy bandwidth",
        "### linear_cross_entropy peak memory",
        "### Tudui epoch",
        "### Targets",
    ):
        assert section in text
    assert f"{LIMIT} cases against torch 2.13.0" in text and "all pass" in text
    assert "- parity all pass: met" in text


def test_tiny_device_mode_without_fixtures_is_one_line(tmp_path):
    proc = _device("--fixtures", str(tmp_path / "absent.npz"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "python -m parity_tests.fixtures" in proc.stderr
