"""train.fit and its pieces on tiny generated data: learning, partial batches, determinism,
resume, NaN stop, damaged checkpoints, the data iterator. Each test trains for a few seconds."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import losses_jax
import train
from train.data import IGNORE_INDEX

# Reading a damaged checkpoint leaves tensorstore futures that are garbage-collected later, in
# whichever test runs then; their "exception ignored" notes are noise.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class Tiny(nnx.Module):
    """8x8x3 images -> 10 logits; small enough to compile in well under a second."""

    def __init__(self, hidden: int = 16, *, rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(8 * 8 * 3, hidden, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, 10, rngs=rngs)

    def __call__(self, x):
        return self.fc2(jax.nn.relu(self.fc1(x.reshape(x.shape[0], -1))))


def learnable(n: int, seed: int = 0):
    """Class c = a fixed random template plus noise: linearly separable, uint8 NHWC."""
    rng = np.random.default_rng(seed)
    templates = np.random.default_rng(123).uniform(0, 255, size=(10, 8, 8, 3))
    labels = rng.integers(0, 10, size=n)
    images = 0.7 * templates[labels] + 0.3 * rng.uniform(0, 255, size=(n, 8, 8, 3))
    return images.astype(np.uint8), labels.astype(np.int64)


def params_of(model):
    return [np.asarray(a) for a in jax.tree.leaves(nnx.state(model, nnx.Param))]


def run(seed=0, model_seed=0, epochs=2, n=100, **kw):
    model = Tiny(rngs=nnx.Rngs(model_seed))
    kw = {"batch_size": 16, "learning_rate": 0.05, **kw}
    hist = train.fit(model, learnable(n), learnable(37, seed=1), epochs=epochs, seed=seed, **kw)
    return model, hist


def test_fit_learns_to_high_accuracy():
    model = Tiny(rngs=nnx.Rngs(0))
    before = params_of(model)
    hist = train.fit(
        model, learnable(203), learnable(101, seed=1), epochs=10, batch_size=32, learning_rate=0.02, optimizer="adam"
    )
    assert [h["epoch"] for h in hist] == list(range(1, 11))
    assert set(hist[0]) >= {"train_loss", "eval_loss", "eval_accuracy"}
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] / 4
    assert hist[-1]["eval_accuracy"] >= 0.95
    # the model passed in holds the trained weights
    after = params_of(model)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    x, y = learnable(101, seed=1)
    acc = float(np.mean(np.argmax(np.asarray(model(jnp.asarray(x, jnp.float32) / 255)), -1) == y))
    assert acc == pytest.approx(hist[-1]["eval_accuracy"])


def test_fit_without_eval_data_and_optimizers():
    for opt in train.OPTIMIZERS:
        model = Tiny(rngs=nnx.Rngs(0))
        hist = train.fit(model, learnable(40), epochs=1, batch_size=16, learning_rate=0.01, optimizer=opt)
        assert set(hist[0]) == {"epoch", "train_loss", "images_per_sec"}
    with pytest.raises(ValueError, match="optimizer"):
        train.fit(
            Tiny(rngs=nnx.Rngs(0)), learnable(40), epochs=1, batch_size=16, learning_rate=0.1, optimizer="rmsprop"
        )
    with pytest.raises(TypeError, match="uint8"):
        x, y = learnable(40)
        train.fit(Tiny(rngs=nnx.Rngs(0)), (x.astype(np.float32), y), epochs=1, batch_size=16, learning_rate=0.1)


def test_eval_counts_every_example_once_with_partial_batches():
    # 37 eval examples in batches of 16: 16 + 16 + 5 (padded to 16, masked).
    model, hist = run(epochs=1, n=50)
    x, y = learnable(37, seed=1)
    logits = model(jnp.asarray(x, jnp.float32) / 255)
    want_loss = float(losses_jax.cross_entropy(logits, jnp.asarray(y)))
    want_acc = float(np.mean(np.argmax(np.asarray(logits), -1) == y))
    assert hist[0]["eval_loss"] == pytest.approx(want_loss, rel=1e-5)
    assert hist[0]["eval_accuracy"] == want_acc


def test_train_loss_is_the_example_mean_with_a_partial_last_batch():
    # One epoch of one step-sized chunk: the train loss is the loss of the batches weighted by
    # their real sizes (a batch of 5 counts 5 times, not 16).
    x, y = learnable(21)
    model = Tiny(rngs=nnx.Rngs(0))
    graphdef, state = train.init_state(model, train.make_optimizer("sgd", 0.05))
    idx = train.epoch_indices(jax.random.fold_in(jax.random.PRNGKey(0), 0), 21, 16)
    losses, sizes = [], []
    for row in idx:
        xb, yb = train.gather_batch(jnp.asarray(x), jnp.asarray(y), row)
        state, loss = train.train_step(graphdef, train.make_optimizer("sgd", 0.05), state, xb, yb)
        losses.append(float(loss))
        sizes.append(int(np.sum(np.asarray(yb) != IGNORE_INDEX)))
    assert sizes == [16, 5]
    hist = train.fit(Tiny(rngs=nnx.Rngs(0)), (x, y), epochs=1, batch_size=16, learning_rate=0.05)
    assert hist[0]["train_loss"] == pytest.approx(np.dot(losses, sizes) / 21, rel=1e-5)


def test_same_seed_same_losses_and_seed_matters():
    _, a = run(seed=3)
    _, b = run(seed=3)
    _, c = run(seed=4)
    key = lambda h: [(r["train_loss"], r["eval_loss"], r["eval_accuracy"]) for r in h]
    assert key(a) == key(b)  # exactly
    assert key(a) != key(c)  # the seed drives the shuffling


def test_scan_and_step_by_step_agree():
    _, a = run(scan=True, steps_per_call=3)
    _, b = run(scan=False, steps_per_call=2)
    for r, s in zip(a, b, strict=True):
        assert r["train_loss"] == pytest.approx(s["train_loss"], rel=1e-5)
        assert r["eval_loss"] == pytest.approx(s["eval_loss"], rel=1e-5)


def test_resume_gives_the_uninterrupted_run(tmp_path, capsys):
    model_a, full = run(epochs=3, workdir=tmp_path / "a")
    run(epochs=1, workdir=tmp_path / "b")
    capsys.readouterr()
    model_b, resumed = run(epochs=3, workdir=tmp_path / "b", verbose=True)
    out = capsys.readouterr().out
    assert "resuming from epoch 1" in out
    assert "epoch 1/3" not in out and "epoch 3/3" in out and "best test accuracy" in out
    assert "tensorflow" not in sys.modules  # TensorBoard logs through tensorboardX
    strip = lambda h: [{k: v for k, v in r.items() if k != "images_per_sec"} for r in h]
    assert strip(resumed) == strip(full)
    for p, q in zip(params_of(model_a), params_of(model_b), strict=True):
        np.testing.assert_array_equal(p, q)
    # the last few checkpoints are kept, the oldest deleted
    assert sorted(os.listdir(tmp_path / "a" / "checkpoints")) == ["1", "2", "3"]
    run(epochs=5, workdir=tmp_path / "a")
    assert sorted(os.listdir(tmp_path / "a" / "checkpoints")) == ["3", "4", "5"]
    # a finished run reruns as a no-op returning the whole history
    _, again = run(epochs=5, workdir=tmp_path / "a")
    assert len(again) == 5


def test_an_unfinished_save_is_ignored(tmp_path):
    # A kill during a save leaves only orbax's temporary directory (renamed into place when
    # complete): the rerun resumes from the last complete checkpoint.
    run(epochs=1, workdir=tmp_path)
    ckpts = tmp_path / "checkpoints"
    tmp = ckpts / "2.orbax-checkpoint-tmp-1234567"
    shutil.copytree(ckpts / "1", tmp)
    (tmp / "commit_success.txt").unlink(missing_ok=True)
    for f in (tmp / "state").rglob("*"):
        if f.is_file():
            f.write_bytes(b"half written")
    _, hist = run(epochs=2, workdir=tmp_path)
    assert [h["epoch"] for h in hist] == [1, 2]
    assert (ckpts / "2").is_dir()


def _largest_file(directory: Path) -> Path:
    return max((f for f in directory.rglob("*") if f.is_file()), key=lambda f: f.stat().st_size)


def test_damaged_checkpoint_is_a_clear_error(tmp_path):
    run(epochs=1, workdir=tmp_path)
    victim = _largest_file(tmp_path / "checkpoints" / "1" / "state")
    victim.write_bytes(b"\x00garbage" * 7)
    with pytest.raises(train.CheckpointError, match=r"checkpoints/1 cannot be read \(\w+\): ") as err:
        run(epochs=2, workdir=tmp_path)
    message = str(err.value)
    assert "\n" not in message and "pybind" not in message and " object at 0x" not in message
    assert "it is damaged" in message and "delete the whole directory" in message


def test_incompatible_checkpoint_is_a_clear_error(tmp_path):
    run(epochs=1, workdir=tmp_path)
    model = Tiny(hidden=8, rngs=nnx.Rngs(0))
    with pytest.raises(train.CheckpointError, match=r"checkpoints/1 does not match this model") as err:
        train.fit(model, learnable(40), epochs=2, batch_size=16, learning_rate=0.1, workdir=tmp_path)
    assert "damaged" not in str(err.value)  # no advice to fall back on an older checkpoint of the same run
    with pytest.raises(train.CheckpointError, match=r"checkpoints/1 does not match this model") as err:
        run(epochs=2, workdir=tmp_path, optimizer="adam")
    # the older checkpoints come from the same run: the advice is the whole directory
    assert f"delete the whole directory {tmp_path / 'checkpoints'}" in str(err.value)


def test_nan_loss_stops_with_the_step(tmp_path):
    model = Tiny(rngs=nnx.Rngs(0))
    before = params_of(model)
    # An infinite learning rate makes every parameter inf/NaN after step 1: step 2's loss is NaN.
    with pytest.raises(train.NonFiniteLossError, match=r"at step 2 \(epoch 1, batch 2 of 7\)") as err:
        train.fit(
            model,
            learnable(100),
            epochs=2,
            batch_size=16,
            learning_rate=float("inf"),
            steps_per_call=4,
            workdir=tmp_path,
        )
    assert err.value.step == 2
    for p, q in zip(before, params_of(model), strict=True):  # the model is left as it came
        np.testing.assert_array_equal(p, q)
    assert not (tmp_path / "checkpoints" / "1").exists()


def test_batch_size_must_divide_over_devices(monkeypatch):
    monkeypatch.setattr(jax, "device_count", lambda *a: 4)
    with pytest.raises(ValueError, match="does not divide over the 4 devices"):
        train.fit(Tiny(rngs=nnx.Rngs(0)), learnable(40), epochs=1, batch_size=30, learning_rate=0.1)


def test_iterate_batches_covers_every_example_once():
    x, y = learnable(23)
    x[:, 0, 0, 0] = np.arange(23)  # pixel (0, 0, 0) names the example
    seen, ignored = [], 0
    for xb, yb in train.iterate_batches(x, y, 8, key=jax.random.PRNGKey(1)):
        assert xb.shape == (8, 8, 8, 3) and xb.dtype == jnp.float32
        assert float(xb.min()) >= 0.0 and float(xb.max()) <= 1.0
        yb = np.asarray(yb)
        back = np.rint(np.asarray(xb) * 255).astype(np.uint8)
        for img, lab in zip(back, yb, strict=True):
            if lab == IGNORE_INDEX:
                ignored += 1
                continue
            i = int(img[0, 0, 0])
            np.testing.assert_array_equal(img, x[i])
            assert lab == y[i]
            seen.append(i)
    assert ignored == 1 and sorted(seen) == list(range(23))
    assert seen != list(range(23))  # shuffled
    # without a key the order is kept
    first = next(train.iterate_batches(x, y, 8))
    np.testing.assert_array_equal(np.asarray(first[1]), y[:8])
