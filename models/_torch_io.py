"""torch ``state_dict`` in and out for the tutorial networks.

Layout differences the converters own:

* convolution weight: torch OIHW ``(out, in, kh, kw)`` <-> ours HWIO ``(kh, kw, in, out)``;
* linear weight: torch ``(out, in)`` <-> ours ``(in, out)``;
* the first Linear after Flatten: torch flattens the ``(C, H, W)`` feature map C-major, we flatten
  ``(H, W, C)``; the same weights therefore see their input features in a different order, and
  the converters permute that layer's input rows (a pure permutation: values are exact).

torch is never imported here unless asked for (``to_torch_state_dict(..., as_torch=True)``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

import jax.numpy as jnp
import numpy as np

from losses_jax.interop import to_numpy

from ._layers import Conv2d, Linear
from ._networks import _TutorialNet

__all__ = ["load_torch_state_dict", "to_torch_state_dict", "torch_weight_map"]


def _check_model(model, fn: str) -> None:
    if not isinstance(model, _TutorialNet):
        raise TypeError(f"{fn}: 'model' must be a models.Tudui or models.LeNet, got {type(model).__name__}")


def _torch_shapes(layer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(weight shape, bias shape) of ``layer`` in torch's layout."""
    if isinstance(layer, Conv2d):
        k = layer.kernel_size
        return (layer.out_channels, layer.in_channels, k, k), (layer.out_channels,)
    return (layer.out_features, layer.in_features), (layer.out_features,)


def _first_linear(model) -> str:
    return next(name for name, layer in model.layers() if isinstance(layer, Linear))


def _kernel_from_torch(model, name: str, layer, flatten_name: str) -> Callable:
    """The function from a torch weight (numpy or JAX) to the layer's kernel in our layout."""
    if isinstance(layer, Conv2d):
        return lambda w: w.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if name == flatten_name:
        c, h, wd = model._flatten_chw
        # torch rows are (c, h, w)-ordered inputs; ours are (h, w, c)-ordered.
        return lambda w: w.T.reshape(c, h, wd, -1).transpose(1, 2, 0, 3).reshape(c * h * wd, -1)
    return lambda w: w.T


def torch_weight_map(model, torch_names: Iterable[str]) -> dict[str, tuple[str, Callable]]:
    """The ``weights`` mapping of [`compare_modules`][losses_jax.testing.compare_modules] for ``model``.

    Args:
      model: a [`Tudui`][models.Tudui] or [`LeNet`][models.LeNet].
      torch_names: the parameter names of the torch twin, in forward order (``weight, bias`` of
        each layer, as ``torch_module.state_dict()`` lists them); any naming, as
        [`load_torch_state_dict`][models.load_torch_state_dict] matches by order.

    Returns:
      ``{torch name: (NNX path, transform)}``: the same layout conversions as
      [`load_torch_state_dict`][models.load_torch_state_dict], written so that JAX can differentiate through them.

    Raises:
      TypeError: ``model`` is not a tutorial network.
      ValueError: ``torch_names`` does not hold two names per layer.

    Example:
      With ``torch_net`` the torch twin of ``model`` and ``images`` a batch in torch's NCHW::

          from losses_jax.testing import compare_modules

          weights = models.torch_weight_map(model, torch_net.state_dict())
          report = compare_modules(torch_net, model, images, weights=weights, layout="nhwc")
          assert report.ok, report
    """
    _check_model(model, "torch_weight_map")
    names = list(torch_names)
    layers = model.layers()
    if len(names) != 2 * len(layers):
        raise ValueError(
            f"torch_weight_map: {type(model).__name__} has {len(layers)} layers with weight and bias, so it "
            f"expects {2 * len(layers)} torch names in forward order; 'torch_names' has {len(names)}: {names}"
        )
    flatten_name = _first_linear(model)
    out: dict[str, tuple[str, Callable]] = {}
    for i, (name, layer) in enumerate(layers):
        out[names[2 * i]] = (f"{name}.kernel", _kernel_from_torch(model, name, layer, flatten_name))
        out[names[2 * i + 1]] = (f"{name}.bias", lambda b: b)
    return out


def load_torch_state_dict(model, state_dict):
    """Fill ``model`` (a [`Tudui`][models.Tudui] or [`LeNet`][models.LeNet]) in place from a torch ``state_dict``.

    ``state_dict``: a mapping of name -> torch tensor (or numpy / JAX array), as
    ``torch_module.state_dict()`` or ``torch.load(path)`` returns it, from a torch network of the
    same architecture. Tensors are matched to layers by ORDER, not by name, so every tutorial's
    naming loads (``model1.0.weight``, ``model1.conv1.weight``, ``modul1.0.weight``,
    ``model.0.weight``, ``conv2d.weight`` ...): the entries must be ``weight, bias`` of each
    Conv2d / Linear in forward order, which is the order torch registers them in. Values are
    converted to the parameters' dtype (float32) and to our layouts (see the module docstring).

    Everything is checked before anything is written, so on error the model is unchanged.

    Raises:
      TypeError: ``model`` is not a tutorial network, ``state_dict`` is not a mapping, or a
        tensor is not floating.
      ValueError: the number of tensors is not 2 per layer, a ``...bias`` key sits where a
        weight belongs (or vice versa), or a shape does not match (the message names the layer,
        the key and both shapes).

    Returns:
      ``model``.
    """
    _check_model(model, "load_torch_state_dict")
    cls = type(model).__name__
    if not isinstance(state_dict, Mapping):
        hint = " (pass torch_module.state_dict())" if hasattr(state_dict, "state_dict") else ""
        raise TypeError(
            f"load_torch_state_dict: 'state_dict' must be a mapping of name -> tensor, "
            f"got {type(state_dict).__name__}{hint}"
        )
    items = list(state_dict.items())
    layers = model.layers()
    if len(items) != 2 * len(layers):
        expected = ", ".join(f"{name}.weight, {name}.bias" for name, _ in layers)
        raise ValueError(
            f"load_torch_state_dict: {cls} has {len(layers)} layers with weight and bias, so it "
            f"expects {2 * len(layers)} tensors in forward order ({expected}); 'state_dict' has "
            f"{len(items)}: {[k for k, _ in items]}"
        )

    flatten_name = _first_linear(model)
    new_values = []
    for i, (name, layer) in enumerate(layers):
        (w_key, w), (b_key, b) = items[2 * i], items[2 * i + 1]
        for key, role, wrong in ((w_key, "weight", "bias"), (b_key, "bias", "weight")):
            if isinstance(key, str) and key.endswith(wrong):
                raise ValueError(
                    f"load_torch_state_dict: {cls} layer {i} ({name}) expects its {role} at "
                    f"position {2 * i + (role == 'bias')} of 'state_dict', found key {key!r}"
                )
        w_shape, b_shape = _torch_shapes(layer)
        converted = []
        for key, value, role, shape in ((w_key, w, "weight", w_shape), (b_key, b, "bias", b_shape)):
            array = to_numpy(value)
            if not jnp.issubdtype(array.dtype, jnp.floating):
                raise TypeError(
                    f"load_torch_state_dict: {cls} layer {i} ({name}) {role} {key!r} must be floating, "
                    f"got {array.dtype}"
                )
            if array.shape != shape:
                raise ValueError(
                    f"load_torch_state_dict: {cls} layer {i} ({name}, {type(layer).__name__}) {role} "
                    f"{key!r} has torch shape {tuple(array.shape)}, expected {shape}"
                )
            converted.append(array.astype(layer.kernel.dtype))
        w, b = converted
        new_values.append((layer, _kernel_from_torch(model, name, layer, flatten_name)(w), b))

    for layer, kernel, bias in new_values:
        layer.kernel[...] = jnp.asarray(kernel)
        layer.bias[...] = jnp.asarray(bias)
    return model


def to_torch_state_dict(model, *, as_torch: bool = False) -> OrderedDict:
    """The torch ``state_dict`` of ``model``'s weights, in torch's layouts and key names.

    Keys are those of the torch twins (``parity_tests/torch_models.py``), i.e. of the tutorials:

    * [`Tudui`][models.Tudui] (tutorial 003, ``self.model1 = Sequential(...)``): ``model1.0``,
      ``model1.2``, ``model1.4`` (convs), ``model1.7``, ``model1.8`` (linears), each
      ``.weight`` and ``.bias``;
    * [`LeNet`][models.LeNet] (tutorial 000, ``self.model = Sequential(...)``): ``model.0``, ``model.2``
      (convs), ``model.5``, ``model.6``, ``model.7`` (linears).

    Values are numpy arrays in the parameters' dtype (float32), contiguous, writable copies. ``torch.nn.Module.
    load_state_dict`` only takes tensors, so either pass ``as_torch=True`` (imports torch and
    returns ``torch.Tensor`` values, also what ``torch.save`` / ``torch.load(weights_only=True)``
    want) or convert with ``{k: torch.from_numpy(v) for k, v in sd.items()}``. Since loading
    matches by order, the result loads into a torch network of the same architecture under any
    naming with ``net.load_state_dict(dict(zip(net.state_dict(), sd.values())))``.
    """
    _check_model(model, "to_torch_state_dict")
    flatten_name = _first_linear(model)
    out = OrderedDict()
    for (name, index), (_, layer) in zip(model._torch_layers, model.layers(), strict=True):
        kernel = np.asarray(layer.kernel[...])
        if isinstance(layer, Conv2d):
            weight = kernel.transpose(3, 2, 0, 1)  # HWIO -> OIHW
        elif name == flatten_name:
            c, h, w = model._flatten_chw
            weight = kernel.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(-1, c * h * w)
        else:
            weight = kernel.T
        prefix = f"{model._torch_prefix}.{index}"
        out[f"{prefix}.weight"] = np.array(weight, order="C")
        out[f"{prefix}.bias"] = np.array(layer.bias[...], order="C")
    if as_torch:
        import torch

        out = OrderedDict((k, torch.from_numpy(v)) for k, v in out.items())
    return out
