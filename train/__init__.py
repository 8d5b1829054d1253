"""CIFAR-10 training of the ``models`` networks: jit-compiled, on any number of devices.

Command line: ``losses-jax-train --help`` (installed console script; runs from any directory) or
``python -m train --help`` (the tutorials' recipe by default: Tudui, CIFAR-10, SGD, learning
rate 0.01, batch 64).

Python::

    import train, models
    from flax import nnx
    (train_x, train_y), (test_x, test_y) = train.load_cifar10()   # uint8 NHWC, int labels
    model = models.Tudui(rngs=nnx.Rngs(0))
    history = train.fit(model, (train_x, train_y), (test_x, test_y),
                        epochs=10, batch_size=64, learning_rate=0.01, workdir="runs/tudui")

Pieces for hand-written loops:

* pure steps (:mod:`train.steps`): :func:`init_state` (model -> ``graphdef, state``),
  :func:`train_step`, :func:`eval_step` (jit them with the graphdef/optimizer static),
  :func:`make_optimizer`;
* batching on the device (:mod:`train.data`): :func:`iterate_batches`, :func:`epoch_indices`,
  :func:`gather_batch`;
* what ``fit`` is made of (:mod:`train.loop`): :func:`make_mesh`, :func:`place_state`,
  :func:`put_data`, :func:`compile_steps`, :func:`run_epoch`, :func:`evaluate`;
* callbacks (:mod:`train.callbacks`): :class:`Progress`, :class:`TensorBoard`, :class:`HistoryFile`,
  :class:`Checkpoints` (save each epoch, :meth:`Checkpoints.resume`).

Several processes (hosts): start one per host with ``--coordinator-address``, ``--num-processes``
and ``--process-id`` (or under SLURM / Open MPI, where JAX finds them itself), or call
``jax.distributed.initialize`` before ``fit``; see :mod:`train.cli`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._origin import require_own_packages

require_own_packages()  # a user's `models` package first on sys.path: one clear line, not an ImportError inside

if TYPE_CHECKING:
    from .callbacks import (
        Callback,
        CheckpointError,
        Checkpoints,
        HistoryFile,
        Progress,
        TensorBoard,
        latest_checkpoint,
    )
    from .data import (
        IGNORE_INDEX,
        DataUnavailableError,
        epoch_indices,
        gather_batch,
        iterate_batches,
        load_cifar10,
        load_dataset,
        load_fake,
        manual_dir,
    )
    from .loop import (
        DeviceData,
        NonFiniteLossError,
        ProcessData,
        evaluate,
        fit,
        place_state,
        put_data,
        run_epoch,
    )
    from .steps import (
        OPTIMIZERS,
        CompiledSteps,
        compile_steps,
        eval_step,
        init_state,
        make_mesh,
        make_optimizer,
        train_step,
    )

#: The modules the public names live in, in the order they are looked for. They are imported on
#: first use (PEP 562), so the command line parses its arguments, and the watcher of a process of
#: several relays its output, without importing JAX, Flax or orbax.
_HOMES = ("callbacks", "data", "loop", "steps")

__all__ = [
    "IGNORE_INDEX",
    "OPTIMIZERS",
    "Callback",
    "CheckpointError",
    "Checkpoints",
    "CompiledSteps",
    "DataUnavailableError",
    "DeviceData",
    "HistoryFile",
    "NonFiniteLossError",
    "ProcessData",
    "Progress",
    "TensorBoard",
    "compile_steps",
    "epoch_indices",
    "eval_step",
    "evaluate",
    "fit",
    "gather_batch",
    "init_state",
    "iterate_batches",
    "latest_checkpoint",
    "load_cifar10",
    "load_dataset",
    "load_fake",
    "make_mesh",
    "make_optimizer",
    "manual_dir",
    "place_state",
    "put_data",
    "run_epoch",
    "train_step",
]


def __getattr__(name: str) -> Any:
    """``train.<name>`` for a public name: imported from its module on first use."""
    if name in __all__:
        for home in _HOMES:
            module = importlib.import_module(f"{__name__}.{home}")
            if name in module.__all__:
                value = getattr(module, name)
                globals()[name] = value
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, the public ones not yet imported included."""
    return sorted(set(globals()) | set(__all__))
