"""The one place that understands ``reduction=`` and the legacy ``size_average`` / ``reduce``.

Mirrors ``torch/nn/_reduction.py`` (torch 2.13.0): the same accepted strings, the same
``ValueError`` text for an unknown one, the same deprecation warnings.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp

from ._checks import user_stacklevel

REDUCTIONS = ("none", "mean", "sum")


def legacy_get_string(size_average, reduce) -> str:
    """Map torch's deprecated ``size_average`` / ``reduce`` flags to a reduction string.

    ``None`` counts as ``True`` for both, as in torch; ``reduce=False`` wins over
    ``size_average``. Always warns, with torch's message and category (``UserWarning``).
    """
    if size_average is None:
        size_average = True
    if reduce is None:
        reduce = True
    if size_average and reduce:
        ret = "mean"
    elif reduce:
        ret = "sum"
    else:
        ret = "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
    return ret


def resolve_reduction(reduction, size_average=None, reduce=None, *, extra: tuple[str, ...] = ()) -> str:
    """Return the effective reduction string, validating it as torch does.

    ``size_average`` / ``reduce``, when either is given, override ``reduction`` (with torch's
    deprecation warning). ``'elementwise_mean'`` is accepted as ``'mean'`` with torch's warning.
    ``extra`` names loss-specific values (``'batchmean'`` for ``kl_div``). Anything else raises
    ``ValueError("<value> is not a valid value for reduction")``, torch's exact text.
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_get_string(size_average, reduce)
    if isinstance(reduction, str):
        if reduction in REDUCTIONS or reduction in extra:
            return reduction
        if reduction == "elementwise_mean":
            warnings.warn(
                "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            return "mean"
    raise ValueError(f"{reduction} is not a valid value for reduction")


def apply_reduction(loss, reduction: str):
    """``'none'`` returns ``loss``; ``'sum'`` its sum; ``'mean'`` its mean (NaN when empty, as torch)."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return jnp.sum(loss)
    if reduction == "mean":
        # jnp.mean of an empty array is 0/0 = NaN, which is torch's answer too.
        return jnp.mean(loss)
    raise ValueError(f"{reduction} is not a valid value for reduction")
