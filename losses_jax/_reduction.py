"""The one place that understands ``reduction=`` and the legacy ``size_average`` / ``reduce``.

Mirrors ``torch/nn/_reduction.py`` (torch 2.13.0): the same accepted strings, the same
``ValueError`` text for an unknown one, the same deprecation warnings.
"""

from __future__ import annotations

import warnings
from typing import Literal, cast

import jax.numpy as jnp

from ._torch_semantics import user_stacklevel

REDUCTIONS = ("none", "mean", "sum")

#: The ``reduction=`` values every loss accepts.
Reduction = Literal["none", "mean", "sum"]
#: ``kl_div`` also accepts ``'batchmean'``.
KLDivReduction = Literal["none", "mean", "sum", "batchmean"]


def legacy_get_string(size_average: bool | None, reduce: bool | None) -> Reduction:
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


def resolve_reduction(
    reduction: str, size_average: bool | None = None, reduce: bool | None = None, *, extra: tuple[str, ...] = ()
) -> Reduction:
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
            return cast(Reduction, reduction)
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


def weighted_reduction(loss, reduction: str, total_weight):
    """``'mean'`` as torch's weighted mean, ``sum(loss) / total_weight``.

    NaN when the total is 0, as torch; ``'none'`` and ``'sum'`` as `apply_reduction`. ``total_weight`` may also be
    a count, e.g. the number of positions of a class-probability cross-entropy.
    """
    if reduction == "mean":
        return jnp.sum(loss) / total_weight
    return apply_reduction(loss, reduction)


def smoothed_parts(nll, smooth, label_smoothing, n_classes: int):
    """Torch's label smoothing, ``(1 - eps) * nll + eps / C * smooth``, of parts already reduced.

    (torch reduces, and for ``'mean'`` normalises, each part on its own: 0/0 + s/0 is NaN).
    """
    return (1.0 - label_smoothing) * nll + (label_smoothing / n_classes) * smooth


def batchmean(loss, batch_size: int):
    """``kl_div``'s ``'batchmean'``: the sum divided by the batch size (the first dimension)."""
    return jnp.sum(loss) / batch_size


def mean_per_length(loss, lengths):
    """CTC's ``'mean'``: the batch mean of each loss divided by its target length (at least 1)."""
    return jnp.mean(loss / jnp.maximum(lengths, 1).astype(loss.dtype))
