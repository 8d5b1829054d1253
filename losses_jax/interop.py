"""Arrays handed over from torch, without importing torch.

The one conversion behind every reader of torch's ``state_dict``:
[`losses_jax.AdaptiveLogSoftmaxWithLoss.load_state_dict`][losses_jax.AdaptiveLogSoftmaxWithLoss.load_state_dict],
and code built on this library that loads torch weights, so that all of them accept the same values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["to_numpy"]


def to_numpy(value: Any) -> np.ndarray:
    """``value`` as a numpy array, from torch without importing it.

    Args:
      value: a torch tensor on any device (``requires_grad`` or not; float16 and bfloat16 become
        float32, which numpy holds exactly), a JAX array, a numpy array or anything
        ``np.asarray`` takes. torch is recognised by its methods, never imported.

    Returns:
      A numpy array.

    Example:
        >>> import jax.numpy as jnp
        >>> from losses_jax.interop import to_numpy
        >>> to_numpy(jnp.arange(3))
        array([0, 1, 2], dtype=int32)
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
        value = value.detach().cpu()
        if str(value.dtype) in ("torch.bfloat16", "torch.float16"):
            value = value.float()
        return value.numpy()
    return np.asarray(value)
