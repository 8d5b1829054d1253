"""Every public loss through every JAX transformation, with the derivatives checked numerically.

Each case is a function ``F(theta)`` of one flat float64 vector (the loss's differentiable inputs,
raveled) with the targets and options fixed. For every case and transformation:

* ``jit``: ``jit(F)(theta)`` equals the eager ``F(theta)``;
* ``vmap``: ``vmap(F)`` over two parameter vectors equals ``F`` of each;
* ``grad``: ``grad(S) . v`` equals a central finite difference of ``S`` along ``v``, where
  ``S = <u, F>`` (``u`` a fixed random cotangent, so non-scalar outputs are covered too);
* ``jvp`` and ``jacfwd``: the directional derivative of ``F`` along ``v``, against finite differences;
* ``hessian`` and ``jvp`` of ``grad``: ``H v`` against finite differences of ``grad(S)`` along ``v``.

The finite differences are fourth-order central ones (step 1e-3 in float64), along a random unit
direction; the inputs are drawn away from kinks and clamps (hinge margins, ``|x|``, Huber's
``delta``), where torch's gradient is a choice rather than a derivative.

``SUPPORT`` says which transformations each loss supports; the table of docs/transformations.md is
checked against it. A supported transformation must give the finite-difference numbers; an
unsupported one must raise, never return a wrong number.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import losses_jax as L

TRANSFORMS = ("jit", "grad", "vmap", "jvp", "jacfwd", "hessian", "jvp_grad")
ALL = frozenset(TRANSFORMS)
NO_FORWARD_MODE = ALL - {"jvp", "jacfwd"}  # custom VJPs: forward-over-reverse still works

# Which transformations each public loss supports: the single source, mirrored by the table of
# docs/transformations.md (checked below). "(chunked)" is linear_cross_entropy with an options
# object: a custom VJP over a scan of row blocks, so no forward mode of the loss itself (jvp,
# jacfwd), while forward-over-reverse (hessian, jvp of grad) differentiates its backward pass and
# is exact. CTC's gradient is torch's, not the formula's (a custom VJP), so it has no forward mode
# and no second derivatives.
_FULL = (
    "l1_loss",
    "L1Loss",
    "mse_loss",
    "MSELoss",
    "huber_loss",
    "HuberLoss",
    "smooth_l1_loss",
    "SmoothL1Loss",
    "nll_loss",
    "NLLLoss",
    "cross_entropy",
    "CrossEntropyLoss",
    "linear_cross_entropy",
    "LinearCrossEntropyLoss",
    "binary_cross_entropy",
    "BCELoss",
    "binary_cross_entropy_with_logits",
    "BCEWithLogitsLoss",
    "kl_div",
    "KLDivLoss",
    "poisson_nll_loss",
    "PoissonNLLLoss",
    "gaussian_nll_loss",
    "GaussianNLLLoss",
    "hinge_embedding_loss",
    "HingeEmbeddingLoss",
    "margin_ranking_loss",
    "MarginRankingLoss",
    "soft_margin_loss",
    "SoftMarginLoss",
    "cosine_embedding_loss",
    "CosineEmbeddingLoss",
    "multi_margin_loss",
    "MultiMarginLoss",
    "multilabel_margin_loss",
    "MultiLabelMarginLoss",
    "multilabel_soft_margin_loss",
    "MultiLabelSoftMarginLoss",
    "triplet_margin_loss",
    "TripletMarginLoss",
    "triplet_margin_with_distance_loss",
    "TripletMarginWithDistanceLoss",
    "pairwise_distance",
    "PairwiseDistance",
    "cosine_similarity",
    "CosineSimilarity",
    "AdaptiveLogSoftmaxWithLoss",
)
SUPPORT: dict[str, frozenset[str]] = {
    **{name: ALL for name in _FULL},
    "linear_cross_entropy (chunked)": NO_FORWARD_MODE,
    "LinearCrossEntropyLoss (chunked)": NO_FORWARD_MODE,
    "ctc_loss": NO_FORWARD_MODE,
    "CTCLoss": NO_FORWARD_MODE,
    # losses_jax.ops (torchvision.ops)
    "ops.sigmoid_focal_loss": ALL,
    "ops.generalized_box_iou_loss": ALL,
    "ops.distance_box_iou_loss": ALL,
    "ops.complete_box_iou_loss": ALL,
}

_NOT_LOSSES = {"LinearCrossEntropyOptions", "REDUCTIONS", "TORCH_VERSION"}
_OPS_LOSSES = {f"ops.{name}" for name in L.ops.__all__ if name != "TORCHVISION_VERSION"}

N, C, D = 3, 4, 5  # batch, classes, features


@dataclasses.dataclass(frozen=True)
class Case:
    """``build(rng) -> (params, fn)``: the differentiable inputs (a pytree) and ``fn(params)``."""

    id: str
    key: str  # SUPPORT key
    build: Callable[[np.random.Generator], tuple[Any, Callable[[Any], jax.Array]]]


def _normal(rng, *shape):
    return rng.normal(size=shape)


def _uniform(rng, lo, hi, *shape):
    return rng.uniform(lo, hi, size=shape)


def _probs(rng, *shape):
    e = np.exp(rng.normal(size=shape))
    return e / e.sum(axis=1, keepdims=True)


def _pair(loss, **kw):
    """Functional case on ``(input, target)``, both differentiable."""

    def build(rng):
        return (_normal(rng, N, C), _normal(rng, N, C)), lambda p: loss(p[0], p[1], **kw)

    return build


def _ce_index():
    def build(rng):
        t = np.array([1, 2, 0])
        return _normal(rng, N, C), lambda x: L.cross_entropy(x, t)

    return build


def _ce_weighted(ignore_index=None, **kw):
    def build(rng):
        t = np.array([1, 2, 0])
        opts = dict(kw)
        if ignore_index is not None:
            opts["ignore_index"] = ignore_index
        return (_normal(rng, N, C), _uniform(rng, 0.5, 1.5, C)), lambda p: L.cross_entropy(p[0], t, weight=p[1], **opts)

    return build


def _ce_probs(rng):
    return (_normal(rng, N, C), _probs(rng, N, C), _uniform(rng, 0.5, 1.5, C)), lambda p: L.cross_entropy(
        p[0], p[1], weight=p[2], label_smoothing=0.1
    )


def _linear(options):
    def build(rng):
        t = np.array([1, 3, 0])
        params = (_normal(rng, N, D), _normal(rng, C, D), _normal(rng, C))
        return params, lambda p: L.linear_cross_entropy(
            p[0], p[1], t, linear_bias=p[2], label_smoothing=0.1, options=options
        )

    return build


def _linear_class(options):
    def build(rng):
        t = np.array([1, 3, 0])
        crit = L.LinearCrossEntropyLoss(
            D,
            C,
            bias=True,
            dtype=jnp.float64,
            label_smoothing=0.1,
            options=options,
            key=jax.random.key(int(rng.integers(1 << 30))),
        )
        return (_normal(rng, N, D), crit), lambda p: p[1](p[0], t)

    return build


def _adaptive(what):
    """AdaptiveLogSoftmaxWithLoss's ``output``, ``loss`` or ``log_prob``, of the input and every
    parameter (the module is a pytree); targets in the shortlist and in both tail clusters."""

    def build(rng):
        t = np.array([1, 3, 7])
        asm = L.AdaptiveLogSoftmaxWithLoss(
            D, 8, [2, 5], div_value=2.0, head_bias=True, dtype=jnp.float64, key=jax.random.key(int(rng.integers(99)))
        )
        if what == "log_prob":
            return (_normal(rng, N, D), asm), lambda p: p[1].log_prob(p[0])
        return (_normal(rng, N, D), asm), lambda p: getattr(p[1](p[0], t), what)

    return build


def _ctc(make_loss):
    def build(rng):
        targets = np.array([[1, 2], [3, 0]])
        il, tl = np.array([6, 5]), np.array([2, 1])
        loss = make_loss()
        # torch's CTC gradient is the derivative through a log_softmax (see ctc_loss): compose it.
        return _normal(rng, 6, 2, C), lambda z: loss(jax.nn.log_softmax(z, axis=-1), targets, il, tl)

    return build


def _two(loss, shape=(N,)):
    """``loss(x1, x2, y)`` with +-1 targets (margin_ranking, cosine_embedding)."""

    def build(rng):
        y = np.array([1.0, -1.0, 1.0])
        return (_normal(rng, *shape), _normal(rng, *shape)), lambda p: loss(p[0], p[1], y)

    return build


def _triplet(loss):
    def build(rng):
        return (_normal(rng, N, D), _normal(rng, N, D), _normal(rng, N, D)), lambda p: loss(*p)

    return build


def _distance(loss):
    def build(rng):
        return (_normal(rng, N, D), _normal(rng, N, D)), lambda p: loss(*p)

    return build


_HINGE_Y = np.array([[1.0, -1.0, 1.0, -1.0], [-1.0, -1.0, 1.0, 1.0], [1.0, 1.0, -1.0, -1.0]])
_MULTILABEL_T = np.array([[2, 0, -1, 1], [1, -1, 3, 3], [3, 2, 1, -1]])
_MULTILABEL_Y = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])


def _focal(**kw):
    """sigmoid_focal_loss of logits and soft targets (inside (0, 1): (1 - p_t) stays positive)."""

    def build(rng):
        return (_normal(rng, N, C), _uniform(rng, 0.1, 0.9, N, C)), lambda p: L.ops.sigmoid_focal_loss(p[0], p[1], **kw)

    return build


def _overlapping_boxes(rng):
    """Pairs of overlapping boxes with no equal coordinates: away from the min/max kinks and from
    the edge of the intersection mask."""
    xy = _uniform(rng, 0.0, 5.0, N, 2)
    wh = _uniform(rng, 2.0, 4.0, N, 2)
    b1 = np.concatenate([xy, xy + wh], axis=1)
    shift = _uniform(rng, 0.2, 0.6, N, 4) * rng.choice([-1.0, 1.0], size=(N, 4))
    return b1, b1 + shift


def _box_loss(loss, **kw):
    def build(rng):
        return _overlapping_boxes(rng), lambda p: loss(p[0], p[1], **kw)

    return build


def _ciou_aspect(b1, b2):
    """CIoU's aspect term ``v`` and its weight ``alpha`` by hand (torchvision's formulas)."""
    w, h = b1[..., 2] - b1[..., 0], b1[..., 3] - b1[..., 1]
    wg, hg = b2[..., 2] - b2[..., 0], b2[..., 3] - b2[..., 1]
    iw = jnp.minimum(b1[..., 2], b2[..., 2]) - jnp.maximum(b1[..., 0], b2[..., 0])
    ih = jnp.minimum(b1[..., 3], b2[..., 3]) - jnp.maximum(b1[..., 1], b2[..., 1])
    inter = iw * ih  # the test boxes overlap
    iou = inter / (w * h + wg * hg - inter + 1e-7)
    v = 4 / np.pi**2 * (jnp.arctan(wg / hg) - jnp.arctan(w / h)) ** 2
    return v, v / (1 - iou + v + 1e-7)


def _ciou(rng):
    """complete_box_iou_loss's alpha carries no gradient (torchvision's no_grad), so its derivative
    is not the formula's. F adds ``(alpha(theta_0) - alpha(theta)) v(theta)``, with the hand-written
    alpha held constant too: F is then ``DIoU + alpha(theta_0) v``, a plain function whose finite
    differences are torchvision's gradient at theta_0, and F's derivatives agree with them only if
    none flows through the loss's own alpha."""
    b1, b2 = _overlapping_boxes(rng)
    _, alpha0 = _ciou_aspect(jnp.asarray(b1), jnp.asarray(b2))

    def fn(p):
        v, alpha = _ciou_aspect(p[0], p[1])
        return L.ops.complete_box_iou_loss(p[0], p[1]) + (alpha0 - jax.lax.stop_gradient(alpha)) * v

    return (b1, b2), fn


def _cases() -> list[Case]:
    def x_only(loss, make_target):
        def build(rng):
            t = make_target(rng)
            return _normal(rng, N, C), lambda x: loss(x, t)

        return build

    cases = [
        Case("l1_loss", "l1_loss", _pair(L.l1_loss)),
        Case("L1Loss", "L1Loss", _pair(L.L1Loss(reduction="sum"))),
        Case("mse_loss", "mse_loss", _pair(L.mse_loss)),
        Case("MSELoss", "MSELoss", _pair(L.MSELoss(reduction="none"))),
        Case("huber_loss", "huber_loss", _pair(L.huber_loss, delta=0.7)),
        Case("HuberLoss", "HuberLoss", _pair(L.HuberLoss(delta=0.7))),
        Case("smooth_l1_loss", "smooth_l1_loss", _pair(L.smooth_l1_loss, beta=0.7)),
        Case("SmoothL1Loss", "SmoothL1Loss", _pair(L.SmoothL1Loss(beta=0.7))),
        # log-probabilities need not be normalised for nll_loss's derivative
        Case(
            "nll_loss",
            "nll_loss",
            x_only(
                functools.partial(L.nll_loss, weight=np.array([0.5, 1.0, 1.5, 2.0]), ignore_index=2),
                lambda rng: np.array([1, 2, 3]),
            ),
        ),
        Case("NLLLoss", "NLLLoss", x_only(L.NLLLoss(reduction="sum"), lambda rng: np.array([0, 3, 1]))),
        Case("cross_entropy[index]", "cross_entropy", _ce_index()),
        Case(
            "cross_entropy[weight,ignore_index,label_smoothing]",
            "cross_entropy",
            _ce_weighted(ignore_index=2, label_smoothing=0.2),
        ),
        Case("cross_entropy[probs]", "cross_entropy", _ce_probs),
        Case(
            "CrossEntropyLoss",
            "CrossEntropyLoss",
            x_only(
                L.CrossEntropyLoss(weight=np.array([0.5, 1.0, 1.5, 2.0]), ignore_index=0, label_smoothing=0.1),
                lambda rng: np.array([1, 0, 3]),
            ),
        ),
        Case("linear_cross_entropy[reference]", "linear_cross_entropy", _linear(None)),
        Case(
            "linear_cross_entropy[chunked]",
            "linear_cross_entropy (chunked)",
            _linear(L.LinearCrossEntropyOptions(batch_chunk_size=2)),
        ),
        Case("LinearCrossEntropyLoss[reference]", "LinearCrossEntropyLoss", _linear_class(None)),
        Case(
            "LinearCrossEntropyLoss[chunked]",
            "LinearCrossEntropyLoss (chunked)",
            _linear_class(L.LinearCrossEntropyOptions(batch_chunk_size=2)),
        ),
        Case(
            "binary_cross_entropy",
            "binary_cross_entropy",
            lambda rng: (
                (_uniform(rng, 0.2, 0.8, N, C), _uniform(rng, 0, 1, N, C), _uniform(rng, 0.5, 1.5, N, C)),
                lambda p: L.binary_cross_entropy(p[0], p[1], weight=p[2]),
            ),
        ),
        Case(
            "BCELoss",
            "BCELoss",
            lambda rng: (
                (_uniform(rng, 0.2, 0.8, N, C), _uniform(rng, 0, 1, N, C)),
                lambda p: L.BCELoss(weight=np.linspace(0.5, 2.0, C))(p[0], p[1]),
            ),
        ),
        Case(
            "binary_cross_entropy_with_logits",
            "binary_cross_entropy_with_logits",
            lambda rng: (
                (_normal(rng, N, C), _uniform(rng, 0, 1, N, C), _uniform(rng, 0.5, 1.5, C), _uniform(rng, 0.5, 2, C)),
                lambda p: L.binary_cross_entropy_with_logits(p[0], p[1], weight=p[2], pos_weight=p[3]),
            ),
        ),
        Case(
            "BCEWithLogitsLoss",
            "BCEWithLogitsLoss",
            lambda rng: (
                (_normal(rng, N, C), _uniform(rng, 0, 1, N, C)),
                lambda p: L.BCEWithLogitsLoss(pos_weight=np.linspace(0.5, 2.0, C))(p[0], p[1]),
            ),
        ),
        Case(
            "kl_div",
            "kl_div",
            lambda rng: (
                (np.log(_probs(rng, N, C)), _probs(rng, N, C)),
                lambda p: L.kl_div(p[0], p[1], reduction="batchmean"),
            ),
        ),
        Case(
            "KLDivLoss",
            "KLDivLoss",
            lambda rng: (
                (np.log(_probs(rng, N, C)), np.log(_probs(rng, N, C))),
                lambda p: L.KLDivLoss(reduction="sum", log_target=True)(p[0], p[1]),
            ),
        ),
        Case(
            "poisson_nll_loss",
            "poisson_nll_loss",
            lambda rng: (
                (_normal(rng, N, C), _uniform(rng, 0, 3, N, C)),
                lambda p: L.poisson_nll_loss(p[0], p[1]),
            ),
        ),
        Case(
            "PoissonNLLLoss",
            "PoissonNLLLoss",
            lambda rng: (
                (_uniform(rng, 0.5, 2, N, C), _uniform(rng, 1.2, 3, N, C)),
                lambda p: L.PoissonNLLLoss(log_input=False, full=True)(p[0], p[1]),
            ),
        ),
        Case(
            "gaussian_nll_loss",
            "gaussian_nll_loss",
            lambda rng: (
                (_normal(rng, N, C), _normal(rng, N, C), _uniform(rng, 0.5, 2, N, C)),
                lambda p: L.gaussian_nll_loss(p[0], p[1], p[2]),
            ),
        ),
        Case(
            "GaussianNLLLoss",
            "GaussianNLLLoss",
            lambda rng: (
                (_normal(rng, N, C), _normal(rng, N, C), _uniform(rng, 0.5, 2, N, 1)),
                lambda p: L.GaussianNLLLoss(full=True)(p[0], p[1], p[2]),
            ),
        ),
        Case("ctc_loss", "ctc_loss", _ctc(lambda: L.ctc_loss)),
        Case("CTCLoss", "CTCLoss", _ctc(lambda: L.CTCLoss(reduction="sum"))),
        Case(
            "hinge_embedding_loss",
            "hinge_embedding_loss",
            x_only(functools.partial(L.hinge_embedding_loss, margin=0.5), lambda rng: _HINGE_Y),
        ),
        Case(
            "HingeEmbeddingLoss", "HingeEmbeddingLoss", x_only(L.HingeEmbeddingLoss(margin=1.5), lambda rng: _HINGE_Y)
        ),
        Case("margin_ranking_loss", "margin_ranking_loss", _two(functools.partial(L.margin_ranking_loss, margin=0.1))),
        Case("MarginRankingLoss", "MarginRankingLoss", _two(L.MarginRankingLoss(margin=0.2, reduction="sum"))),
        Case("soft_margin_loss", "soft_margin_loss", x_only(L.soft_margin_loss, lambda rng: _HINGE_Y)),
        Case("SoftMarginLoss", "SoftMarginLoss", x_only(L.SoftMarginLoss(reduction="none"), lambda rng: _HINGE_Y)),
        Case("cosine_embedding_loss", "cosine_embedding_loss", _two(L.cosine_embedding_loss, (N, D))),
        Case("CosineEmbeddingLoss", "CosineEmbeddingLoss", _two(L.CosineEmbeddingLoss(margin=-0.2), (N, D))),
        Case(
            "multi_margin_loss",
            "multi_margin_loss",
            x_only(functools.partial(L.multi_margin_loss, margin=0.8), lambda rng: np.array([1, 2, 0])),
        ),
        Case(
            "MultiMarginLoss",
            "MultiMarginLoss",
            x_only(L.MultiMarginLoss(p=2, weight=np.array([0.5, 1.0, 1.5, 2.0])), lambda rng: np.array([3, 0, 2])),
        ),
        Case(
            "multilabel_margin_loss",
            "multilabel_margin_loss",
            x_only(L.multilabel_margin_loss, lambda rng: _MULTILABEL_T),
        ),
        Case(
            "MultiLabelMarginLoss",
            "MultiLabelMarginLoss",
            x_only(L.MultiLabelMarginLoss(reduction="none"), lambda rng: _MULTILABEL_T),
        ),
        Case(
            "multilabel_soft_margin_loss",
            "multilabel_soft_margin_loss",
            lambda rng: (
                (_normal(rng, N, C), _uniform(rng, 0.5, 1.5, C)),
                lambda p: L.multilabel_soft_margin_loss(p[0], _MULTILABEL_Y, weight=p[1]),
            ),
        ),
        Case(
            "MultiLabelSoftMarginLoss",
            "MultiLabelSoftMarginLoss",
            x_only(L.MultiLabelSoftMarginLoss(weight=np.linspace(0.5, 2.0, C)), lambda rng: _MULTILABEL_Y),
        ),
        Case(
            "triplet_margin_loss", "triplet_margin_loss", _triplet(functools.partial(L.triplet_margin_loss, margin=1.5))
        ),
        Case("TripletMarginLoss", "TripletMarginLoss", _triplet(L.TripletMarginLoss(margin=1.0, p=3, swap=True))),
        Case(
            "triplet_margin_with_distance_loss",
            "triplet_margin_with_distance_loss",
            _triplet(functools.partial(L.triplet_margin_with_distance_loss, margin=1.5)),
        ),
        Case(
            "TripletMarginWithDistanceLoss",
            "TripletMarginWithDistanceLoss",
            _triplet(
                L.TripletMarginWithDistanceLoss(
                    distance_function=lambda x, y: 1.0 - L.cosine_similarity(x, y), margin=0.5, swap=True
                )
            ),
        ),
        Case("pairwise_distance", "pairwise_distance", _distance(L.pairwise_distance)),
        Case("PairwiseDistance", "PairwiseDistance", _distance(L.PairwiseDistance(p=3.0))),
        Case("cosine_similarity", "cosine_similarity", _distance(L.cosine_similarity)),
        Case("CosineSimilarity", "CosineSimilarity", _distance(L.CosineSimilarity(dim=0))),
        Case("AdaptiveLogSoftmaxWithLoss[output]", "AdaptiveLogSoftmaxWithLoss", _adaptive("output")),
        Case("AdaptiveLogSoftmaxWithLoss[loss]", "AdaptiveLogSoftmaxWithLoss", _adaptive("loss")),
        Case("AdaptiveLogSoftmaxWithLoss[log_prob]", "AdaptiveLogSoftmaxWithLoss", _adaptive("log_prob")),
        Case("ops.sigmoid_focal_loss", "ops.sigmoid_focal_loss", _focal(reduction="mean")),
        Case("ops.sigmoid_focal_loss[gamma=1.5]", "ops.sigmoid_focal_loss", _focal(alpha=-1, gamma=1.5)),
        Case("ops.generalized_box_iou_loss", "ops.generalized_box_iou_loss", _box_loss(L.ops.generalized_box_iou_loss)),
        Case(
            "ops.distance_box_iou_loss",
            "ops.distance_box_iou_loss",
            _box_loss(L.ops.distance_box_iou_loss, reduction="sum"),
        ),
        Case("ops.complete_box_iou_loss", "ops.complete_box_iou_loss", _ciou),
    ]
    return cases


CASES = {case.id: case for case in _cases()}


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


# ------------------------------------------------------------------------------------------------
# One prepared problem per case, shared by its seven tests: the flat parameters, a direction,
# a cotangent, and the compiled F and grad(S) that the finite differences evaluate.


# Each program here runs a handful of times on a few dozen numbers: compile it quickly (LLVM
# without its optimisation passes) rather than well. The numbers do not change.
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


@dataclasses.dataclass
class Problem:
    theta: np.ndarray
    v: np.ndarray  # unit direction of the finite differences
    u: np.ndarray  # cotangent of F's output
    F: Callable[[jax.Array], jax.Array]
    S: Callable[[jax.Array], jax.Array]  # <u, F>
    jF: Callable[[np.ndarray], jax.Array]
    jgradS: Callable[[np.ndarray], jax.Array]


@functools.cache
def _problem(case_id: str) -> Problem:
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    params, fn = CASES[case_id].build(rng)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    theta, unravel = ravel_pytree(params)

    def F(th):
        return fn(unravel(th))

    out = jax.eval_shape(F, theta)
    u = rng.normal(size=out.shape)
    v = rng.normal(size=theta.shape)
    v = v / np.linalg.norm(v)

    def S(th):
        return jnp.sum(u * F(th))

    return Problem(np.asarray(theta), v, u, F, S, _jit(F), _jit(jax.grad(S)))


_H = 1e-3


def _fd(f, theta, v):
    """Fourth-order central difference of ``f`` at ``theta`` along ``v`` (numpy arithmetic, so
    only the compiled ``f`` runs)."""
    a, b = (np.asarray(f(theta + k * _H * v)) for k in (1, -1))
    a2, b2 = (np.asarray(f(theta + k * _H * v)) for k in (2, -2))
    return (8 * (a - b) - (a2 - b2)) / (12 * _H)


def _close(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-8 * scale)


def _check(transform: str, pb: Problem) -> None:
    theta, v = pb.theta, pb.v
    if transform == "jit":
        _close(pb.jF(theta), pb.F(jnp.asarray(theta)))
    elif transform == "vmap":
        batch = np.stack([theta, theta + 0.01 * v])
        got = _jit(jax.vmap(pb.F))(batch)
        _close(got, np.stack([pb.jF(batch[0]), pb.jF(batch[1])]))
    elif transform == "grad":
        _close(np.vdot(pb.jgradS(theta), v), _fd(lambda t: np.sum(pb.u * np.asarray(pb.jF(t))), theta, v))
    elif transform == "jvp":
        _, tangent = _jit(lambda t, d: jax.jvp(pb.F, (t,), (d,)))(theta, v)
        _close(tangent, _fd(pb.jF, theta, v))
    elif transform == "jacfwd":
        jac = np.asarray(_jit(jax.jacfwd(pb.F))(theta))
        _close(jac @ v, _fd(pb.jF, theta, v))
    elif transform == "hessian":
        hess = np.asarray(_jit(jax.hessian(pb.S))(theta))
        _close(hess @ v, _fd(pb.jgradS, theta, v))
    elif transform == "jvp_grad":
        _, hv = _jit(lambda t, d: jax.jvp(jax.grad(pb.S), (t,), (d,)))(theta, v)
        _close(hv, _fd(pb.jgradS, theta, v))
    else:
        raise AssertionError(transform)


def _transformed(transform: str, pb: Problem) -> tuple[Callable, tuple]:
    theta, v = pb.theta, pb.v
    return {
        "jit": (pb.F, (theta,)),
        "grad": (jax.grad(pb.S), (theta,)),
        "vmap": (jax.vmap(pb.F), (np.stack([theta, theta]),)),
        "jvp": (lambda t, d: jax.jvp(pb.F, (t,), (d,)), (theta, v)),
        "jacfwd": (jax.jacfwd(pb.F), (theta,)),
        "hessian": (jax.hessian(pb.S), (theta,)),
        "jvp_grad": (lambda t, d: jax.jvp(jax.grad(pb.S), (t,), (d,)), (theta, v)),
    }[transform]


def _params():
    for case in CASES.values():
        for transform in TRANSFORMS:
            yield pytest.param(case.id, transform, id=f"{case.id}-{transform}")


@pytest.mark.parametrize(("case_id", "transform"), list(_params()))
def test_transformation(case_id, transform):
    pb = _problem(case_id)
    if transform in SUPPORT[CASES[case_id].key]:
        _check(transform, pb)
    else:
        # refused when traced and lowered, before anything is compiled or computed
        fn, args = _transformed(transform, pb)
        with pytest.raises(TypeError, match="custom_vjp"):
            jax.jit(fn).lower(*args)


def test_cases_cover_every_public_loss():
    """Every functional and class of ``__all__`` and of ``losses_jax.ops`` has a case, and every
    SUPPORT entry is exercised."""
    public = (set(L.__all__) - _NOT_LOSSES) | _OPS_LOSSES
    assert _NOT_LOSSES <= set(L.__all__)
    keys = {case.key for case in CASES.values()}
    assert keys == set(SUPPORT)
    assert {key.split(" ")[0] for key in keys} == public


TRANSFORM_HEADERS = {
    "jit": "`jit`",
    "grad": "`grad`",
    "vmap": "`vmap`",
    "jvp": "`jvp`",
    "jacfwd": "`jacfwd`",
    "hessian": "`hessian`",
    "jvp_grad": "`jvp` of `grad`",
}


def _documented_support() -> dict[str, frozenset[str]]:
    section = (Path(__file__).resolve().parents[1] / "docs" / "transformations.md").read_text()
    rows = []
    for line in section.splitlines():
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    header, body = cells[0], cells[2:]
    assert header[1:] == [TRANSFORM_HEADERS[t] for t in TRANSFORMS]
    support = {}
    for row in body:
        names = re.findall(r"`([A-Za-z_][\w.]*)`", row[0].split("(")[0])  # options in parentheses
        assert names, row
        marks = row[1:]
        assert set(marks) <= {"yes", "no"}, row
        supported = frozenset(t for t, mark in zip(TRANSFORMS, marks, strict=True) if mark == "yes")
        suffix = " (chunked)" if "chunked" in row[0] else ""
        for name in names:
            assert name + suffix not in support, f"{name}{suffix} listed twice"
            support[name + suffix] = supported
    return support


def test_documented_transformation_table_matches_support():
    assert _documented_support() == SUPPORT
