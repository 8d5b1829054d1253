"""One process of several (``jax.distributed``), watched so that every failure is one line.

When the JAX distributed runtime gives up (the others did not join within the init timeout, a
peer died, the coordinator went away), it does not raise: its C++ client logs a fatal message,
a stack trace, and aborts the process. :func:`run_watched` therefore runs the trainer in a child
process and relays its output: stdout untouched, stderr line by line until the first error,
after which the runtime's log lines are swallowed and one ``error:`` line says what happened
(exit status 1). The child is killed with its parent (Linux), so a killed launcher leaves no
orphan holding the devices.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, cast

__all__ = ["WORKER_VARIABLE", "lost_peer", "relay", "run_watched", "runtime_message"]

#: Set in the child's environment: the process that trains (not the watcher).
WORKER_VARIABLE = "LOSSES_JAX_TRAIN_WORKER"

_ROOT = Path(__file__).resolve().parent.parent  # holds our train/ and models/
# absl/glog records: severity, date, time, thread, file:line]; at a line's start or right after a
# progress bar that ended without a newline
_LOG_RECORD = re.compile(rb"(?:^|(?<=[^A-Za-z0-9]))([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^ \]]+\] ?(.*)$")
# A Python logging record at ERROR or CRITICAL in logging's default format (LEVEL:logger:message),
# as absl's Python logger writes when no absl handler was set up
_PY_ERROR_RECORD = re.compile(rb"^(?:ERROR|CRITICAL):[\w.]+:")


def lost_peer(err: BaseException) -> bool:
    """Whether ``err`` (raised by a computation) says that another process's connection is gone:
    a collective (Gloo, on CPU) whose peer died."""
    text = str(err)
    return "Gloo" in text or "Connection closed by peer" in text or "Connection reset by peer" in text


def runtime_message(fatal: str, init_timeout: int, heartbeat_timeout: int = 100) -> str:
    """The one line for the runtime's message ``fatal`` (a fatal log message, or the error that
    joining raised)."""
    if "Unexpected task registered" in fatal:  # a process id the coordinator does not count
        task = re.search(r"task[=:](\d+)", fatal)
        which = f"process {task[1]}" if task else "this process"
        return (
            f"error: argument --process-id: the coordinator refused {which}, beyond its own --num-processes; "
            f"start every process with the same --num-processes, each with its own --process-id from 0 to N-1"
        )
    if "RegisterTask" in fatal or "Wait_for_all_tasks_to_register" in fatal:
        return (
            f"error: not every process joined within --init-timeout {init_timeout} s; start all of them "
            f"with the same --coordinator-address (reachable from every host) and --num-processes, each "
            f"with its own --process-id"
        )
    if "heartbeat" in fatal:  # a peer died (or hangs): the coordinator stopped hearing from it
        return (
            f"error: another process stopped answering for --heartbeat-timeout {heartbeat_timeout} s (it died "
            f"or hangs), so this one stops too; rerun every process to resume from the last checkpoint"
        )
    status = next((line.strip() for line in fatal.splitlines() if "Status:" in line), "")
    detail = status.split("Status:", 1)[1].strip() if status else fatal.splitlines()[0].strip()
    return (
        f"error: another process stopped, so this one stops too (JAX distributed runtime: {detail}); "
        f"rerun every process to resume from the last checkpoint"
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def relay(fd: int, out: IO[bytes]) -> tuple[list[bytes], bool]:
    """Copies the child's stderr (file descriptor ``fd``, read to its end) to ``out`` until the
    child's own ``error:`` or ``interrupted`` line, which ends what is copied. From the first error
    record on (the runtime's absl/glog ``E`` record, or a Python ``logging`` record at ERROR or
    CRITICAL, such as orbax's background checkpoint thread reporting a lost peer with its
    traceback) nothing else is copied: the one line that explains it comes from the child, or from
    :func:`runtime_message`. Returns the fatal (``F``) record's lines, if any, and whether the
    child said its line."""
    fatal: list[bytes] = []
    said_error = False
    quiet = False  # after the first error: nothing more of the runtime's noise
    pending = b""
    while chunk := os.read(fd, 1 << 16):
        pending += chunk
        cut = max(pending.rfind(b"\n"), pending.rfind(b"\r"))
        if cut < 0:
            continue
        done, pending = pending[: cut + 1], pending[cut + 1 :]
        record = False  # a runtime log record's continuation lines come in the same write
        for line in done.splitlines(keepends=True):
            log = _LOG_RECORD.search(line.rstrip(b"\r\n"))
            if said_error:
                continue  # the child's own last line is out: nothing after it
            if fatal:
                fatal.append(line)  # the fatal message's continuation lines and the stack trace
                continue
            if log and log.start() and not (quiet or record):
                out.write(line[: log.start()] + b"\n")  # the progress bar the record interrupted
            if line.startswith((b"error: ", b"interrupted")):
                said_error = True
            elif log:
                if log[1] == b"F":
                    fatal.append(log[2] + b"\n")
                quiet = quiet or log[1] == b"E"
                record = True
                continue
            elif _PY_ERROR_RECORD.match(line):
                quiet = True
                continue
            elif quiet or record:
                continue
            out.write(line)
            out.flush()
    return fatal, said_error


def run_watched(argv: list[str], prog: str, init_timeout: int, heartbeat_timeout: int = 100) -> int:
    """Runs ``main(argv, prog)`` of :mod:`train.cli` in a child process and relays its output;
    returns the exit status to end with (the child's, or 1 after a runtime failure)."""
    env = dict(os.environ, **{WORKER_VARIABLE: "1"})
    env["PYTHONPATH"] = str(_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    code = f"import sys; from train.cli import run_and_exit; run_and_exit(sys.argv[1:], prog={prog!r})"
    # -P: the working directory is not put on sys.path (a user's `models` package stays hidden).
    child = subprocess.Popen(
        [sys.executable, "-P", "-c", code, *argv],
        env=env,
        stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the child too; it answers
    signal.signal(signal.SIGTERM, lambda *_: child.kill())
    stderr_fd = cast(IO[bytes], child.stderr).fileno()  # stderr=PIPE: always a pipe
    try:
        fatal, said_error = relay(stderr_fd, sys.stderr.buffer)
        status = child.wait()
    finally:
        if child.poll() is None:
            child.kill()
        signal.signal(signal.SIGINT, previous)
    if fatal and not said_error:
        text = b"".join(fatal).decode(errors="replace").split("*** Check failure stack trace", 1)[0]
        print(runtime_message(text, init_timeout, heartbeat_timeout), file=sys.stderr, flush=True)
        return 1
    if status < 0 and not said_error:
        print(f"error: the training process was killed ({signal.Signals(-status).name})", file=sys.stderr, flush=True)
        return 1
    if status > 0 and not said_error:  # an error record swallowed, then an end without our own line
        print(f"error: the training process failed (exit status {status})", file=sys.stderr, flush=True)
    return status
