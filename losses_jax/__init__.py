"""PyTorch's ``torch.nn`` losses in JAX: the same names, arguments, defaults, layouts and numbers.

Functional API (``torch.nn.functional`` names)::

    import losses_jax as F
    loss = F.cross_entropy(logits, labels, label_smoothing=0.1)

Class API (``torch.nn`` names)::

    criterion = losses_jax.CrossEntropyLoss(weight=w, ignore_index=0)
    loss = criterion(logits, labels)

Every function is pure and works under ``jax.jit``, ``jax.grad`` and ``jax.vmap``. Parity with
torch is certified against torch ``2.13.0`` (see ``TORCH_VERSION`` and ``python -m parity_tests``).
"""

from ._classification import cross_entropy, nll_loss
from ._modules import CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from ._reduction import REDUCTIONS
from ._regression import l1_loss, mse_loss

__version__ = "0.1.0"

#: The torch release whose ``torch.nn`` losses this package is certified to match.
TORCH_VERSION = "2.13.0"

__all__ = [
    "CrossEntropyLoss",
    "L1Loss",
    "MSELoss",
    "NLLLoss",
    "REDUCTIONS",
    "TORCH_VERSION",
    "cross_entropy",
    "l1_loss",
    "mse_loss",
    "nll_loss",
]
