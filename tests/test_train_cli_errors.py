"""The command line fails well: every mistake is one line on stderr naming the argument and what
it accepts, before any data is read; offline is an immediate, complete message. Everything runs
as a subprocess; nothing uses the network."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def _env(**extra):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    for name in PROXY_VARIABLES:
        env.pop(name, None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TFDS_DATA_DIR"] = "/nonexistent-tfds-dir"  # nothing may be read or downloaded
    env.update(extra)
    return env


def _only_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


BAD_ARGUMENTS = [
    (("--batch-size", "0"), "error: argument --batch-size: must be an integer >= 1, got 0"),
    (("--batch-size", "x"), "error: argument --batch-size: must be an integer >= 1, got 'x'"),
    (("--epochs", "0"), "error: argument --epochs: must be an integer >= 1, got 0"),
    (("--lr", "0"), "error: argument --lr: must be a finite number > 0, got 0"),
    (("--lr", "nan"), "error: argument --lr: must be a finite number > 0, got nan"),
    (("--steps-per-call", "0"), "error: argument --steps-per-call: must be an integer >= 1, got 0"),
    (("--fake-size", "0"), "error: argument --fake-size: must be an integer >= 1, got 0"),
    (("--seed", "-1"), "error: argument --seed: must be an integer from 0 to 4294967295, got -1"),
    (("--model", "resnet"), "error: argument --model: invalid choice: 'resnet'"),
]


def test_every_bad_argument_is_one_line_before_any_data(tmp_path):
    """Run at once (each is a fresh interpreter); the data dir given is never created."""
    data_dir = tmp_path / "tfds"
    procs = [
        (
            args,
            want,
            subprocess.Popen(
                [sys.executable, "-m", "train", "--data-dir", str(data_dir), *args],
                env=_env(),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for args, want in BAD_ARGUMENTS
    ]
    for args, want, proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, (args, err)
        line = _only_line(err)
        assert line.startswith(want), (args, line)
        assert line.endswith("(see --help)")
        assert out == ""
    assert not data_dir.exists()


def test_bad_workdir_and_data_dir_are_one_line(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    cases = [
        (
            ("--dataset", "fake", "--workdir", str(a_file)),
            f"error: argument --workdir: {a_file} exists and is not a directory",
        ),
        (
            ("--dataset", "fake", "--workdir", str(a_file / "run")),
            f"error: argument --workdir: cannot create {a_file / 'run'}: {a_file} is not a directory",
        ),
        (
            ("--no-download", "--data-dir", str(a_file)),
            f"error: argument --data-dir: {a_file} exists and is not a directory",
        ),
    ]
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        cases.append(
            (
                ("--dataset", "fake", "--workdir", str(locked / "run")),
                f"error: argument --workdir: cannot create {locked / 'run'}: {locked} is not writable",
            )
        )
    for args, want in cases:
        res = subprocess.run(
            [sys.executable, "-m", "train", *args], env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert res.returncode == 2, res.stderr
        assert _only_line(res.stderr) == want + " (see --help)"


OFFLINE = textwrap.dedent("""
    import sys
    import train.data
    # The archive's host, made unreachable: a closed port on this machine.
    train.data.CIFAR10_URL = "https://127.0.0.1:9/~kriz/cifar-10-binary.tar.gz"
    from train.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.parametrize("with_data_dir", [True, False])
def test_offline_is_one_complete_line_within_seconds(tmp_path, with_data_dir):
    data_dir = tmp_path / "tfds"
    env = _env(TFDS_DATA_DIR=str(tmp_path / "default-tfds"))
    args = ["--data-dir", str(data_dir)] if with_data_dir else []
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-c", OFFLINE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    elapsed = time.monotonic() - t0
    assert res.returncode == 2, res.stderr
    line = _only_line(res.stderr)
    where = data_dir if with_data_dir else tmp_path / "default-tfds"
    assert line.startswith("error: CIFAR-10 is not available (no network: cannot reach 127.0.0.1:9: ")
    assert f"put the file at {where / 'downloads' / 'manual' / 'cifar-10-binary.tar.gz'}" in line
    assert line.endswith("for a smoke run without the data use --dataset fake")
    assert ("--data-dir DIR" in line) is not with_data_dir  # no advice to pass what was passed
    assert "WARNING" not in res.stderr and "dataset_info.json" not in res.stderr  # no absl noise
    assert not where.exists()  # nothing created: no download started
    assert elapsed < 120  # generous for a loaded machine; minutes of retries before


def test_nan_stop_is_a_line_of_its_own(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "train",
            "--dataset",
            "fake",
            "--fake-size",
            "64",
            "--batch-size",
            "16",
            "--lr",
            "1e30",
            "--epochs",
            "1",
            "--steps-per-call",
            "1",
            "--workdir",
            str(tmp_path / "run"),
        ],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.split("\n") if "training stopped" in line]
    assert len(lines) == 1 and lines[0].startswith("error: training stopped: the loss is "), res.stderr
    assert "lower the learning rate" in lines[0]
    assert not (tmp_path / "run" / "checkpoints" / "1").exists()
