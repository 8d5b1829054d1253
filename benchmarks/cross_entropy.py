"""cross_entropy forward + backward at 4096 x 32000 float32: against torch and the memory floor.

The floor is one read of the logits and one write of their gradient (2 x 524 MB). We measure
what this machine actually sustains for that traffic:
- ``copy (existing buffer)``: ``np.copyto`` into a preallocated array (pure bandwidth);
- ``copy (new buffer)``: a jitted ``x * 1`` whose output, like a gradient, is a fresh buffer, so
  it pays the page faults of new memory as the gradient does.
Bandwidth is reported as (bytes read + bytes written) / time.
"""

from __future__ import annotations

import numpy as np

from .common import fmt_time, interleaved

N, V = 4096, 32000


def run(rounds: int = 7, baseline=None) -> tuple[list[str], list[list[str]], str]:
    """The table; ``baseline``: another ``losses_jax`` module timed in the same rounds."""
    import jax
    import jax.numpy as jnp
    import torch

    import losses_jax

    x = np.random.default_rng(0).normal(size=(N, V)).astype(np.float32)
    t = np.random.default_rng(1).integers(0, V, size=N)
    xj, tj = jnp.asarray(x), jnp.asarray(t)

    ours = jax.jit(jax.value_and_grad(losses_jax.cross_entropy))

    def plain_loss(x, t):  # the textbook version: log_softmax, gather, mean
        logp = jax.nn.log_softmax(x, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=1))

    plain = jax.jit(jax.value_and_grad(plain_loss))
    copy_new = jax.jit(lambda a: a * 1)
    out = np.empty_like(x)
    xt = torch.from_numpy(x).requires_grad_(True)
    tt = torch.from_numpy(t)

    def torch_step():
        xt.grad = None
        torch.nn.functional.cross_entropy(xt, tt).backward()

    before = {}
    if baseline is not None:
        theirs = jax.jit(jax.value_and_grad(baseline.cross_entropy))
        before["baseline cross_entropy (jit)"] = lambda: jax.block_until_ready(theirs(xj, tj))
    times = interleaved(
        {
            "losses_jax.cross_entropy (jit)": lambda: jax.block_until_ready(ours(xj, tj)),
            **before,
            "plain jitted log_softmax + gather": lambda: jax.block_until_ready(plain(xj, tj)),
            "torch eager": torch_step,
            "copy (existing buffer, numpy)": lambda: np.copyto(out, x),
            "copy (new buffer, jit)": lambda: copy_new(xj).block_until_ready(),
        },
        rounds=max(rounds, 5),
    )
    traffic = 2 * x.nbytes
    rows = []
    for name in times.samples:
        s = times.median(name)
        floor = times.ratio("copy (new buffer, jit)", name)
        rows.append(
            [name, fmt_time(s), str(times.ratio(name, "torch eager")), f"{traffic / s / 1e9:.1f} GB/s", str(floor)]
        )
    header = [f"{N} x {V} f32, fwd+bwd", "time", "vs torch", "effective bandwidth", "floor / time"]
    note = (
        f"Time: median over {max(rounds, 5)} interleaved rounds. Ratios: median of the per-round ratios (min-max); "
        "floor / time is the new-buffer copy's time over the contender's (1 = at the memory floor)."
    )
    return header, rows, note
