"""Which ``models`` does ``import models`` give? Ours, or a user's package of the same name.

The distribution installs the top-level packages ``train`` and ``models`` side by side. A user's
own ``models/`` (most ML projects have one) that comes first on ``sys.path`` (``python -m`` puts
the working directory there) would otherwise be imported by our ``train`` and fail deep inside it.
This module imports nothing of ours, so it can run before anything that would.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

#: The console script of ``[project.scripts]``: it runs from any directory (no working directory
#: on ``sys.path``).
CONSOLE_SCRIPT = "losses-jax-train"

_ROOT = Path(__file__).resolve().parent.parent  # the directory holding our train/ and models/


def shadowing_path(name: str = "models") -> Path | None:
    """The file ``import <name>`` would load when it is not ours (a user's package), else None."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if not locations:
            return None
        origin = Path(locations[0])  # a namespace package (a folder without __init__.py)
    else:
        origin = Path(spec.origin)
    ours = _ROOT / name
    try:
        if origin.resolve().is_relative_to(ours.resolve()):
            return None
    except OSError:
        pass
    return origin


def shadowing_message(path: Path, name: str = "models") -> str:
    return (
        f"error: '{name}' here is {path}, not losses-jax's {name} package (a package of yours with "
        f"the same name comes first on sys.path); run the trainer as `{CONSOLE_SCRIPT} ...`, "
        f"which works from any directory, or run `python -m train` from another directory"
    )


def _running_as_main_module() -> bool:
    """``python -m train ...``: the interpreter is importing our package to find ``train.__main__``."""
    argv = getattr(sys, "orig_argv", [])
    return any(a == "-m" and b in ("train", "train.__main__") for a, b in itertools.pairwise(argv))


def require_own_packages() -> None:
    """Refuses a user's ``models`` shadowing ours: one line and exit status 2 under
    ``python -m train``, an ImportError with the same words when imported from Python."""
    path = shadowing_path("models")
    if path is None:
        return
    message = shadowing_message(path, "models")
    if _running_as_main_module():
        print(message, file=sys.stderr)
        raise SystemExit(2)
    raise ImportError(message.removeprefix("error: "))
