"""The steps of training, pure and compiled.

Pure (for hand-written loops; jit them yourself): :func:`make_optimizer`, :func:`init_state`
(model -> ``graphdef, state``), :func:`train_step` and :func:`eval_step`.

Compiled (what :func:`train.fit` runs): :func:`compile_steps` builds, for one model, optimizer and
device mesh, the step that gathers its batch on the device, a ``lax.scan`` over several such steps,
the evaluation over a whole split and the epoch's index matrix, with the batch split over the
mesh's ``'data'`` axis and the state replicated (XLA inserts the gradient all-reduce). For a mesh
spanning several processes, where each process puts only its own part of every batch
(:class:`train.ProcessData`), the same steps take batches already gathered (uint8 images, labels
with padding marked :data:`train.IGNORE_INDEX`).
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

from .data import IGNORE_INDEX, epoch_indices, gather_batch

__all__ = [
    "OPTIMIZERS",
    "MOMENTUM",
    "make_optimizer",
    "init_state",
    "train_step",
    "eval_step",
    "make_mesh",
    "CompiledSteps",
    "compile_steps",
]

#: Momentum of ``optimizer='momentum'`` (SGD with heavy-ball momentum, as torch.optim.SGD).
MOMENTUM = 0.9
OPTIMIZERS = ("sgd", "momentum", "adam")

_train_loss = CrossEntropyLoss()  # mean over the non-ignored (non-padding) labels
_sum_loss = CrossEntropyLoss(reduction="sum")


def make_optimizer(name: str, learning_rate: float) -> optax.GradientTransformation:
    """``'sgd'`` (the tutorials'), ``'momentum'`` (SGD, momentum 0.9) or ``'adam'``; constant rate."""
    if name == "sgd":
        return optax.sgd(learning_rate)
    if name == "momentum":
        return optax.sgd(learning_rate, momentum=MOMENTUM)
    if name == "adam":
        return optax.adam(learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {OPTIMIZERS}")


def init_state(model: nnx.Module, tx: optax.GradientTransformation):
    """Splits ``model`` into ``(graphdef, state)`` for the functional steps.

    ``state`` is a dict pytree: ``params`` (the ``nnx.Param`` variables), ``rest`` (any other
    variables, e.g. batch statistics), ``opt_state`` (``tx.init(params)``) and ``step`` (int32).
    ``nnx.update(model, state['params'], state['rest'])`` puts trained values back.
    """
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    state = {"params": params, "rest": rest, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32)}
    return graphdef, state


def train_step(graphdef, tx: optax.GradientTransformation, state: dict, images: jax.Array, labels: jax.Array):
    """One SGD step on a batch; returns ``(new_state, loss)``. Pure: jit it with
    ``jax.jit(train_step, static_argnums=(0, 1), donate_argnums=2)``.

    ``images`` are float NHWC in [0, 1] (see :func:`train.gather_batch`), ``labels`` class
    indices; positions labelled :data:`train.IGNORE_INDEX` (padding) do not count. The loss is
    ``losses_jax.CrossEntropyLoss()`` (mean over the counted positions).
    """

    def loss_fn(params):
        model = nnx.merge(graphdef, params, state["rest"])
        loss = _train_loss(model(images), labels)
        return loss, nnx.state(model, nnx.Not(nnx.Param))

    (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return {"params": params, "rest": rest, "opt_state": opt_state, "step": state["step"] + 1}, loss


def eval_step(graphdef, state: dict, images: jax.Array, labels: jax.Array) -> dict:
    """Sums over one batch: ``{'loss_sum', 'correct', 'count'}``, padding (label
    :data:`train.IGNORE_INDEX`) excluded. Divide the totals by ``count`` at the end, so every
    example counts exactly once whatever the batch boundaries. Pure; jit with ``static_argnums=0``.
    """
    model = nnx.merge(graphdef, state["params"], state["rest"])
    logits = model(images)
    valid = labels != IGNORE_INDEX
    return {
        "loss_sum": _sum_loss(logits, labels),
        "correct": jnp.sum((jnp.argmax(logits, axis=-1) == labels) & valid, dtype=jnp.int32),
        "count": jnp.sum(valid, dtype=jnp.int32),
    }


def _zero_totals() -> dict:
    return {
        "loss_sum": jnp.zeros((), jnp.float32),
        "correct": jnp.zeros((), jnp.int32),
        "count": jnp.zeros((), jnp.int32),
    }


def make_mesh() -> jax.sharding.Mesh:
    """A 1-D mesh named ``'data'`` over every device of every process."""
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


class CompiledSteps(NamedTuple):
    """The compiled functions :func:`train.fit` runs (built by :func:`compile_steps`).

    ``images``/``labels`` are a whole split on the device (uint8 NHWC, int32), ``idx`` rows of
    :func:`train.epoch_indices`; the state argument of the training calls is donated.
    """

    #: ``(state, images, labels, idx[start:stop]) -> (state, losses)``: one ``lax.scan`` over the rows.
    train_chunk: Any
    #: ``(state, images, labels, idx, i) -> (state, loss)``: the step on row ``i``.
    train_one: Any
    #: ``(state, images, labels, idx) -> {'loss_sum', 'correct', 'count'}`` over every row.
    evaluate: Any
    #: :func:`train.epoch_indices` compiled (``num_examples`` and ``batch_size`` static).
    indices: Any
    #: ``(state, images, labels) -> (state, losses)``: one ``lax.scan`` over batches already gathered,
    #: uint8 ``(steps, batch, H, W, C)`` and int32 ``(steps, batch)`` split over ``'data'`` on axis 1.
    train_batches: Any
    #: ``(state, images, labels) -> (state, loss)``: the step on one gathered batch (split on axis 0).
    train_batch: Any
    #: ``(state, images, labels) -> {'loss_sum', 'correct', 'count'}`` over gathered batches.
    evaluate_batches: Any


def compile_steps(graphdef, tx: optax.GradientTransformation, mesh: jax.sharding.Mesh) -> CompiledSteps:
    """The training and evaluation calls for ``graphdef`` and ``tx`` on ``mesh`` (see :class:`CompiledSteps`)."""
    batch = NamedSharding(mesh, P("data"))
    replicated = NamedSharding(mesh, P())

    def constrain(x, y):
        return jax.lax.with_sharding_constraint(x, batch), jax.lax.with_sharding_constraint(y, batch)

    def train_chunk(state, images, labels, idx):
        def body(state, row):
            x, y = constrain(*gather_batch(images, labels, row))
            return train_step(graphdef, tx, state, x, y)

        return jax.lax.scan(body, state, idx)

    def train_one(state, images, labels, idx, i):
        x, y = constrain(*gather_batch(images, labels, idx[i]))
        return train_step(graphdef, tx, state, x, y)

    def evaluate(state, images, labels, idx):
        def body(totals, row):
            x, y = constrain(*gather_batch(images, labels, row))
            return jax.tree.map(jnp.add, totals, eval_step(graphdef, state, x, y)), None

        return jax.lax.scan(body, _zero_totals(), idx)[0]

    def train_batch(state, images, labels):
        return train_step(graphdef, tx, state, *constrain(models.to_tensor(images), labels))

    def train_batches(state, images, labels):
        return jax.lax.scan(lambda state, xy: train_batch(state, *xy), state, (images, labels))

    def evaluate_batches(state, images, labels):
        def body(totals, xy):
            x, y = constrain(models.to_tensor(xy[0]), xy[1])
            return jax.tree.map(jnp.add, totals, eval_step(graphdef, state, x, y)), None

        return jax.lax.scan(body, _zero_totals(), (images, labels))[0]

    # models.jit: on CPU, XLA's multi-threaded convolutions and the plain layers (see its doc).
    return CompiledSteps(
        train_chunk=models.jit(train_chunk, donate_argnums=0, out_shardings=(replicated, replicated)),
        train_one=models.jit(train_one, donate_argnums=0, out_shardings=(replicated, replicated)),
        evaluate=models.jit(evaluate, out_shardings=replicated),
        indices=jax.jit(epoch_indices, static_argnums=(1, 2), out_shardings=replicated),
        train_batches=models.jit(train_batches, donate_argnums=0, out_shardings=(replicated, replicated)),
        train_batch=models.jit(train_batch, donate_argnums=0, out_shardings=(replicated, replicated)),
        evaluate_batches=models.jit(evaluate_batches, out_shardings=replicated),
    )
