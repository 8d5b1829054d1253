"""Ctrl-C (SIGINT) during training: the one place that installs SIGINT handlers.

Two concerns share it. The command line wants a Ctrl-C that always stops a run
(:class:`CtrlC`); a checkpoint being written must not be torn in half by one
(:func:`deferred_interrupt`). Python raises ``KeyboardInterrupt`` in the main thread between
any two bytecodes; raised inside orbax's save, it closed the event loop that orbax's writer
threads were still posting to, and the process exited printing their tracebacks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

__all__ = ["CtrlC", "deferred_interrupt"]


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold back SIGINT while the block runs, then deliver it once the block has finished (to the
    handler that was in place before, so a ``KeyboardInterrupt`` is raised after the block, not
    inside it). Outside the main thread, where Python delivers no signals, it does nothing."""
    if not _main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    if previous is None:  # installed outside Python; Python's own is the nearest equivalent
        previous = signal.default_int_handler
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)


class CtrlC:
    """Ctrl-C that always stops training. Python's default handler is replaced because an
    ``asyncio`` runner (as used by checkpointing and data libraries) swaps it for one that only
    cancels its own task, and a library may swallow that cancellation or a KeyboardInterrupt: a
    Ctrl-C during a checkpoint was then lost and training ran on (seen in a test). This handler
    raises ``KeyboardInterrupt`` and, until :meth:`handled` is called, delivers SIGINT again after
    a few seconds, so one that was swallowed is raised again. Install it in the main thread."""

    RETRY_S = 5.0

    def __init__(self) -> None:
        self._handled = threading.Event()
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame):
        if not self._handled.is_set():
            retry = threading.Timer(self.RETRY_S, self._again)
            retry.daemon = True
            retry.start()
        raise KeyboardInterrupt

    def _again(self) -> None:
        if not self._handled.is_set():
            os.kill(os.getpid(), signal.SIGINT)

    def handled(self) -> None:
        """The interruption reached the CLI: further Ctrl-C are ignored while it says so and exits."""
        self._handled.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def restore(self) -> None:
        """Put back the handler that was in place before."""
        self._handled.set()
        signal.signal(signal.SIGINT, self._previous)
