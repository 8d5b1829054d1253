"""The losses of ``torchvision.ops``, with torchvision's names, arguments, defaults and numbers.

Port torchvision code by changing the import::

    from losses_jax import ops  # for: from torchvision import ops

    loss = ops.sigmoid_focal_loss(logits, labels, alpha=0.25, gamma=2, reduction="mean")
    loss = ops.generalized_box_iou_loss(pred_boxes, gt_boxes, reduction="sum")

Parity is certified against torchvision ``0.29.1`` (see ``TORCHVISION_VERSION``): values and
gradients recorded from torchvision itself (``parity_tests/torchvision_ops.py``).
"""

from ._detection import complete_box_iou_loss, distance_box_iou_loss, generalized_box_iou_loss, sigmoid_focal_loss

#: The torchvision release whose ``torchvision.ops`` losses this module is certified to match.
TORCHVISION_VERSION = "0.29.1"

__all__ = [
    "TORCHVISION_VERSION",
    "complete_box_iou_loss",
    "distance_box_iou_loss",
    "generalized_box_iou_loss",
    "sigmoid_focal_loss",
]
