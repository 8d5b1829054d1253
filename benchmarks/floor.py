"""Tudui's training step against this machine's floor: each convolution pass, XLA against torch.

A Tudui training step is nearly all convolution: three 5x5 layers, each run forward, for its
input gradient (not conv1's: the images need none) and for its kernel gradient. Every pass is a
matrix product in disguise (im2col): ``2 * B * H * W * C_out * C_in * 25`` FLOPs. This suite
times each pass as ``train`` compiles it (``models.jit``, NHWC) and as torch runs it at its best
on CPU (channels_last, oneDNN), and the plain matrix product of the same size in each library,
so the table shows how far each convolution is from the machine's matmul speed, and where XLA's
convolutions stand against torch's.
"""

from __future__ import annotations

import numpy as np

from .common import interleaved

# name, input height/width, input channels, output channels (5x5 kernels, padding 2)
LAYERS = (("conv1", 32, 3, 32), ("conv2", 16, 32, 32), ("conv3", 8, 32, 64))
K = 5
PASSES = ("forward", "input grad", "kernel grad")


def flops(batch: int, size: int, c_in: int, c_out: int) -> float:
    """FLOPs of one pass (forward, input gradient or kernel gradient) of a stride-1 'same' layer."""
    return 2.0 * batch * size * size * c_out * c_in * K * K


def _xla(batch: int, size: int, c_in: int, c_out: int):
    import jax
    import jax.numpy as jnp
    from jax import lax

    import models

    g = np.random.default_rng(0)
    x = jnp.asarray(g.standard_normal((batch, size, size, c_in), np.float32))
    k = jnp.asarray(g.standard_normal((K, K, c_in, c_out), np.float32) * 0.05)
    dy = jnp.asarray(g.standard_normal((batch, size, size, c_out), np.float32))

    def conv(x, k):
        pad = ((K // 2, K // 2),) * 2
        return lax.conv_general_dilated(x, k, (1, 1), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"))

    fwd = models.jit(conv)
    d_x = models.jit(lambda x, k, dy: jax.vjp(lambda x: conv(x, k), x)[1](dy)[0])
    d_k = models.jit(lambda x, k, dy: jax.vjp(lambda k: conv(x, k), k)[1](dy)[0])
    a = jnp.asarray(g.standard_normal((batch * size * size, c_in * K * K), np.float32))
    b = jnp.asarray(g.standard_normal((c_in * K * K, c_out), np.float32))
    gemm = models.jit(jnp.matmul)
    return {
        "forward": lambda: fwd(x, k).block_until_ready(),
        "input grad": lambda: d_x(x, k, dy).block_until_ready(),
        "kernel grad": lambda: d_k(x, k, dy).block_until_ready(),
        "gemm": lambda: gemm(a, b).block_until_ready(),
    }


def _torch(batch: int, size: int, c_in: int, c_out: int):
    import torch

    cl = torch.channels_last
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, c_in, size, size, generator=g).contiguous(memory_format=cl)
    w = (torch.randn(c_out, c_in, K, K, generator=g) * 0.05).contiguous(memory_format=cl)
    dy = torch.randn(batch, c_out, size, size, generator=g).contiguous(memory_format=cl)
    a = torch.randn(batch * size * size, c_in * K * K, generator=g)
    b = torch.randn(c_in * K * K, c_out, generator=g)
    pad = [K // 2, K // 2]

    def backward(mask):
        return torch.ops.aten.convolution_backward(dy, x, w, None, [1, 1], pad, [1, 1], False, [0, 0], 1, mask)

    def run(fn):
        def call():
            with torch.no_grad():
                fn()

        return call

    return {
        "forward": run(lambda: torch.nn.functional.conv2d(x, w, None, 1, K // 2)),
        "input grad": run(lambda: backward([True, False, False])),
        "kernel grad": run(lambda: backward([False, True, False])),
        "gemm": run(lambda: a @ b),
    }


def run(rounds: int = 7) -> tuple[list[str], list[list[str]], str]:
    rounds = max(5, rounds)
    rows: list[list[str]] = []
    summary = []
    for batch in (64, 512):
        step = {"xla": 0.0, "torch": 0.0, "xla gemm": 0.0, "torch gemm": 0.0, "flops": 0.0}
        for name, size, c_in, c_out in LAYERS:
            ours, theirs = _xla(batch, size, c_in, c_out), _torch(batch, size, c_in, c_out)
            fl = flops(batch, size, c_in, c_out)
            for p in PASSES + ("gemm",):
                if p == "input grad" and name == "conv1":
                    continue  # the images need no gradient
                t = interleaved({"xla": ours[p], "torch": theirs[p]}, rounds=rounds, min_time=0.05)
                xla_s, torch_s = t.median("xla"), t.median("torch")
                label = "same-size matmul" if p == "gemm" else p
                rows.append(
                    [
                        str(batch),
                        name,
                        label,
                        f"{fl / 1e9:.2f}",
                        f"{xla_s * 1e3:.2f}",
                        f"{fl / xla_s / 1e9:.0f}",
                        f"{torch_s * 1e3:.2f}",
                        f"{fl / torch_s / 1e9:.0f}",
                        str(t.ratio("xla", "torch")),
                    ]
                )
                if p == "gemm":
                    uses = 2 if name == "conv1" else 3  # passes this layer runs in a step
                    step["xla gemm"] += uses * xla_s
                    step["torch gemm"] += uses * torch_s
                else:
                    step["xla"] += xla_s
                    step["torch"] += torch_s
                    step["flops"] += fl
        rows.append(
            [
                str(batch),
                "all",
                "step's convolutions",
                f"{step['flops'] / 1e9:.2f}",
                f"{step['xla'] * 1e3:.1f}",
                f"{step['flops'] / step['xla'] / 1e9:.0f}",
                f"{step['torch'] * 1e3:.1f}",
                f"{step['flops'] / step['torch'] / 1e9:.0f}",
                f"{step['xla'] / step['torch']:.2f}",
            ]
        )
        rows.append(
            [
                str(batch),
                "all",
                "their matmuls",
                f"{step['flops'] / 1e9:.2f}",
                f"{step['xla gemm'] * 1e3:.1f}",
                f"{step['flops'] / step['xla gemm'] / 1e9:.0f}",
                f"{step['torch gemm'] * 1e3:.1f}",
                f"{step['flops'] / step['torch gemm'] / 1e9:.0f}",
                f"{step['xla gemm'] / step['torch gemm']:.2f}",
            ]
        )
        summary.append(
            f"batch {batch}: convolutions XLA {step['xla'] * 1e3:.1f} ms vs torch {step['torch'] * 1e3:.1f} ms "
            f"per step; floor at XLA's matmul speed {step['xla gemm'] * 1e3:.1f} ms "
            f"({batch / step['xla gemm']:.0f} img/s)"
        )
        print("  " + summary[-1], flush=True)
    header = [
        "batch",
        "layer",
        "pass",
        "GFLOP",
        "XLA (ms)",
        "XLA GFLOP/s",
        "torch CL (ms)",
        "torch GFLOP/s",
        "XLA / torch time",
    ]
    note = (
        f"Each pass alone, median over {rounds} interleaved rounds; XLA as `train` compiles it "
        "(`models.jit`, NHWC), torch channels_last (oneDNN); 'same-size matmul': the im2col product "
        "(B*H*W x C_in*25 times C_in*25 x C_out) in each library. The step rows add the passes a "
        "training step runs (conv1 has no input gradient). " + "; ".join(summary) + "."
    )
    return header, rows, note
