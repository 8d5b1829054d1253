"""Timing, machine description and table formatting shared by the benchmark suites.

Contenders are timed in interleaved rounds after a warm-up (which, for JAX, includes compilation;
compile time is reported apart): times are the median over the rounds, and ratios are given as
the median of the per-round ratios with their min and max, so the table says how much a ratio
moves. These machines are shared and noisy: compare the ratios of one run, not absolute times
across runs.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import os
import pathlib
import platform
import statistics
import sys
import time
import types
from collections.abc import Callable


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}"


def versions() -> str:
    import jax
    import torch

    import losses_jax

    return f"losses_jax {losses_jax.__version__}, jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__}"


def load_baseline(path: str | os.PathLike) -> types.ModuleType:
    """The ``losses_jax`` package of another checkout (``path`` is its repository root or the
    package directory), imported as ``losses_jax_baseline`` beside ours, so that a change is
    measured before and after in the same process and the same rounds."""
    root = pathlib.Path(path)
    package = root if (root / "__init__.py").is_file() else root / "losses_jax"
    if not (package / "__init__.py").is_file():
        raise SystemExit(f"error: argument --baseline: no losses_jax package at {path}")
    name = "losses_jax_baseline"
    spec = importlib.util.spec_from_file_location(
        name, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its relative imports resolve under this name
    spec.loader.exec_module(module)
    return module


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def first_call(fn: Callable[[], object]) -> float:
    """Seconds for the first call (for jitted JAX: tracing + compilation + one run)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclasses.dataclass
class Rounds:
    """Seconds per call of each contender, one sample per round (contenders take turns in every
    round, so a slow stretch of the machine hits all of them alike)."""

    samples: dict[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def ratio(self, name: str, reference: str) -> Spread:
        """``name``'s time over ``reference``'s, round by round: min, median and max."""
        return Spread.of([a / b for a, b in zip(self.samples[name], self.samples[reference], strict=True)])


@dataclasses.dataclass(frozen=True)
class Spread:
    """Min, median and max of a per-round quantity (a ratio, or a rate)."""

    low: float
    median: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(min(values), statistics.median(values), max(values))

    def __str__(self) -> str:
        return f"{self.median:.2f} ({self.low:.2f}-{self.high:.2f})"


def interleaved(fns: dict[str, Callable[[], object]], *, rounds: int = 7, min_time: float = 0.05) -> Rounds:
    """Seconds per call of each callable, measured round-robin: in each of ``rounds`` rounds every
    contender takes one sample in turn. Each callable must block until its work is done. Calls
    taking less than ``min_time`` are looped to reach it, and a sample is their mean.

    Each sample starts with one untimed call: switching between torch and XLA leaves the
    next call paying for the other library's traces (its freed memory handed back to the OS, so
    fresh page faults on the next large buffer; its OpenMP threads still spinning). That first
    call measured up to 2x slower than a steady one for millisecond-scale losses, whichever
    library came second; users run one library at a time, so the steady state is what we report.
    """
    loops = {}
    for name, fn in fns.items():
        fn()  # warm-up
        t = first_call(fn)
        loops[name] = max(1, int(min_time / max(t, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()  # untimed: see above
            start = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / loops[name])
    return Rounds(samples)


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])
