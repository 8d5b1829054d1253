"""What :func:`train.fit` does around the training itself, one object per concern.

A callback is told about the run through four methods, all optional (see :class:`Callback`):
``on_chunk`` after each group of steps the host looks at, ``on_epoch_end`` with the epoch's
record, ``on_train_end`` with the whole history, and ``close`` always, also after an error or
Ctrl-C. :class:`Progress` (progress bar and per-epoch lines), :class:`TensorBoard` (scalars
through tensorboardX), :class:`HistoryFile` (the per-epoch records as JSON) and
:class:`Checkpoints` (orbax, one per epoch, also the resume side) are the four :func:`train.fit`
uses; each works on its own in a hand-written loop. With several processes, the first three run
in process 0 only; every process takes part in each checkpoint (orbax's multi-process protocol).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import jax
import numpy as np

from ._interrupts import deferred_interrupt

__all__ = [
    "KEEP_CHECKPOINTS",
    "Callback",
    "CheckpointError",
    "Checkpoints",
    "HistoryFile",
    "Progress",
    "TensorBoard",
    "latest_checkpoint",
]

#: Checkpoints kept in ``<workdir>/checkpoints`` (older ones are deleted).
KEEP_CHECKPOINTS = 3


class CheckpointError(RuntimeError):
    """A checkpoint in the workdir cannot be read or does not fit the model/optimizer."""


class Callback:
    """Does nothing; subclasses override what they need. ``epoch`` is 0-based, ``step`` the
    1-based global step of the last loss in ``losses``."""

    def on_epoch_begin(self, epoch: int) -> None:
        pass

    def on_chunk(self, epoch: int, step: int, losses: np.ndarray, count: int) -> None:
        """``losses``: the per-step losses of the group just finished; ``count``: its examples."""

    def on_epoch_end(self, epoch: int, record: dict, state: dict, history: list[dict]) -> None:
        pass

    def on_train_end(self, history: list[dict]) -> None:
        pass

    def close(self) -> None:
        pass


class Progress(Callback):
    """A tqdm bar per epoch on stderr and one line per epoch on stdout, then a summary line.

    The bar is removed before anything else is printed, so a following message (the NaN stop,
    an interruption) starts on a line of its own.
    """

    def __init__(self, epochs: int, num_examples: int, file=None):
        self.epochs = epochs
        self.num_examples = num_examples
        self.file = file if file is not None else sys.stderr
        self.bar = None
        self.start = time.perf_counter()

    def on_epoch_begin(self, epoch):
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=self.num_examples,
            unit="img",
            desc=f"epoch {epoch + 1}/{self.epochs}",
            leave=False,
            file=self.file,
            dynamic_ncols=True,
        )

    def on_chunk(self, epoch, step, losses, count):
        if self.bar is not None:
            self.bar.update(count)
            self.bar.set_postfix(loss=f"{losses[-1]:.4f}")

    def _close_bar(self):
        if self.bar is None:
            return
        self.bar.close()
        self.bar = None
        isatty = getattr(self.file, "isatty", None)
        if not (isatty and isatty()):  # in a log file the cleared bar leaves no line break
            print(file=self.file, flush=True)

    def on_epoch_end(self, epoch, record, state, history):
        self._close_bar()
        line = f"epoch {epoch + 1}/{self.epochs}: train loss {record['train_loss']:.4f}"
        if "eval_loss" in record:
            line += f", test loss {record['eval_loss']:.4f}, test accuracy {record['eval_accuracy']:.2%}"
        print(line + f" ({record['images_per_sec']:.0f} img/s)", flush=True)

    def on_train_end(self, history):
        if not history:
            return
        wall = time.perf_counter() - self.start
        scored = [h for h in history if "eval_accuracy" in h]
        if scored:
            best = max(scored, key=lambda h: h["eval_accuracy"])
            print(
                f"done: best test accuracy {best['eval_accuracy']:.2%} at epoch {best['epoch']}, "
                f"wall time {wall:.1f} s",
                flush=True,
            )
        else:
            print(f"done: final train loss {history[-1]['train_loss']:.4f}, wall time {wall:.1f} s", flush=True)

    def close(self):
        self._close_bar()


def _summary_writer_class() -> type:
    """tensorboardX's ``SummaryWriter``, imported without importing torch.

    tensorboardX imports torch, when it is installed, only to name a type in its annotations;
    that is most of a training run's start-up after JAX (BENCHMARKS.md), for scalars that are
    plain floats. While it loads, ``import torch`` fails as if torch were absent (unless torch is
    loaded already), and works again afterwards."""
    if "torch" in sys.modules:
        from tensorboardX import SummaryWriter

        return SummaryWriter
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules["torch"]
    return SummaryWriter


class TensorBoard(Callback):
    """Scalars in ``logdir`` through tensorboardX (no TensorFlow): ``train/loss_step`` per group of
    steps; per epoch ``train/loss``, ``train/images_per_sec``, ``train/learning_rate`` and, with
    evaluation, ``eval/loss`` and ``eval/accuracy``."""

    def __init__(self, logdir: str | os.PathLike, learning_rate: float):
        self.writer = _summary_writer_class()(logdir=str(logdir))
        self.learning_rate = learning_rate

    def on_chunk(self, epoch, step, losses, count):
        self.writer.add_scalar("train/loss_step", float(losses[-1]), step)

    def on_epoch_end(self, epoch, record, state, history):
        w, e = self.writer, epoch + 1
        w.add_scalar("train/loss", record["train_loss"], e)
        w.add_scalar("train/images_per_sec", record["images_per_sec"], e)
        w.add_scalar("train/learning_rate", self.learning_rate, e)
        if "eval_loss" in record:
            w.add_scalar("eval/loss", record["eval_loss"], e)
            w.add_scalar("eval/accuracy", record["eval_accuracy"], e)
        w.flush()

    def close(self):
        self.writer.close()


class HistoryFile(Callback):
    """``path`` (e.g. ``<workdir>/history.json``) rewritten after each epoch with the whole history
    so far: a JSON list of the per-epoch records (full precision), epochs restored from a
    checkpoint included. Replaced atomically, so a reader never sees half a file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def on_epoch_end(self, epoch, record, state, history):
        import json

        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(history, indent=1) + "\n")
        os.replace(tmp, self.path)


def latest_checkpoint(workdir: str | Path) -> int | None:
    """The last finished epoch saved in ``<workdir>/checkpoints``, or None (reads only names:
    orbax renames a checkpoint to its step number once complete)."""
    directory = Path(workdir) / "checkpoints"
    try:
        steps = [int(p.name) for p in directory.iterdir() if p.name.isdigit() and p.is_dir()]
    except OSError:
        return None
    return max(steps, default=None)


#: How orbax words a saved tree that differs from the one asked for (structure, shape or dtype).
_MISMATCH = re.compile(r"do not match|mismatch|not compatible|incompatible", re.IGNORECASE)


def _error_detail(err: BaseException) -> str:
    """The innermost cause's first line, without the object reprs tensorstore puts in messages."""
    inner: BaseException | None = err
    while inner is not None:
        err, inner = inner, inner.__cause__ or inner.__context__
    text = str(err).split("See full TensorStore details", 1)[0]
    text = re.sub(r"<[^<>]* (object at 0x[0-9a-f]+|of [^<>]*)>", "", text)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else 'no detail'}"


class Checkpoints(Callback):
    """orbax checkpoints in ``<workdir>/checkpoints``: one per finished epoch (the state plus a
    JSON ``meta``: the history and ``run``, the run's settings), the last :data:`KEEP_CHECKPOINTS`
    kept. :meth:`resume` reads the latest one back."""

    def __init__(self, workdir: str | os.PathLike, run: dict | None = None):
        import orbax.checkpoint as ocp

        self.ocp = ocp
        self.run = dict(run or {})
        self.directory = (Path(workdir) / "checkpoints").absolute()
        self._abandoned = False
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=KEEP_CHECKPOINTS, create=True, cleanup_tmp_directories=True
            ),
        )

    def latest(self) -> int | None:
        return self.manager.latest_step()

    def _start_over(self) -> str:
        return (
            f"to start over, delete the whole directory {self.directory} (its older checkpoints "
            f"come from the same run) or use another --workdir"
        )

    def restore(self, epoch: int, like: dict) -> tuple[dict, dict]:
        """The state saved after ``epoch`` (shaped, typed and placed as ``like``) and its meta."""
        ocp = self.ocp
        path = self.directory / str(epoch)
        abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), like)
        try:
            out = self.manager.restore(
                epoch,
                args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()),
            )
        except Exception as err:
            detail = _error_detail(err)
            if _MISMATCH.search(detail):  # orbax compares the saved tree with ``like`` before reading
                raise CheckpointError(
                    f"checkpoint {path} does not match this model and optimizer ({detail}); {self._start_over()}"
                ) from None
            earlier = [s for s in self.manager.all_steps() if s < epoch]
            fall_back = f"delete {path} to resume from epoch {max(earlier)}, or " if earlier else ""
            raise CheckpointError(
                f"checkpoint {path} cannot be read ({detail}): it is damaged; {fall_back}{self._start_over()}"
            ) from None
        state, meta = out["state"], out["meta"]
        pairs = zip(jax.tree.leaves(like), jax.tree.leaves(state), strict=True)
        same = jax.tree.structure(like) == jax.tree.structure(state) and all(
            a.shape == b.shape and a.dtype == b.dtype for a, b in pairs
        )
        if not same or not isinstance(meta, dict) or meta.get("epoch") != epoch:
            raise CheckpointError(
                f"checkpoint {path} does not match this model and optimizer (different parameters or "
                f"optimizer state); {self._start_over()}"
            )
        return state, meta

    def resume(self, like: dict) -> tuple[dict, list[dict], int]:
        """``(state, history, finished_epochs)`` from the latest checkpoint; ``like`` unchanged,
        ``[]`` and ``0`` when there is none."""
        latest = self.latest()
        if latest is None:
            return like, [], 0
        state, meta = self.restore(latest, like)
        return state, list(meta.get("history", [])), latest

    def on_epoch_end(self, epoch, record, state, history):
        ocp = self.ocp
        meta = {"epoch": epoch + 1, "history": history, **self.run}
        with deferred_interrupt():  # a Ctrl-C lands after the save has started cleanly
            self.manager.save(
                epoch + 1,
                args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            )

    def abandon(self) -> None:
        """Makes :meth:`close` leave a pending save unfinished, for when another process of a
        multi-process run is gone: the save ends in a barrier of all processes, which would wait
        for it until the runtime's heartbeat timeout. The latest complete checkpoint stays."""
        self._abandoned = True

    def close(self):
        if self._abandoned:
            return
        with deferred_interrupt():  # a pending save is finished, not torn
            self.manager.wait_until_finished()
            self.manager.close()
