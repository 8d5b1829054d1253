"""linear_cross_entropy value + gradient: peak memory growth and time, losses_jax vs torch.

    python benchmarks/linear_cross_entropy.py            # N=4096, H=256, V=65536, float32
    python benchmarks/linear_cross_entropy.py --n 1024 --v 16384 --runs 3   # a quicker look

Every variant runs in a fresh subprocess (so no variant inherits another's allocator state) and
computes the loss and the gradients of ``input`` and ``linear_weight`` (mean reduction, class-index
targets, no bias):

* ``losses_jax chunked``: ``losses_jax.linear_cross_entropy(..., options=LinearCrossEntropyOptions())``
  under ``jax.jit(jax.value_and_grad(...))``.
* ``jax plain``: ``losses_jax.cross_entropy(x @ W.T, t)`` under the same ``jit(value_and_grad)``.
* ``torch chunked``: ``torch.nn.functional.linear_cross_entropy(..., options=LinearCrossEntropyOptions())``
  and ``.backward()`` (torch's default chunking: 8-row blocks at the default shape; ~10 minutes
  per call on 2 loaded cores).
* ``torch chunked 64``: the same with ``batch_chunk_size=64``, the block our ``'auto'`` picks.
* ``torch plain``: ``torch.nn.functional.cross_entropy(x @ W.T, t)`` and ``.backward()``.

Memory: the growth of the peak resident set over each variant's first call after set-up (and,
for JAX, after compilation): ``echo 5 > /proc/self/clear_refs`` resets the kernel's peak-RSS
counter (``VmHWM``, which ``ru_maxrss`` reports too) to the current RSS right before the call, so
the number excludes JIT compilation and everything earlier, which a ``ru_maxrss`` delta from the
creation of the inputs would count. The first call is the one to measure: XLA's CPU runtime may
keep its temporaries for reuse, so later calls touch no new pages. Outputs (the loss and the
gradients, 68 MiB at the default size) are included: every variant must make them. (Forcing
glibc to mmap every block with ``MALLOC_MMAP_THRESHOLD_`` was tried and dropped: it slowed the
chunked JAX path's repeated calls by half, and the first-call peak needs no help.) For JAX we also print XLA's own account
(``compiled.memory_analysis()``: temporaries + outputs).

Time: the median of ``--runs`` further calls per variant. The workers stay alive and the parent
asks each in turn for one call per round, so the variants' timed calls interleave and share the
machine's (varying) load alike. JAX compile time is reported apart. torch's chunked op is too slow
on CPU to repeat (minutes per call): its time is its first call's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

VARIANTS = ("losses_jax chunked", "jax plain", "torch chunked 64", "torch plain", "torch chunked")
# torch's chunked op on CPU runs at ~1 GFLOP/s (its default chunks are a few rows), i.e. minutes
# per call at the default size: its time is its first (memory-measured) call's, not re-run.
SLOW_RUNS = ("torch chunked", "torch chunked 64")
MiB = 2**20


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def _reset_peak() -> int:
    """Reset the peak-RSS counter to the current RSS; return the current RSS in bytes."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS") * 1024


def _peak_growth(base: int) -> int:
    return _status_kib("VmHWM") * 1024 - base


def _inputs(n, h, v, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h), dtype=np.float32)
    w = (rng.standard_normal((v, h), dtype=np.float32) / np.sqrt(h)).astype(np.float32)
    t = rng.integers(0, v, size=n)
    return x, w, t


def _worker_jax(variant, n, h, v):
    import jax
    import jax.numpy as jnp

    import losses_jax

    x, w, t = _inputs(n, h, v)
    x, w, t = jnp.asarray(x), jnp.asarray(w), jnp.asarray(t, jnp.int32)
    jax.block_until_ready((x, w, t))
    if variant == "losses_jax chunked":
        opts = losses_jax.LinearCrossEntropyOptions()

        def loss(x, w):
            return losses_jax.linear_cross_entropy(x, w, t, options=opts)
    else:

        def loss(x, w):
            return losses_jax.cross_entropy(x @ w.T, t)

    f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    t0 = time.perf_counter()
    compiled = f.lower(x, w).compile()
    compile_s = time.perf_counter() - t0
    ma = compiled.memory_analysis()
    xla_bytes = ma.temp_size_in_bytes + ma.output_size_in_bytes

    def call():
        out = jax.block_until_ready(compiled(x, w))
        return float(out[0])

    return dict(compile_s=compile_s, xla_bytes=xla_bytes), call


def _worker_torch(variant, n, h, v):
    import torch
    import torch.nn.functional as F

    x, w, t = _inputs(n, h, v)
    x = torch.from_numpy(x).requires_grad_()
    w = torch.from_numpy(w).requires_grad_()
    t = torch.from_numpy(t)
    opts = None
    if variant == "torch chunked":
        opts = torch.nn.LinearCrossEntropyOptions()
    elif variant == "torch chunked 64":  # the block size our 'auto' picks at the default shape
        opts = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=64)

    def call():
        x.grad = None
        w.grad = None
        if opts is None:
            out = F.cross_entropy(x @ w.T, t)
        else:
            out = F.linear_cross_entropy(x, w, t, options=opts)
        out.backward()
        return out.item()

    return dict(compile_s=None, xla_bytes=None), call


def _worker(args):
    """Set up, make the first (memory-measured) call, then one timed call per 'run' on stdin.

    The parent drives every variant's worker in turn, so the timed calls of all variants
    interleave in time and share the machine's (varying) load alike.
    """
    fn = _worker_torch if args.worker.startswith("torch") else _worker_jax
    info, call = fn(args.worker, args.n, args.h, args.v)
    base = _reset_peak()
    t0 = time.perf_counter()
    info["loss"] = call()  # the first call after compilation; its outputs stay alive here
    info["first_s"] = time.perf_counter() - t0
    info["growth"] = _peak_growth(base)
    print("READY " + json.dumps(info), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        t0 = time.perf_counter()
        call()
        print(f"TIME {time.perf_counter() - t0}", flush=True)


def _machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}, load average {load[0]:.1f} at start"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--h", type=int, default=256)
    p.add_argument("--v", type=int, default=65536)
    p.add_argument("--runs", type=int, default=2, help="timed calls per variant after the first call")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "linear_cross_entropy.md"))
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return _worker(args)

    import jax
    import torch

    machine = _machine()
    started = datetime.datetime.now(datetime.UTC)
    rows = {}
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.environ.get("PYTHONPATH", "")]
        ),
    )
    procs = {}
    for variant in args.variants.split(","):
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            variant,
            "--n",
            str(args.n),
            "--h",
            str(args.h),
            "--v",
            str(args.v),
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            print(f"{variant}: failed (see its stderr above)", file=sys.stderr)
            proc.kill()
            continue
        rows[variant] = dict(json.loads(line[6:]), times=[])
        procs[variant] = proc
        r = rows[variant]
        print(
            f"  {variant}: first call {r['first_s']:.2f} s, growth {r['growth'] / MiB:.0f} MiB "
            f"(set-up {time.perf_counter() - t0:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    for i in range(args.runs):
        for variant, proc in procs.items():
            if variant in SLOW_RUNS:
                continue
            proc.stdin.write("run\n")
            proc.stdin.flush()
            rows[variant]["times"].append(float(proc.stdout.readline().split()[1]))
        print(
            f"  round {i + 1}: " + ", ".join(f"{v} {r['times'][-1]:.2f} s" for v, r in rows.items() if r["times"]),
            file=sys.stderr,
            flush=True,
        )
    for variant, proc in procs.items():
        proc.stdin.close()
        proc.wait()
        if not rows[variant]["times"]:
            rows[variant]["times"] = [rows[variant]["first_s"]]

    n, h, v = args.n, args.h, args.v
    flops = 3 * 2 * n * h * v
    lines = [
        f"| variant | peak growth (MiB) | XLA temp+out (MiB) | time (s, median of {args.runs}*) | GFLOP/s at 3·2NHV | compile (s) | loss |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, r in rows.items():
        med = statistics.median(r["times"])
        xla = "" if r["xla_bytes"] is None else f"{r['xla_bytes'] / MiB:.0f}"
        comp = "" if r["compile_s"] is None else f"{r['compile_s']:.2f}"
        lines.append(
            f"| {variant} | {r['growth'] / MiB:.0f} | {xla} | {med:.2f} | {flops / med / 1e9:.1f} | {comp} | {r['loss']:.6f} |"
        )
    table = (
        "\n".join(lines)
        + "\n\n"
        + "".join(f"\\* {v}: the first call's time (one call only). " for v in SLOW_RUNS if v in rows)
    )
    cmdline = "python benchmarks/linear_cross_entropy.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = (
        f"Command: `{cmdline.strip()}`  \n"
        f"Shape: N={n}, H={h}, V={v}, float32, mean reduction, value + grad of input and linear_weight  \n"
        f"Machine: {machine}, {platform.platform()}  \n"
        f"Date: {started:%Y-%m-%d %H:%M} UTC; torch {torch.__version__}, jax {jax.__version__}"
    )
    print(header + "\n\n" + table)
    if not args.no_write:
        _write(args.out, header, table)


def _write(path, header, table):
    """Replace the measured block of the results file, keeping the hand-written analysis."""
    begin, end = "<!-- measured: begin -->", "<!-- measured: end -->"
    block = f"{begin}\n{header}\n\n{table}\n{end}"
    text = open(path).read() if os.path.exists(path) else f"# linear_cross_entropy benchmark\n\n{begin}\n{end}\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text + "\n" + block + "\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
