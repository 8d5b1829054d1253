"""``python -m train`` end to end (subprocesses), 4 simulated devices, and the data loaders.
Nothing here touches the network: fake data is tfds mock data, archives are built on the spot."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import train
from train import data as tdata

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TFDS_DATA_DIR"] = "/nonexistent-tfds-dir"  # nothing may be read or downloaded
    env.update(extra)
    return env


def _cli(*args, **kw):
    return [sys.executable, "-m", "train", *args]


def _event_tags(workdir: Path) -> set[str]:
    """Scalar tags in the TensorBoard event files (TFRecord framing, parsed by hand)."""
    from tensorboardX.proto import event_pb2

    tags = set()
    for f in workdir.glob("events.out.tfevents.*"):
        buf = f.read_bytes()
        pos = 0
        while pos < len(buf):
            (n,) = struct.unpack("<Q", buf[pos : pos + 8])
            ev = event_pb2.Event.FromString(buf[pos + 12 : pos + 12 + n])
            pos += 12 + n + 4
            tags.update(v.tag for v in ev.summary.value)
    return tags


def test_help_explains_every_option():
    out = subprocess.run(_cli("--help"), capture_output=True, text=True, env=_env(), cwd=ROOT, check=True).stdout
    for opt in (
        "--dataset",
        "--model",
        "--epochs",
        "--batch-size",
        "--lr",
        "--optimizer",
        "--workdir",
        "--data-dir",
        "--seed",
    ):
        assert opt in out
    from train.cli import parse_args

    args = parse_args([])
    assert (args.dataset, args.model, args.optimizer, args.lr, args.batch_size) == ("cifar10", "tudui", "sgd", 0.01, 64)


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def _signal_after_first_checkpoint(common, wd: Path, signum: int) -> tuple[int, str]:
    """Starts a long run, sends ``signum`` once its first checkpoint is complete (mid-run), and
    returns its exit status and stderr."""
    proc = subprocess.Popen(
        _cli(*common, "--epochs", "200"),
        env=_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while not (wd / "checkpoints" / "1").is_dir():
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "no checkpoint after 300 s"
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def test_ctrl_c_then_resume_nothing_left_and_checkpoint_errors(tmp_path):
    """A full CLI run on tfds mock data: interrupted (SIGINT, as Ctrl-C) after its first
    checkpoint it says where a rerun resumes; the rerun does, a second one has nothing left to
    train; an incompatible or damaged checkpoint is one line with the right advice."""
    wd = tmp_path / "run"
    common = (
        "--dataset",
        "fake",
        "--fake-size",
        "70",
        "--batch-size",
        "32",
        "--model",
        "tudui",
        "--workdir",
        str(wd),
        "--steps-per-call",
        "1",
    )
    status, err = _signal_after_first_checkpoint(common, wd, signal.SIGINT)
    assert status == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    last = err.strip().splitlines()[-1]
    match = re.fullmatch(r"interrupted; rerun the same command to resume from epoch (\d+)", last)
    assert match, err
    latest = int(match[1])
    assert latest >= 1 and latest == train.latest_checkpoint(wd)

    res = subprocess.run(
        _cli(*common, "--epochs", str(latest + 1)), env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    out = res.stdout
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"resuming from epoch {latest}" in out
    assert f"epoch {latest + 1}/{latest + 1}: train loss " in out and "test accuracy" in out
    assert "best test accuracy" in out and "wall time" in out
    assert "Traceback" not in res.stderr
    assert {"train/loss", "eval/loss", "eval/accuracy", "train/images_per_sec", "train/learning_rate"} <= _event_tags(
        wd
    )

    done = subprocess.run(
        _cli(*common, "--epochs", str(latest + 1)), env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stderr == ""
    nothing_left = f"nothing left to train: {wd / 'checkpoints' / str(latest + 1)} holds {latest + 1} finished epochs"
    assert f"{nothing_left}, {latest + 1} asked for\n" in done.stdout

    other = subprocess.run(
        _cli(*common, "--epochs", str(latest + 2), "--optimizer", "adam"),
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert other.returncode == 1
    line = _one_line(other.stderr)
    assert line.startswith(f"error: checkpoint {wd.absolute() / 'checkpoints' / str(latest + 1)} does not match ")
    assert f"delete the whole directory {wd.absolute() / 'checkpoints'}" in line and "another workdir" in line

    state = wd / "checkpoints" / str(latest + 1) / "state"
    victim = max((f for f in state.rglob("*") if f.is_file()), key=lambda f: f.stat().st_size)
    victim.write_bytes(b"\x00garbage" * 7)
    broken = subprocess.run(
        _cli(*common, "--epochs", str(latest + 2)), env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert broken.returncode == 1
    # orbax stops at the first failed read; asyncio may report the reads still in flight, from
    # tensorstore's threads at their own time (before or after the answer): orbax's output, not ours.
    (line,) = [line for line in broken.stderr.splitlines() if line.startswith("error: ")]
    assert str(ROOT / "train") not in broken.stderr, broken.stderr  # no traceback through the trainer
    assert f"checkpoints/{latest + 1} cannot be read (" in line and "it is damaged" in line
    assert f"to resume from epoch {latest}" in line
    assert "pybind" not in line and "object at 0x" not in line and "TensorStore" not in line


def test_sigterm_stops_in_one_line_and_the_rerun_resumes(tmp_path):
    """SIGTERM (what SLURM, Kubernetes and preemptible machines send) mid-run: the run stops at a
    step boundary, says in one last line how to resume, exits with 143; the rerun resumes."""
    wd = tmp_path / "run"
    common = ("--dataset", "fake", "--fake-size", "70", "--batch-size", "32", "--workdir", str(wd))
    common += ("--steps-per-call", "1", "--model", "lenet")
    status, err = _signal_after_first_checkpoint(common, wd, signal.SIGTERM)
    assert status == 143, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    match = re.fullmatch(r"interrupted \(SIGTERM\); rerun the same command to resume from epoch (\d+)", last)
    assert match, err
    latest = int(match[1])
    assert latest >= 1 and latest == train.latest_checkpoint(wd)
    res = subprocess.run(
        _cli(*common, "--epochs", str(latest + 1)), env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert (
        f"resuming from epoch {latest}" in res.stdout and f"epoch {latest + 1}/{latest + 1}: train loss" in res.stdout
    )


def test_cli_clear_errors(tmp_path):
    # No data, no network allowed: the message names the exact place for the archive.
    res = subprocess.run(
        _cli("--data-dir", str(tmp_path / "tfds"), "--no-download"),
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    assert str(tmp_path / "tfds" / "downloads" / "manual" / "cifar-10-binary.tar.gz") in res.stderr
    assert "error: CIFAR-10 is not available" in res.stderr and "Traceback" not in res.stderr


FIT_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from flax import nnx
    sys.path.insert(0, sys.argv[1])
    from test_train_fit import Tiny, learnable
    import train
    out = {"devices": jax.device_count()}
    for mode in ("step", "scan"):
        out[mode] = train.fit(Tiny(rngs=nnx.Rngs(0)), learnable(100), learnable(37, seed=1), epochs=2,
                              batch_size=16, learning_rate=0.05, optimizer="momentum",
                              scan=mode == "scan", steps_per_call=3)
    try:
        train.fit(Tiny(rngs=nnx.Rngs(0)), learnable(10), epochs=1, batch_size=30, learning_rate=0.1)
    except ValueError as err:
        out["error"] = str(err)
    print(json.dumps(out))
""")


def test_four_devices_same_losses_as_one():
    """Data parallel over 4 simulated CPU devices: the same batches, so the same losses as one
    device up to float32 rounding (the gradient is summed in a different order)."""
    runs = {}
    for n in (1, 4):
        env = _env(XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
        res = subprocess.run(
            [sys.executable, "-c", FIT_SCRIPT, str(ROOT / "tests")],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr
        runs[n] = json.loads(res.stdout.strip().splitlines()[-1])
    assert runs[1]["devices"] == 1 and runs[4]["devices"] == 4
    for mode in ("step", "scan"):
        for a, b in zip(runs[1][mode], runs[4][mode], strict=True):
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
            assert b["eval_loss"] == pytest.approx(a["eval_loss"], rel=1e-5)
            assert b["eval_accuracy"] == a["eval_accuracy"]
    assert runs[4]["error"].startswith("'batch_size' 30 does not divide over the 4 devices")
    assert "error" not in runs[1]


# ----------------------------------------------------------------------------- data


def _fake_archive(path: Path, n_train_per_file=3, n_test=2, seed=0):
    """A tar.gz laid out as the official cifar-10-binary.tar.gz (tiny, wrong checksum)."""
    rng = np.random.default_rng(seed)
    want = {"train": [], "test": []}
    with tarfile.open(path, "w:gz") as tar:
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        for name in names:
            n = n_test if name == "test_batch.bin" else n_train_per_file
            labels = rng.integers(0, 10, n, dtype=np.uint8)
            chw = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
            raw = np.concatenate([labels[:, None], chw.reshape(n, -1)], axis=1).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
            want["test" if name == "test_batch.bin" else "train"].append((chw, labels))
    return {
        k: (np.concatenate([c for c, _ in v]).transpose(0, 2, 3, 1), np.concatenate([lab for _, lab in v]))
        for k, v in want.items()
    }


def test_archive_layout_is_parsed_to_nhwc(tmp_path):
    want = _fake_archive(tmp_path / "a.tar.gz")
    (tr_x, tr_y), (te_x, te_y) = tdata._parse_archive(tmp_path / "a.tar.gz")
    assert tr_x.shape == (15, 32, 32, 3) and tr_x.dtype == np.uint8 and te_x.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(tr_x, want["train"][0])
    np.testing.assert_array_equal(tr_y, want["train"][1])
    np.testing.assert_array_equal(te_x, want["test"][0])
    np.testing.assert_array_equal(te_y, want["test"][1])


def test_wrong_archive_in_manual_dir_is_named(tmp_path):
    manual = train.manual_dir(tmp_path)
    manual.mkdir(parents=True)
    _fake_archive(manual / "cifar-10-binary.tar.gz")
    with pytest.raises(train.DataUnavailableError, match="is not the official cifar-10-binary.tar.gz"):
        train.load_cifar10(tmp_path, download=False)


def test_fake_dataset_is_tfds_mock_data():
    (x, y), (tx, ty) = train.load_fake(20)
    assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int32
    assert tx.shape == (20, 32, 32, 3) and 0 <= y.min() and y.max() < 10
    (x2, _), _ = train.load_fake(20)
    np.testing.assert_array_equal(x, x2)  # deterministic
    with pytest.raises(ValueError, match="'num_examples' must be an integer >= 1, got 0"):
        train.load_fake(0)
