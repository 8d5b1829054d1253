"""``python -m train``: the trainer's command line (:mod:`train.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
