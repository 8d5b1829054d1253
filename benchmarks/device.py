"""``python -m benchmarks --device``: one command that checks an accelerator (the default JAX backend).

Torch 2.13 need not be there: the torch side of every parity case comes from the fixture file built
by ``python -m parity_tests.fixtures``. The run: (a) every parity case's JAX side against the
fixtures, same tolerances; (b) cross_entropy forward + backward at 8192 x 128256 (bfloat16, float32)
as a fraction of the device's measured copy bandwidth; (c) linear_cross_entropy's peak memory at
N=8192, H=4096, V=128256 against one N x V logits array; (d) ``train.fit`` on Tudui, one 50,000-image
epoch at batch 512, compile apart. ``--tiny`` runs the same code at toy sizes on the CPU.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import pathlib
import sys
import time

import numpy as np

from .common import Spread, interleaved, machine, now, versions


@dataclasses.dataclass(frozen=True)
class Sizes:
    """The sizes of one run: cross_entropy (N, V), linear_cross_entropy (N, H, V), train (images, batch)."""

    ce: tuple[int, int]
    lce: tuple[int, int, int]
    train: tuple[int, int]
    rounds: int = 5


FULL = Sizes(ce=(8192, 128256), lce=(8192, 4096, 128256), train=(50_000, 512))
TINY = Sizes(ce=(64, 1000), lce=(64, 32, 1000), train=(1024, 128))


def parity(path: pathlib.Path, tiny: bool) -> tuple[str, bool]:
    """(a): every case's JAX side against the recorded torch side."""
    from parity_tests.cases import all_cases
    from parity_tests.fixtures import load, reference
    from parity_tests.harness import run_case

    data = load(path)
    cases = all_cases()
    if tiny:
        cases = cases[: int(data["meta|count"])]
    per_family: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    failures = []
    for case in cases:
        result = run_case(case, torch_side=reference(data, case, path))
        per_family[case.family][0 if result.passed else 1] += 1
        if not result.passed:
            failures.append(result.detail.splitlines()[0])
    ok = not failures
    lines = ["| family | pass | fail |", "|---|---|---|"]
    lines += [f"| {f} | {p} | {n} |" for f, (p, n) in sorted(per_family.items())]
    lines.append(
        f"\n{len(cases)} cases against torch {data['meta|torch']} fixtures: {'all pass' if ok else 'FAILURES'}"
    )
    lines += [f"- {f}" for f in failures]
    return "\n".join(lines), ok


def _copy_and_ce(n: int, v: int, dtype, rounds: int) -> tuple[float, Spread, float]:
    import jax
    import jax.numpy as jnp

    import losses_jax

    logits = jax.random.normal(jax.random.key(0), (n, v), jnp.float32).astype(dtype)
    target = jax.random.randint(jax.random.key(1), (n,), 0, v)
    copy = jax.jit(lambda x: x + jnp.zeros((), x.dtype))  # a copy into a new buffer
    step = jax.jit(jax.value_and_grad(lambda x: losses_jax.cross_entropy(x, target)))
    times = interleaved(
        {"copy": lambda: copy(logits).block_until_ready(), "ce": lambda: jax.block_until_ready(step(logits))},
        rounds=rounds,
    )
    size = logits.size * logits.dtype.itemsize
    copy_bw = 2 * size / times.median("copy")
    ce_bw = [2 * size / t / copy_bw for t in times.samples["ce"]]  # logits read + gradient written
    return times.median("ce"), Spread.of(ce_bw), copy_bw


def cross_entropy(n: int, v: int, rounds: int) -> tuple[str, bool]:
    """(b): cross_entropy fwd+bwd as a fraction of the measured copy bandwidth."""
    import jax.numpy as jnp

    lines = [
        "| dtype | fwd+bwd | copy bandwidth | fraction of copy (min-max) | target >= 0.70 |",
        "|---|---|---|---|---|",
    ]
    ok = True
    for name, dtype in (("bfloat16", jnp.bfloat16), ("float32", jnp.float32)):
        t, frac, bw = _copy_and_ce(n, v, dtype, rounds)
        ok &= frac.median >= 0.7
        lines.append(
            f"| {name} | {t * 1e3:.3f} ms | {bw / 1e9:.1f} GB/s | {frac} | {'met' if frac.median >= 0.7 else 'not met'} |"
        )
    return f"cross_entropy at {n} x {v}, jit(value_and_grad)\n\n" + "\n".join(lines), ok


def linear_cross_entropy(n: int, h: int, v: int) -> str:
    """(c): linear_cross_entropy's peak memory against one N x V logits array."""
    import jax
    import jax.numpy as jnp

    import losses_jax

    x = jnp.ones((n, h), jnp.bfloat16)
    w = jnp.ones((v, h), jnp.bfloat16) * 0.01
    t = jnp.zeros((n,), jnp.int32)
    opts = losses_jax.LinearCrossEntropyOptions()
    f = jax.jit(jax.value_and_grad(lambda x, w: losses_jax.linear_cross_entropy(x, w, t, options=opts), (0, 1)))
    compiled = f.lower(x, w).compile()
    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    logits = n * v * 2
    m = compiled.memory_analysis()
    if "peak_bytes_in_use" in stats:
        jax.block_until_ready(compiled(x, w))
        peak, how = (device.memory_stats() or {})["peak_bytes_in_use"], "device.memory_stats()['peak_bytes_in_use']"
    else:
        if m is None:
            return "linear_cross_entropy peak memory: this backend reports neither memory_stats nor memory_analysis"
        peak = m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes
        how = "compiled.memory_analysis() (temp + arguments + outputs)"
    return (
        f"linear_cross_entropy at N={n}, H={h}, V={v}, bfloat16, chunked options: peak {peak / 2**20:.1f} MiB, "
        f"{peak / logits:.2f} x one N x V bfloat16 logits array ({logits / 2**20:.1f} MiB); peak from {how}"
    )


def train_epoch(images: int, batch: int) -> tuple[str, bool]:
    """(d): one Tudui epoch of random CIFAR-shaped uint8 images, compile apart."""
    from flax import nnx

    import models
    import train

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, (images,), dtype=np.int64)
    start = time.perf_counter()
    history = train.fit(models.Tudui(rngs=nnx.Rngs(0)), (x, y), epochs=2, batch_size=batch, learning_rate=0.01)
    total = time.perf_counter() - start
    rate = history[1]["images_per_sec"]
    epoch = images / rate
    return (
        f"train.fit on Tudui, {images} images at batch {batch}: {rate:,.0f} images/s, epoch {epoch:.3f} s "
        f"(target < 1 s: {'met' if epoch < 1 else 'not met'}), compile {total - 2 * epoch:.1f} s"
    ), epoch < 1


def run(fixtures: pathlib.Path, tiny: bool) -> str:
    """Every check; the markdown block."""
    import jax

    sizes = TINY if tiny else FULL
    command = "python -m benchmarks --device" + (" --tiny" if tiny else "")
    sections = [
        f"Command: `{command}`  ",
        f"Machine: {jax.devices()[0].device_kind} ({jax.default_backend()}); host {machine()}  ",
        f"Software: {versions()}  ",
        f"Date: {now()}",
    ]
    text, parity_ok = parity(fixtures, tiny)
    sections += ["", "### Parity against torch fixtures", "", text]
    text, ce_ok = cross_entropy(*sizes.ce, sizes.rounds)
    sections += ["", "### cross_entropy against copy bandwidth", "", text]
    sections += ["", "### linear_cross_entropy peak memory", "", linear_cross_entropy(*sizes.lce)]
    text, train_ok = train_epoch(*sizes.train)
    sections += ["", "### Tudui epoch", "", text]
    sections += [
        "",
        "### Targets",
        "",
        f"- parity all pass: {'met' if parity_ok else 'not met'}",
        f"- cross_entropy >= 70% of copy bandwidth: {'met' if ce_ok else 'not met'}",
        f"- Tudui epoch < 1 s: {'met' if train_ok else 'not met'}",
    ]
    return "\n".join(sections)


def main(fixtures: str | None, tiny: bool, out: str | None) -> int:
    """The ``--device`` mode of ``python -m benchmarks``; returns the exit status."""
    from parity_tests.fixtures import DEFAULT_PATH, FixtureError

    try:
        block = run(pathlib.Path(fixtures) if fixtures else DEFAULT_PATH, tiny)
    except FixtureError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(block)
    if out:
        pathlib.Path(out).write_text(block + "\n")
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    """The ``--device`` flags."""
    p = argparse.ArgumentParser(prog="python -m benchmarks --device")
    p.add_argument("--device", action="store_true")
    p.add_argument("--tiny", action="store_true", help="toy sizes on the CPU (CI)")
    p.add_argument("--fixtures", default=None, help="the parity fixture file")
    p.add_argument("--out", default=None, help="write the markdown block here")
    return p.parse_args(argv)
