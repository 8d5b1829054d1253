"""The pieces of ``train.fit``, each on its own: the same numbers as a loop written by hand from
the public steps, one epoch, evaluation, and the callbacks (progress, checkpoints)."""

from __future__ import annotations

import ast
import io
import math
import signal
import threading
from pathlib import Path

import jax
import numpy as np
import optax
import pytest
from flax import nnx

import train
from train.data import IGNORE_INDEX

from .test_train_fit import Tiny, learnable, params_of

# Reading a damaged or mismatched checkpoint leaves orbax coroutines and tensorstore futures that
# are garbage-collected later, in whichever test runs then; their notes are noise.
pytestmark = [
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning"),
]


def hand_written(train_data, eval_data, *, epochs, batch_size, learning_rate, seed):
    """The loop a reader writes from the README's pieces: one jitted step per batch."""
    model = Tiny(rngs=nnx.Rngs(0))
    tx = optax.sgd(learning_rate, momentum=0.9)
    graphdef, state = train.init_state(model, tx)
    step = jax.jit(train.train_step, static_argnums=(0, 1))
    evaluate = jax.jit(train.eval_step, static_argnums=0)
    x, y = jax.numpy.asarray(train_data[0]), jax.numpy.asarray(train_data[1], jax.numpy.int32)
    history = []
    for epoch in range(epochs):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), epoch)
        total = 0.0
        for row in train.epoch_indices(key, len(y), batch_size):
            xb, yb = train.gather_batch(x, y, row)
            state, loss = step(graphdef, tx, state, xb, yb)
            total += float(loss) * int(np.sum(np.asarray(yb) != IGNORE_INDEX))
        sums = {"loss_sum": 0.0, "correct": 0, "count": 0}
        for xb, yb in train.iterate_batches(*eval_data, batch_size):
            out = evaluate(graphdef, state, xb, yb)
            sums = {k: sums[k] + out[k].item() for k in sums}
        history.append(
            {
                "train_loss": total / len(y),
                "eval_loss": sums["loss_sum"] / sums["count"],
                "eval_accuracy": sums["correct"] / sums["count"],
            }
        )
    nnx.update(model, state["params"], state["rest"])
    return model, history


@pytest.mark.parametrize("scan", [False, True])
def test_fit_gives_the_numbers_of_a_hand_written_loop(scan):
    data, held_out = learnable(100), learnable(37, seed=1)
    want_model, want = hand_written(data, held_out, epochs=2, batch_size=16, learning_rate=0.05, seed=5)
    model = Tiny(rngs=nnx.Rngs(0))
    got = train.fit(
        model,
        data,
        held_out,
        epochs=2,
        batch_size=16,
        learning_rate=0.05,
        optimizer="momentum",
        seed=5,
        scan=scan,
        steps_per_call=3,
    )
    for g, w in zip(got, want, strict=True):
        assert g["train_loss"] == pytest.approx(w["train_loss"], rel=1e-5)
        assert g["eval_loss"] == pytest.approx(w["eval_loss"], rel=1e-5)
        assert g["eval_accuracy"] == w["eval_accuracy"]
    for p, q in zip(params_of(model), params_of(want_model), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-6)


class Recorder(train.Callback):
    def __init__(self):
        self.chunks = []

    def on_chunk(self, epoch, step, losses, count):
        self.chunks.append((epoch, step, len(losses), count))


def test_run_epoch_and_evaluate_on_their_own():
    mesh = train.make_mesh()
    tx = train.make_optimizer("sgd", 0.05)
    graphdef, state = train.place_state(Tiny(rngs=nnx.Rngs(0)), tx, mesh)
    steps = train.compile_steps(graphdef, tx, mesh)
    data = train.put_data(learnable(70), mesh)
    held_out = train.put_data(learnable(37, seed=1), mesh)
    before = train.evaluate(steps, state, held_out, 16)
    rec = Recorder()
    # 70 examples in batches of 16: 5 steps, the last of 6 examples; looked at every 2 steps.
    state, loss = train.run_epoch(
        steps, state, data, jax.random.PRNGKey(0), 1, batch_size=16, steps_per_call=2, scan=False, callbacks=[rec]
    )
    assert rec.chunks == [(1, 7, 2, 32), (1, 9, 2, 32), (1, 10, 1, 6)]  # global steps: epoch 1 of 5 steps each
    assert int(state["step"]) == 5 and math.isfinite(loss)
    after = train.evaluate(steps, state, held_out, 16)
    assert set(after) == {"eval_loss", "eval_accuracy"} and after["eval_loss"] < before["eval_loss"]


def test_checkpoints_save_and_resume_on_their_own(tmp_path):
    like = {"w": jax.numpy.arange(6.0).reshape(2, 3), "step": jax.numpy.zeros((), jax.numpy.int32)}
    ckpt = train.Checkpoints(tmp_path, {"optimizer": "sgd"})
    assert ckpt.resume(like) == (like, [], 0)
    history = [{"epoch": 1, "train_loss": 0.5}]
    ckpt.on_epoch_end(0, history[0], {"w": like["w"] + 1, "step": like["step"] + 7}, history)
    ckpt.close()
    assert train.latest_checkpoint(tmp_path) == 1
    state, hist, done = train.Checkpoints(tmp_path).resume(like)
    assert done == 1 and hist == history and int(state["step"]) == 7
    np.testing.assert_array_equal(state["w"], np.arange(6.0).reshape(2, 3) + 1)
    with pytest.raises(train.CheckpointError, match="delete the whole directory"):
        train.Checkpoints(tmp_path).resume({"w": like["w"][:1], "step": like["step"]})


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_at_the_next_group_of_steps(signum):
    """SIGINT or SIGTERM is noted, not raised where it lands (inside a checkpoint save, say): the
    next look at the losses raises Interrupted; a second Ctrl-C is raised at once; close puts the
    previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stop = train.StopOnSignal()
    try:
        stop.on_chunk(0, 1, np.array([1.0]), 8)  # nothing received: goes on
        signal.raise_signal(signum)  # the handler runs here, between two bytecodes
        reached = True
        with pytest.raises(train.Interrupted) as info:
            stop.on_chunk(0, 2, np.array([1.0]), 8)
        assert reached and info.value.signum == signum and isinstance(info.value, KeyboardInterrupt)
        if signum == signal.SIGINT:
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
    finally:
        stop.close()
    assert {s: signal.getsignal(s) for s in before} == before


def test_progress_leaves_a_line_break_in_a_log_file(capsys):
    log = io.StringIO()
    bar = train.Progress(epochs=2, num_examples=32, file=log)
    bar.on_epoch_begin(0)
    bar.on_chunk(0, 1, np.array([2.5]), 16)
    bar.close()  # as after an error: what follows starts a line of its own
    assert log.getvalue().endswith("\n") and "epoch 1/2" in log.getvalue()
    bar.on_epoch_begin(1)
    bar.on_epoch_end(1, {"train_loss": 1.25, "images_per_sec": 10.0}, {}, [])
    bar.on_train_end([{"epoch": 2, "train_loss": 1.25}])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "epoch 2/2: train loss 1.2500 (10 img/s)" and out[1].startswith("done: final train loss 1.2500")


def test_tensorboard_writes_its_scalars(tmp_path):
    import struct

    from tensorboardX.proto import event_pb2

    tb = train.TensorBoard(tmp_path, learning_rate=0.1)
    tb.on_epoch_end(0, {"train_loss": 2.5, "images_per_sec": 100.0}, {}, [])
    tb.close()
    (events,) = tmp_path.glob("events.out.tfevents.*")
    buf, pos, scalars = events.read_bytes(), 0, {}
    while pos < len(buf):  # TFRecord framing: length, its CRC, the record, its CRC
        (n,) = struct.unpack("<Q", buf[pos : pos + 8])
        for v in event_pb2.Event.FromString(buf[pos + 12 : pos + 12 + n]).summary.value:
            scalars[v.tag] = v.simple_value
        pos += 12 + n + 4
    assert scalars == {"train/loss": 2.5, "train/images_per_sec": 100.0, "train/learning_rate": pytest.approx(0.1)}


def test_no_assert_does_a_runtime_check():
    for path in sorted(Path(train.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        assert not [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert)], path
