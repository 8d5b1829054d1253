"""Every loss, forward + backward: jitted losses_jax against torch eager, at a realistic size.

For each loss the same numpy inputs go to both; JAX runs ``jax.jit(jax.value_and_grad(...))``
over the differentiable inputs, torch runs the functional and ``.backward()``. Reported: median
time per call, the ratio ours / torch (below 1 means we are faster) and JAX's compile time.
"""

from __future__ import annotations

import numpy as np

from .common import first_call, fmt_time, interleaved

R = np.random.default_rng(0)
N, D = 4096, 1024  # elementwise losses: 4M elements
K = 1000  # classes


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _logsm(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _pm1(shape):
    return np.where(R.uniform(size=shape) < 0.5, -1.0, 1.0)


def specs():
    """(name, size note, args, kwargs, grad positions); arrays are float32 / int64 numpy."""
    f = lambda *s: R.normal(size=s).astype(np.float32)
    x, y = f(N, D), f(N, D)
    t_idx = R.integers(0, K, size=N)
    ml = np.full((1024, 100), -1)
    for i in range(1024):
        k = R.integers(1, 10)
        ml[i, :k] = R.choice(100, k, replace=False)
    T, B, C, S = 200, 32, 50, 40
    ctc_lp = _logsm(f(T, B, C)).astype(np.float32)
    return [
        ("l1_loss", f"{N}x{D}", (x, y), {}, (0,)),
        ("mse_loss", f"{N}x{D}", (x, y), {}, (0,)),
        ("huber_loss", f"{N}x{D}", (x, y), {"delta": 0.5}, (0,)),
        ("smooth_l1_loss", f"{N}x{D}", (x, y), {"beta": 0.5}, (0,)),
        ("binary_cross_entropy", f"{N}x{D}", (_sig(x), _sig(y)), {}, (0,)),
        (
            "binary_cross_entropy_with_logits",
            f"{N}x{D}, pos_weight",
            (x, _sig(y)),
            {"pos_weight": np.abs(f(D)) + 0.5},
            (0,),
        ),
        ("kl_div", f"{N}x{D}, batchmean", (_logsm(x), np.exp(_logsm(y))), {"reduction": "batchmean"}, (0,)),
        ("poisson_nll_loss", f"{N}x{D}", (x, R.poisson(2.0, size=(N, D)).astype(np.float32)), {}, (0,)),
        ("gaussian_nll_loss", f"{N}x{D}", (x, y, np.abs(f(N, D)) + 0.1), {}, (0, 2)),
        ("nll_loss", f"{N}x{K}", (_logsm(f(N, K)), t_idx), {}, (0,)),
        ("cross_entropy", f"{N}x{K}, smoothing 0.1", (f(N, K), t_idx), {"label_smoothing": 0.1}, (0,)),
        ("hinge_embedding_loss", f"{N}x{D}", (x, _pm1((N, D))), {}, (0,)),
        ("margin_ranking_loss", f"{N * D}", (x.ravel(), y.ravel(), _pm1((N * D,))), {}, (0, 1)),
        ("soft_margin_loss", f"{N}x{D}", (x, _pm1((N, D))), {}, (0,)),
        ("cosine_embedding_loss", f"{N}x512", (f(N, 512), f(N, 512), _pm1((N,))), {}, (0, 1)),
        ("multi_margin_loss", f"{N}x{K}", (f(N, K), t_idx), {}, (0,)),
        ("multilabel_margin_loss", "1024x100", (f(1024, 100), ml), {}, (0,)),
        (
            "multilabel_soft_margin_loss",
            f"{N}x{K}",
            (f(N, K), (R.uniform(size=(N, K)) < 0.1).astype(np.float32)),
            {},
            (0,),
        ),
        ("triplet_margin_loss", f"{N}x512", (f(N, 512), f(N, 512), f(N, 512)), {}, (0, 1, 2)),
        ("triplet_margin_with_distance_loss", f"{N}x512", (f(N, 512), f(N, 512), f(N, 512)), {}, (0, 1, 2)),
        (
            "ctc_loss",
            f"T={T} N={B} C={C} S={S}",
            (ctc_lp, R.integers(1, C, size=(B, S)), np.full(B, T), R.integers(S // 2, S + 1, size=B)),
            {},
            (0,),
        ),
    ]


def _jax_call(lib, name, args, kwargs, grad):
    import jax
    import jax.numpy as jnp

    fn = getattr(lib, name)
    # Every array is a jit argument (never a closed-over constant, which XLA would fold).
    jargs = [jnp.asarray(a) for a in args]
    arrays = {k: jnp.asarray(v) for k, v in kwargs.items() if isinstance(v, np.ndarray)}
    static = {k: v for k, v in kwargs.items() if not isinstance(v, np.ndarray)}

    def loss(diff, rest, arrays):
        full = list(rest)
        for i, d in zip(grad, diff, strict=True):
            full[i] = d
        return fn(*full, **arrays, **static)

    step = jax.jit(jax.value_and_grad(loss))
    diff = [jargs[i] for i in grad]
    return lambda: jax.block_until_ready(step(diff, jargs, arrays))


def _torch_call(name, args, kwargs, grad):
    import torch

    fn = getattr(torch.nn.functional, name)
    targs = [torch.from_numpy(np.ascontiguousarray(a)) for a in args]
    for i in grad:
        targs[i].requires_grad_(True)
    tkw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}

    def run():
        for i in grad:
            targs[i].grad = None
        fn(*targs, **tkw).backward()

    return run


def run(rounds: int = 7, baseline=None) -> tuple[list[str], list[list[str]], str]:
    """The table; ``baseline``: another ``losses_jax`` module (see ``common.load_baseline``)
    measured in the same rounds, for a before/after comparison."""
    import losses_jax

    rows = []
    for name, size, args, kwargs, grad in specs():
        if not hasattr(losses_jax, name):
            rows.append([name, size, "n/a", "", ""] + [""] * (2 * (baseline is not None)) + ["not implemented"])
            continue
        ours = _jax_call(losses_jax, name, args, kwargs, grad)
        compile_s = first_call(ours)
        contenders = {"ours": ours, "torch": _torch_call(name, args, kwargs, grad)}
        if baseline is not None and hasattr(baseline, name):
            contenders["baseline"] = _jax_call(baseline, name, args, kwargs, grad)
        # 0.2 s per sample and at least 15 rounds: these calls take milliseconds and, on a shared
        # VM, the same compiled call runs 3 ms or 10 ms for stretches of about a second (measured
        # call by call); a sample averages dozens of calls, and the median outlasts such stretches.
        times = interleaved(contenders, rounds=max(rounds, 15), min_time=0.2)
        ratio = times.ratio("ours", "torch")
        row = [name, size, fmt_time(times.median("ours")), fmt_time(times.median("torch")), str(ratio)]
        if "baseline" in contenders:
            row += [str(times.ratio("baseline", "torch")), str(times.ratio("ours", "baseline"))]
        elif baseline is not None:
            row += ["n/a", "n/a"]
        rows.append(row + [f"compile {compile_s:.2f} s"])
        print(f"  {name}: ours / torch {ratio}" + (f", ours / baseline {row[-1]}" if baseline else ""), flush=True)
    header = ["loss (fwd+bwd)", "size (float32)", "losses_jax (jit)", "torch (eager)", "ours / torch"]
    if baseline is not None:
        header += ["baseline / torch", "ours / baseline"]
    note = (
        f"Times: median over {max(rounds, 15)} interleaved rounds; ours / torch: median of the per-round "
        "ratios (min-max); below 1 means we are faster."
        + (" baseline: the losses_jax of --baseline, timed in the same rounds." if baseline is not None else "")
    )
    return header + ["notes"], rows, note
