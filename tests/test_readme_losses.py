"""The README's loss tables list exactly the public losses: every functional and class of
``losses_jax.__all__`` in the first, every loss of ``losses_jax.ops`` in the torchvision.ops one,
nothing missing and nothing extra."""

from __future__ import annotations

import re
from pathlib import Path

import losses_jax

README = Path(__file__).resolve().parents[1] / "README.md"

# Public names that are not losses (constants, and the options of linear_cross_entropy).
NOT_LOSSES = {"LinearCrossEntropyOptions", "REDUCTIONS", "TORCH_VERSION"}


def _tables() -> list[list[list[str]]]:
    """The cells of each table of the "## Losses" section, with their header and separator."""
    section = README.read_text().split("\n## Losses\n", 1)[1].split("\n## ", 1)[0]
    tables: list[list[list[str]]] = []
    rows: list[list[str]] = []
    for line in section.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            tables.append(rows)
            rows = []
    return tables + ([rows] if rows else [])


def _loss_table() -> list[list[str]]:
    """The first table under "## Losses" (torch.nn's), without its header and separator."""
    rows = _tables()[0]
    assert rows[0][:2] == ["torch.nn.functional", "torch.nn class"], rows[0]
    return rows[2:]


def _names(cell: str) -> list[str]:
    return re.findall(r"`([A-Za-z_]\w*)`", cell)


def _listed(column: int) -> list[str]:
    return [name for row in _loss_table() for name in _names(row[column])]


def test_not_losses_are_public():
    assert NOT_LOSSES <= set(losses_jax.__all__)


def test_functional_column_is_every_public_function():
    listed = _listed(0)
    assert len(listed) == len(set(listed)), "a function is listed twice"
    public = {n for n in losses_jax.__all__ if n not in NOT_LOSSES and not isinstance(getattr(losses_jax, n), type)}
    assert set(listed) == public


def test_class_column_is_every_public_class():
    listed = _listed(1)
    assert len(listed) == len(set(listed)), "a class is listed twice"
    public = {n for n in losses_jax.__all__ if n not in NOT_LOSSES and isinstance(getattr(losses_jax, n), type)}
    assert set(listed) == public


def test_torchvision_ops_table_is_every_ops_loss():
    (table,) = [rows for rows in _tables() if rows[0][0] == "torchvision.ops"]
    listed = [name for row in table[2:] for name in _names(row[0])]
    assert len(listed) == len(set(listed)), "a loss is listed twice"
    assert set(listed) == set(losses_jax.ops.__all__) - {"TORCHVISION_VERSION"}
