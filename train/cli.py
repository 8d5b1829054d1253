"""The trainer's command line: ``python -m train --help`` from the repository's root.

Every flag is checked by the parser before any data is read. A user's mistake (a flag, missing
data, a damaged checkpoint, a NaN loss) is one line on stderr, ``error: ...``, and exit status 2
or 1; anything unexpected keeps its traceback. Ctrl-C and SIGTERM stop training at a step
boundary with one line saying how to resume, exit status 130 or 143.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from pathlib import Path

import jax
from flax import nnx

import models

from . import launch
from .callbacks import CheckpointError, latest_checkpoint
from .data import DataUnavailableError, load_cifar10, load_fake
from .loop import NonFiniteLossError, fit


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the usage block
        self.exit(2, f"error: {message} (see --help)\n")


def _number(convert, accepted: str, ok):
    """An argparse type: ``convert(text)`` where ``ok`` accepts it, else "must be ``accepted``"."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {accepted}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {accepted}, got {text}")
        return value

    return parse


def _integer(low: int, high: int | None = None):
    accepted = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
    return _number(int, accepted, lambda value: low <= value and (high is None or value <= high))


_positive_float = _number(float, "a finite number > 0", lambda value: value > 0 and math.isfinite(value))


def _host_port(text: str) -> str:
    host, colon, port = text.rpartition(":")
    if not (colon and host and port.isdigit() and 1 <= int(port) <= 65535):
        raise argparse.ArgumentTypeError(f"must be HOST:PORT with a port from 1 to 65535, got {text!r}")
    return text


def _directory(create: bool):
    """A directory that exists, or (``create``) can be made and written to; nothing is created."""

    def parse(text: str) -> str:
        path = Path(text).expanduser()
        if path.exists() and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{path} exists and is not a directory")
        if create:
            parent = path.absolute()
            while not parent.exists():
                parent = parent.parent
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"cannot create {path}: {parent} is not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                what = path if parent == path.absolute() else f"cannot create {path}: {parent}"
                raise argparse.ArgumentTypeError(f"{what} is not writable")
        return text

    return parse


def parse_args(argv=None) -> argparse.Namespace:
    p = _Parser(
        prog="python -m train",
        description="Train a tutorial CNN on CIFAR-10 with cross-entropy (losses_jax), jit-compiled and "
        "data-parallel over all devices. Defaults are the PyTorch tutorials' recipe: Tudui, CIFAR-10, SGD, "
        "learning rate 0.01, batch 64.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = p.add_argument
    add("--dataset", choices=("cifar10", "fake"), default="cifar10",
        help="cifar10: the real data through tensorflow-datasets; fake: tfds mock data for smoke runs")  # fmt: skip
    add("--model", choices=("tudui", "lenet"), default="tudui",
        help="tudui: the tutorials' 3-conv network; lenet: the LeNet-like variant")  # fmt: skip
    add("--epochs", type=_integer(1), default=10,
        help="total passes over the training set (a resumed run stops at this total)")  # fmt: skip
    add("--batch-size", type=_integer(1), default=64, help="global batch size, a multiple of the number of devices")
    add("--lr", type=_positive_float, default=0.01, help="constant learning rate, a finite number > 0")
    add("--optimizer", choices=("sgd", "momentum", "adam"), default="sgd",
        help="sgd: plain SGD (the tutorials'); momentum: SGD with momentum 0.9; adam")  # fmt: skip
    add("--workdir", type=_directory(create=True), default=None,
        help="TensorBoard scalars, history.json and orbax checkpoints (every epoch, last 3 kept); rerunning "
        "with it resumes. None: nothing is saved")  # fmt: skip
    add("--data-dir", type=_directory(create=False), default=None,
        help="tensorflow-datasets data dir (default $TFDS_DATA_DIR or ~/tensorflow_datasets); offline, put "
        "cifar-10-binary.tar.gz in DATA_DIR/downloads/manual/. Created only when a download starts")  # fmt: skip
    add("--no-download", action="store_true", help="never use the network: the data must be in the data dir")
    add(
        "--seed",
        type=_integer(0, 2**32 - 1),
        default=0,
        help="seeds initialization and shuffling: same seed, same losses",
    )
    add("--fake-size", type=_integer(1), default=512, help="examples per split for --dataset fake")
    add("--steps-per-call", type=_integer(1), default=None,
        help="training steps between two looks of the host at the losses (progress, NaN check, signals). "
        "None: about 1/20 of an epoch")  # fmt: skip
    group = p.add_argument_group(
        "several processes (hosts)",
        "one process per host, all with the same flags but --process-id; without these, JAX's own detection "
        "(SLURM, Open MPI) or one process",
    )
    add = group.add_argument
    add("--coordinator-address", type=_host_port, default=None, metavar="HOST:PORT",
        help="process 0's host and a free port on it, the same for every process")  # fmt: skip
    add("--num-processes", type=_integer(1), default=None, help="how many processes train together")
    add("--process-id", type=_integer(0), default=None, help="this process's number, 0 to --num-processes - 1")
    add("--init-timeout", type=_integer(1), default=300, metavar="SECONDS",
        help="how long a process waits for all the others to join")  # fmt: skip
    add("--heartbeat-timeout", type=_integer(1), default=100, metavar="SECONDS",
        help="how long a process may be silent (dead or hung) before the others stop; the same for every "
        "process (100: JAX's default)")  # fmt: skip
    args = p.parse_args(argv)
    trio = {"--coordinator-address": args.coordinator_address, "--num-processes": args.num_processes}
    trio["--process-id"] = args.process_id
    given = [flag for flag, value in trio.items() if value is not None]
    missing = [flag for flag in trio if flag not in given]
    if given and missing:
        p.error(f"argument {missing[0]}: required with {' and '.join(given)}")
    if given and args.process_id >= args.num_processes:
        n = args.num_processes
        p.error(f"argument --process-id: must be from 0 to {n - 1} (--num-processes {n}), got {args.process_id}")
    return args


def main(argv=None) -> int:
    """The command line; returns the exit status (a flag mistake exits at once, status 2)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    several = args.coordinator_address is not None or launch.cluster_environment()
    if several and launch.JOINED_FD not in os.environ:
        return launch.run_watched(argv, args.init_timeout, args.heartbeat_timeout)
    try:
        status = _run(args, several)
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", signal.SIGINT)
        launch.answer(_interrupted(args.workdir, signum))
        status = 128 + signum
    if several and status not in (0, 128 + signal.SIGINT, 128 + signal.SIGTERM):
        # At once: JAX's exit handler would wait in a barrier for the other processes, which may be gone.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _interrupted(workdir: str | None, signum: int) -> str:
    head = "interrupted" if signum == signal.SIGINT else f"interrupted ({signal.Signals(signum).name})"
    if workdir is None:
        return f"{head}; nothing was saved (no --workdir), a rerun starts over"
    latest = latest_checkpoint(workdir)
    if latest is None:
        return f"{head} before the first checkpoint; rerun the same command to start over"
    return f"{head}; rerun the same command to resume from epoch {latest}"


def _run(args: argparse.Namespace, several: bool) -> int:
    problem = launch.join(args) if several else None
    if problem:
        launch.answer(f"error: {problem}")
        return 2
    t0 = time.perf_counter()
    try:
        if args.dataset == "fake":
            train_data, test_data = load_fake(args.fake_size)
        else:
            train_data, test_data = load_cifar10(args.data_dir, download=not args.no_download)
        if jax.process_index() == 0:
            print(
                f"{args.dataset}: {len(train_data[1])} train / {len(test_data[1])} test images (loaded in "
                f"{time.perf_counter() - t0:.1f} s); {jax.device_count()} device(s): {jax.devices()[0].platform}",
                flush=True,
            )
        model = {"tudui": models.Tudui, "lenet": models.LeNet}[args.model](rngs=nnx.Rngs(args.seed))
        fit(
            model,
            train_data,
            test_data,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            optimizer=args.optimizer,
            seed=args.seed,
            workdir=args.workdir,
            steps_per_call=args.steps_per_call,
            verbose=True,
        )
    except DataUnavailableError as err:
        launch.answer(f"error: {err.advice('--data-dir DIR', 'run the same command again', '--dataset fake')}")
        return 2
    except Exception as err:
        if launch.lost_peer(err):  # a collective whose peer is gone (a ValueError or JaxRuntimeError)
            launch.answer(f"error: lost the connection to another process; {launch.RERUN_ALL}")
        elif isinstance(err, OSError):  # the workdir became unwritable, the disk is full, ...
            launch.answer(f"error: {type(err).__name__}: {err}")
        elif isinstance(err, (CheckpointError, NonFiniteLossError, ValueError)):
            launch.answer(f"error: {err}")
        else:
            raise
        return 1
    return 0
