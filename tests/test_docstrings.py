"""The docstrings of the public API: every example runs, every loss has one, every summary is a line.

The examples (``>>>`` lines) of every module of ``losses_jax`` run as doctests here, so that
``python -m pytest`` collects them without a doctest option that would also import the test and
benchmark folders. The API reference (docs/api/) renders these docstrings.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import losses_jax

MODULES = ["losses_jax"] + [f"losses_jax.{m.name}" for m in pkgutil.iter_modules(losses_jax.__path__)]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = {}
    for name in MODULES:
        for test in finder.find(importlib.import_module(name)):
            if test.examples and test.name not in found:
                found[test.name] = test
    return sorted(found.values(), key=lambda t: t.name)


DOCTESTS = _doctests()


def _public_objects():
    import losses_jax.interop
    import losses_jax.testing

    for module in (losses_jax, losses_jax.testing, losses_jax.interop):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{module.__name__}.{name}", obj


PUBLIC = dict(_public_objects())


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_examples_run(test):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{test.name}: {result.failed} of {result.attempted} examples fail (output above)"


def test_every_loss_function_has_an_example():
    functions = [name for name, obj in PUBLIC.items() if name.count(".") == 1 and inspect.isfunction(obj)]
    missing = [name for name in functions if ">>>" not in (PUBLIC[name].__doc__ or "")]
    assert len(functions) >= 24 and not missing, missing


@pytest.mark.parametrize("name", list(PUBLIC))
def test_public_docstring_opens_with_a_summary_line(name):
    doc = inspect.getdoc(PUBLIC[name]) or ""
    lines = doc.splitlines()
    assert lines and lines[0].endswith("."), f"{name}: the summary line {lines[:1]} must be one sentence"
    assert len(lines) == 1 or not lines[1].strip(), f"{name}: a blank line must follow the summary line"
