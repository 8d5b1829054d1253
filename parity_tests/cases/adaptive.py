"""AdaptiveLogSoftmaxWithLoss against torch's module with its parameters replaced by ours.

The torch side is ``torch.func.functional_call`` of ``torch.nn.AdaptiveLogSoftmaxWithLoss`` with
the case's parameters (``head.weight``, ``head.bias``, ``tail.{i}.0.weight``,
``tail.{i}.1.weight``); ours loads the same arrays into ``losses_jax.AdaptiveLogSoftmaxWithLoss``.
Values and the gradients of the input and of every parameter are compared for ``output``,
``loss``, ``log_prob``, and the values of ``predict``, over cutoff lists, ``head_bias``,
``div_value`` and 1-D / 2-D input. ``in_features`` 16 with ``div_value`` 4 gives the third
cluster of ``[5, 10, 15]`` zero hidden features (torch's ``int(16 // 4**3)``): empty weights.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

import losses_jax

from ..harness import Case
from ._data import FLOAT_DTYPES, class_targets, normal

NAME = "AdaptiveLogSoftmaxWithLoss"
H, C, N = 16, 20, 12
# Every cluster of every cutoff list below is hit, and each list's shortlist too.
TARGETS = np.array([0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 19])


def _shapes(cutoffs, div_value, head_bias):
    cut = [*cutoffs, C]
    shapes = {"head.weight": (cut[0] + len(cutoffs), H)}
    if head_bias:
        shapes["head.bias"] = (cut[0] + len(cutoffs),)
    for i in range(len(cutoffs)):
        hsz = int(H // (div_value ** (i + 1)))
        shapes[f"tail.{i}.0.weight"] = (hsz, H)
        shapes[f"tail.{i}.1.weight"] = (cut[i + 1] - cut[i], hsz)
    return shapes


def _params(cutoffs, div_value, head_bias):
    shapes = _shapes(cutoffs, div_value, head_bias)
    return list(shapes), [normal((NAME, name, shape), shape, 0.5) for name, shape in shapes.items()]


class _Method(torch.nn.Module):
    """``module.<what>(*args)`` as a module's forward, so that ``functional_call`` reaches it."""

    def __init__(self, module, what):
        super().__init__()
        self.m = module
        self.what = what

    def forward(self, *args):
        if self.what in ("output", "loss"):
            return getattr(self.m(*args), self.what)
        return getattr(self.m, self.what)(*args)


def _fns(what, names, cutoffs, div_value, head_bias):
    """(torch_fn, jax_fn) of ``(input[, target], *params)`` returning ``what`` of the module."""
    n_lead = 1 if what in ("log_prob", "predict") else 2

    def torch_fn(*args):
        m = torch.nn.AdaptiveLogSoftmaxWithLoss(H, C, cutoffs, div_value, head_bias, dtype=args[0].dtype)
        params = {f"m.{k}": v for k, v in zip(names, args[n_lead:], strict=True)}
        return torch.func.functional_call(_Method(m, what), params, args[:n_lead])

    def jax_fn(*args):
        m = losses_jax.AdaptiveLogSoftmaxWithLoss(H, C, cutoffs, div_value, head_bias, dtype=args[0].dtype)
        m.params = dict(zip(names, args[n_lead:], strict=True))
        if what in ("output", "loss"):
            return getattr(m(*args[:n_lead]), what)
        return getattr(m, what)(*args[:n_lead])

    return torch_fn, jax_fn


def _case(family, what, x, t, cutoffs, div_value, head_bias, dtype, label, *, grads=True):
    """``grads``: compare the gradients of the input and every parameter. They are sums over rows
    and classes (reductions), so such a case takes the reduction tolerance; ``grads=False``
    compares the values alone, at the elementwise tolerance where ``what`` is elementwise."""
    names, params = _params(cutoffs, div_value, head_bias)
    tf, jf = _fns(what, names, cutoffs, div_value, head_bias)
    lead = (x,) if t is None else (x, t)
    args = (*lead, *params)
    grads = grads and what != "predict"
    grad = (0, *range(len(lead), len(args))) if grads else ()
    elementwise = what != "loss" and not grads
    return Case(
        f"{NAME}: {family}",
        NAME,
        args,
        grad=grad,
        dtype=dtype,
        torch_fn=tf,
        jax_fn=jf,
        kind="elementwise" if elementwise else "reduction",
        label=f"{what},{'grads' if grads else 'values'},cutoffs={list(cutoffs)},div={div_value},"
        f"head_bias={head_bias},{label}",
    )


# (cutoffs, div_value, head_bias): every pair in float32, four of them in float64.
CONFIGS = [
    ((2,), 4.0),
    ((3, 6), 4.0),
    ((5, 10, 15), 4.0),  # zero hidden features in the third cluster
    ((5, 10, 15), 2.0),
]
F64_CONFIGS = [((2,), 4.0, False), ((3, 6), 4.0, True), ((5, 10, 15), 4.0, True), ((5, 10, 15), 2.0, False)]


def _configs():
    for (cutoffs, div), head_bias in itertools.product(CONFIGS, (False, True)):
        yield "float32", cutoffs, div, head_bias
    for cutoffs, div, head_bias in F64_CONFIGS:
        yield "float64", cutoffs, div, head_bias


def cases() -> list[Case]:
    out = []
    x = normal((NAME, "x"), (N, H), 1.5)
    xr = normal((NAME, "xr"), (2 * N, H), 1.5)
    tr = class_targets((NAME, "tr"), (2 * N,), C)
    xu = normal((NAME, "xu"), (H,), 1.5)
    for dtype, cutoffs, div, head_bias in _configs():
        cfg = (cutoffs, div, head_bias, dtype)
        for grads in (False, True):
            out.append(_case("forward, 2-D input", "output", x, TARGETS, *cfg, "fixed targets", grads=grads))
            # float32 gradients of log_prob: the cotangents of all 20 classes meet in each
            # log-softmax's backward (g - p * sum(g)), whose cancellation leaves float32
            # residues up to 2.4e-4 relative on small entries (float64 agrees to 1e-12); they
            # are compared in float64, the values in both.
            if not (grads and dtype == "float32"):
                out.append(_case("log_prob", "log_prob", x, None, *cfg, "2-D", grads=grads))
        out.append(_case("forward, 2-D input", "loss", x, TARGETS, *cfg, "fixed targets"))
        out.append(_case("forward, 2-D input", "loss", xr, tr, *cfg, "random targets"))
        out.append(_case("forward, 1-D input", "output", xu, np.array(19), *cfg, "target=19"))
        out.append(_case("forward, 1-D input", "loss", xu, np.array(7), *cfg, "target=7"))
        out.append(_case("predict", "predict", x, None, *cfg, "2-D"))
    # edges: an empty batch (empty output, NaN loss), every target in the shortlist (the clusters
    # unused: zero gradients), large inputs (logits ~ 1e3)
    for dtype, what in itertools.product(FLOAT_DTYPES, ("output", "loss")):
        cfg = ((5, 10, 15), 2.0, True, dtype)
        out.append(_case("edges", what, np.zeros((0, H)), np.zeros((0,), np.int64), *cfg, "empty batch"))
        xs = normal((NAME, "xs"), (N, H), 1.5)
        out.append(_case("edges", what, xs, TARGETS % 5, *cfg, "shortlist targets only"))
        xb = normal((NAME, "xb"), (N, H), 1.0) * 300.0
        out.append(_case("edges", what, xb, TARGETS, *cfg, "large inputs"))
    return out
