"""What :func:`train.fit` does around the training itself, one :class:`Callback` per concern.

:class:`Progress`, :class:`TensorBoard` and :class:`HistoryFile` run in process 0 only; every
process takes part in :class:`Checkpoints` (orbax's multi-process protocol).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

#: Checkpoints kept in ``<workdir>/checkpoints`` (older ones are deleted).
KEEP_CHECKPOINTS = 3


class CheckpointError(RuntimeError):
    """A checkpoint in the workdir cannot be read or does not fit the model and optimizer."""


class Callback:
    """Does nothing; subclasses override what they need. ``epoch`` is 0-based, ``step`` the
    1-based global step of the last loss in ``losses``. A context manager: :meth:`close` on exit,
    also after an error or an interruption (``fit`` closes each one it made)."""

    def on_epoch_begin(self, epoch: int) -> None: ...

    def on_chunk(self, epoch: int, step: int, losses: np.ndarray, count: int) -> None:
        """``losses``: the per-step losses of the group just finished; ``count``: its examples."""

    def on_epoch_end(self, epoch: int, record: dict, state: dict, history: list[dict]) -> None: ...

    def on_train_end(self, history: list[dict]) -> None: ...

    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class Progress(Callback):
    """A tqdm bar per epoch on stderr (``file``), one line per epoch on stdout, then a summary.
    The bar is removed before anything else is printed, so a following message starts a line."""

    def __init__(self, epochs: int, num_examples: int, file=None):
        self.epochs, self.num_examples = epochs, num_examples
        self.file = file if file is not None else sys.stderr
        self.bar = None
        self.start = time.perf_counter()

    def on_epoch_begin(self, epoch):
        from tqdm.auto import tqdm

        desc = f"epoch {epoch + 1}/{self.epochs}"
        self.bar = tqdm(total=self.num_examples, unit="img", desc=desc, leave=False, file=self.file, dynamic_ncols=True)

    def on_chunk(self, epoch, step, losses, count):
        if self.bar is not None:
            self.bar.update(count)
            self.bar.set_postfix(loss=f"{losses[-1]:.4f}")

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            if not self.file.isatty():  # in a log file the cleared bar leaves no line break
                print(file=self.file, flush=True)

    def on_epoch_end(self, epoch, record, state, history):
        self.close()
        line = f"epoch {epoch + 1}/{self.epochs}: train loss {record['train_loss']:.4f}"
        if "eval_loss" in record:
            line += f", test loss {record['eval_loss']:.4f}, test accuracy {record['eval_accuracy']:.2%}"
        print(f"{line} ({record['images_per_sec']:.0f} img/s)", flush=True)

    def on_train_end(self, history):
        wall = f"wall time {time.perf_counter() - self.start:.1f} s"
        scored = [h for h in history if "eval_accuracy" in h]
        if scored:
            best = max(scored, key=lambda h: h["eval_accuracy"])
            print(f"done: best test accuracy {best['eval_accuracy']:.2%} at epoch {best['epoch']}, {wall}", flush=True)
        elif history:
            print(f"done: final train loss {history[-1]['train_loss']:.4f}, {wall}", flush=True)


class TensorBoard(Callback):
    """Scalars in ``logdir`` through tensorboardX (no TensorFlow): ``train/loss_step`` per group of
    steps; per epoch ``train/loss``, ``train/images_per_sec``, ``train/learning_rate`` and, with
    evaluation, ``eval/loss`` and ``eval/accuracy``."""

    def __init__(self, logdir: str | os.PathLike, learning_rate: float):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(logdir=str(logdir))
        self.learning_rate = learning_rate

    def on_chunk(self, epoch, step, losses, count):
        self.writer.add_scalar("train/loss_step", float(losses[-1]), step)

    def on_epoch_end(self, epoch, record, state, history):
        scalars = {"train/loss": "train_loss", "train/images_per_sec": "images_per_sec"}
        scalars |= {"eval/loss": "eval_loss", "eval/accuracy": "eval_accuracy"}
        for tag, key in scalars.items():
            if key in record:
                self.writer.add_scalar(tag, record[key], epoch + 1)
        self.writer.add_scalar("train/learning_rate", self.learning_rate, epoch + 1)
        self.writer.flush()

    def close(self):
        self.writer.close()


class HistoryFile(Callback):
    """``path`` (e.g. ``<workdir>/history.json``) rewritten after each epoch with the whole history
    so far, epochs restored from a checkpoint included; replaced atomically."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def on_epoch_end(self, epoch, record, state, history):
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(history, indent=1) + "\n")
        os.replace(tmp, self.path)


def latest_checkpoint(workdir: str | os.PathLike) -> int | None:
    """The last finished epoch saved in ``<workdir>/checkpoints`` (orbax's latest complete step), or None."""
    found = ocp.path.step.latest_step_metadata(Path(workdir) / "checkpoints", ocp.path.step.standard_name_format())
    return None if found is None else found.step


def _signature(tree) -> list[tuple[tuple[int, ...], np.dtype]]:
    return [(tuple(a.shape), np.dtype(a.dtype)) for a in jax.tree.leaves(tree)]


class Checkpoints(Callback):
    """orbax checkpoints in ``<workdir>/checkpoints``, one per finished epoch (the state, and a JSON
    ``meta`` with the history and ``run``), the last :data:`KEEP_CHECKPOINTS` kept."""

    def __init__(self, workdir: str | os.PathLike, run: dict | None = None):
        self.run = dict(run or {})
        self.directory = (Path(workdir) / "checkpoints").absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=KEEP_CHECKPOINTS, create=True, cleanup_tmp_directories=True)
        handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)

    def resume(self, like: dict) -> tuple[dict, list[dict], int]:
        """``(state, history, finished_epochs)`` from the latest checkpoint, the state shaped, typed and
        placed as ``like``; ``(like, [], 0)`` without one.

        Raises:
          CheckpointError: its arrays are not those of ``like`` (another model or optimizer), or it
            cannot be read (it is damaged).
        """
        epoch = self.manager.latest_step()
        if epoch is None:
            return like, [], 0
        path = self.directory / str(epoch)
        start_over = (
            f"to start over, delete the whole directory {self.directory} (its older checkpoints come from the "
            f"same run) or use another workdir"
        )
        try:
            fits = _signature(self.manager.item_metadata(epoch)["state"].tree) == _signature(like)
            if fits:
                abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), like)
                args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
                out = self.manager.restore(epoch, args=args)
        except Exception as err:
            failure = type(err).__name__
        else:
            if not fits:
                raise CheckpointError(
                    f"checkpoint {path} does not match this model and optimizer (different parameters or "
                    f"optimizer state); {start_over}"
                )
            return out["state"], list(out["meta"].get("history", [])), epoch
        # Raised here, not in the except block, and after a collection: orbax stops at the first failed
        # read, and what asyncio reports of the reads already ended comes now, before the caller's
        # answer (reads still in flight in tensorstore's threads report when they end).
        gc.collect()
        earlier = [s for s in self.manager.all_steps() if s < epoch]
        fall_back = f"delete {path} to resume from epoch {max(earlier)}, or " if earlier else ""
        raise CheckpointError(f"checkpoint {path} cannot be read ({failure}): it is damaged; {fall_back}{start_over}")

    def on_epoch_end(self, epoch, record, state, history):
        meta = {"epoch": epoch + 1, "history": history, **self.run}
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self.manager.save(epoch + 1, args=args)

    def close(self):
        self.manager.wait_until_finished()  # a pending save is finished, not torn
        self.manager.close()
