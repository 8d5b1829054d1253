"""``HuberLoss`` and ``SmoothL1Loss`` (torch.nn names), thin wrappers of the functionals.

They live apart from ``_modules`` (which the lead owns) and import its bases; ``_modules``
imports ``_regression``, so ``_regression`` itself cannot import the bases.
"""

from __future__ import annotations

from . import _regression
from ._modules import _Loss


class SmoothL1Loss(_Loss):
    """Smooth L1 loss; see :func:`losses_jax.smooth_l1_loss`.

    ``SmoothL1Loss(size_average=None, reduce=None, reduction='mean', beta=1.0)``; call as
    ``loss(input, target)``. Shapes: input ``(*)``, target ``(*)`` same shape; output scalar, or
    ``(*)`` for ``'none'``. A negative ``beta`` raises ``ValueError`` when the object is built
    (torch raises at the first call).
    """

    _defaults = {"reduction": "mean", "beta": 1.0}

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        _regression._checked_beta(beta, "SmoothL1Loss")
        self.beta = beta

    def forward(self, input, target):
        return _regression.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Huber loss; see :func:`losses_jax.huber_loss`.

    ``HuberLoss(reduction='mean', delta=1.0)``; call as ``loss(input, target)`` (torch 2.13's class
    has no ``weight``; the functional has). Shapes: input ``(*)``, target ``(*)`` same shape;
    output scalar, or ``(*)`` for ``'none'``. ``delta`` must be a Python ``float`` or ``int``
    (``TypeError`` otherwise, torch's check); a non-positive ``delta`` raises ``ValueError`` when
    the object is built (torch raises at the first call).
    """

    _defaults = {"reduction": "mean", "delta": 1.0}

    def __init__(self, reduction="mean", delta=1.0):
        if not isinstance(delta, (float, int)):
            raise TypeError(f"HuberLoss: argument 'delta' must be a float or int, got: {type(delta)}")
        super().__init__(reduction=reduction)
        _regression._checked_delta(delta, "HuberLoss")
        self.delta = delta

    def forward(self, input, target):
        return _regression.huber_loss(input, target, reduction=self.reduction, delta=self.delta)
