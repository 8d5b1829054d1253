"""The CIFAR-10 networks of the PyTorch tutorials in Flax NNX, with torch ``state_dict`` in and out.

    from flax import nnx
    import models

    model = models.Tudui(rngs=nnx.Rngs(0))         # or models.LeNet
    logits = model(models.to_tensor(uint8_nhwc))    # (N, 32, 32, 3) uint8 -> (N, 10)
    models.load_torch_state_dict(model, torch_net.state_dict())
    sd = models.to_torch_state_dict(model, as_torch=True)   # keys model1.0.weight, ...

Images are NHWC float32 in [0, 1] (``to_tensor`` is torchvision's ``ToTensor`` without the
transpose). Parameters are initialised as torch initialises ``Conv2d`` / ``Linear``; the
converters own every layout difference (OIHW <-> HWIO, and the Flatten order (C, H, W) vs
(H, W, C) seen by the first Linear). Parity with the torch twins (logits, loss, every gradient,
a 20-step SGD trajectory) is tested in ``parity_tests/test_models.py``.

``models.jit`` is ``jax.jit`` with the compile options under which the layers run fastest (on
CPU: XLA's multi-threaded convolutions instead of YNNPACK's single-threaded ones); ``train``
compiles its steps with it. ``cpu_impl="ynnpack"`` (``Tudui``, ``LeNet``, ``Conv2d``) writes the
convolutions for YNNPACK instead, for programs compiled with default options (``models/_cpu.py``).
"""

from ._jit import jit
from ._layers import Conv2d, CpuImpl, Linear, max_pool_2x2
from ._networks import LeNet, Tudui, to_tensor
from ._torch_io import load_torch_state_dict, to_torch_state_dict, torch_weight_map

__all__ = [
    "Conv2d",
    "CpuImpl",
    "LeNet",
    "Linear",
    "Tudui",
    "jit",
    "load_torch_state_dict",
    "max_pool_2x2",
    "to_tensor",
    "to_torch_state_dict",
    "torch_weight_map",
]
