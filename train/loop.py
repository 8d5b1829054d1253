"""The training loop: compiled steps, compiled chunks of steps, evaluation, checkpoints, logs.

Layout of the work (why it is fast): the whole data set sits on the device(s) as uint8; an epoch
is a permutation drawn on the device; a step (gather the batch, scale to [0, 1], forward,
backward, optimizer update) is compiled with the train state donated, and ``steps_per_call``
steps run either inside one jitted ``lax.scan`` (accelerators) or as asynchronously dispatched
calls (CPU, where XLA's loop code for the backward convolutions is slow); either way the host
only hears back once per chunk, to move the progress bar and check for NaN. Data
parallelism is sharding: a 1-D mesh ``('data',)`` over every device, parameters replicated, each
batch constrained to be split along ``'data'``; XLA inserts the gradient all-reduce.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

import models
from losses_jax import CrossEntropyLoss

from .data import IGNORE_INDEX, epoch_indices, gather_batch, num_batches

__all__ = [
    "OPTIMIZERS",
    "CheckpointError",
    "NonFiniteLossError",
    "make_optimizer",
    "init_state",
    "train_step",
    "eval_step",
    "make_mesh",
    "fit",
]

#: Momentum of ``optimizer='momentum'`` (SGD with heavy-ball momentum, as torch.optim.SGD).
MOMENTUM = 0.9
OPTIMIZERS = ("sgd", "momentum", "adam")
#: Checkpoints kept in ``<workdir>/checkpoints`` (older ones are deleted).
KEEP_CHECKPOINTS = 3

_train_loss = CrossEntropyLoss()  # mean over the non-ignored (non-padding) labels
_sum_loss = CrossEntropyLoss(reduction="sum")


class CheckpointError(RuntimeError):
    """A checkpoint in the workdir cannot be read or does not fit the model/optimizer."""


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; ``step`` is the 1-based global step."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def make_optimizer(name: str, learning_rate: float) -> optax.GradientTransformation:
    """``'sgd'`` (the tutorials'), ``'momentum'`` (SGD, momentum 0.9) or ``'adam'``; constant rate."""
    if name == "sgd":
        return optax.sgd(learning_rate)
    if name == "momentum":
        return optax.sgd(learning_rate, momentum=MOMENTUM)
    if name == "adam":
        return optax.adam(learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {OPTIMIZERS}")


def init_state(model: nnx.Module, tx: optax.GradientTransformation):
    """Splits ``model`` into ``(graphdef, state)`` for the functional steps.

    ``state`` is a dict pytree: ``params`` (the ``nnx.Param`` variables), ``rest`` (any other
    variables, e.g. batch statistics), ``opt_state`` (``tx.init(params)``) and ``step`` (int32).
    ``nnx.update(model, state['params'], state['rest'])`` puts trained values back.
    """
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    state = {"params": params, "rest": rest, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32)}
    return graphdef, state


def train_step(graphdef, tx: optax.GradientTransformation, state: dict, images: jax.Array, labels: jax.Array):
    """One SGD step on a batch; returns ``(new_state, loss)``. Pure: jit it with
    ``jax.jit(train_step, static_argnums=(0, 1), donate_argnums=2)``.

    ``images`` are float NHWC in [0, 1] (see :func:`train.gather_batch`), ``labels`` class
    indices; positions labelled :data:`train.IGNORE_INDEX` (padding) do not count. The loss is
    ``losses_jax.CrossEntropyLoss()`` (mean over the counted positions).
    """

    def loss_fn(params):
        model = nnx.merge(graphdef, params, state["rest"])
        loss = _train_loss(model(images), labels)
        return loss, nnx.state(model, nnx.Not(nnx.Param))

    (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return {"params": params, "rest": rest, "opt_state": opt_state, "step": state["step"] + 1}, loss


def eval_step(graphdef, state: dict, images: jax.Array, labels: jax.Array) -> dict:
    """Sums over one batch: ``{'loss_sum', 'correct', 'count'}``, padding (label
    :data:`train.IGNORE_INDEX`) excluded. Divide the totals by ``count`` at the end, so every
    example counts exactly once whatever the batch boundaries. Pure; jit with ``static_argnums=0``.
    """
    model = nnx.merge(graphdef, state["params"], state["rest"])
    logits = model(images)
    valid = labels != IGNORE_INDEX
    return {
        "loss_sum": _sum_loss(logits, labels),
        "correct": jnp.sum((jnp.argmax(logits, axis=-1) == labels) & valid, dtype=jnp.int32),
        "count": jnp.sum(valid, dtype=jnp.int32),
    }


def make_mesh() -> jax.sharding.Mesh:
    """A 1-D mesh named ``'data'`` over every device of every process."""
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def _put(array, sharding):
    """Host array -> global array with ``sharding`` (fresh buffers; works across processes)."""
    array = np.asarray(array)
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


# ----------------------------------------------------------------------------- compiled pieces


def _compile(graphdef, tx, mesh, batch_size: int):
    batch = NamedSharding(mesh, P("data"))
    replicated = NamedSharding(mesh, P())

    def constrain(x, y):
        return jax.lax.with_sharding_constraint(x, batch), jax.lax.with_sharding_constraint(y, batch)

    def train_chunk(state, images, labels, idx):
        def body(state, row):
            x, y = constrain(*gather_batch(images, labels, row))
            state, loss = train_step(graphdef, tx, state, x, y)
            return state, loss

        return jax.lax.scan(body, state, idx)

    def train_one(state, images, labels, idx, i):
        x, y = constrain(*gather_batch(images, labels, idx[i]))
        return train_step(graphdef, tx, state, x, y)

    def evaluate(state, images, labels, idx):
        def body(totals, row):
            x, y = constrain(*gather_batch(images, labels, row))
            out = eval_step(graphdef, state, x, y)
            return jax.tree.map(jnp.add, totals, out), None

        zero = {"loss_sum": jnp.zeros((), jnp.float32), "correct": jnp.zeros((), jnp.int32),
                "count": jnp.zeros((), jnp.int32)}
        totals, _ = jax.lax.scan(body, zero, idx)
        return totals

    # models.jit: on CPU, XLA's multi-threaded convolutions and the plain layers (see its doc).
    return (
        models.jit(train_chunk, donate_argnums=0, out_shardings=(replicated, replicated)),
        models.jit(train_one, donate_argnums=0, out_shardings=(replicated, replicated)),
        models.jit(evaluate, out_shardings=replicated),
        jax.jit(epoch_indices, static_argnums=(1, 2), out_shardings=replicated),
    )


# ----------------------------------------------------------------------------- checkpoints


class _Checkpoints:
    """orbax ``CheckpointManager`` in ``<workdir>/checkpoints``: one step per finished epoch."""

    def __init__(self, workdir: Path):
        import orbax.checkpoint as ocp

        self.ocp = ocp
        self.directory = (workdir / "checkpoints").absolute()
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=KEEP_CHECKPOINTS, create=True, cleanup_tmp_directories=True
            ),
        )

    def latest(self) -> int | None:
        return self.manager.latest_step()

    def restore(self, epoch: int, like: dict) -> tuple[dict, dict]:
        ocp = self.ocp
        path = self.directory / str(epoch)
        abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), like)
        try:
            out = self.manager.restore(
                epoch,
                args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()),
            )
            state, meta = out["state"], out["meta"]
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise CheckpointError(
                f"checkpoint {path} is damaged or does not match this model and optimizer "
                f"({type(err).__name__}: {first[:300]}); delete it (or use another --workdir) "
                f"to start over"
            ) from None
        want = jax.tree.structure(like)
        got = jax.tree.structure(state)
        shapes_ok = want == got and all(
            a.shape == b.shape and a.dtype == b.dtype
            for a, b in zip(jax.tree.leaves(like), jax.tree.leaves(state))
        )
        if not shapes_ok or not isinstance(meta, dict) or meta.get("epoch") != epoch:
            raise CheckpointError(
                f"checkpoint {path} does not match this model and optimizer (different "
                f"parameters or optimizer state); delete it (or use another --workdir) to start over"
            )
        return state, meta

    def save(self, epoch: int, state: dict, meta: dict):
        ocp = self.ocp
        self.manager.save(
            epoch,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
        )

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()


# ----------------------------------------------------------------------------- fit


def _check_data(name, data):
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"'{name}' must be a pair (images, labels)")
    images, labels = np.asarray(data[0]), np.asarray(data[1])
    if images.dtype != np.uint8 or images.ndim != 4:
        raise TypeError(f"'{name}' images must be uint8 NHWC, got {images.dtype} with shape {images.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != images.shape[:1]:
        raise TypeError(f"'{name}' labels must be integers of shape ({images.shape[0]},), got "
                        f"{labels.dtype} {labels.shape}")
    if images.shape[0] == 0:
        raise ValueError(f"'{name}' is empty")
    return images, labels.astype(np.int32)


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
      workdir: where orbax checkpoints (every epoch, the last few kept) and TensorBoard scalars
        go; ``None`` for neither.
      steps_per_call: training steps between two looks of the host at the losses (the progress
        bar, the NaN check); default about 1/20 of an epoch.
      scan: ``True`` runs those steps as one compiled ``lax.scan``; ``False`` as one compiled
        step each, dispatched asynchronously. Default: scan except on CPU, where XLA runs the
        backward convolutions inside a loop far slower.
      verbose: progress bar and per-epoch lines on stderr/stdout (process 0 only).

    Returns:
      ``[{'epoch', 'train_loss', 'images_per_sec', 'eval_loss', 'eval_accuracy'}, ...]``, the
      ``eval_*`` keys only with ``eval_data``; epochs restored from a checkpoint included.

    Raises:
      NonFiniteLossError: the loss became NaN/inf (the message names the step). On this or any
        other error ``model`` keeps the parameters it came with; the checkpoints keep the
        finished epochs.
      CheckpointError: the latest checkpoint in ``workdir`` cannot be read or does not fit.
      ValueError: ``batch_size`` does not divide over the devices, or bad arguments.
    """
    train_images, train_labels = _check_data("train_data", train_data)
    if eval_data is not None:
        eval_images, eval_labels = _check_data("eval_data", eval_data)
    if epochs < 0 or batch_size < 1 or not learning_rate > 0:
        raise ValueError("'epochs' must be >= 0, 'batch_size' >= 1 and 'learning_rate' > 0")
    n_dev = jax.device_count()
    if batch_size % n_dev:
        raise ValueError(
            f"'batch_size' {batch_size} does not divide over the {n_dev} devices; use a multiple of {n_dev}"
        )
    main = jax.process_index() == 0
    say = print if (verbose and main) else (lambda *a, **k: None)
    wall_start = time.perf_counter()

    tx = make_optimizer(optimizer, learning_rate)
    graphdef, state = init_state(model, tx)
    mesh = make_mesh()
    replicated = NamedSharding(mesh, P())
    state = jax.tree.map(lambda a: _put(a, replicated), state)
    train_chunk, train_one, evaluate, indices = _compile(graphdef, tx, mesh, batch_size)
    if scan is None:
        # XLA's CPU backend runs convolution backward passes inside a while loop (lax.scan)
        # far slower than the same step compiled alone (measured: Tudui 5 vs 130 img/s; with
        # models.jit, 40 vs ~2,700 img/s at batch 64), so on CPU each step is its own compiled
        # call, dispatched asynchronously (no host round trip).
        scan = jax.default_backend() != "cpu"

    n_train = int(train_images.shape[0])
    images_d, labels_d = _put(train_images, replicated), _put(train_labels, replicated)
    if eval_data is not None:
        n_eval = int(eval_images.shape[0])
        eval_images_d, eval_labels_d = _put(eval_images, replicated), _put(eval_labels, replicated)
        eval_idx = indices(None, n_eval, batch_size)
    nb = num_batches(n_train, batch_size)
    k = steps_per_call or max(1, math.ceil(nb / 20))
    base_key = jax.random.PRNGKey(seed)

    history: list[dict] = []
    first_epoch = 0
    ckpt = writer = None
    try:
        if workdir is not None:
            workdir = Path(workdir)
            ckpt = _Checkpoints(workdir)
            latest = ckpt.latest()
            if latest is not None:
                state, meta = ckpt.restore(latest, state)
                history = list(meta.get("history", []))
                first_epoch = latest
                say(f"resuming from epoch {latest} ({ckpt.directory / str(latest)})", flush=True)
            if main:
                from tensorboardX import SummaryWriter  # event files without TensorFlow

                writer = SummaryWriter(logdir=str(workdir))

        for epoch in range(first_epoch, epochs):
            idx = indices(jax.random.fold_in(base_key, epoch), n_train, batch_size)
            bar = None
            if verbose and main:
                from tqdm.auto import tqdm

                bar = tqdm(total=n_train, unit="img", desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                           file=sys.stderr, dynamic_ncols=True)
            t0 = time.perf_counter()
            loss_total, done = 0.0, 0
            pending = None  # (losses of the chunk in flight, first batch, its example count)

            def drain(p):
                nonlocal loss_total, done
                losses, start, count = p
                losses = np.asarray(jax.device_get(losses), np.float64)  # waits for that chunk only
                bad = np.flatnonzero(~np.isfinite(losses))
                if bad.size:
                    b = start + int(bad[0])
                    step = epoch * nb + b + 1
                    raise NonFiniteLossError(
                        f"training stopped: the loss is {losses[bad[0]]} at step {step} "
                        f"(epoch {epoch + 1}, batch {b + 1} of {nb}); lower the learning rate",
                        step,
                    )
                sizes = np.full(len(losses), batch_size)
                if start + len(losses) == nb:
                    sizes[-1] = n_train - (nb - 1) * batch_size
                loss_total += float(np.sum(losses * sizes))
                done += count
                if bar is not None:
                    bar.update(count)
                    bar.set_postfix(loss=f"{losses[-1]:.4f}")
                if writer is not None:
                    writer.add_scalar("train/loss_step", float(losses[-1]), epoch * nb + start + len(losses))

            for start in range(0, nb, k):
                stop = min(start + k, nb)
                if scan:
                    state, losses = train_chunk(state, images_d, labels_d, idx[start:stop])
                else:
                    losses = []
                    for i in range(start, stop):
                        state, loss = train_one(state, images_d, labels_d, idx, i)
                        losses.append(loss)
                count = min(stop * batch_size, n_train) - start * batch_size
                if pending is not None:
                    drain(pending)  # overlaps with the chunk just dispatched
                pending = (losses, start, count)
            drain(pending)
            seconds = time.perf_counter() - t0
            if bar is not None:
                bar.close()
            record = {"epoch": epoch + 1, "train_loss": loss_total / n_train,
                      "images_per_sec": n_train / seconds}
            if eval_data is not None:
                totals = jax.device_get(evaluate(state, eval_images_d, eval_labels_d, eval_idx))
                assert int(totals["count"]) == n_eval
                record["eval_loss"] = float(totals["loss_sum"]) / n_eval
                record["eval_accuracy"] = int(totals["correct"]) / n_eval
            history.append(record)
            line = f"epoch {epoch + 1}/{epochs}: train loss {record['train_loss']:.4f}"
            if eval_data is not None:
                line += f", test loss {record['eval_loss']:.4f}, test accuracy {record['eval_accuracy']:.2%}"
            say(line + f" ({record['images_per_sec']:.0f} img/s)", flush=True)
            if writer is not None:
                writer.add_scalar("train/loss", record["train_loss"], epoch + 1)
                writer.add_scalar("train/images_per_sec", record["images_per_sec"], epoch + 1)
                writer.add_scalar("train/learning_rate", learning_rate, epoch + 1)
                if eval_data is not None:
                    writer.add_scalar("eval/loss", record["eval_loss"], epoch + 1)
                    writer.add_scalar("eval/accuracy", record["eval_accuracy"], epoch + 1)
                writer.flush()
            if ckpt is not None:
                meta = {"epoch": epoch + 1, "history": history, "optimizer": optimizer,
                        "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
                        "model": type(model).__name__}
                ckpt.save(epoch + 1, state, meta)
    finally:
        if ckpt is not None:
            ckpt.close()
        if writer is not None:
            writer.close()
    # Only now: on an error the model keeps the values it came with (the state was a copy).
    nnx.update(model, state["params"], state["rest"])

    if history and verbose and main:
        scored = [h for h in history if "eval_accuracy" in h]
        wall = time.perf_counter() - wall_start
        if scored:
            best = max(scored, key=lambda h: h["eval_accuracy"])
            say(f"done: best test accuracy {best['eval_accuracy']:.2%} at epoch {best['epoch']}, "
                f"wall time {wall:.1f} s", flush=True)
        else:
            say(f"done: final train loss {history[-1]['train_loss']:.4f}, wall time {wall:.1f} s", flush=True)
    return history
