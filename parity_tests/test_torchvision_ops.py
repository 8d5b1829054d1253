"""``losses_jax.ops`` against torchvision's own values and gradients, recorded in
``parity_tests/data/torchvision_ops.npz`` by ``python -m parity_tests.torchvision_ops``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from losses_jax import ops
from parity_tests.fixtures import FixtureError, case_key, load, reference
from parity_tests.harness import run_case
from parity_tests.torchvision_ops import HOW, PATH, TORCHVISION_VERSION, cases

CASES = cases()


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    return load(PATH, HOW)


@pytest.mark.parametrize("case", CASES, ids=case_key)
def test_matches_torchvision(case, recorded):
    result = run_case(case, torch_side=reference(recorded, case, PATH, HOW))
    assert result.passed, result.detail


def test_recording_is_of_every_case_and_of_the_certified_torchvision(recorded):
    assert str(recorded["meta|torchvision"]).split("+")[0] == TORCHVISION_VERSION == ops.TORCHVISION_VERSION
    assert int(recorded["meta|count"]) == len(CASES)
    recorded_keys = {k.rsplit("|", 1)[0] for k in recorded if k.endswith("|hash")}
    assert recorded_keys == {case_key(c) for c in CASES}


def test_changed_inputs_are_refused_as_stale(recorded):
    case = CASES[0]
    changed = dataclasses.replace(case, args=(case.args[0] + 1.0, *case.args[1:]))
    with pytest.raises(FixtureError, match=r"stale \(inputs of .* changed\); record it where torchvision"):
        reference(recorded, changed, PATH, HOW)
    other_options = dataclasses.replace(case, kwargs={**case.kwargs, "gamma": 5})
    with pytest.raises(FixtureError, match="stale"):
        reference(recorded, other_options, PATH, HOW)


def test_missing_recording_says_how_to_make_it(tmp_path):
    with pytest.raises(FixtureError, match="python -m parity_tests.torchvision_ops"):
        load(tmp_path / "none.npz", HOW)
