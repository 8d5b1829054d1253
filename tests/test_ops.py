"""``losses_jax.ops`` beyond the recorded parity (``parity_tests/test_torchvision_ops.py``): the
module's shape, its docstring examples, and bad input rejected in one line naming the argument, at
trace time too."""

from __future__ import annotations

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import losses_jax
from losses_jax import _detection, ops

BOX_LOSSES = ("generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss")
BOXES = np.array([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 4.0, 3.0]], np.float32)
LOGITS = np.array([[0.5, -1.0], [2.0, 0.0]], np.float32)
LABELS = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)


def test_ops_is_a_submodule_outside_the_top_level_names():
    assert losses_jax.ops is ops
    assert "ops" not in losses_jax.__all__
    assert not set(ops.__all__) & set(losses_jax.__all__)


def test_docstring_examples():
    result = doctest.testmod(_detection, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4  # one example per loss, each of a few lines
    assert result.failed == 0


def test_integer_boxes_are_computed_in_float32():
    ints = np.array([[0, 0, 2, 2], [1, 1, 4, 3]])
    for name in BOX_LOSSES:
        fn = getattr(ops, name)
        out = fn(ints, ints[::-1])
        assert out.dtype == jnp.float32
        np.testing.assert_array_equal(out, fn(ints.astype(np.float32), ints[::-1].astype(np.float32)))


def test_half_precision_boxes_give_float32_losses():
    for name in BOX_LOSSES:
        assert getattr(ops, name)(BOXES.astype(jnp.bfloat16), BOXES).dtype == jnp.float32


def test_mean_of_nothing():
    """torchvision: 0 for the box losses (``0.0 * loss.sum()``), NaN for the focal loss (``mean()``)."""
    empty = np.zeros((0, 4), np.float32)
    for name in BOX_LOSSES:
        assert float(getattr(ops, name)(empty, empty, reduction="mean")) == 0.0
    assert np.isnan(ops.sigmoid_focal_loss(np.zeros(0, np.float32), np.zeros(0, np.float32), reduction="mean"))


BAD = [
    # (function, args, kwargs, exception, text of our message)
    ("sigmoid_focal_loss", (LOGITS, LABELS), {"reduction": "avg"}, ValueError, "'reduction': 'avg'"),
    ("sigmoid_focal_loss", (LOGITS, LABELS), {"alpha": 1.5}, ValueError, "'alpha'"),
    ("sigmoid_focal_loss", (LOGITS, LABELS[:1]), {}, ValueError, "'targets' of shape (1, 2)"),
    ("sigmoid_focal_loss", (LOGITS.astype(np.int32), LABELS), {}, TypeError, "argument 'inputs'"),
    ("sigmoid_focal_loss", (LOGITS, LABELS.astype(np.int32)), {}, TypeError, "argument 'targets'"),
    *[(name, (BOXES, BOXES), {"reduction": "max"}, ValueError, "'reduction': 'max'") for name in BOX_LOSSES],
    *[(name, (BOXES[:, :3], BOXES), {}, ValueError, "argument 'boxes1' must have shape (N, 4)") for name in BOX_LOSSES],
    *[(name, (BOXES, np.float32(1.0)), {}, ValueError, "argument 'boxes2' must have shape") for name in BOX_LOSSES],
    *[(name, (BOXES[0], BOXES), {}, ValueError, "'boxes2' of shape (2, 4) must broadcast") for name in BOX_LOSSES],
    *[(name, (BOXES, BOXES.astype(np.complex64)), {}, TypeError, "argument 'boxes2'") for name in BOX_LOSSES],
]


@pytest.mark.parametrize(("fn", "args", "kwargs", "exc", "text"), BAD, ids=[f"{b[0]}-{b[4]}" for b in BAD])
def test_bad_input_is_named(fn, args, kwargs, exc, text):
    with pytest.raises(exc) as info:
        getattr(ops, fn)(*args, **kwargs)
    assert text in str(info.value)
    assert "\n" not in str(info.value)
    # the same check while tracing: shapes and dtypes are known, values are not
    with pytest.raises(exc, match="argument|'reduction'|'alpha'|'targets'|'boxes2'"):
        jax.jit(lambda *a: getattr(ops, fn)(*a, **kwargs))(*args)


def test_float64_boxes2_with_float32_boxes1_is_refused_as_in_torchvision():
    with jax.enable_x64(True):
        with pytest.raises(TypeError, match="cast 'boxes1' to float64"):
            ops.generalized_box_iou_loss(BOXES, BOXES.astype(np.float64))
        assert ops.generalized_box_iou_loss(BOXES.astype(np.float64), BOXES).dtype == jnp.float64


def test_traced_hyperparameters_are_refused():
    with pytest.raises(TypeError, match="'gamma'"):
        jax.jit(lambda g: ops.sigmoid_focal_loss(LOGITS, LABELS, gamma=g))(2.0)
    with pytest.raises(TypeError, match="'eps'"):
        jax.jit(lambda e: ops.complete_box_iou_loss(BOXES, BOXES, eps=e))(1e-7)
