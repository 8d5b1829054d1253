"""Tudui training throughput: ``train.fit`` against the same recipe in torch (eager and compiled).

The recipe of the tutorials: Tudui, SGD lr 0.01, cross-entropy, uint8 images scaled to [0, 1].
The same random uint8 images (CIFAR-shaped) go to both. JAX: ``train.fit`` for two epochs; the
first epoch includes compilation, the second is the steady state we report. torch: the tutorials'
loop (``x / 255``, forward, ``CrossEntropyLoss``, ``backward``, ``SGD.step``) after one warm-up
epoch; ``torch.compile`` of the model as well where it works here, its compilation reported apart.

One sample is one epoch (2-3 s), and this machine has slow stretches of seconds, so the
contenders take turns: each round times one steady epoch of each, and the table gives the
median over the rounds (the ratios: the median of the per-round ratios).
"""

from __future__ import annotations

import time

import numpy as np

from .common import fmt_time

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


def _torch(batch: int, compiled: bool):
    """The tutorials' loop, warmed up: returns (a function timing one epoch in img/s, compile s)."""
    import torch

    from parity_tests.torch_models import Tudui

    torch.manual_seed(0)
    x, y = _data()
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # NCHW uint8, as a DataLoader gives
    yt = torch.from_numpy(y)
    model = Tudui()
    net = torch.compile(model) if compiled else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch() -> float:
        start = time.perf_counter()
        for i in range(0, IMAGES, batch):
            imgs = xt[i : i + batch].float() / 255  # ToTensor
            loss = loss_fn(net(imgs), yt[i : i + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        return IMAGES / (time.perf_counter() - start)

    first = IMAGES / epoch()  # warm-up (and compilation)
    steady = IMAGES / epoch()
    return epoch, first - steady


def run(repeats: int = 7):
    rounds = max(3, min(repeats, 5))
    rows = []
    for batch in (64, 512):
        eager_epoch, _ = _torch(batch, compiled=False)
        try:
            comp_epoch, comp_compile = _torch(batch, compiled=True)
        except Exception as e:  # torch.compile needs a working C++ toolchain; say why not
            comp_epoch, failure = None, f"torch.compile failed: {type(e).__name__}"
        ours, ours_compile, eager, comp = [], [], [], []
        for _ in range(rounds):
            speed, compile_s = _jax(batch)
            ours.append(speed)
            ours_compile.append(compile_s)
            eager.append(eager_epoch())
            if comp_epoch is not None:
                comp.append(comp_epoch())
        ours_m, eager_m = float(np.median(ours)), float(np.median(eager))
        vs_eager = float(np.median(np.array(ours) / np.array(eager)))
        if comp_epoch is not None:
            vs_comp = float(np.median(np.array(ours) / np.array(comp)))
            comp_cells = [f"{np.median(comp):.0f}", f"{vs_comp:.2f}", fmt_time(comp_compile)]
        else:
            comp_cells = ["n/a", "", failure]
        rows.append(
            [
                str(batch),
                f"{ours_m:.0f}",
                f"{eager_m:.0f}",
                f"{vs_eager:.2f}",
                *comp_cells[:2],
                fmt_time(float(np.median(ours_compile))),
                comp_cells[2],
            ]
        )
        print(
            f"  batch {batch}: ours {ours_m:.0f} img/s, torch eager {eager_m:.0f} img/s "
            f"(per round: {vs_eager:.2f}; {[f'{a / b:.2f}' for a, b in zip(ours, eager, strict=True)]})",
            flush=True,
        )
    header = [
        "batch",
        "train.fit (img/s)",
        "torch eager (img/s)",
        "ours / eager",
        "torch.compile (img/s)",
        "ours / compiled",
        "JAX compile",
        "torch.compile compile",
    ]
    return (
        header,
        rows,
        (
            f"{IMAGES} CIFAR-shaped images per epoch; median over {rounds} rounds, each timing one "
            "steady epoch of every contender in turn (ratios: median of the per-round ratios); "
            "higher is better. Compile: first epoch minus a steady one."
        ),
    )
