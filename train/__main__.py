"""``python -m train``: the trainer's command line (see :mod:`train.cli`).

``python -m`` puts the working directory first on ``sys.path``; a ``models`` package there is
refused in one line by ``train/__init__.py`` before anything of ours imports it. The
``losses-jax-train`` console script has no such issue and runs from any directory.
"""

from .cli import main, parse_args, run_and_exit

__all__ = ["main", "parse_args"]

if __name__ == "__main__":
    run_and_exit()
