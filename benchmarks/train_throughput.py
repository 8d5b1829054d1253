"""Tudui training throughput: ``train.fit`` against the same recipe in torch at its best.

torch contenders: eager in the tutorials' NCHW layout, eager channels_last (model and input, the
memory format PyTorch advises for CNNs on CPU), and ``torch.compile`` of the channels_last model.

The recipe of the tutorials: Tudui, SGD lr 0.01, cross-entropy, uint8 images scaled to [0, 1].
The same random uint8 images (CIFAR-shaped) go to both. JAX: ``train.fit`` for two epochs; the
first epoch includes compilation, the second is the steady state we report. torch: the tutorials'
loop (``x / 255``, forward, ``CrossEntropyLoss``, ``backward``, ``SGD.step``) after one warm-up
epoch; ``torch.compile``'s compilation reported apart.

One sample is one epoch (2-3 s), and this machine has slow stretches of seconds, so the
contenders take turns: each round times one steady epoch of each, and the table gives the
median over the rounds (the ratios: the median of the per-round ratios, with their min and max).
"""

from __future__ import annotations

import time

import numpy as np

from .common import Spread, fmt_time

IMAGES = 6144  # per epoch: a multiple of 64 and 512


def _data():
    g = np.random.default_rng(0)
    return g.integers(0, 256, size=(IMAGES, 32, 32, 3), dtype=np.uint8), g.integers(0, 10, size=IMAGES)


def _jax(batch: int):
    from flax import nnx

    import models
    import train

    x, y = _data()
    model = models.Tudui(rngs=nnx.Rngs(0))
    start = time.perf_counter()
    history = train.fit(model, (x, y), epochs=2, batch_size=batch, learning_rate=0.01, optimizer="sgd", seed=0)
    total = time.perf_counter() - start
    steady = history[1]["images_per_sec"]
    first_epoch = total - IMAGES / steady
    return steady, first_epoch - IMAGES / steady  # images/s, compile (first epoch minus a steady one)


TORCH = {
    "eager NCHW": dict(channels_last=False, compiled=False),  # the tutorials' layout
    "eager channels_last": dict(channels_last=True, compiled=False),  # PyTorch's advice for CNNs on CPU
    "compile channels_last": dict(channels_last=True, compiled=True),
}


def _torch(batch: int, channels_last: bool, compiled: bool):
    """The tutorials' loop, warmed up: returns (a function timing one epoch in img/s, compile s)."""
    import torch

    from parity_tests.torch_models import Tudui

    torch.manual_seed(0)
    x, y = _data()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt)  # uint8, as a DataLoader gives
    yt = torch.from_numpy(y)
    model = Tudui().to(memory_format=fmt)
    net = torch.compile(model) if compiled else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch() -> float:
        start = time.perf_counter()
        for i in range(0, IMAGES, batch):
            imgs = xt[i : i + batch].float() / 255  # ToTensor (keeps the memory format)
            loss = loss_fn(net(imgs), yt[i : i + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        return IMAGES / (time.perf_counter() - start)

    first = IMAGES / epoch()  # warm-up (and compilation)
    steady = IMAGES / epoch()
    return epoch, first - steady


def run(rounds: int = 7):
    rounds = max(5, rounds)
    rows = []
    for batch in (64, 128, 512):
        contenders, compile_s, failures = {}, {}, {}
        for name, options in TORCH.items():
            try:
                contenders[name], compile_s[name] = _torch(batch, **options)
            except Exception as e:  # torch.compile needs a working C++ toolchain; say why not
                failures[name] = f"{type(e).__name__}"
        speeds: dict[str, list[float]] = {"ours": [], **{name: [] for name in contenders}}
        ours_compile = []
        for _ in range(rounds):
            speed, first = _jax(batch)
            speeds["ours"].append(speed)
            ours_compile.append(first)
            for name, epoch in contenders.items():
                speeds[name].append(epoch())
        # Rates: ours / theirs per round (above 1 means we are faster).
        cells = [str(batch), f"{np.median(speeds['ours']):.0f}"]
        summary = []
        for name in TORCH:
            if name in failures:
                cells += ["n/a", f"failed: {failures[name]}"]
                continue
            ratio = Spread.of([a / b for a, b in zip(speeds["ours"], speeds[name], strict=True)])
            cells += [f"{np.median(speeds[name]):.0f}", str(ratio)]
            summary.append(f"{name} {ratio}")
        compiled = compile_s.get("compile channels_last")
        cells += [fmt_time(float(np.median(ours_compile))), fmt_time(compiled) if compiled is not None else "n/a"]
        rows.append(cells)
        print(f"  batch {batch}: ours {np.median(speeds['ours']):.0f} img/s; ours / " + ", ".join(summary), flush=True)
    header = ["batch", "train.fit (img/s)"]
    for name in TORCH:
        header += [f"torch {name} (img/s)", f"ours / {name}"]
    header += ["JAX compile", "torch.compile compile"]
    return (
        header,
        rows,
        (
            f"{IMAGES} CIFAR-shaped images per epoch, one process; {rounds} rounds, each timing one steady "
            "epoch of every contender in turn. Speeds: median over the rounds; ratios: ours / theirs in "
            "images/s, median of the per-round ratios (min-max), above 1 means we are faster. Compile: "
            "first epoch minus a steady one."
        ),
    )
