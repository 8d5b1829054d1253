"""``python -m train`` as several processes joined by ``jax.distributed``: real processes on
127.0.0.1 (CPU, one device each, a free port picked at run time), against one process with the
same number of simulated devices. Every subprocess has a timeout and is killed with its group."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240  # seconds any one run may take before the test fails (and kills it)
HEARTBEAT = 5  # --heartbeat-timeout of the runs whose peer is killed
PEER_GONE = HEARTBEAT + 40  # seconds a process may take to stop once its peer is killed (on a busy machine)
COMMON = ("--dataset", "fake", "--fake-size", "96", "--batch-size", "32", "--model", "lenet")
COMMON += ("--epochs", "3", "--steps-per-call", "1", "--seed", "3")


def _env(devices: int = 1) -> dict:
    env = dict(os.environ)
    for name in ("XLA_FLAGS", "JAX_COORDINATOR_ADDRESS", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"):
        env.pop(name, None)
    env["JAX_PLATFORMS"] = "cpu"
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TFDS_DATA_DIR"] = "/nonexistent-tfds-dir"  # nothing may be read or downloaded
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(*args: str, devices: int = 1) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "train", *args],
        env=_env(devices),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # killed as a group: the watcher and the process it runs
    )


def _processes(n: int, *args: str, port: int | None = None) -> list[subprocess.Popen]:
    address = f"127.0.0.1:{port or _free_port()}"
    flags = ("--coordinator-address", address, "--num-processes", str(n))
    return [_start(*args, *flags, "--process-id", str(i)) for i in range(n)]


def _kill(procs) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.communicate()


def _finish(procs, timeout: float = TIMEOUT) -> list[tuple[int, str, str]]:
    """(status, stdout, stderr) of each; all killed if any runs past ``timeout`` seconds."""
    deadline = time.time() + timeout
    try:
        outs = [p.communicate(timeout=max(0.0, deadline - time.time())) for p in procs]
    except subprocess.TimeoutExpired:
        _kill(procs)
        pytest.fail(f"a process ran past {timeout} s")
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs, strict=True)]


def _wait_for_checkpoint(procs, workdir: Path, epoch: int) -> None:
    """Until ``<workdir>/checkpoints/<epoch>`` is complete (mid-run: compiled, training); fails if a
    process ends first or none comes within TIMEOUT."""
    deadline = time.time() + TIMEOUT
    while not (workdir / "checkpoints" / str(epoch)).is_dir():
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        assert time.time() < deadline, f"no checkpoint after {TIMEOUT} s"
        time.sleep(0.02)


def _error_line(err: str) -> str:
    """The one ``error:`` line of a process's stderr: its last line, the only one starting so. The
    runtime's and orbax's own log records may come before it (orbax logs a failed background save
    with its traceback), but no exception went uncaught through the trainer."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert f"train{os.sep}__main__.py" not in err, err
    return errors[0]


def _ours(out: str) -> list[str]:
    """The lines of a process's stdout that the trainer wrote (Gloo's connection notes excluded)."""
    return [line for line in out.splitlines() if line.strip() and not line.startswith("[Gloo]")]


def _history(workdir: Path) -> list[dict]:
    return json.loads((workdir / "history.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same training as 1 process x 2 devices and as 2 processes x 1 device, at once.

    Made once per pytest run: under pytest-xdist the tests that use it may run in different
    workers, which then share one copy (the first makes it, a lock keeps the other waiting)
    instead of each training three more processes."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # this pytest run's directory, above each worker's own
    base = shared / "distributed-runs"
    with open(shared / "distributed-runs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        done = base / "results.json"
        if not done.exists():
            base.mkdir(exist_ok=True)
            one = _start(*COMMON, "--workdir", str(base / "one"), devices=2)
            two = _processes(2, *COMMON, "--workdir", str(base / "two"))
            done.write_text(json.dumps(_finish([one, *two])))
        results = [tuple(r) for r in json.loads(done.read_text())]
    for status, out, err in results:
        assert status == 0, out + err
    return {"one": (base / "one", results[0]), "two": (base / "two", results[1:])}


def _assert_same(got: list[dict], want: list[dict]) -> None:
    assert [h["epoch"] for h in got] == [h["epoch"] for h in want] == [1, 2, 3]
    for g, w in zip(got, want, strict=True):
        assert g["train_loss"] == pytest.approx(w["train_loss"], rel=1e-5)
        assert g["eval_loss"] == pytest.approx(w["eval_loss"], rel=1e-5)
        assert g["eval_accuracy"] == w["eval_accuracy"]


def test_two_processes_train_as_one_process_with_two_devices(runs):
    one_dir, (_, one_out, _) = runs["one"]
    two_dir, ((_, out0, err0), (_, out1, err1)) = runs["two"]
    _assert_same(_history(two_dir), _history(one_dir))
    # every example counted once: 96 test images, accuracy a multiple of 1/96
    for h in _history(two_dir):
        assert round(h["eval_accuracy"] * 96, 6).is_integer()
    assert "fake: 96 train / 96 test images" in out0 and "2 device(s): cpu" in out0 and "epoch 3/3" in out0
    assert "2 device(s)" in one_out
    assert _ours(out1) == [] and "Traceback" not in err1  # only process 0 prints
    assert "Traceback" not in err0
    assert list(two_dir.glob("events.out.tfevents.*"))  # TensorBoard, written by process 0 alone
    assert len(list(two_dir.glob("events.out.tfevents.*"))) == 1


def test_killed_processes_resume_and_end_as_an_uninterrupted_run(runs, tmp_path):
    wd = tmp_path / "run"
    procs = _processes(2, *COMMON, "--workdir", str(wd))
    try:
        _wait_for_checkpoint(procs, wd, 1)
    finally:
        _kill(procs)  # SIGKILL, both, mid-run: no chance to clean up
    results = _finish(_processes(2, *COMMON, "--workdir", str(wd)))
    (status0, out0, err0), (status1, out1, err1) = results
    assert status0 == 0 and status1 == 0, err0 + err1
    assert "resuming from epoch " in out0, out0
    resumed = int(out0.split("resuming from epoch ", 1)[1].split()[0])
    assert 1 <= resumed < 3
    assert f"epoch {resumed}/3" not in out0 and "epoch 3/3: train loss" in out0
    assert _ours(out1) == []
    _assert_same(_history(wd), _history(runs["two"][0]))


def test_a_process_whose_peer_never_starts_stops_at_the_timeout(tmp_path):
    start = time.time()
    (proc,) = [
        _start(
            *COMMON,
            "--coordinator-address",
            f"127.0.0.1:{_free_port()}",
            "--num-processes",
            "2",
            "--process-id",
            "1",
            "--init-timeout",
            "2",
        )
    ]
    ((status, out, err),) = _finish([proc])
    elapsed = time.time() - start
    assert status == 1
    line = _error_line(err)
    assert line.startswith("error: not every process joined within --init-timeout 2 s; ")
    assert "--coordinator-address" in line and "--num-processes" in line
    assert _ours(out) == []
    assert elapsed < 2 + 60  # the timeout, plus starting Python and JAX twice on a busy machine


@pytest.mark.parametrize("dies", [0, 1], ids=["coordinator-dies", "worker-dies"])
def test_a_peer_killed_mid_run_stops_the_other_in_one_line(dies, tmp_path):
    """SIGKILL to one process (its watcher and its trainer) after the first checkpoint, while both
    train: the other ends on its own within --heartbeat-timeout (plus slack), with status 1 and one
    line, instead of waiting for a peer that is gone (or, in a pending checkpoint's barrier, for
    JAX's default heartbeat timeout of 100 s)."""
    wd = tmp_path / "run"
    procs = _processes(2, *COMMON, "--workdir", str(wd), "--heartbeat-timeout", str(HEARTBEAT))
    try:
        _wait_for_checkpoint(procs, wd, 1)
        os.killpg(procs[dies].pid, signal.SIGKILL)
        ((status, out, err),) = _finish([procs[1 - dies]], timeout=PEER_GONE)
    finally:
        _kill(procs)
    assert status == 1, out + err
    line = _error_line(err)
    assert "another process" in line and "rerun every process to resume from the last checkpoint" in line, line
    if dies == 0:
        assert _ours(out) == []  # process 1 prints nothing


def test_a_lost_connection_is_told_from_other_runtime_errors():
    from train.launch import lost_peer

    gloo = (
        "UNKNOWN: Gloo all-reduce failed: [external/gloo/gloo/transport/tcp/pair.cc:538] Read error "
        "[127.0.0.1]:13222: Connection reset by peer"
    )
    assert lost_peer(RuntimeError(gloo))
    # what a collective raised when its peer was killed (jax 0.10.2, measured)
    closed = "UNKNOWN: Gloo AllGather failed: [external/gloo/gloo/transport/tcp/pair.cc:547] Connection closed by peer"
    assert lost_peer(ValueError(closed + " [127.0.0.1]:26033"))
    # what orbax's save raised when the coordination service found a peer dead (jax 0.10.2, seen)
    barrier = (
        "INTERNAL: Barrier failed because: task is set to ERROR: UNAVAILABLE: Task 1 heartbeat timeout. This "
        "indicates that the remote task has failed, got preempted, or crashed unexpectedly. [...]. Barrier Id: "
        "ThreadSaveMultiHostValueHolder:set_value_start::1, Task: 1\nRPC: /xla.coordination.CoordinationService/Barrier"
    )
    assert lost_peer(RuntimeError(barrier))
    # what orbax's background save raised in the survivor when its peer was killed (seen in CI)
    assert lost_peer(TimeoutError("Timed out while waiting for async_write_complete barrier."))
    assert not lost_peer(TimeoutError("timed out reading /data/cifar-10-binary.tar.gz"))
    assert not lost_peer(RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1024 bytes"))


@pytest.mark.parametrize(
    ("first", "second", "init_timeout", "want"),
    [
        # both join (the coordinator counts 2): the mismatch is found after joining, so a long
        # timeout costs nothing and keeps a slow start of either process on a busy machine from
        # ending it as "not every process joined" instead
        (("2", "0"), ("3", "1"), 30, "argument --num-processes: the processes disagree"),
        (("3", "0"), ("2", "1"), 3, "error: not every process joined within --init-timeout 3 s"),
        # the second is refused by the coordinator, the first waits for it: JAX's runtime aborts both
        (("2", "0"), ("3", "2"), 3, "error: not every process joined within --init-timeout 3 s"),
    ],
    ids=["second-says-more", "first-says-more", "process-id-out-of-range"],
)
def test_processes_that_disagree_on_num_processes_stop_in_one_line(first, second, init_timeout, want):
    """--num-processes / --process-id that do not fit together: every process ends, status not 0,
    one line naming the flags, within the init timeout (plus starting Python and JAX)."""
    address = f"127.0.0.1:{_free_port()}"
    procs = [
        _start(
            *COMMON,
            *("--coordinator-address", address, "--num-processes", n, "--process-id", i),
            *("--init-timeout", str(init_timeout)),
        )
        for n, i in (first, second)
    ]
    results = _finish(procs, timeout=init_timeout + 60)
    named = 0
    for status, out, err in results:
        assert status not in (0, None), out + err
        line = _error_line(err)
        assert _ours(out) == []
        if want in line and "--num-processes" in line:
            named += 1
        else:
            # The process that learns of the mismatch first leaves; the other may then meet a
            # runtime whose peer is gone before it sees the mismatch itself (seen under load).
            assert "another process stopped" in line, line
    assert named >= 1, results


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (("--coordinator-address", "10.0.0.1"), "error: argument --coordinator-address: must be HOST:PORT with a port"),
        (("--coordinator-address", "h:0"), "error: argument --coordinator-address: must be HOST:PORT with a port"),
        (("--num-processes", "0"), "error: argument --num-processes: must be an integer >= 1, got 0"),
        (("--init-timeout", "0"), "error: argument --init-timeout: must be an integer >= 1, got 0"),
        (("--heartbeat-timeout", "0"), "error: argument --heartbeat-timeout: must be an integer >= 1, got 0"),
        (("--num-processes", "2", "--process-id", "0"), "error: argument --coordinator-address: required with"),
        (
            ("--coordinator-address", "h:1", "--num-processes", "2", "--process-id", "2"),
            "error: argument --process-id: must be from 0 to 1 (--num-processes 2), got 2",
        ),
    ],
)
def test_launch_flags_are_checked_in_one_line(args, want, capsys):
    from train.cli import parse_args

    with pytest.raises(SystemExit) as exit_info:
        parse_args(list(args))
    assert exit_info.value.code == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith(want) and line.endswith("(see --help)") and "\n" not in line, line
    defaults = parse_args([])
    assert (defaults.coordinator_address, defaults.num_processes, defaults.process_id) == (None, None, None)
    assert defaults.init_timeout == 300
    assert defaults.heartbeat_timeout == 100  # JAX's own default


def test_sigterm_to_one_process_stops_both_at_the_same_step_and_they_resume(runs, tmp_path):
    """SIGTERM to one process's launcher (as a scheduler sends it): JAX's preemption service tells
    the other, both stop at the same step (multihost_utils.reached_preemption_sync_point), each
    says how to resume in its last line and exits with 143; the rerun ends as an uninterrupted run."""
    wd = tmp_path / "run"
    long = [*COMMON[: COMMON.index("--epochs")], "--epochs", "200", *COMMON[COMMON.index("--epochs") + 2 :]]
    procs = _processes(2, *long, "--workdir", str(wd))
    try:
        _wait_for_checkpoint(procs, wd, 1)
        procs[1].send_signal(signal.SIGTERM)
        results = _finish(procs)
    finally:
        _kill(procs)
    lines = []
    for status, _, err in results:
        assert status == 143, err
        assert "Traceback" not in err, err
        lines.append(err.strip().splitlines()[-1])
    assert lines[0] == lines[1], lines
    assert lines[0].startswith("interrupted (SIGTERM); rerun the same command to resume from epoch "), lines
    resumed = int(lines[0].rsplit(" ", 1)[1])
    long[long.index("--epochs") + 1] = str(resumed + 1)
    (status0, out0, err0), (status1, _, err1) = _finish(_processes(2, *long, "--workdir", str(wd)))
    assert status0 == 0 and status1 == 0, err0 + err1
    assert f"resuming from epoch {resumed}" in out0 and f"epoch {resumed + 1}/{resumed + 1}: train loss" in out0
    history = _history(wd)
    assert [h["epoch"] for h in history] == list(range(1, resumed + 2))
    if resumed >= 3:
        _assert_same(history[:3], _history(runs["two"][0]))
