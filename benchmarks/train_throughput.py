"""Tudui training throughput: ``train.fit`` against the same recipe in torch (eager and compiled).

The recipe of the tutorials: Tudui, SGD lr 0.01, cross-entropy, uint8 images scaled to [0, 1].
The same random uint8 images (CIFAR-shaped) go to both. JAX: ``train.fit`` for two epochs; the
first epoch includes compilation, the second is the steady state we report. torch: the tutorials'
loop (``x / 255``, forward, ``CrossEntropyLoss``, ``backward``, ``SGD.step``) for one warm-up
epoch and one timed epoch; ``torch.compile`` of the model as well where it works here, its
compilation reported apart.
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

    def epoch():
        for i in range(0, IMAGES, batch):
            imgs = xt[i : i + batch].float() / 255  # ToTensor
            loss = loss_fn(net(imgs), yt[i : i + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()

    start = time.perf_counter()
    epoch()  # warm-up (and compilation)
    first = time.perf_counter() - start
    start = time.perf_counter()
    epoch()
    steady = time.perf_counter() - start
    return IMAGES / steady, first - steady


def run(repeats: int = 7):
    rows = []
    for batch in (64, 512):
        ours, ours_compile = _jax(batch)
        eager, _ = _torch(batch, compiled=False)
        try:
            comp, comp_compile = _torch(batch, compiled=True)
            comp_cells = [f"{comp:.0f}", f"{ours / comp:.2f}", fmt_time(comp_compile)]
        except Exception as e:  # torch.compile needs a working C++ toolchain; say why not
            comp_cells = ["n/a", "", f"torch.compile failed: {type(e).__name__}"]
        rows.append([str(batch), f"{ours:.0f}", f"{eager:.0f}", f"{ours / eager:.2f}", *comp_cells[:2],
                     fmt_time(ours_compile), comp_cells[2]])
        print(f"  batch {batch}: ours {ours:.0f} img/s, torch eager {eager:.0f} img/s", flush=True)
    header = ["batch", "train.fit (img/s)", "torch eager (img/s)", "ours / eager", "torch.compile (img/s)",
              "ours / compiled", "JAX compile", "torch.compile compile"]
    return header, rows, (f"{IMAGES} CIFAR-shaped images per epoch, steady-state epoch; higher is better. "
                          "Compile: first epoch minus a steady one.")
