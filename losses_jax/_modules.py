"""Loss classes named as in ``torch.nn``: each stores its options and calls the functional.

Constructor arguments, their order and defaults are torch 2.13.0's. ``reduction`` (including the
legacy ``size_average`` / ``reduce``) is validated when the object is built, so a typo fails at
the line that made it. Instances are immutable JAX pytrees: array options (``weight``) are leaves,
the rest is static, so a loss object can be passed into ``jax.jit`` like any other argument.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _classification, _regression
from ._reduction import resolve_reduction


class _Loss:
    """Base class: ``reduction`` handling, ``__call__`` -> ``forward``, pytree registration."""

    _arrays: tuple[str, ...] = ()  # attributes that are arrays (pytree leaves)
    _defaults: dict = {"reduction": "mean"}

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        self.reduction = resolve_reduction(reduction, size_average, reduce)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_node(cls, cls._flatten, cls._unflatten)

    def _flatten(self):
        leaves = tuple(getattr(self, name) for name in self._arrays)
        static = tuple(
            (k, v) for k, v in sorted(vars(self).items()) if k not in self._arrays
        )
        return leaves, static

    @classmethod
    def _unflatten(cls, static, leaves):
        obj = object.__new__(cls)
        obj.__dict__.update(dict(static))
        obj.__dict__.update(zip(cls._arrays, leaves))
        return obj

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __repr__(self):
        parts = []
        for k, v in vars(self).items():
            if k in self._arrays:
                if v is not None:
                    parts.append(f"{k}=Array{tuple(v.shape)}")
            elif self._defaults.get(k, object()) != v:
                parts.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class _WeightedLoss(_Loss):
    _arrays = ("weight",)

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.weight = None if weight is None else jnp.asarray(weight)


class L1Loss(_Loss):
    """Mean absolute error; see :func:`losses_jax.l1_loss`.

    ``L1Loss(size_average=None, reduce=None, reduction='mean')``; call as ``loss(input, target)``.
    Shapes: input ``(*)``, target ``(*)`` same shape; output scalar, or ``(*)`` for ``'none'``.
    """

    def forward(self, input, target):
        return _regression.l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error; see :func:`losses_jax.mse_loss`.

    ``MSELoss(size_average=None, reduce=None, reduction='mean')``; call as ``loss(input, target)``.
    Shapes: input ``(*)``, target ``(*)`` same shape; output scalar, or ``(*)`` for ``'none'``.
    """

    def forward(self, input, target):
        return _regression.mse_loss(input, target, reduction=self.reduction)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood loss; see :func:`losses_jax.nll_loss`.

    ``NLLLoss(weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean')``.
    Shapes: input ``(C)``, ``(N, C)`` or ``(N, C, d1, ..., dK)`` log-probabilities; target
    ``()``, ``(N)`` or ``(N, d1, ..., dK)`` class indices; output scalar or the target's shape.
    """

    _defaults = {"reduction": "mean", "ignore_index": -100}

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return _classification.nll_loss(
            input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction
        )


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy from logits; see :func:`losses_jax.cross_entropy`.

    ``CrossEntropyLoss(weight=None, size_average=None, ignore_index=-100, reduce=None,
    reduction='mean', label_smoothing=0.0)``.
    Shapes: input ``(C)``, ``(N, C)`` or ``(N, C, d1, ..., dK)`` logits; target class indices
    ``()``, ``(N)`` or ``(N, d1, ..., dK)``, or class probabilities of the input's shape; output
    scalar, or the input's shape without the class axis for ``'none'``.
    """

    _defaults = {"reduction": "mean", "ignore_index": -100, "label_smoothing": 0.0}

    def __init__(
        self,
        weight=None,
        size_average=None,
        ignore_index=-100,
        reduce=None,
        reduction="mean",
        label_smoothing=0.0,
    ):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        _classification._check_label_smoothing(label_smoothing, "CrossEntropyLoss")

    def forward(self, input, target):
        return _classification.cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )
