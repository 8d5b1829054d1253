"""``AdaptiveLogSoftmaxWithLoss``: torch 2.13's adaptive (clustered) softmax.

A layer with its own parameters: a head over the frequent classes plus one two-layer projection
per tail cluster.

The per-class terms are the negative log-likelihoods of [`losses_jax.cross_entropy`][losses_jax.cross_entropy]
(``reduction='none'``), so the numbers and gradients are that function's, i.e. torch's
``log_softmax`` then ``gather``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from ._base import _Loss
from ._classification import cross_entropy
from ._torch_semantics import as_array, check_floating, check_integer, compute_dtype, concrete_numpy, linear
from .interop import to_numpy

_NAME = "AdaptiveLogSoftmaxWithLoss"


class _ASMoutput(NamedTuple):
    """torch's ``_ASMoutput``: ``output`` and ``loss``.

    ``output`` holds the target log-probabilities, ``(N)`` or ``()``, and ``loss`` their negated
    mean (a scalar).
    """

    output: jax.Array
    loss: jax.Array


class _IncompatibleKeys(NamedTuple):
    """What ``AdaptiveLogSoftmaxWithLoss.load_state_dict`` did not match (torch's fields)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _check_cutoffs(cutoffs: Sequence[Any], n_classes: int) -> list[int]:
    """Torch's checks of ``cutoffs``, with its messages.

    Integers only (torch fails later on a float such as ``2.0``, with a ``TypeError`` from its
    ``Linear``).
    """
    cutoffs = list(cutoffs)
    if len(cutoffs) == 0:
        raise ValueError("cutoffs should be a sequence of length larger than 0")
    if (
        (cutoffs != sorted(cutoffs))
        or (min(cutoffs) <= 0)
        or (max(cutoffs) > (n_classes - 1))
        or (len(set(cutoffs)) != len(cutoffs))
        or any(int(c) != c for c in cutoffs)
    ):
        raise ValueError(
            "cutoffs should be a sequence of unique, positive "
            "integers sorted in an increasing order, where "
            "each value is between 1 and n_classes-1"
        )
    for c in cutoffs:
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)):
            raise TypeError(f"{_NAME}: 'cutoffs' must hold integers, got {c!r} ({type(c).__name__})")
    return [int(c) for c in cutoffs]


def _param_shapes(in_features: int, cutoffs: tuple[int, ...], div_value: float, head_bias: bool):
    """Torch's parameter names and shapes, in its ``state_dict`` order."""
    shortlist, n_clusters = cutoffs[0], len(cutoffs) - 1
    shapes: OrderedDict[str, tuple[int, ...]] = OrderedDict()
    shapes["head.weight"] = (shortlist + n_clusters, in_features)
    if head_bias:
        shapes["head.bias"] = (shortlist + n_clusters,)
    for i in range(n_clusters):
        hsz = int(in_features // (div_value ** (i + 1)))
        osz = cutoffs[i + 1] - cutoffs[i]
        shapes[f"tail.{i}.0.weight"] = (hsz, in_features)
        shapes[f"tail.{i}.1.weight"] = (osz, hsz)
    return shapes


def _head(params, x):
    return linear(x, params["head.weight"], params.get("head.bias"))


def _cluster_logits(params, i: int, x):
    return linear(linear(x, params[f"tail.{i}.0.weight"]), params[f"tail.{i}.1.weight"])


def _target_log_prob(params, cutoffs: tuple[int, ...], x, t):
    """``log p(t_n | x_n)`` for ``x`` ``(N, H)`` and ``t`` ``(N)``: torch's ``output``.

    A target outside ``[0, n_classes)`` (only reachable under tracing) points the head at an
    index outside its range, where ``cross_entropy`` gives NaN: the row's output, the loss and
    their gradients are NaN.
    """
    # torch runs each cluster on the rows whose target falls in it (boolean masks, index_select):
    # a data-dependent shape, which jit cannot compile. Here every cluster runs on every row and
    # `where` keeps each row's own cluster: the tail's work and memory are those of log_prob
    # (N x (n_classes - c_0) logits) rather than torch's per-cluster rows, and the gradients are
    # exact (rows outside a cluster send it a zero cotangent). The head costs the same as torch's.
    shortlist, n_clusters, n_classes = cutoffs[0], len(cutoffs) - 1, cutoffs[-1]
    cluster = sum(((t >= c).astype(t.dtype) for c in cutoffs[:-1]), jnp.zeros_like(t))  # 0: shortlist
    head_index = jnp.where(cluster == 0, t, shortlist + cluster - 1)
    head_index = jnp.where((t < 0) | (t >= n_classes), shortlist + n_clusters, head_index)
    out = jnp.zeros(t.shape, x.dtype)
    for i in range(n_clusters):
        rel = jnp.clip(t - cutoffs[i], 0, cutoffs[i + 1] - cutoffs[i] - 1)
        nll = cross_entropy(_cluster_logits(params, i, x), rel, reduction="none")
        out = jnp.where(cluster == i + 1, -nll, out)
    # torch: output (the cluster's log-probability, 0 in the shortlist) += the head's
    return out - cross_entropy(_head(params, x), head_index, reduction="none")


def _log_softmax(z):
    work, _ = compute_dtype(z.dtype)
    return jax.nn.log_softmax(z.astype(work), axis=1).astype(z.dtype)


def _full_log_prob(params, cutoffs: tuple[int, ...], x, head_logits):
    """Torch's ``_get_full_log_prob``: ``(N, n_classes)`` log-probabilities."""
    head_lp = _log_softmax(head_logits)
    shortlist = cutoffs[0]
    parts = [head_lp[:, :shortlist]]
    for i in range(len(cutoffs) - 1):
        parts.append(_log_softmax(_cluster_logits(params, i, x)) + head_lp[:, shortlist + i, None])
    return jnp.concatenate(parts, axis=1)


class AdaptiveLogSoftmaxWithLoss(_Loss):
    r"""Efficient softmax approximation for large output spaces, as ``torch.nn.AdaptiveLogSoftmaxWithLoss``.

    The classes ``[0, n_classes)`` are split by ``cutoffs`` $c_0 < \dots < c_{K-1}$ (and
    $c_K$ = ``n_classes``) into a shortlist $[0, c_0)$ and $K$ tail clusters
    $[c_{i-1}, c_i)$. The head, a linear layer to $c_0 + K$ logits, scores the shortlist
    classes and one entry per cluster; cluster $i$ has its own projection
    ``Linear(in_features, h_i) -> Linear(h_i, c_i - c_{i-1})`` (no biases). With
    $\log p^{head}$ and $\log p^{(i)}$ the log-softmaxes of the head and of cluster
    $i$:

    $$
    \log p(y \mid x) = \log p^{head}_y(x) \quad (y < c_0), \qquad
    \log p(y \mid x) = \log p^{(i)}_{y - c_{i-1}}(x) + \log p^{head}_{c_0 + i - 1}(x)
    \quad (c_{i-1} \le y < c_i),
    $$

    ``output`` is $\log p(y_n \mid x_n)$ and ``loss`` the mean of ``-output``.

    ``AdaptiveLogSoftmaxWithLoss(in_features, n_classes, cutoffs, div_value=4.0, head_bias=False,
    device=None, dtype=None, *, key=None)``; call as ``asm(input, target)``, which returns a
    ``NamedTuple`` ``(output, loss)``. Labels should be sorted by frequency (0 the most frequent), as torch advises.

    ``cutoffs``: unique increasing integers in ``[1, n_classes - 1]`` (torch's ``ValueError``
    otherwise); classes ``[0, cutoffs[0])`` form the head's shortlist, the others fall into
    ``len(cutoffs)`` tail clusters of sizes ``cutoffs[i+1] - cutoffs[i]``, whose projections have
    ``int(in_features // div_value ** (i + 1))`` hidden features.

    Parameters, named and shaped as torch's ``state_dict``: ``head.weight`` ``(cutoffs[0] + n_clusters,
    in_features)``, ``head.bias`` (when ``head_bias``), ``tail.{i}.0.weight`` ``(h_i, in_features)`` and
    ``tail.{i}.1.weight`` ``(o_i, h_i)``. They live in the dict ``params`` (a pytree leaf container:
    ``jax.grad`` of a function of the object gives their gradients under the same keys), are initialised as
    ``torch.nn.Linear`` does, $U(-1/\sqrt{fan\_in}, 1/\sqrt{fan\_in})$, from ``key`` (a ``jax.random`` key;
    ``None`` uses ``jax.random.key(0)``), and move from and to torch with
    [`load_state_dict`][losses_jax.AdaptiveLogSoftmaxWithLoss.load_state_dict] and
    [`state_dict`][losses_jax.AdaptiveLogSoftmaxWithLoss.state_dict]. ``dtype`` is the parameters' dtype
    (default float32), and inputs must have it (torch's rule); ``device`` is accepted and ignored. ``cutoffs``
    holds ``n_classes`` at its end, as torch's attribute does (a tuple here, so the object can be a static
    part of a ``jit`` argument).

    Shapes: input ``(N, in_features)`` or ``(in_features)``; target ``(N)`` or ``()`` class
    indices in ``[0, n_classes)``; output ``(N)`` or ``()``; loss scalar. An empty batch gives an
    empty output and a NaN loss, as torch.

    Bad input: torch's ``RuntimeError`` s (target of more than one dimension, batch sizes that
    differ, a 1-D target with input not 2-D, a 0-D target with input not 1-D, ``in_features``
    or dtype mismatch) are ``ValueError`` / ``TypeError``, at trace time. A target outside
    ``[0, n_classes)`` raises torch's message as ``ValueError`` when the target is concrete; under
    ``jit``/``vmap``/``grad`` tracing such a row's output, the loss and the gradients are NaN.

    Every cluster is evaluated for every row and each row's own cluster is selected (torch evaluates each
    cluster on its own rows, a data-dependent shape that ``jit`` cannot compile): the tail then costs as much
    as [`log_prob`][losses_jax.AdaptiveLogSoftmaxWithLoss.log_prob], ``N * sum_i (in_features * h_i + h_i *
    o_i)`` multiply-adds and ``N x (n_classes - cutoffs[0])`` logits, instead of each row's cluster alone;
    values and gradients are the same. Works under ``jit``, ``grad``, ``vmap`` and forward mode (``jvp``,
    ``jacfwd``, ``hessian``).
    """

    _arrays = ("params",)
    params: dict[str, jax.Array]

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        cutoffs: Sequence[int],
        div_value: float = 4.0,
        head_bias: bool = False,
        device: object = None,
        dtype: DTypeLike | None = None,
        *,
        key: jax.Array | None = None,
    ) -> None:
        cut = _check_cutoffs(cutoffs, n_classes)
        self.in_features = int(in_features)
        self.n_classes = int(n_classes)
        self.cutoffs = (*cut, self.n_classes)
        self.div_value = div_value
        self.head_bias = bool(head_bias)
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        dtype = jnp.dtype(jnp.float32 if dtype is None else dtype)
        key = jax.random.key(0) if key is None else key
        shapes = self._shapes()
        params = {}
        for k, (name, shape) in zip(jax.random.split(key, len(shapes)), shapes.items(), strict=True):
            fan_in = self.in_features if name.startswith("head.") else shape[-1]
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            params[name] = jax.random.uniform(k, shape, dtype, -bound, bound)
        self.params = params

    def _shapes(self):
        return _param_shapes(self.in_features, self.cutoffs, self.div_value, self.head_bias)

    def __repr__(self) -> str:
        return (
            f"{_NAME}(in_features={self.in_features}, n_classes={self.n_classes}, "
            f"cutoffs={list(self.cutoffs[:-1])}, div_value={self.div_value}, head_bias={self.head_bias})"
        )

    # -- parameters in and out ----------------------------------------------------------------

    def state_dict(self, *, as_torch: bool = False) -> OrderedDict[str, Any]:
        """The parameters under torch's names, in torch's order and layout.

        The names: ``head.weight``, ``head.bias``, ``tail.{i}.0.weight``, ``tail.{i}.1.weight``.

        Values are numpy arrays (writable copies in the parameters' dtype); ``as_torch=True``
        imports torch and returns ``torch.Tensor`` s, which ``torch_module.load_state_dict``
        takes as they are.
        """
        out: OrderedDict[str, Any] = OrderedDict((name, np.array(self.params[name])) for name in self._shapes())
        if as_torch:
            import torch

            out = OrderedDict((k, torch.from_numpy(v)) for k, v in out.items())
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> _IncompatibleKeys:
        """Load parameters from a torch ``state_dict`` (tensors, numpy or JAX arrays), in place.

        As torch's ``Module.load_state_dict``: values are cast to the parameters' dtype, a shape
        that differs raises ``ValueError`` naming the key; with ``strict`` (default) missing or
        unexpected keys raise ``KeyError``, otherwise the matching keys are loaded. Returns
        ``(missing_keys, unexpected_keys)``.
        """
        shapes = self._shapes()
        missing = [k for k in shapes if k not in state_dict]
        unexpected = [k for k in state_dict if k not in shapes]
        if strict and (missing or unexpected):
            raise KeyError(
                f"Error(s) in loading state_dict for {_NAME}: missing key(s) {missing}, unexpected key(s) {unexpected}"
            )
        params = dict(self.params)
        for name, shape in shapes.items():
            if name not in state_dict:
                continue
            value = to_numpy(state_dict[name])
            if tuple(value.shape) != shape:
                raise ValueError(
                    f"{_NAME}: size mismatch for {name}: copying a param with shape {tuple(value.shape)}, "
                    f"the shape in current model is {shape}"
                )
            params[name] = jnp.asarray(value, dtype=self.params[name].dtype)
        self.params = params
        return _IncompatibleKeys(missing, unexpected)

    # -- forward, log_prob, predict -------------------------------------------------------------

    def _check_input(self, input, fn: str):
        check_floating(input, "input", fn)
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            raise ValueError(
                f"{fn}: expected 'input' with in_features={self.in_features} features in its last "
                f"dimension, got shape {tuple(input.shape)}"
            )
        dtype = self.params["head.weight"].dtype
        if input.dtype != dtype:
            raise TypeError(f"{fn}: 'input' must have the parameters' dtype {dtype}, got {input.dtype}")

    def __call__(self, input: ArrayLike, target: ArrayLike) -> _ASMoutput:  # type: ignore[override]
        return self.forward(input, target)

    def forward(self, input: ArrayLike, target: ArrayLike) -> _ASMoutput:  # type: ignore[override]
        """``(output, loss)``: each target's log-probability and the mean negative log-likelihood."""
        input = as_array(input, "input", _NAME)
        target = as_array(target, "target", _NAME)
        check_integer(target, "target", _NAME)
        if target.ndim == 1:
            if input.ndim == 0 or input.shape[0] != target.shape[0]:
                raise ValueError(f"{_NAME}: Input and target should have the same size in the batch dimension.")
            if input.ndim != 2:
                raise ValueError(
                    f"{_NAME}: 1D target tensor expects 2D input tensors, but found inputs with size "
                    f"{tuple(input.shape)}"
                )
        elif target.ndim == 0:
            if input.ndim != 1:
                raise ValueError(
                    f"{_NAME}: 0D target tensor expects 1D input tensors, but found inputs with size "
                    f"{tuple(input.shape)}"
                )
        else:
            raise ValueError(f"{_NAME}: 0D or 1D target tensor expected, multi-target not supported")
        self._check_input(input, _NAME)
        t = concrete_numpy(target)
        if t is not None and t.size and ((t < 0) | (t >= self.n_classes)).any():
            raise ValueError(
                f"{_NAME}: Target values should be in [0, {self.n_classes - 1}], "
                f"but values in range [{t.min()}, {t.max()}] were found. "
            )
        unbatched = target.ndim == 0
        x = input[None] if unbatched else input
        output = _target_log_prob(self.params, self.cutoffs, x, target.reshape(-1))
        loss = jnp.mean(-output)
        return _ASMoutput(output[0] if unbatched else output, loss)

    def _check_batched(self, input, fn: str):
        input = as_array(input, "input", fn)
        if input.ndim != 2:
            raise ValueError(
                f"{fn}: expected a batch 'input' of shape (N, {self.in_features}), got {tuple(input.shape)}"
            )
        self._check_input(input, fn)
        return input

    def log_prob(self, input: ArrayLike) -> jax.Array:
        """Log-probabilities of every class, ``(N, n_classes)``, for ``input`` ``(N, in_features)``.

        torch's ``log_prob``; like torch's, it takes batches only.
        """
        x = self._check_batched(input, f"{_NAME}.log_prob")
        return _full_log_prob(self.params, self.cutoffs, x, _head(self.params, x))

    def predict(self, input: ArrayLike) -> jax.Array:
        """The most probable class of each row, ``(N)`` (torch's ``predict``).

        The head's argmax where it is a shortlist class, else the argmax of
        [`log_prob`][losses_jax.AdaptiveLogSoftmaxWithLoss.log_prob] (computed for every row and selected,
        rather than on the other rows alone).
        """
        x = self._check_batched(input, f"{_NAME}.predict")
        head_logits = _head(self.params, x)
        out = jnp.argmax(head_logits, axis=1)
        full = jnp.argmax(_full_log_prob(self.params, self.cutoffs, x, head_logits), axis=1)
        return jnp.where(out >= self.shortlist_size, full, out)
