"""The class machinery of the ``torch.nn``-named loss classes: ``_Loss`` and ``_WeightedLoss``.

Constructor arguments, their order and defaults are torch 2.13.0's. ``reduction`` (including the
legacy ``size_average`` / ``reduce``) is validated when the object is built, so a typo fails at
the line that made it. Instances are immutable JAX pytrees: array options (``weight``) are leaves,
the rest is static, so a loss object can be passed into ``jax.jit`` like any other argument.
Each family module defines its classes beside its functionals; this module imports none of them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._reduction import resolve_reduction


class _Loss:
    """Base class: ``reduction`` handling, ``__call__`` -> ``forward``, pytree registration."""

    _arrays: tuple[str, ...] = ()  # attributes that are arrays (pytree leaves)
    _defaults: dict[str, Any] = {"reduction": "mean"}
    reduction: Any  # a Reduction (KLDivReduction for KLDivLoss), validated when built
    weight: Any

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean") -> None:
        self.reduction = resolve_reduction(reduction, size_average, reduce)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_node(cls, cls._flatten, cls._unflatten)

    def _flatten(self):
        leaves = tuple(getattr(self, name) for name in self._arrays)
        static = tuple((k, v) for k, v in sorted(vars(self).items()) if k not in self._arrays)
        return leaves, static

    @classmethod
    def _unflatten(cls, static, leaves):
        obj = object.__new__(cls)
        obj.__dict__.update(dict(static))
        obj.__dict__.update(zip(cls._arrays, leaves, strict=True))
        return obj

    def __call__(self, *args: Any, **kwargs: Any) -> jax.Array:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> jax.Array:
        """The loss of the inputs; each subclass defines it with torch's ``forward`` arguments."""
        raise NotImplementedError

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

    def __init__(
        self,
        weight: ArrayLike | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.weight = None if weight is None else jnp.asarray(weight)
