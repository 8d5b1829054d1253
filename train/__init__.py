"""CIFAR-10 training of the ``models`` networks: jit-compiled, on any number of devices.

Command line: ``python -m train --help`` (the tutorials' recipe by default: Tudui, CIFAR-10,
SGD, learning rate 0.01, batch 64).

Python::

    import train, models
    from flax import nnx
    (train_x, train_y), (test_x, test_y) = train.load_cifar10()   # uint8 NHWC, int labels
    model = models.Tudui(rngs=nnx.Rngs(0))
    history = train.fit(model, (train_x, train_y), (test_x, test_y),
                        epochs=10, batch_size=64, learning_rate=0.01, workdir="runs/tudui")

Pieces for hand-written loops: :func:`init_state` (model -> ``graphdef, state``),
:func:`train_step`, :func:`eval_step` (pure, jit them with the graphdef/optimizer static),
:func:`iterate_batches`, :func:`epoch_indices`, :func:`gather_batch` (on-device batching).
"""

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
    OPTIMIZERS,
    CheckpointError,
    NonFiniteLossError,
    eval_step,
    fit,
    init_state,
    make_mesh,
    make_optimizer,
    train_step,
)

__all__ = [
    "IGNORE_INDEX",
    "OPTIMIZERS",
    "CheckpointError",
    "DataUnavailableError",
    "NonFiniteLossError",
    "epoch_indices",
    "eval_step",
    "fit",
    "gather_batch",
    "init_state",
    "iterate_batches",
    "load_cifar10",
    "load_dataset",
    "load_fake",
    "make_mesh",
    "make_optimizer",
    "manual_dir",
    "train_step",
]
