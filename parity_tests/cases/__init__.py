"""The deterministic parity cases, one module per loss family.

Each module defines ``cases() -> list[Case]``; :func:`all_cases` collects every module found
here, so a new loss family adds a module and nothing else. ``Case.family`` is the report row.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..harness import Case


def all_cases() -> list[Case]:
    out: list[Case] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        out.extend(module.cases())
    return out
