"""The trainer's command line: ``losses-jax-train`` (console script) or ``python -m train``.

Examples::

    losses-jax-train                                  # Tudui, CIFAR-10, SGD lr 0.01, batch 64
    losses-jax-train --model lenet --optimizer adam --lr 1e-3 --epochs 20 --workdir runs/lenet
    losses-jax-train --dataset fake --epochs 1        # smoke run, no data needed

Every argument is checked before any data is read; a mistake, missing data, a damaged
checkpoint or a NaN loss is one line on stderr (``error: ...``) and exit status 1 or 2; Ctrl-C is
one line and status 130, the checkpoints of the finished epochs intact.

Offline: put the official cifar-10-binary.tar.gz in DATA_DIR/downloads/manual/ and pass
--data-dir DATA_DIR. Rerunning with the same --workdir resumes from the latest checkpoint.
Several hosts: start one process per host with ``--coordinator-address HOST:PORT`` (process 0's
host and a free port), ``--num-processes N`` and ``--process-id I`` (0 to N-1), or under SLURM /
Open MPI without them (JAX finds them itself); jax.distributed is then initialized, the processes
train as one, and process 0 prints and writes the logs. ``--init-timeout`` bounds the wait for
the others to join, ``--heartbeat-timeout`` the wait for a peer that stopped answering; a process
that cannot join, or a peer that dies, ends every process with one line.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

from ._interrupts import CtrlC
from ._origin import CONSOLE_SCRIPT
from .launch import WORKER_VARIABLE, lost_peer, run_watched

MODELS = ("tudui", "lenet")
#: Exit status after Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130
SEED_MAX = 2**32 - 1


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the usage block
        self.exit(2, f"error: {message} (see --help)\n")


def _integer(low: int, high: int | None = None):
    allowed = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def parse_args(argv=None, prog: str = "python -m train") -> argparse.Namespace:
    p = _Parser(
        prog=prog,
        description="Train a tutorial CNN on CIFAR-10 with cross-entropy (losses_jax), "
        "jit-compiled and data-parallel over all devices. Defaults are the PyTorch tutorials' "
        "recipe: Tudui, CIFAR-10, SGD, learning rate 0.01, batch 64.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--dataset",
        choices=("cifar10", "fake"),
        default="cifar10",
        help="cifar10: the real data through tensorflow-datasets; fake: random "
        "CIFAR-shaped tfds mock data for smoke runs (no files, no network)",
    )
    p.add_argument(
        "--model",
        choices=MODELS,
        default="tudui",
        help="tudui: the tutorials' 3-conv network; lenet: the LeNet-like variant",
    )
    p.add_argument(
        "--epochs",
        type=_integer(0),
        default=10,
        help="total passes over the training set (a resumed run stops at this total); an integer >= 0",
    )
    p.add_argument(
        "--batch-size",
        type=_integer(1),
        default=64,
        help="global batch size, an integer >= 1 divisible by the number of devices",
    )
    p.add_argument("--lr", type=_positive_float, default=0.01, help="constant learning rate, a finite number > 0")
    p.add_argument(
        "--optimizer",
        choices=("sgd", "momentum", "adam"),
        default="sgd",
        help="sgd: plain SGD (the tutorials'); momentum: SGD with momentum 0.9; adam",
    )
    p.add_argument(
        "--workdir",
        default=None,
        help="directory for TensorBoard scalars and orbax checkpoints (every epoch, "
        "last 3 kept); rerunning with it resumes. None: no logs, no checkpoints",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="tensorflow-datasets data dir (default $TFDS_DATA_DIR or "
        "~/tensorflow_datasets); offline, put cifar-10-binary.tar.gz in "
        "DATA_DIR/downloads/manual/. Created only when a download starts",
    )
    p.add_argument(
        "--no-download",
        action="store_true",
        help="never use the network: CIFAR-10 must already be prepared in the data dir "
        "or its archive be in DATA_DIR/downloads/manual/",
    )
    p.add_argument(
        "--seed",
        type=_integer(0, SEED_MAX),
        default=0,
        help=f"seeds the parameter initialization and the shuffling (0 to {SEED_MAX}): "
        "same seed, same machine, same losses",
    )
    p.add_argument(
        "--fake-size", type=_integer(1), default=512, help="examples per split for --dataset fake, an integer >= 1"
    )
    p.add_argument(
        "--steps-per-call",
        type=_integer(1),
        default=None,
        help="training steps between two looks of the host at the losses (progress "
        "bar, NaN check), an integer >= 1. None: about 1/20 of an epoch",
    )
    group = p.add_argument_group(
        "several processes (hosts)",
        "one process per host, all with the same flags except --process-id; without these, JAX's "
        "own detection (SLURM, Open MPI) or a single process",
    )
    group.add_argument(
        "--coordinator-address",
        type=_host_port,
        default=None,
        metavar="HOST:PORT",
        help="process 0's host name or address and a free port on it, the same for every process",
    )
    group.add_argument(
        "--num-processes", type=_integer(1), default=None, help="how many processes train together, an integer >= 1"
    )
    group.add_argument(
        "--process-id", type=_integer(0), default=None, help="this process's number, 0 to --num-processes - 1"
    )
    group.add_argument(
        "--init-timeout",
        type=_integer(1),
        default=300,
        metavar="SECONDS",
        help="how long a process waits for all the others to join before it gives up, an integer >= 1",
    )
    group.add_argument(
        "--heartbeat-timeout",
        type=_integer(1),
        default=100,
        metavar="SECONDS",
        help="how long a process may go without a sign of life (it died or hangs) before every other "
        "process stops with an error, an integer >= 1; the same for every process (100: JAX's default)",
    )
    args = p.parse_args(argv)
    launch = {"--coordinator-address": args.coordinator_address, "--num-processes": args.num_processes}
    launch["--process-id"] = args.process_id
    given = [flag for flag, value in launch.items() if value is not None]
    if given and len(given) < len(launch):
        missing = next(flag for flag in launch if flag not in given)
        p.error(f"argument {missing}: required with {' and '.join(given)}")
    if given and args.process_id >= args.num_processes:
        p.error(
            f"argument --process-id: must be from 0 to {args.num_processes - 1} "
            f"(--num-processes {args.num_processes}), got {args.process_id}"
        )
    return args


def _host_port(text: str) -> str:
    host, colon, port = text.rpartition(":")
    if not (colon and host and port.isdigit() and 1 <= int(port) <= 65535):
        raise argparse.ArgumentTypeError(f"must be HOST:PORT with a port from 1 to 65535, got {text!r}")
    return text


def _writable_dir_problem(flag: str, path: Path, create: bool) -> str | None:
    """Why ``path`` cannot be used (or, with ``create``, made) as a directory; None if it can."""
    if path.exists():
        if not path.is_dir():
            return f"argument {flag}: {path} exists and is not a directory"
        if create and not os.access(path, os.W_OK | os.X_OK):
            return f"argument {flag}: {path} is not writable"
        return None
    if not create:
        return None
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"argument {flag}: cannot create {path}: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"argument {flag}: cannot create {path}: {parent} is not writable"
    return None


def check_paths(args: argparse.Namespace) -> str | None:
    """The first problem with ``--workdir`` or ``--data-dir``, without creating either."""
    if args.workdir is not None:
        problem = _writable_dir_problem("--workdir", Path(args.workdir).expanduser(), create=True)
        if problem:
            return problem
    if args.data_dir is not None and args.dataset == "cifar10":
        return _writable_dir_problem("--data-dir", Path(args.data_dir).expanduser(), create=False)
    return None


def _cluster_environment() -> bool:
    """Launched as one of several processes by a cluster JAX detects itself (or JAX's variables)."""
    env = os.environ
    return (
        "JAX_COORDINATOR_ADDRESS" in env
        or int(env.get("SLURM_NTASKS", "1")) > 1
        or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
    )


def _maybe_distributed(args: argparse.Namespace) -> str | None:
    """jax.distributed.initialize() from the flags, or from the cluster's environment; then every
    process checks that all agree on --num-processes. A problem -> its one-line message."""
    import jax

    if jax.distributed.is_initialized():
        return None
    if args.coordinator_address is not None:
        jax.distributed.initialize(
            args.coordinator_address,
            args.num_processes,
            args.process_id,
            initialization_timeout=args.init_timeout,
            heartbeat_timeout_seconds=args.heartbeat_timeout,
        )
    elif _cluster_environment():
        jax.distributed.initialize(
            initialization_timeout=args.init_timeout, heartbeat_timeout_seconds=args.heartbeat_timeout
        )
    else:
        return None
    import numpy as np
    from jax.experimental import multihost_utils

    # Only process 0 prints; the others' stdout goes nowhere from here on. Process 0's is muted
    # for the first exchange, which connects the processes (Gloo says so on stdout).
    stdout = os.dup(1)
    sys.stdout.flush()
    _to_devnull(1)
    try:
        mine = jax.process_count() if args.num_processes is None else args.num_processes
        said = np.asarray(multihost_utils.process_allgather(np.int32(mine))).reshape(-1)
    finally:
        if jax.process_index() == 0:
            os.dup2(stdout, 1)
        os.close(stdout)
    if any(n != jax.process_count() for n in said):
        listing = ", ".join(f"process {i}: {int(n)}" for i, n in enumerate(said))
        return (
            f"argument --num-processes: the processes disagree ({listing}; {jax.process_count()} joined); "
            f"give every process the same --num-processes"
        )
    return None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    if lost_peer(err):
        return (
            f"lost the connection to another process ({text.splitlines()[0]}); rerun every process to "
            f"resume from the last checkpoint"
        )
    return text.splitlines()[0] if text else type(err).__name__


def _interrupted_message(workdir: str | None) -> str:
    from .callbacks import latest_checkpoint

    if workdir is None:
        return "interrupted; nothing was saved (no --workdir), a rerun starts over"
    latest = latest_checkpoint(workdir)
    if latest is None:
        return "interrupted before the first checkpoint; rerun the same command to start over"
    return f"interrupted; rerun the same command to resume from epoch {latest}"


def main(argv=None, prog: str = "python -m train") -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv, prog)
    problem = check_paths(args)
    if problem:
        print(f"error: {problem} (see --help)", file=sys.stderr)
        return 2
    if args.epochs == 0:
        print("nothing to train: --epochs 0")
        return 0
    several = args.coordinator_address is not None or _cluster_environment()
    if several and WORKER_VARIABLE not in os.environ:
        return run_watched(argv, prog, args.init_timeout, args.heartbeat_timeout)
    ctrl_c = CtrlC() if threading.current_thread() is threading.main_thread() else None
    try:
        status = _run(args)
    except KeyboardInterrupt:
        if ctrl_c is not None:
            ctrl_c.handled()
        print(_interrupted_message(args.workdir), file=sys.stderr, flush=True)
        return _leave(INTERRUPTED, several)
    finally:
        if ctrl_c is not None:
            ctrl_c.restore()
    return _leave(status, several)


def _leave(status: int, several: bool) -> int:
    if several and status:
        # Leave at once: JAX's exit handler would wait for the other processes (which may be gone).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _run(args: argparse.Namespace) -> int:
    from .callbacks import latest_checkpoint

    if args.workdir is not None:
        latest = latest_checkpoint(args.workdir)
        if latest is not None and latest >= args.epochs:
            print(
                f"nothing left to train: {Path(args.workdir) / 'checkpoints' / str(latest)} holds "
                f"{latest} finished epochs and --epochs is {args.epochs}; pass a larger --epochs "
                f"to train further"
            )
            return 0
    problem = _maybe_distributed(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    import jax
    from flax import nnx

    import models

    from . import CheckpointError, DataUnavailableError, NonFiniteLossError, fit, load_dataset

    n_dev = jax.device_count()
    if args.batch_size % n_dev:
        print(
            f"error: argument --batch-size: {args.batch_size} does not divide over the {n_dev} "
            f"devices; use a multiple of {n_dev} (see --help)",
            file=sys.stderr,
        )
        return 2
    main_process = jax.process_index() == 0
    say = print if main_process else (lambda *a, **k: None)
    t0 = time.perf_counter()
    try:
        train_data, test_data = load_dataset(
            args.dataset, args.data_dir, fake_size=args.fake_size, download=not args.no_download
        )
    except DataUnavailableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    say(
        f"{args.dataset}: {len(train_data[0])} train / {len(test_data[0])} test images "
        f"(loaded in {time.perf_counter() - t0:.1f} s); {n_dev} device(s): "
        f"{jax.devices()[0].platform}",
        flush=True,
    )

    cls = {"tudui": models.Tudui, "lenet": models.LeNet}[args.model]
    model = cls(rngs=nnx.Rngs(args.seed))
    try:
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
    except (CheckpointError, NonFiniteLossError, ValueError) as err:
        print(f"error: {_first_line(err)}", file=sys.stderr)
        return 1
    except jax.errors.JaxRuntimeError as err:  # a collective with a process that is gone, ...
        print(f"error: {_first_line(err)}", file=sys.stderr)
        return 1
    except OSError as err:  # the workdir became unwritable, the disk is full, ...
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


def run_and_exit(argv: list[str] | None = None, prog: str = "python -m train") -> NoReturn:
    """``main(argv, prog)`` as a whole process: every way the command line ends (``python -m
    train``, the console script, each watched process of a multi-process run). Reports of a closed
    event loop are dropped first (:func:`drop_closed_loop_reports`) and the process ends through
    :func:`exit_with`."""
    drop_closed_loop_reports()
    exit_with(main(argv, prog))


def drop_closed_loop_reports() -> None:
    """From now on, this process does not print the "Event loop is closed" errors that come with
    a checkpoint that cannot be read; every other unraisable exception is reported as before.

    orbax reads a checkpoint on an asyncio event loop that it closes as soon as one read fails;
    tensorstore's reads still in flight then complete and post to that closed loop, from its own
    threads and at any moment, and report the RuntimeError as unraisable, with a traceback, often
    before the one-line answer about the damaged checkpoint. A whole process (the command line)
    may drop them; a library must not, so this is not done by :class:`train.Checkpoints`."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        err = unraisable.exc_value
        if isinstance(err, RuntimeError) and str(err) == "Event loop is closed":
            return
        previous(unraisable)

    sys.unraisablehook = hook


def exit_with(status: int) -> NoReturn:
    """End the process with ``status``. After a failure its one-line answer has been printed;
    what libraries' background threads may still write while the interpreter shuts down (asyncio's
    "Task was destroyed but it is pending!" for the coroutines of a checkpoint orbax could not read)
    is not for the user, so stderr goes to /dev/null first."""
    sys.stdout.flush()
    sys.stderr.flush()
    if status:
        _to_devnull(2)
    sys.exit(status)


def _to_devnull(fd: int) -> None:
    """File descriptor ``fd`` (1 or 2) writes to /dev/null from now on, whoever writes to it."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def console_main() -> None:
    """Entry point of the ``losses-jax-train`` console script."""
    run_and_exit(prog=CONSOLE_SCRIPT)
