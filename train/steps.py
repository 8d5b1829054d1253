"""The steps of training: pure functions for hand-written loops, and their compiled form for ``fit``.

:func:`compile_steps` splits each batch over the mesh's ``'data'`` axis with the state replicated,
so XLA inserts the gradient all-reduce.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import models
from losses_jax import CrossEntropyLoss

from .data import IGNORE_INDEX

OPTIMIZERS = ("sgd", "momentum", "adam")

_mean_loss = CrossEntropyLoss()  # mean over the labels that are not IGNORE_INDEX (padding)
_sum_loss = CrossEntropyLoss(reduction="sum")


def make_optimizer(name: str, learning_rate: float) -> optax.GradientTransformation:
    """``'sgd'`` (the tutorials'), ``'momentum'`` (SGD, heavy-ball momentum 0.9 as torch's) or ``'adam'``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {OPTIMIZERS}")
    if name == "adam":
        return optax.adam(learning_rate)
    return optax.sgd(learning_rate, momentum=0.9 if name == "momentum" else None)


def init_state(model: nnx.Module, tx: optax.GradientTransformation):
    """Splits ``model`` into ``(graphdef, state)``, ``state`` a dict of ``params`` (the ``nnx.Param``
    variables), ``rest`` (the others), ``opt_state`` and ``step`` (int32). Put trained values back
    with ``nnx.update(model, state['params'], state['rest'])``."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return graphdef, {"params": params, "rest": rest, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32)}


def train_step(graphdef, tx: optax.GradientTransformation, state: dict, images: jax.Array, labels: jax.Array):
    """One optimizer step on float NHWC ``images`` in [0, 1] -> ``(new_state, loss)``: the mean
    cross-entropy over the labels that are not :data:`train.IGNORE_INDEX` (padding). Pure: jit it
    with ``static_argnums=(0, 1), donate_argnums=2``."""

    def loss_fn(params):
        model = nnx.merge(graphdef, params, state["rest"])
        return _mean_loss(model(images), labels), nnx.state(model, nnx.Not(nnx.Param))

    (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return {"params": params, "rest": rest, "opt_state": opt_state, "step": state["step"] + 1}, loss


def eval_step(graphdef, state: dict, images: jax.Array, labels: jax.Array) -> dict:
    """Sums over one batch: ``{'loss_sum', 'correct', 'count'}``, padding (label
    :data:`train.IGNORE_INDEX`) excluded; divide the totals by ``count`` at the end, so every
    example counts once whatever the batch boundaries. Pure; jit with ``static_argnums=0``."""
    logits = nnx.merge(graphdef, state["params"], state["rest"])(images)
    valid = labels != IGNORE_INDEX
    return {
        "loss_sum": _sum_loss(logits, labels),
        "correct": jnp.sum((jnp.argmax(logits, axis=-1) == labels) & valid, dtype=jnp.int32),
        "count": jnp.sum(valid, dtype=jnp.int32),
    }


def make_mesh() -> jax.sharding.Mesh:
    """A 1-D mesh named ``'data'`` over every device of every process."""
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


class CompiledSteps(NamedTuple):
    """What :func:`train.fit` runs on uint8 NHWC images and int32 labels (as ``put_rows`` gives them):
    ``train_batch(state, images (B, H, W, C), labels (B,)) -> (state, loss)``, ``train_batches``
    the same over a leading axis ``S`` in one ``lax.scan`` (losses ``(S,)``), and
    ``evaluate(state, images (S, B, ...), labels (S, B)) -> {'loss_sum', 'correct', 'count'}``.
    The training calls donate the state."""

    train_batch: Any
    train_batches: Any
    evaluate: Any


def compile_steps(graphdef, tx: optax.GradientTransformation, mesh: jax.sharding.Mesh) -> CompiledSteps:
    """:class:`CompiledSteps` for ``graphdef`` and ``tx``, each batch split over ``mesh``'s ``'data'``."""
    split, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())

    def batch(images, labels):
        x, y = models.to_tensor(images), labels
        return jax.lax.with_sharding_constraint(x, split), jax.lax.with_sharding_constraint(y, split)

    def train_batch(state, images, labels):
        return train_step(graphdef, tx, state, *batch(images, labels))

    def train_batches(state, images, labels):
        return jax.lax.scan(lambda state, xy: train_batch(state, *xy), state, (images, labels))

    def evaluate(state, images, labels):
        def body(totals, xy):
            return jax.tree.map(jnp.add, totals, eval_step(graphdef, state, *batch(*xy))), None

        zeros = {"loss_sum": jnp.zeros((), jnp.float32), "correct": jnp.zeros((), jnp.int32)}
        return jax.lax.scan(body, {**zeros, "count": jnp.zeros((), jnp.int32)}, (images, labels))[0]

    # models.jit: on CPU, XLA's multi-threaded convolutions and the plain layers (see its doc).
    train = {"donate_argnums": 0, "out_shardings": (replicated, replicated)}
    return CompiledSteps(
        train_batch=models.jit(train_batch, **train),
        train_batches=models.jit(train_batches, **train),
        evaluate=models.jit(evaluate, out_shardings=replicated),
    )
