"""The documentation covers exactly the public names: the loss table of docs/losses.md lists every
functional and class of ``losses_jax.__all__``, its torchvision.ops table every loss of
``losses_jax.ops``, nothing missing and nothing extra, and the API reference has an entry for every
public name."""

from __future__ import annotations

import re
from pathlib import Path

import losses_jax

DOCS = Path(__file__).resolve().parents[1] / "docs"
LOSSES_PAGE = DOCS / "losses.md"
API_PAGE = DOCS / "api" / "losses_jax.md"

# Public names that are not losses (constants, and the options of linear_cross_entropy).
NOT_LOSSES = {"LinearCrossEntropyOptions", "REDUCTIONS", "TORCH_VERSION"}


def _tables() -> list[list[list[str]]]:
    """The cells of each table of docs/losses.md, with their header and separator."""
    tables: list[list[list[str]]] = []
    rows: list[list[str]] = []
    for line in LOSSES_PAGE.read_text().splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            tables.append(rows)
            rows = []
    return tables + ([rows] if rows else [])


def _loss_table() -> list[list[str]]:
    """The first table of docs/losses.md (torch.nn's), without its header and separator."""
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


def test_the_api_reference_has_every_public_name():
    entries = re.findall(r"^::: losses_jax\.(\w+)$", API_PAGE.read_text(), re.MULTILINE)
    assert len(entries) == len(set(entries)), "a name has two entries"
    assert set(entries) == set(losses_jax.__all__)


def test_the_api_reference_has_every_public_module():
    pages = "".join(page.read_text() for page in (DOCS / "api").glob("*.md"))
    for module in ("losses_jax.ops", "losses_jax.testing", "losses_jax.interop", "models", "train"):
        assert re.search(rf"^::: {re.escape(module)}$", pages, re.MULTILINE), module


def test_torchvision_ops_table_is_every_ops_loss():
    (table,) = [rows for rows in _tables() if rows[0][0] == "torchvision.ops"]
    listed = [name for row in table[2:] for name in _names(row[0])]
    assert len(listed) == len(set(listed)), "a loss is listed twice"
    assert set(listed) == set(losses_jax.ops.__all__) - {"TORCHVISION_VERSION"}
