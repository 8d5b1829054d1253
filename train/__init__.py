"""CIFAR-10 training of the ``models`` networks: jit-compiled, on any number of devices.

Command line, from the repository's root: ``python -m train --help``. Python: :func:`fit`, or the
pieces for hand-written loops: the pure steps (:mod:`train.steps`), batching (:mod:`train.data`),
what ``fit`` is made of (:mod:`train.loop`) and its callbacks (:mod:`train.callbacks`); see
docs/training.md.
"""

from .callbacks import Callback, CheckpointError, Checkpoints, HistoryFile, Progress, TensorBoard, latest_checkpoint
from .data import (
    IGNORE_INDEX,
    DataUnavailableError,
    epoch_indices,
    gather_batch,
    iterate_batches,
    load_cifar10,
    load_fake,
    manual_dir,
)
from .loop import (
    DeviceData,
    Interrupted,
    NonFiniteLossError,
    ProcessData,
    StopOnSignal,
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
    "Interrupted",
    "NonFiniteLossError",
    "ProcessData",
    "Progress",
    "StopOnSignal",
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
    "load_fake",
    "make_mesh",
    "make_optimizer",
    "manual_dir",
    "place_state",
    "put_data",
    "run_epoch",
    "train_step",
]
