"""The training loop: state and data placed on the devices, one epoch, evaluation, and ``fit``.

Layout of the work (why it is fast): the whole data set sits on the device(s) as uint8; an epoch
is a permutation drawn on the device; a step (gather the batch, scale to [0, 1], forward,
backward, optimizer update) is compiled with the train state donated (:mod:`train.steps`), and
``steps_per_call`` steps run either inside one jitted ``lax.scan`` (accelerators) or as
asynchronously dispatched calls (CPU, where XLA's loop code for the backward convolutions is
slow); either way the host only hears back once per group of steps, to check for NaN and tell the
callbacks (:mod:`train.callbacks`: progress, TensorBoard, checkpoints). Data parallelism is
sharding: a 1-D mesh ``('data',)`` over every device, parameters replicated, each batch
constrained to be split along ``'data'``; XLA inserts the gradient all-reduce.

Several processes (``jax.distributed``): the mesh spans the devices of all of them. Every process
holds the splits in host memory (:class:`ProcessData`) and draws the same permutation per epoch;
of each global batch it gathers and puts on its own devices only their rows, so N processes
train on the same batches, split the same way, as one process with the same devices.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from .callbacks import Callback, Checkpoints, HistoryFile, Progress, TensorBoard
from .data import epoch_indices, num_batches, take_rows
from .launch import lost_peer
from .steps import CompiledSteps, compile_steps, init_state, make_mesh, make_optimizer

__all__ = [
    "NonFiniteLossError",
    "DeviceData",
    "ProcessData",
    "place_state",
    "put_data",
    "run_epoch",
    "evaluate",
    "fit",
]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; ``step`` is the 1-based global step."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def _put(array, sharding):
    """Host array -> global array with ``sharding`` (fresh buffers; works across processes)."""
    array = np.asarray(array)
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


class DeviceData(NamedTuple):
    """A split on the devices (replicated): uint8 NHWC ``images``, int32 ``labels``."""

    images: jax.Array
    labels: jax.Array

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])


def _check_data(name, data) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"'{name}' must be a pair (images, labels)")
    images, labels = np.asarray(data[0]), np.asarray(data[1])
    if images.dtype != np.uint8 or images.ndim != 4:
        raise TypeError(f"'{name}' images must be uint8 NHWC, got {images.dtype} with shape {images.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != images.shape[:1]:
        raise TypeError(
            f"'{name}' labels must be integers of shape ({images.shape[0]},), got {labels.dtype} {labels.shape}"
        )
    if images.shape[0] == 0:
        raise ValueError(f"'{name}' is empty")
    return images, labels.astype(np.int32)


class ProcessData(NamedTuple):
    """A split kept in host memory by each process of a mesh spanning several processes: every
    batch goes to the devices in parts, each process putting the rows of its own devices
    (:meth:`put_rows`). uint8 NHWC ``images``, int32 ``labels``."""

    images: np.ndarray
    labels: np.ndarray
    mesh: jax.sharding.Mesh

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def put_rows(self, rows: np.ndarray) -> tuple[jax.Array, jax.Array]:
        """Index rows ``(..., batch)`` of :func:`train.epoch_indices` -> global uint8 images and
        int32 labels split over ``'data'`` along the batch axis; this process gathers (with
        :func:`train.data.take_rows`) only the parts its devices hold."""
        lead = rows.ndim - 1
        sharding = NamedSharding(self.mesh, P(*([None] * lead), "data"))

        def part(which: int):
            return lambda index: take_rows(self.images, self.labels, rows[index[: lead + 1]])[which]

        return (
            jax.make_array_from_callback((*rows.shape, *self.images.shape[1:]), sharding, part(0)),
            jax.make_array_from_callback(rows.shape, sharding, part(1)),
        )


def put_data(data, mesh: jax.sharding.Mesh, name: str = "data") -> DeviceData | ProcessData:
    """``(images, labels)`` numpy arrays, checked (uint8 NHWC, integer labels), for ``mesh``: on
    its devices (:class:`DeviceData`), or, when the mesh spans several processes, kept on the host
    to be put on the devices batch by batch, each process its own part (:class:`ProcessData`)."""
    images, labels = _check_data(name, data)
    if mesh.is_multi_process:
        return ProcessData(images, labels, mesh)
    replicated = NamedSharding(mesh, P())
    return DeviceData(_put(images, replicated), _put(labels, replicated))


#: :func:`train.epoch_indices` run by each process on its own (the same on every process).
_local_indices = jax.jit(epoch_indices, static_argnums=(1, 2))


def place_state(model: nnx.Module, tx, mesh: jax.sharding.Mesh):
    """:func:`train.init_state` with the state copied onto ``mesh``, replicated: ``(graphdef, state)``.
    The copy is what training donates and updates; ``model`` keeps its values until
    ``nnx.update(model, state['params'], state['rest'])``."""
    graphdef, state = init_state(model, tx)
    replicated = NamedSharding(mesh, P())
    return graphdef, jax.tree.map(lambda a: _put(a, replicated), state)


def _check_losses(losses: np.ndarray, first_batch: int, epoch: int, nb: int) -> None:
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        b = first_batch + int(bad[0])
        step = epoch * nb + b + 1
        raise NonFiniteLossError(
            f"training stopped: the loss is {losses[bad[0]]} at step {step} "
            f"(epoch {epoch + 1}, batch {b + 1} of {nb}); lower the learning rate",
            step,
        )


def run_epoch(
    steps: CompiledSteps,
    state: dict,
    data: DeviceData | ProcessData,
    key: jax.Array,
    epoch: int,
    *,
    batch_size: int,
    steps_per_call: int,
    scan: bool,
    callbacks: Sequence[Callback] = (),
) -> tuple[dict, float]:
    """One pass over ``data`` in the order drawn with ``key``: ``(state, mean train loss)``.

    Groups of ``steps_per_call`` steps are dispatched; the losses of a group are read while the
    next one runs, checked for NaN/inf (:class:`NonFiniteLossError`) and passed to each callback's
    ``on_chunk``. The mean weighs every batch by its real size (the last one may be partial).
    """
    n = data.size
    nb = num_batches(n, batch_size)
    total = 0.0
    if isinstance(data, ProcessData):
        rows = np.asarray(_local_indices(key, n, batch_size))

        def chunk(state, start, stop):
            return steps.train_batches(state, *data.put_rows(rows[start:stop]))

        def one(state, i):
            return steps.train_batch(state, *data.put_rows(rows[i]))
    else:
        idx = steps.indices(key, n, batch_size)

        def chunk(state, start, stop):
            return steps.train_chunk(state, data.images, data.labels, idx[start:stop])

        def one(state, i):
            return steps.train_one(state, data.images, data.labels, idx, i)

    def drain(losses, start: int, count: int) -> float:
        losses = np.asarray(jax.device_get(losses), np.float64)  # waits for that group only
        _check_losses(losses, start, epoch, nb)
        sizes = np.full(len(losses), batch_size)
        if start + len(losses) == nb:
            sizes[-1] = n - (nb - 1) * batch_size
        for cb in callbacks:
            cb.on_chunk(epoch, epoch * nb + start + len(losses), losses, count)
        return float(np.sum(losses * sizes))

    pending: tuple[Any, int, int] | None = None  # (the group in flight's losses, first batch, example count)
    for start in range(0, nb, steps_per_call):
        stop = min(start + steps_per_call, nb)
        if scan:
            state, losses = chunk(state, start, stop)
        else:
            losses = []
            for i in range(start, stop):
                state, loss = one(state, i)
                losses.append(loss)
        if pending is not None:
            total += drain(*pending)  # overlaps with the group just dispatched
        pending = (losses, start, min(stop * batch_size, n) - start * batch_size)
    if pending is not None:
        total += drain(*pending)
    return state, total / n


def evaluate(steps: CompiledSteps, state: dict, data: DeviceData | ProcessData, batch_size: int) -> dict:
    """``{'eval_loss', 'eval_accuracy'}`` over every example of ``data`` (partial batch masked),
    each counted once however many processes share the work."""
    if isinstance(data, ProcessData):
        rows = np.asarray(_local_indices(None, data.size, batch_size))
        totals = steps.evaluate_batches(state, *data.put_rows(rows))
    else:
        idx = steps.indices(None, data.size, batch_size)
        totals = steps.evaluate(state, data.images, data.labels, idx)
    totals = jax.device_get(totals)
    count = int(totals["count"])
    return {"eval_loss": float(totals["loss_sum"]) / count, "eval_accuracy": int(totals["correct"]) / count}


def _check_args(epochs, batch_size, learning_rate, steps_per_call) -> None:
    if not (isinstance(epochs, (int, np.integer)) and epochs >= 0):
        raise ValueError(f"'epochs' must be an integer >= 0, got {epochs!r}")
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise ValueError(f"'batch_size' must be an integer >= 1, got {batch_size!r}")
    if not learning_rate > 0:
        raise ValueError(f"'learning_rate' must be > 0, got {learning_rate!r}")
    if steps_per_call is not None and not (isinstance(steps_per_call, (int, np.integer)) and steps_per_call >= 1):
        raise ValueError(f"'steps_per_call' must be None or an integer >= 1, got {steps_per_call!r}")
    n_dev = jax.device_count()
    if batch_size % n_dev:
        raise ValueError(
            f"'batch_size' {batch_size} does not divide over the {n_dev} devices; use a multiple of {n_dev}"
        )


def _close_all(callbacks: list[Callback]) -> None:
    """Close every callback, also when one of them fails (a second Ctrl-C, a full disk); the
    first failure is raised once all are closed."""
    failure: BaseException | None = None
    for cb in callbacks:
        try:
            cb.close()
        except BaseException as err:  # noqa: BLE001 - re-raised below
            failure = failure or err
    if failure is not None:
        raise failure


def fit(
    model: nnx.Module,
    train_data,
    eval_data=None,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    optimizer: str = "sgd",
    seed: int = 0,
    workdir: str | os.PathLike | None = None,
    steps_per_call: int | None = None,
    scan: bool | None = None,
    verbose: bool = False,
) -> list[dict]:
    """Trains ``model`` in place with cross-entropy; returns one dict per epoch.

    Args:
      model: a Flax NNX module mapping float32 NHWC images in [0, 1] to logits ``(N, classes)``.
        Its parameters are the starting point; afterwards it holds the trained ones.
      train_data, eval_data: ``(images, labels)`` numpy arrays, uint8 NHWC images and integer
        labels, any number of examples (a last partial batch is padded and masked, not dropped).
      epochs: total epochs; with a ``workdir`` holding checkpoints, training resumes after the
        latest one and stops at ``epochs``.
      batch_size: global batch size; must be divisible by the number of devices.
      learning_rate: constant learning rate.
      optimizer: ``'sgd'`` (the tutorials'), ``'momentum'`` (0.9) or ``'adam'``.
      seed: seeds the shuffling (epoch ``e`` uses ``fold_in(PRNGKey(seed), e)``), so the same seed
        gives the same losses run after run, and a resumed run the same as an uninterrupted one.
        Parameters come from ``model`` as passed.
      workdir: where orbax checkpoints (every epoch, the last few kept), TensorBoard scalars and
        ``history.json`` (the returned records) go; ``None`` for none. With several processes it
        must be one directory all of them see (a shared file system).
      steps_per_call: training steps between two looks of the host at the losses (the progress
        bar, the NaN check); default about 1/20 of an epoch.
      scan: ``True`` runs those steps as one compiled ``lax.scan``; ``False`` as one compiled
        step each, dispatched asynchronously. Default: scan except on CPU, where XLA runs the
        backward convolutions inside a loop far slower.
      verbose: progress bar and per-epoch lines on stderr/stdout (process 0 only).

    Several processes: call ``jax.distributed.initialize`` first, then ``fit`` in every process
    with the same arguments and data; the mesh spans all their devices, each process puts only
    its part of every batch on its devices, and the losses are those of one process with all the
    devices.

    Returns:
      ``[{'epoch', 'train_loss', 'images_per_sec', 'eval_loss', 'eval_accuracy'}, ...]``, the
      ``eval_*`` keys only with ``eval_data``; epochs restored from a checkpoint included.

    Raises:
      NonFiniteLossError: the loss became NaN/inf (the message names the step). On this or any
        other error, Ctrl-C included, ``model`` keeps the parameters it came with; the
        checkpoints keep the finished epochs.
      CheckpointError: the latest checkpoint in ``workdir`` cannot be read or does not fit.
      ValueError: ``batch_size`` does not divide over the devices, or bad arguments.
    """
    _check_args(epochs, batch_size, learning_rate, steps_per_call)
    tx = make_optimizer(optimizer, learning_rate)
    mesh = make_mesh()
    train_set = put_data(train_data, mesh, "train_data")
    eval_set = None if eval_data is None else put_data(eval_data, mesh, "eval_data")
    graphdef, state = place_state(model, tx, mesh)
    steps = compile_steps(graphdef, tx, mesh)
    if scan is None:
        # XLA's CPU backend runs convolution backward passes inside a while loop (lax.scan)
        # far slower than the same step compiled alone (measured: Tudui 5 vs 130 img/s; with
        # models.jit, 40 vs ~2,700 img/s at batch 64), so on CPU each step is its own compiled
        # call, dispatched asynchronously (no host round trip).
        scan = jax.default_backend() != "cpu"
    k = steps_per_call or max(1, math.ceil(num_batches(train_set.size, batch_size) / 20))
    base_key = jax.random.PRNGKey(seed)
    main = jax.process_index() == 0
    say = print if (verbose and main) else (lambda *a, **kw: None)

    callbacks: list[Callback] = [Progress(epochs, train_set.size)] if verbose and main else []
    history: list[dict] = []
    first_epoch = 0
    try:
        if workdir is not None:
            run = {
                "optimizer": optimizer,
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "seed": seed,
                "model": type(model).__name__,
            }
            ckpt = Checkpoints(workdir, run)
            callbacks.append(ckpt)  # closed (pending saves finished) whatever happens next
            state, history, first_epoch = ckpt.resume(state)
            if first_epoch:
                say(f"resuming from epoch {first_epoch} ({ckpt.directory / str(first_epoch)})", flush=True)
            if main:
                callbacks.append(TensorBoard(workdir, learning_rate))
                callbacks.append(HistoryFile(Path(workdir) / "history.json"))
        if first_epoch >= epochs:
            say(
                f"nothing left to train: the checkpoint holds {first_epoch} finished epochs and epochs={epochs}"
                if first_epoch
                else "nothing to train: epochs=0",
                flush=True,
            )

        for epoch in range(first_epoch, epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            t0 = time.perf_counter()
            state, train_loss = run_epoch(
                steps,
                state,
                train_set,
                jax.random.fold_in(base_key, epoch),
                epoch,
                batch_size=batch_size,
                steps_per_call=k,
                scan=scan,
                callbacks=callbacks,
            )
            record = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "images_per_sec": train_set.size / (time.perf_counter() - t0),
            }
            if eval_set is not None:
                record.update(evaluate(steps, state, eval_set, batch_size))
            history.append(record)
            for cb in callbacks:
                cb.on_epoch_end(epoch, record, state, history)
    except jax.errors.JaxRuntimeError as err:
        if jax.process_count() > 1 and lost_peer(err):
            for cb in callbacks:
                if isinstance(cb, Checkpoints):
                    cb.abandon()  # its pending save would wait for the process that is gone
        raise
    finally:
        _close_all(callbacks)
    # Only now: on an error the model keeps the values it came with (the state was a copy).
    nnx.update(model, state["params"], state["rest"])
    for cb in callbacks:
        cb.on_train_end(history)
    return history
