"""PyTorch's ``torch.nn`` losses in JAX: the same names, arguments, defaults, layouts and numbers.

Every function is pure and works under ``jax.jit``, ``jax.grad`` and ``jax.vmap``. Parity with
torch is certified against torch ``2.13.0`` (see ``TORCH_VERSION`` and ``python -m parity_tests``).
``losses_jax.testing`` checks your own torch -> JAX ports the same way: values and gradients.
``losses_jax.ops`` holds the losses of ``torchvision.ops`` (focal and box-IoU losses), with
torchvision's names and numbers.

Example:
    The functional API has ``torch.nn.functional``'s names, the class API ``torch.nn``'s:

    >>> import jax.numpy as jnp
    >>> import losses_jax as F
    >>> logits, labels = jnp.array([[0.1, 0.2, 0.3]]), jnp.array([1])
    >>> F.cross_entropy(logits, labels, label_smoothing=0.1)
    Array(1.1019..., dtype=float32)
    >>> criterion = F.CrossEntropyLoss(weight=jnp.array([1.0, 2.0, 1.0]), ignore_index=0)
    >>> criterion(logits, labels)
    Array(1.1019..., dtype=float32)
"""

from importlib import metadata as _metadata

# A submodule, as torchvision.ops: its names are not top-level ones.
from . import ops as ops
from ._adaptive import AdaptiveLogSoftmaxWithLoss
from ._classification import CrossEntropyLoss, NLLLoss, cross_entropy, nll_loss
from ._ctc import CTCLoss, ctc_loss
from ._distance import CosineSimilarity, PairwiseDistance, cosine_similarity, pairwise_distance
from ._linear import LinearCrossEntropyLoss, LinearCrossEntropyOptions, linear_cross_entropy
from ._margin import (
    CosineEmbeddingLoss,
    HingeEmbeddingLoss,
    MarginRankingLoss,
    MultiLabelMarginLoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    SoftMarginLoss,
    TripletMarginLoss,
    TripletMarginWithDistanceLoss,
    cosine_embedding_loss,
    hinge_embedding_loss,
    margin_ranking_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    multilabel_soft_margin_loss,
    soft_margin_loss,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)
from ._probabilistic import (
    BCELoss,
    BCEWithLogitsLoss,
    GaussianNLLLoss,
    KLDivLoss,
    PoissonNLLLoss,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    gaussian_nll_loss,
    kl_div,
    poisson_nll_loss,
)
from ._reduction import REDUCTIONS
from ._regression import HuberLoss, L1Loss, MSELoss, SmoothL1Loss, huber_loss, l1_loss, mse_loss, smooth_l1_loss

try:
    __version__ = _metadata.version("losses-jax")  # one source: pyproject.toml, through the installed metadata
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

#: The torch release whose ``torch.nn`` losses this package is certified to match.
TORCH_VERSION = "2.13.0"

__all__ = [
    # torch.nn.functional names
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cosine_embedding_loss",
    "cosine_similarity",
    "cross_entropy",
    "ctc_loss",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "linear_cross_entropy",
    "margin_ranking_loss",
    "mse_loss",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "pairwise_distance",
    "poisson_nll_loss",
    "smooth_l1_loss",
    "soft_margin_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
    # torch.nn names
    "AdaptiveLogSoftmaxWithLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CTCLoss",
    "CosineEmbeddingLoss",
    "CosineSimilarity",
    "CrossEntropyLoss",
    "GaussianNLLLoss",
    "HingeEmbeddingLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "LinearCrossEntropyLoss",
    "LinearCrossEntropyOptions",
    "MSELoss",
    "MarginRankingLoss",
    "MultiLabelMarginLoss",
    "MultiLabelSoftMarginLoss",
    "MultiMarginLoss",
    "NLLLoss",
    "PairwiseDistance",
    "PoissonNLLLoss",
    "SmoothL1Loss",
    "SoftMarginLoss",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
    # constants
    "REDUCTIONS",
    "TORCH_VERSION",
]
