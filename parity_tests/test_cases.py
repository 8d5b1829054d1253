"""Every deterministic case of ``parity_tests/cases`` (the report's cases), values and gradients."""

from __future__ import annotations

import pytest

from parity_tests.cases import all_cases
from parity_tests.harness import assert_case

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.family}|{c.id}" for c in CASES])
def test_parity(case):
    assert_case(case)
