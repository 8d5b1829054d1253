"""Data for the trainer: CIFAR-10 read once into host memory, then batched on the device.

Two halves:

* Loading (host, once): :func:`load_cifar10` (tensorflow-datasets, with an offline path through
  the official ``cifar-10-binary.tar.gz`` in a manual dir), :func:`load_fake` (tfds mock data, for
  smoke runs) and :func:`load_dataset` which picks one by name. Each returns
  ``((train_images, train_labels), (test_images, test_labels))`` as numpy arrays: uint8 NHWC images
  and int32 labels.
* Batching (device, inside compiled code): :func:`epoch_indices` turns a PRNG key into a
  ``(num_batches, batch_size)`` index matrix (a permutation padded with ``-1``), and
  :func:`gather_batch` turns one row of it into a float32 ``[0, 1]`` image batch plus labels where
  padding positions carry :data:`IGNORE_INDEX`, so the loss (``ignore_index``) and the metrics skip
  them. :func:`iterate_batches` strings the two together for hand-written loops.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from models import to_tensor

__all__ = [
    "IGNORE_INDEX",
    "CIFAR10_ARCHIVE",
    "DataUnavailableError",
    "default_data_dir",
    "manual_dir",
    "network_problem",
    "load_dataset",
    "load_cifar10",
    "load_fake",
    "epoch_indices",
    "gather_batch",
    "take_rows",
    "iterate_batches",
]

#: Label given to padding positions of a partial batch; the loss's ``ignore_index`` default.
IGNORE_INDEX = -100

#: File name, address and SHA-256 of the official archive (as registered by tensorflow-datasets).
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
_CIFAR10_SIZES = {"train": 50_000, "test": 10_000}

Split = tuple[np.ndarray, np.ndarray]


class DataUnavailableError(RuntimeError):
    """The data set cannot be had; the message says where to put the archive."""


def default_data_dir() -> Path:
    """tensorflow-datasets' data dir: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
    return Path(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")).expanduser()


def manual_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Where tfds looks for manually downloaded archives: ``<data_dir>/downloads/manual``."""
    return Path(data_dir or default_data_dir()).expanduser() / "downloads" / "manual"


def _missing_message(data_dir: Path, reason: str, data_dir_given: bool) -> str:
    """One line: why, and where to put the archive (``--data-dir`` advice only when not given)."""
    elsewhere = "" if data_dir_given else " (or in DIR/downloads/manual/ with --data-dir DIR)"
    return (
        f"CIFAR-10 is not available ({reason}). To train offline, download {CIFAR10_URL} on any "
        f"machine and put the file at {manual_dir(data_dir) / CIFAR10_ARCHIVE}{elsewhere}, then run "
        f"the same command again; for a smoke run without the data use --dataset fake"
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def network_problem(url: str, timeout: float = 5.0) -> str | None:
    """None when the host of ``url`` (or the proxy configured for it) accepts a TCP connection
    within ``timeout`` seconds, else why not. DNS included: it runs in a thread given that long."""
    import threading
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    target = urlsplit(proxy if "://" in (proxy or "") else f"http://{proxy}") if proxy else parts
    host = target.hostname or ""
    port = target.port or (443 if target.scheme == "https" else 80)
    outcome: list[OSError | None] = []

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as err:
            outcome.append(err)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    via = " (the proxy)" if proxy else ""
    if not outcome:
        return f"no network: no answer from {host}{via} within {timeout:.0f} s"
    err = outcome[0]
    if err is None:
        return None
    return f"no network: cannot reach {host}:{port}{via}: {err.strerror or err}"


def _download_cleanup(data_dir: Path, existed: bool, before: set[Path]) -> None:
    """After a failed download: remove the data dir if this call created it, else the temporary
    ``*.tmp.*`` entries it left in ``downloads/``."""
    if not existed:
        shutil.rmtree(data_dir, ignore_errors=True)
        return
    for p in set((data_dir / "downloads").glob("*.tmp.*")) - before:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _as_arrays(builder, name: str) -> Split:
    """Reads split ``name`` of a prepared tfds builder (random access) into two numpy arrays,
    1000 records at a time."""
    source = builder.as_data_source(split=name)  # pyright: ignore[reportCallIssue] (tfds' decorator hides it)
    n = len(source)
    images = np.empty((n, 32, 32, 3), np.uint8)
    labels = np.empty((n,), np.int32)
    for start in range(0, n, 1000):
        keys = list(range(start, min(start + 1000, n)))
        try:
            records = source.__getitems__(keys)
        except Exception:  # tfds' mock sources lack a working __getitems__
            records = [source[k] for k in keys]
        for k, rec in zip(keys, records, strict=True):
            images[k] = rec["image"]
            labels[k] = rec["label"]
    if n == 0:
        raise DataUnavailableError(f"the {name} split is empty")
    return images, labels


def _read_archive(path: Path) -> tuple[Split, Split]:
    """Parses the official binary archive directly (1 label byte + 3072 CHW bytes per image)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != CIFAR10_SHA256:
        raise DataUnavailableError(
            f"{path} is not the official {CIFAR10_ARCHIVE} (SHA-256 {digest.hexdigest()}, "
            f"expected {CIFAR10_SHA256}); delete it and download it again from {CIFAR10_URL}"
        )
    return _parse_archive(path)


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.extractfile(name)  # KeyError when absent; None for a directory or link
    if member is None:
        raise DataUnavailableError(f"{tar.name}: {name} is not a regular file")
    return member.read()


def _parse_archive(path: Path) -> tuple[Split, Split]:
    files = {
        "train": [f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)],
        "test": ["cifar-10-batches-bin/test_batch.bin"],
    }
    out = {}
    with tarfile.open(path, "r:gz") as tar:
        for split, names in files.items():
            raw = np.concatenate([np.frombuffer(_member(tar, n), np.uint8) for n in names]).reshape(-1, 1 + 3072)
            images = raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            out[split] = (np.ascontiguousarray(images), raw[:, 0].astype(np.int32))
    return out["train"], out["test"]


def load_cifar10(data_dir: str | os.PathLike | None = None, *, download: bool = True) -> tuple[Split, Split]:
    """CIFAR-10 (50,000 train / 10,000 test) as numpy arrays, through tensorflow-datasets.

    Order of attempts:

    1. a copy already prepared by tfds in ``data_dir`` (array_record format) is read;
    2. with TensorFlow installed, tfds prepares it (``download_and_prepare``, array_record
       format), taking ``cifar-10-binary.tar.gz`` from :func:`manual_dir` when it is there
       (checksum verified, no network) and downloading it otherwise;
    3. without TensorFlow (tfds' CIFAR builder reads with ``tf.io.gfile``), the archive from the
       manual dir, or else downloaded by tfds' download manager into ``<data_dir>/downloads``,
       is read directly with numpy (same bytes, SHA-256 checked against tfds' registry).

    Before a download, a connection to the archive's host is tried (a few seconds at most), so
    being offline is an immediate error rather than minutes of retries. ``download=False`` never
    touches the network. Nothing is created in ``data_dir`` unless a download starts, and a failed
    download leaves no temporary files. Raises :class:`DataUnavailableError`, with the exact path
    to put the archive at, when none of these works.
    """
    import importlib.util

    import tensorflow_datasets as tfds

    given = data_dir is not None
    data_dir = Path(data_dir or default_data_dir()).expanduser()
    manual = manual_dir(data_dir)
    archive = manual / CIFAR10_ARCHIVE
    have_tf = importlib.util.find_spec("tensorflow") is not None
    splits: tuple[Split, Split] | None = None  # (train, test)
    problem = f"not prepared in {data_dir}" + ("" if download else " and downloads are disabled")
    if data_dir.is_dir():
        try:
            with _quiet_absl():
                builder = tfds.builder("cifar10", data_dir=str(data_dir))
                prepared = builder.is_prepared()
            if prepared:
                splits = _as_arrays(builder, "train"), _as_arrays(builder, "test")
        except Exception as err:  # a tfrecord-only copy without TensorFlow, ...
            problem = _first_line(err)
    if splits is None and not archive.exists():
        if not download:
            raise DataUnavailableError(_missing_message(data_dir, problem, given))
        offline = network_problem(CIFAR10_URL)
        if offline:
            raise DataUnavailableError(_missing_message(data_dir, offline, given))
    if splits is None and have_tf:
        existed, before = data_dir.exists(), set((data_dir / "downloads").glob("*.tmp.*"))
        try:
            with _quiet_absl():
                builder = tfds.builder("cifar10", data_dir=str(data_dir))
                builder.download_and_prepare(
                    file_format="array_record",
                    download_config=tfds.download.DownloadConfig(manual_dir=str(manual)),
                )
            splits = _as_arrays(builder, "train"), _as_arrays(builder, "test")
        except Exception as err:
            _download_cleanup(data_dir, existed, before)
            raise DataUnavailableError(_missing_message(data_dir, _first_line(err), given)) from None
    if splits is None:
        if not archive.exists():
            existed, before = data_dir.exists(), set((data_dir / "downloads").glob("*.tmp.*"))
            try:
                dl = tfds.download.DownloadManager(download_dir=str(data_dir / "downloads"))
                archive = Path(dl.download(CIFAR10_URL))
            except Exception as err:
                _download_cleanup(data_dir, existed, before)
                reason = f"download failed: {_first_line(err)}"
                raise DataUnavailableError(_missing_message(data_dir, reason, given)) from None
        splits = _read_archive(archive)
    for split, (images, _) in zip(("train", "test"), splits, strict=True):
        if len(images) != _CIFAR10_SIZES[split]:
            raise DataUnavailableError(
                f"CIFAR-10 {split} split in {data_dir} has {len(images)} images, "
                f"expected {_CIFAR10_SIZES[split]}; delete {data_dir / 'cifar10'} and run again"
            )
    return splits


@contextlib.contextmanager
def _quiet_absl():
    """tfds warns through absl about a data dir it has not prepared yet: expected here, not news."""
    from absl import logging as absl_logging

    level = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(level)


def load_fake(num_examples: int = 512) -> tuple[Split, Split]:
    """CIFAR-10-shaped random data from ``tfds.testing.mock_data`` (no files, no network).

    Both splits have ``num_examples`` images of random pixels and labels (deterministic: tfds'
    mock generator has a fixed seed): for smoke runs and tests of the machinery, not of learning.
    """
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=num_examples):
        builder = tfds.builder("cifar10", data_dir=os.devnull)
        train = _as_arrays(builder, "train")
        test = _as_arrays(builder, "test")
    return train, test


def load_dataset(name: str, data_dir=None, *, fake_size: int = 512, download: bool = True):
    """``'cifar10'`` -> :func:`load_cifar10`; ``'fake'`` -> :func:`load_fake`."""
    if name == "cifar10":
        return load_cifar10(data_dir, download=download)
    if name == "fake":
        return load_fake(fake_size)
    raise ValueError(f"unknown dataset {name!r}; expected 'cifar10' or 'fake'")


# ----------------------------------------------------------------------------- on the device


def num_batches(num_examples: int, batch_size: int) -> int:
    """Batches in an epoch: the last one may be partial (it is padded, never dropped)."""
    return -(-num_examples // batch_size)


def epoch_indices(key: jax.Array | None, num_examples: int, batch_size: int) -> jax.Array:
    """``(num_batches, batch_size)`` int32 example indices for one epoch; ``-1`` marks padding.

    ``key`` shuffles (a permutation drawn with it); ``None`` keeps the data order (evaluation).
    Every example appears exactly once. Jit-able with ``num_examples`` and ``batch_size`` static.
    """
    order = (
        jnp.arange(num_examples, dtype=jnp.int32)
        if key is None
        else jax.random.permutation(key, num_examples).astype(jnp.int32)
    )
    nb = num_batches(num_examples, batch_size)
    order = jnp.pad(order, (0, nb * batch_size - num_examples), constant_values=-1)
    return order.reshape(nb, batch_size)


def gather_batch(images: jax.Array, labels: jax.Array, idx: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One batch from on-device arrays: float32 images in [0, 1] and labels.

    ``images`` are uint8 NHWC, ``idx`` a row of :func:`epoch_indices`. Padding positions
    (``idx == -1``) get image 0 and label :data:`IGNORE_INDEX`, which the cross-entropy loss
    (``ignore_index=-100``) and :func:`train.eval_step` leave out.
    """
    valid = idx >= 0
    safe = jnp.where(valid, idx, 0)
    # models.to_tensor is ToTensor bit for bit (a plain `/ 255.0` becomes `* (1/255)` under jit,
    # one ulp off for 126 of the 256 values).
    x = to_tensor(jnp.take(images, safe, axis=0))
    y = jnp.where(valid, jnp.take(labels, safe, axis=0).astype(jnp.int32), IGNORE_INDEX)
    return x, y


def take_rows(images: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`gather_batch` on the host, before the scaling: uint8 images and int32 labels of the
    examples ``rows`` (any shape of :func:`epoch_indices` entries), padding (``-1``) as image 0
    with label :data:`IGNORE_INDEX`. What each process of a multi-process run puts on its devices."""
    valid = rows >= 0
    safe = np.where(valid, rows, 0)
    return images[safe], np.where(valid, labels[safe], IGNORE_INDEX).astype(np.int32)


def iterate_batches(
    images, labels, batch_size: int, *, key: jax.Array | None = None
) -> Iterator[tuple[jax.Array, jax.Array]]:
    """Batches for a hand-written loop: ``for x, y in iterate_batches(imgs, lbls, 64, key=k)``.

    ``images``/``labels`` are put on the default device once; each batch is gathered there (no
    per-example Python). The last batch is padded to ``batch_size`` with labels
    :data:`IGNORE_INDEX`. ``key`` shuffles; ``None`` keeps the order.
    """
    images = jnp.asarray(images)
    labels = jnp.asarray(labels)
    idx = epoch_indices(key, int(images.shape[0]), batch_size)
    gather = jax.jit(gather_batch)
    for row in idx:
        yield gather(images, labels, row)
