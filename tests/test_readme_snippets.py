"""Every marked code block of README.md runs as written.

The rule for README authors: a fenced ```python block whose previous line is exactly
``<!-- snippet -->`` is executed by this test. The marked blocks of one section (the text under
one ``## `` heading, its ``###`` subsections included) run in order in one namespace, so a block
may use names defined by earlier marked blocks of the same section; every section starts afresh.
Each section runs in its own empty temporary working directory. Unmarked blocks are not run
(output listings, shell commands, side-by-side comparisons).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- snippet -->"


def _marked_blocks(text: str) -> dict[str, list[tuple[int, str]]]:
    """``{section heading: [(first code line number, code), ...]}`` in README order."""
    sections: dict[str, list[tuple[int, str]]] = {}
    lines = text.splitlines()
    section = "(before the first section)"
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        if line.strip() == MARKER:
            fence = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if fence != "```python":
                raise AssertionError(
                    f"README.md:{i + 1}: {MARKER} must be followed by a ```python fence, got {fence!r}"
                )
            end = i + 2
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            if end == len(lines):
                raise AssertionError(f"README.md:{i + 2}: unterminated ```python block")
            sections.setdefault(section, []).append((i + 3, "\n".join(lines[i + 2 : end]) + "\n"))
            i = end
        i += 1
    return sections


SECTIONS = _marked_blocks(README.read_text(encoding="utf-8"))


def test_the_models_section_has_marked_snippets():
    models_sections = [name for name in SECTIONS if name.startswith("Models")]
    assert models_sections and len(SECTIONS[models_sections[0]]) >= 2, list(SECTIONS)


def test_marker_parsing():
    text = (
        "## A\n<!-- snippet -->\n```python\nx = 1\n```\n```python\nnot run\n```\n"
        "## B\n<!-- snippet -->\n```python\ny = 2\n```\n"
    )
    assert _marked_blocks(text) == {"A": [(4, "x = 1\n")], "B": [(12, "y = 2\n")]}
    with pytest.raises(AssertionError, match="must be followed"):
        _marked_blocks("<!-- snippet -->\n```bash\nls\n```\n")


@pytest.mark.parametrize("section", list(SECTIONS), ids=[re.sub(r"\W+", "-", s).strip("-")[:40] for s in SECTIONS])
def test_marked_snippets_run(section, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for line, code in SECTIONS[section]:
        # padded with blank lines so that tracebacks give README.md's own line numbers
        exec(compile("\n" * (line - 1) + code, str(README), "exec"), namespace)
