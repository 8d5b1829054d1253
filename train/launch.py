"""One process of several (``jax.distributed``): joining, and a watcher for when the runtime aborts.

When joining fails or a peer dies, JAX's distributed client aborts the process (SIGABRT) instead
of raising, with or without ``jax_enable_recoverability`` (measured, jax 0.10.2), and
``jax.distributed.initialize`` takes no callback. So the command line runs each process's trainer
as a child (:func:`run_watched`), its output straight to the terminal. The child tells the watcher
through a pipe that it has joined, then hands it its one-line answer (:func:`answer`), printed once
the child has ended, after whatever the runtime's threads log; when the runtime ends the child
first, the watcher's own line says what to do. SIGTERM is passed on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np

#: The environment variable holding the pipe on which a watched trainer tells its watcher that it
#: has joined the others (``j``), then hands it its last line (the rest, if any).
JOINED_FD = "LOSSES_JAX_TRAIN_JOINED_FD"
RERUN_ALL = "rerun every process to resume from the last checkpoint"
_to_watcher: list[int] = []


def cluster_environment() -> bool:
    """Launched as one of several processes by a cluster JAX detects itself (or JAX's variables)."""
    env = os.environ
    several = int(env.get("SLURM_NTASKS", "1")) > 1 or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
    return several or "JAX_COORDINATOR_ADDRESS" in env


def lost_peer(err: BaseException) -> bool:
    """Whether ``err`` says another process is gone: a Gloo collective (CPU) whose peer closed the
    connection, a failed call to JAX's coordination service (orbax's save barrier), or orbax's
    ``TimeoutError`` waiting at a barrier the dead peer never reached. The one place that reads the
    runtime's text, which has no type of its own (pinned in the tests)."""
    text = str(err)
    gloo = "Gloo" in text and ("Connection closed by peer" in text or "Connection reset by peer" in text)
    barrier_timeout = isinstance(err, TimeoutError) and "barrier" in text
    return gloo or barrier_timeout or "/xla.coordination.CoordinationService/" in text


def join(args) -> str | None:
    """``jax.distributed.initialize`` from the flags or the cluster's environment, tells a watcher,
    and checks that every process was given the same ``--num-processes``; a problem -> its line."""
    import jax
    from jax.experimental import multihost_utils

    timeouts = {"initialization_timeout": args.init_timeout, "heartbeat_timeout_seconds": args.heartbeat_timeout}
    if args.coordinator_address is None:
        jax.distributed.initialize(**timeouts)
    else:
        jax.distributed.initialize(args.coordinator_address, args.num_processes, args.process_id, **timeouts)
    if JOINED_FD in os.environ:
        _to_watcher.append(int(os.environ.pop(JOINED_FD)))
        os.write(_to_watcher[0], b"j")
    mine = jax.process_count() if args.num_processes is None else args.num_processes
    said = np.asarray(multihost_utils.process_allgather(np.int32(mine))).reshape(-1)
    if any(n != jax.process_count() for n in said):
        listing = ", ".join(f"process {i}: {int(n)}" for i, n in enumerate(said))
        return (
            f"argument --num-processes: the processes disagree ({listing}; {jax.process_count()} joined); "
            f"give every process the same --num-processes"
        )
    return None


def answer(line: str) -> None:
    """Says the trainer's one-line answer on stderr: at once, or, in a watched process that has
    joined, through its watcher, which prints it after this process has ended."""
    if _to_watcher:
        os.write(_to_watcher[0], line.encode() + b"\n")
    else:
        print(line, file=sys.stderr, flush=True)


def run_watched(argv: list[str], init_timeout: int, heartbeat_timeout: int) -> int:
    """``python -m train argv`` as a child; returns its exit status, or 1 with one line when the
    distributed runtime aborted it."""
    read, write = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-m", "train", *argv], env={**os.environ, JOINED_FD: str(write)}, pass_fds=(write,)
    )
    os.close(write)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the child too
    forwarded = []
    signal.signal(signal.SIGTERM, lambda signum, frame: forwarded.append(child.send_signal(signum)))
    status = child.wait()
    told = b""
    while chunk := os.read(read, 16):
        told += chunk
    os.close(read)
    joined, line = told[:1] == b"j", told[1:].decode(errors="replace")
    if line:  # its own answer, even if the runtime aborted it afterwards: after all it wrote
        print(line, end="", file=sys.stderr, flush=True)
        return status if status >= 0 else 1
    if status >= 0:
        return status
    if forwarded and status == -signal.SIGTERM:  # ended by the notice passed on, before it joined
        print("interrupted (SIGTERM) before the processes joined; rerun the same command", file=sys.stderr)
        return 128 + signal.SIGTERM
    if not joined:
        print(
            f"error: not every process joined within --init-timeout {init_timeout} s; start all of them with the "
            f"same --coordinator-address (reachable from every host) and --num-processes, each with its own "
            f"--process-id from 0 to N-1",
            file=sys.stderr,
        )
    else:
        print(
            f"error: another process stopped (it died, or did not answer for --heartbeat-timeout {heartbeat_timeout} "
            f"s), so JAX's distributed runtime ended this one ({signal.Signals(-status).name}); {RERUN_ALL}",
            file=sys.stderr,
        )
    return 1
