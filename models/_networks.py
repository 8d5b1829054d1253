"""The two CIFAR-10 networks of the PyTorch tutorials in Flax NNX, NHWC."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ._layers import Conv2d, CpuImpl, Linear, _check_cpu_impl, max_pool_2x2

__all__ = ["LeNet", "Tudui", "to_tensor"]

_IMAGE_SHAPE = (32, 32, 3)
_TO_TENSOR_TABLE = np.arange(256, dtype=np.float32) / np.float32(255)


def _dtype_of(x) -> np.dtype:
    dtype = getattr(x, "dtype", None)
    return np.dtype(dtype if dtype is not None else np.asarray(x).dtype)


def to_tensor(images) -> jax.Array:
    """uint8 images -> model input, as torchvision's ``transforms.ToTensor()`` does, but NHWC.

    ``ToTensor`` turns a uint8 ``(H, W, C)`` image into ``float32(image) / 255`` in ``(C, H, W)``
    (values ``k / 255`` for ``k`` in ``0..255``: float32 conversion, then one float32 division);
    this returns the same float32 values bit for bit. Our models take NHWC, so the layout is
    KEPT: ``(..., H, W, C)`` uint8 in, ``(..., H, W, C)`` float32 in ``[0, 1]`` out (torch's
    NCHW batch ``t`` is ``to_tensor(x).transpose(0, 3, 1, 2)``). Accepts numpy or JAX arrays;
    works under ``jit``.

    Unlike ``ToTensor`` (which passes non-uint8 arrays through unchanged), any other dtype is a
    ``TypeError``: a float array might already be scaled, or might be 0..255, and guessing would
    be silently wrong.
    """
    dtype = _dtype_of(images)
    if dtype != np.uint8:
        raise TypeError(f"to_tensor: 'images' must be uint8 (as ToTensor scales only uint8), got {dtype}")
    if np.ndim(images) < 3:
        raise ValueError(
            f"to_tensor: 'images' must be (..., H, W, C) uint8 images, got shape {tuple(np.shape(images))}"
        )
    # A table of the 256 values, divided once by numpy (IEEE float32 division, as torch does):
    # XLA rewrites ``x / 255`` into ``x * (1 / 255)``, which differs in the last bit for 126 of them.
    return jnp.asarray(_TO_TENSOR_TABLE)[jnp.asarray(images).astype(jnp.int32)]


def _check_images(x, name: str, dtype_out) -> jax.Array:
    """Validate a batch of NHWC images and cast them to the parameters' dtype.

    The checks are static, so they also fire under ``jit``; the parameters' dtype is float32 unless
    the parameters were cast.
    """
    shape = tuple(np.shape(x))
    dtype = _dtype_of(x)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"{name}: 'x' must be floating images in [0, 1], got dtype {dtype}; "
            "convert uint8 images with models.to_tensor"
        )
    if len(shape) != 4 or shape[1:] != _IMAGE_SHAPE:
        hint = ""
        if len(shape) == 4 and shape[1:] == (3, 32, 32):
            hint = " (this looks like torch's NCHW: use x.transpose(0, 2, 3, 1))"
        raise ValueError(f"{name}: 'x' must be NHWC images of shape (N, 32, 32, 3), got {shape}{hint}")
    return jnp.asarray(x).astype(dtype_out)


class _TutorialNet(nnx.Module):
    """Shared plumbing: the ordered parametrised layers and how they map onto the torch twin.

    ``_torch_layers`` lists ``(attribute, index in the torch Sequential)`` in forward order;
    ``_torch_prefix`` is the torch attribute holding that Sequential; ``_flatten_chw`` is the
    (C, H, W) feature map entering Flatten (torch flattens it C-major, we flatten NHWC H-major,
    so the converters permute the first Linear's input rows).
    """

    _torch_prefix: ClassVar[str]
    _torch_layers: ClassVar[tuple[tuple[str, int], ...]]
    _flatten_chw: ClassVar[tuple[int, int, int]]

    def layers(self) -> list[tuple[str, Conv2d | Linear]]:
        """The parametrised layers in forward order, as ``(attribute name, layer)``."""
        return [(name, getattr(self, name)) for name, _ in self._torch_layers]


class Tudui(_TutorialNet):
    """The tutorials' CIFAR-10 network "Tudui" (no activations, as in the tutorials).

    Layers::

        Conv(3,32,5,pad 2) MaxPool2 Conv(32,32,5,pad 2) MaxPool2 Conv(32,64,5,pad 2) MaxPool2
        Flatten Linear(1024,64) Linear(64,10)

    ``Tudui(rngs=nnx.Rngs(0))`` (``cpu_impl``: see [`Conv2d`][models.Conv2d]); call with NHWC float32 images
    in [0, 1] of shape ``(N, 32, 32, 3)`` (see [`to_tensor`][models.to_tensor]), returns logits ``(N, 10)``.
    Parameters are initialised as torch initialises ``Conv2d`` / ``Linear``. Flatten is over (H, W, C) here
    and (C, H, W) in torch; [`load_torch_state_dict`][models.load_torch_state_dict] /
    [`to_torch_state_dict`][models.to_torch_state_dict] convert. Torch twin: ``self.model1 = Sequential(...)``
    (tutorial 003), keys ``model1.0.weight`` ...
    """

    _torch_prefix = "model1"
    _torch_layers = (("conv1", 0), ("conv2", 2), ("conv3", 4), ("fc1", 7), ("fc2", 8))
    _flatten_chw = (64, 4, 4)

    def __init__(self, *, cpu_impl: CpuImpl = "xla", rngs: nnx.Rngs):
        _check_cpu_impl(cpu_impl, "Tudui")
        self.conv1 = Conv2d(3, 32, 5, padding=2, cpu_impl=cpu_impl, rngs=rngs)
        self.conv2 = Conv2d(32, 32, 5, padding=2, cpu_impl=cpu_impl, rngs=rngs)
        self.conv3 = Conv2d(32, 64, 5, padding=2, cpu_impl=cpu_impl, rngs=rngs)
        self.fc1 = Linear(1024, 64, rngs=rngs)
        self.fc2 = Linear(64, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = _check_images(x, "Tudui", self.conv1.kernel.dtype)
        x = max_pool_2x2(self.conv1(x))  # (N, 16, 16, 32)
        x = max_pool_2x2(self.conv2(x))  # (N, 8, 8, 32)
        x = max_pool_2x2(self.conv3(x))  # (N, 4, 4, 64)
        x = x.reshape(x.shape[0], -1)  # (N, 1024), (H, W, C) order
        return self.fc2(self.fc1(x))


class LeNet(_TutorialNet):
    """The tutorials' LeNet-like CIFAR-10 network (tutorial 000; no activations).

    Layers::

        Conv(3,16,5) MaxPool2 Conv(16,32,5) MaxPool2 Flatten Linear(800,120) Linear(120,84)
        Linear(84,10)

    ``LeNet(rngs=nnx.Rngs(0))`` (``cpu_impl``: see [`Conv2d`][models.Conv2d]); NHWC float32
    ``(N, 32, 32, 3)`` in, logits ``(N, 10)`` out.
    Torch twin: ``self.model = Sequential(...)`` (tutorial 000), keys ``model.0.weight``,
    ``model.0.bias``, ``model.2.*``, ``model.5.*``, ``model.6.*``, ``model.7.*``.
    """

    _torch_prefix = "model"
    _torch_layers = (("conv1", 0), ("conv2", 2), ("fc1", 5), ("fc2", 6), ("fc3", 7))
    _flatten_chw = (32, 5, 5)

    def __init__(self, *, cpu_impl: CpuImpl = "xla", rngs: nnx.Rngs):
        _check_cpu_impl(cpu_impl, "LeNet")
        self.conv1 = Conv2d(3, 16, 5, cpu_impl=cpu_impl, rngs=rngs)
        self.conv2 = Conv2d(16, 32, 5, cpu_impl=cpu_impl, rngs=rngs)
        self.fc1 = Linear(800, 120, rngs=rngs)
        self.fc2 = Linear(120, 84, rngs=rngs)
        self.fc3 = Linear(84, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = _check_images(x, "LeNet", self.conv1.kernel.dtype)
        x = max_pool_2x2(self.conv1(x))  # (N, 14, 14, 16)
        x = max_pool_2x2(self.conv2(x))  # (N, 5, 5, 32)
        x = x.reshape(x.shape[0], -1)  # (N, 800), (H, W, C) order
        return self.fc3(self.fc2(self.fc1(x)))
