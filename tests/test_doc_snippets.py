"""Every code block of README.md and docs/*.md runs as written, or says why it does not.

The rules for authors of those pages:

* A fenced ```python block runs, on its own: a fresh namespace, in an empty temporary working
  directory, as a reader who copies that one block would run it.
* A ```python block whose previous line is exactly ``<!-- continued -->`` runs after the python
  block before it, in its namespace and directory (say so in the text: "continuing the example
  above").
* A block that cannot run (a shell command, an output listing, a real CIFAR-10 training) is
  preceded by ``<!-- not run: why -->``; the set-up commands of README.md are marked
  ``<!-- main-command -->`` and ``<!-- test-command -->`` (CI runs them, see .ci/run).
  Any other block fails the test.

Fences must start at the beginning of a line (no blocks inside lists or admonitions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
CONTINUED = "<!-- continued -->"
NOT_RUN = re.compile(r"<!-- (not run: \S.*|main-command|test-command) -->")
FENCE = re.compile(r"^(\s*)```(\S*)")


@dataclass
class Chain:
    """Python blocks run one after the other in one namespace: ``[(first code line, code)]``."""

    path: Path
    blocks: list[tuple[int, str]] = field(default_factory=list)


def _chains(path: Path, text: str) -> list[Chain]:
    """The runnable blocks of one page, in order, grouped into chains; unmarked blocks raise."""
    lines = text.splitlines()
    chains: list[Chain] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        where = f"{path.name}:{i + 1}"
        if m[1]:
            raise AssertionError(f"{where}: a fenced block must start at the beginning of a line")
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"{where}: unterminated ``` block")
        before = lines[i - 1].strip() if i else ""
        if NOT_RUN.fullmatch(before):
            pass
        elif m[2] != "python":
            raise AssertionError(f"{where}: a ```{m[2]} block needs <!-- not run: why --> on the line before")
        else:
            block = (i + 2, "\n".join(lines[i + 1 : end]) + "\n")
            if before == CONTINUED:
                if not chains:
                    raise AssertionError(f"{where}: {CONTINUED} but no python block before it")
                chains[-1].blocks.append(block)
            else:
                chains.append(Chain(path, [block]))
        i = end + 1
    return chains


CHAINS = [chain for page in PAGES for chain in _chains(page, page.read_text(encoding="utf-8"))]


def test_the_pages_have_runnable_blocks():
    names = {chain.path.name for chain in CHAINS}
    assert {"README.md", "getting-started.md", "porting.md", "models.md", "checking-your-port.md"} <= names


def test_the_readme_fits_a_first_read():
    # The README introduces; the guides in docs/ hold the rest.
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


def test_block_rules():
    text = (
        "# A\n```python\nx = 1\n```\n<!-- continued -->\n```python\ny = x\n```\n"
        "<!-- not run: a shell command -->\n```bash\nls\n```\n```python\nz = 2\n```\n"
    )
    chains = _chains(Path("p.md"), text)
    assert [chain.blocks for chain in chains] == [[(3, "x = 1\n"), (7, "y = x\n")], [(14, "z = 2\n")]]
    with pytest.raises(AssertionError, match="needs <!-- not run"):
        _chains(Path("p.md"), "```bash\nls\n```\n")
    with pytest.raises(AssertionError, match="needs <!-- not run"):
        _chains(Path("p.md"), "<!-- not run: -->\n```text\nout\n```\n")
    with pytest.raises(AssertionError, match="beginning of a line"):
        _chains(Path("p.md"), "- item\n  ```python\n  x = 1\n  ```\n")


@pytest.mark.parametrize(
    "chain", CHAINS, ids=[f"{c.path.relative_to(ROOT)}:{c.blocks[0][0]}".replace("/", "-") for c in CHAINS]
)
def test_code_blocks_run(chain, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_snippet__"}
    for line, code in chain.blocks:
        # padded with blank lines so that tracebacks give the page's own line numbers
        exec(compile("\n" * (line - 1) + code, str(chain.path), "exec"), namespace)
