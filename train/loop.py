"""The training loop: data and state on the devices, one epoch, evaluation, and ``fit``.

Each group of ``steps_per_call`` rows of an epoch's index matrix becomes uint8 batches on the
devices (with several processes, each puts only its own devices' rows), run by the compiled
steps; the host looks at a group's losses while the next one runs.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from .callbacks import Callback, Checkpoints, HistoryFile, Progress, TensorBoard
from .data import epoch_indices, num_batches, take_rows
from .steps import CompiledSteps, compile_steps, init_state, make_mesh, make_optimizer


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; ``step`` is the 1-based global step."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class Interrupted(KeyboardInterrupt):
    """:func:`fit` stopped at a step boundary on ``signum`` (SIGINT or SIGTERM), the checkpoints of
    the finished epochs complete. With several processes all stop at the same step, those not
    signalled with ``signum`` SIGTERM."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_LOOKS = 2**30  # the first of StopOnSignal's sync steps, beyond orbax's (epochs)


class StopOnSignal(Callback):
    """Turns SIGINT and SIGTERM into :class:`Interrupted` at the next group of steps.

    One process: its own handlers note the signal. Several: JAX's preemption service owns SIGTERM
    and tells every process, which stop at the same step (``reached_preemption_sync_point``);
    Ctrl-C is passed on to it as a SIGTERM. A second Ctrl-C raises ``KeyboardInterrupt`` at once.
    Handlers are installed in the main thread only (Python delivers signals there) until
    :meth:`close`. It comes last among the callbacks, so an epoch's checkpoint is saved first."""

    def __init__(self):
        self.received: int | None = None
        self.looks = 0
        self.several = jax.process_count() > 1
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT,) if self.several else (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._note)

    def _note(self, signum, frame):
        if signum == self.received == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
        if self.several:
            signal.raise_signal(signal.SIGTERM)  # to JAX's preemption notifier

    def _stop_at(self, sync_step: int) -> None:
        if multihost_utils.reached_preemption_sync_point(sync_step) if self.several else self.received:
            raise Interrupted(self.received or signal.SIGTERM)

    def on_chunk(self, epoch, step, losses, count):
        # orbax's CheckpointManager.save(epoch + 1) asks JAX's sync point too, with its own step: the
        # sync point is one more than the last step any process gave, so ours are consecutive and
        # apart from orbax's, and at an epoch's end ours is orbax's (after its save, see on_epoch_end).
        self.looks += 1
        self._stop_at(_LOOKS + self.looks)

    def on_epoch_end(self, epoch, record, state, history):
        self._stop_at(epoch + 1)

    def close(self):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}


class DeviceData(NamedTuple):
    """A split on the devices of one process (replicated): uint8 NHWC ``images``, int32 ``labels``."""

    images: jax.Array
    labels: jax.Array

    def put_rows(self, rows: np.ndarray) -> tuple[jax.Array, jax.Array]:
        """Rows ``(..., batch)`` of :func:`train.epoch_indices` -> uint8 images and int32 labels."""
        return _take(self.images, self.labels, rows)


_take = jax.jit(take_rows)


class ProcessData(NamedTuple):
    """A split in host memory for a mesh over several processes: uint8 NHWC ``images``, int32 ``labels``."""

    images: np.ndarray
    labels: np.ndarray
    mesh: jax.sharding.Mesh

    def put_rows(self, rows: np.ndarray) -> tuple[jax.Array, jax.Array]:
        """As :meth:`DeviceData.put_rows`, split over ``'data'``; this process gathers its parts only."""
        lead = rows.ndim - 1
        sharding = NamedSharding(self.mesh, P(*[None] * lead, "data"))
        images, labels = (
            jax.make_array_from_callback(
                shape,
                sharding,
                lambda index, i=i: take_rows(self.images, self.labels, rows[index[: lead + 1]])[i],  # pyright: ignore[reportOptionalSubscript]
            )
            for i, shape in enumerate(((*rows.shape, *self.images.shape[1:]), rows.shape))
        )
        return images, labels


def _replicated(array, mesh):
    array = np.asarray(array)
    return jax.make_array_from_callback(array.shape, NamedSharding(mesh, P()), lambda index: array[index])


def put_data(data, mesh: jax.sharding.Mesh, name: str = "data") -> DeviceData | ProcessData:
    """``(images, labels)``, checked, on ``mesh``'s devices (:class:`DeviceData`), or in host memory
    when the mesh spans several processes (:class:`ProcessData`)."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"'{name}' must be a pair (images, labels)")
    images, labels = np.asarray(data[0]), np.asarray(data[1])
    if images.dtype != np.uint8 or images.ndim != 4:
        raise TypeError(f"'{name}' images must be uint8 NHWC, got {images.dtype} with shape {images.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != images.shape[:1]:
        raise TypeError(
            f"'{name}' labels must be integers of shape ({len(images)},), got {labels.dtype} {labels.shape}"
        )
    if not len(images):
        raise ValueError(f"'{name}' is empty")
    labels = labels.astype(np.int32)
    if mesh.is_multi_process:
        return ProcessData(images, labels, mesh)
    return DeviceData(_replicated(images, mesh), _replicated(labels, mesh))


def place_state(model: nnx.Module, tx, mesh: jax.sharding.Mesh):
    """:func:`train.init_state` with the state replicated on ``mesh``: a copy, so ``model`` keeps its
    values until ``nnx.update``."""
    graphdef, state = init_state(model, tx)
    return graphdef, jax.tree.map(lambda a: _replicated(a, mesh), state)


#: :func:`train.epoch_indices` on this process's default device: the same rows on every process.
_indices = jax.jit(epoch_indices, static_argnums=(1, 2))


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

    Groups of ``steps_per_call`` steps are dispatched (one ``lax.scan`` with ``scan``); a group's
    losses are read while the next one runs, checked (:class:`NonFiniteLossError`) and passed to
    each callback's ``on_chunk``. The mean weighs each batch by its real size.
    """
    n = len(data.labels)
    nb = num_batches(n, batch_size)
    rows = np.asarray(_indices(key, n, batch_size))
    sizes = np.minimum(batch_size, n - batch_size * np.arange(nb))
    total = 0.0

    def look(losses, start: int) -> float:
        losses = np.asarray(jax.device_get(losses), np.float64)  # waits for that group only
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            b = start + int(bad[0])
            raise NonFiniteLossError(
                f"training stopped: the loss is {losses[bad[0]]} at step {epoch * nb + b + 1} "
                f"(epoch {epoch + 1}, batch {b + 1} of {nb}); lower the learning rate",
                epoch * nb + b + 1,
            )
        group = sizes[start : start + len(losses)]
        for cb in callbacks:
            cb.on_chunk(epoch, epoch * nb + start + len(losses), losses, int(group.sum()))
        return float(np.dot(losses, group))

    pending = None  # (losses of the group in flight, its first batch)
    for start in range(0, nb, steps_per_call):
        group = rows[start : start + steps_per_call]
        if scan:
            state, losses = steps.train_batches(state, *data.put_rows(group))
        else:
            losses = []
            for row in group:
                state, loss = steps.train_batch(state, *data.put_rows(row))
                losses.append(loss)
        if pending is not None:
            total += look(*pending)  # overlaps with the group just dispatched
        pending = (losses, start)
    if pending is not None:
        total += look(*pending)
    return state, total / n


def evaluate(steps: CompiledSteps, state: dict, data: DeviceData | ProcessData, batch_size: int) -> dict:
    """``{'eval_loss', 'eval_accuracy'}`` over every example of ``data``, each counted once."""
    rows = np.asarray(_indices(None, len(data.labels), batch_size))
    totals = jax.device_get(steps.evaluate(state, *data.put_rows(rows)))
    count = int(totals["count"])
    return {"eval_loss": float(totals["loss_sum"]) / count, "eval_accuracy": int(totals["correct"]) / count}


def _check(name: str, value, ok: bool, accepted: str) -> None:
    if not ok:
        raise ValueError(f"'{name}' must be {accepted}, got {value!r}")


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

    Several processes: call ``jax.distributed.initialize`` first, then ``fit`` in every process
    with the same arguments and data; the losses are those of one process with all the devices.

    Args:
      model: a Flax NNX module mapping float32 NHWC images in [0, 1] to logits; its parameters
        are the starting point, and afterwards it holds the trained ones.
      train_data, eval_data: ``(images, labels)``: uint8 NHWC images, integer labels, any number
        of examples (a last partial batch is padded and masked, not dropped).
      epochs: total epochs; training resumes after the latest checkpoint in ``workdir``.
      batch_size: global batch size, a multiple of the number of devices.
      learning_rate: constant learning rate.
      optimizer: ``'sgd'`` (the tutorials'), ``'momentum'`` (0.9) or ``'adam'``.
      seed: seeds the shuffling (epoch ``e`` uses ``fold_in(PRNGKey(seed), e)``), so a resumed run
        gives the losses of an uninterrupted one.
      workdir: orbax checkpoints (every epoch, the last few kept), TensorBoard scalars and
        ``history.json``; ``None`` for none. With several processes, one directory all see.
      steps_per_call: steps between two looks of the host at the losses (progress, NaN check,
        signals); default about 1/20 of an epoch.
      scan: whether those steps are one compiled ``lax.scan`` or one call each. Default: scan
        except on CPU, where XLA runs the backward convolutions in a loop far slower (measured:
        40 vs ~2,700 img/s, Tudui, batch 64).
      verbose: progress bar and per-epoch lines (process 0 only).

    Returns:
      ``[{'epoch', 'train_loss', 'images_per_sec', 'eval_loss', 'eval_accuracy'}, ...]``, the
      ``eval_*`` keys only with ``eval_data``; epochs restored from a checkpoint included.

    Raises:
      Interrupted: SIGINT or SIGTERM; a second SIGINT raises ``KeyboardInterrupt`` at once. On any
        error ``model`` keeps the parameters it came with, the checkpoints the finished epochs.
      NonFiniteLossError: the loss became NaN/inf (the message names the step).
      CheckpointError: the latest checkpoint in ``workdir`` cannot be read or does not fit.
      ValueError: bad arguments, or ``batch_size`` does not divide over the devices.
    """
    integer = (int, np.integer)
    _check("epochs", epochs, isinstance(epochs, integer) and epochs >= 0, "an integer >= 0")
    _check("batch_size", batch_size, isinstance(batch_size, integer) and batch_size >= 1, "an integer >= 1")
    _check("learning_rate", learning_rate, learning_rate > 0, "> 0")
    ok = steps_per_call is None or (isinstance(steps_per_call, integer) and steps_per_call >= 1)
    _check("steps_per_call", steps_per_call, ok, "None or an integer >= 1")
    if batch_size % jax.device_count():
        n = jax.device_count()
        raise ValueError(f"'batch_size' {batch_size} does not divide over the {n} devices; use a multiple of {n}")
    tx = make_optimizer(optimizer, learning_rate)
    mesh = make_mesh()
    train_set = put_data(train_data, mesh, "train_data")
    eval_set = None if eval_data is None else put_data(eval_data, mesh, "eval_data")
    graphdef, state = place_state(model, tx, mesh)
    steps = compile_steps(graphdef, tx, mesh)
    n = len(train_set.labels)
    loop_args = {
        "batch_size": batch_size,
        "steps_per_call": steps_per_call or max(1, math.ceil(num_batches(n, batch_size) / 20)),
        "scan": jax.default_backend() != "cpu" if scan is None else scan,
    }
    main = jax.process_index() == 0
    say = print if (verbose and main) else (lambda *a, **kw: None)
    history: list[dict] = []
    first_epoch = 0
    with contextlib.ExitStack() as stack:  # closes every callback, the last made first, whatever happens
        stop = stack.enter_context(StopOnSignal())
        callbacks: list[Callback] = [stack.enter_context(Progress(epochs, n))] if verbose and main else []
        if workdir is not None:
            run = {"optimizer": optimizer, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed}
            ckpt = stack.enter_context(Checkpoints(workdir, {**run, "model": type(model).__name__}))
            callbacks.append(ckpt)
            state, history, first_epoch = ckpt.resume(state)
            where = ckpt.directory / str(first_epoch)
            if first_epoch >= epochs:
                say(f"nothing left to train: {where} holds {first_epoch} finished epochs, {epochs} asked for")
            elif first_epoch:
                say(f"resuming from epoch {first_epoch} ({where})", flush=True)
            if main:
                tensorboard = TensorBoard(workdir, learning_rate)
                callbacks += [stack.enter_context(tensorboard), HistoryFile(Path(workdir) / "history.json")]
        callbacks.append(stop)  # last: an epoch's checkpoint is saved before a signal stops the run
        for epoch in range(first_epoch, epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            t0 = time.perf_counter()
            key = jax.random.fold_in(jax.random.PRNGKey(seed), epoch)
            state, train_loss = run_epoch(steps, state, train_set, key, epoch, **loop_args, callbacks=callbacks)
            record = {"epoch": epoch + 1, "train_loss": train_loss, "images_per_sec": n / (time.perf_counter() - t0)}
            if eval_set is not None:
                record.update(evaluate(steps, state, eval_set, batch_size))
            history.append(record)
            for cb in callbacks:
                cb.on_epoch_end(epoch, record, state, history)
    # Only now: on an error the model keeps the values it came with (the state was a copy).
    nnx.update(model, state["params"], state["rest"])
    for cb in callbacks:
        cb.on_train_end(history)
    return history
