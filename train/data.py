"""Data: CIFAR-10 read once into host memory (tensorflow-datasets), then batched by index.

Loading returns ``((train_images, train_labels), (test_images, test_labels))``, uint8 NHWC and
int32 numpy arrays. An epoch is an index matrix (:func:`epoch_indices`) padded with ``-1``, whose
rows become batches with the padding labelled :data:`IGNORE_INDEX`, which the loss skips.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tarfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jax
import jax.numpy as jnp
import numpy as np

from models import to_tensor

#: Label of padding positions: the cross-entropy loss's ``ignore_index`` default.
IGNORE_INDEX = -100

#: The official archive, as registered by tensorflow-datasets.
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
_SIZES = {"train": 50_000, "test": 10_000}

Split = tuple[np.ndarray, np.ndarray]


class DataUnavailableError(RuntimeError):
    """CIFAR-10 cannot be had. ``reason`` says why and ``archive`` where to put the official file."""

    def __init__(self, reason: str, archive: Path, data_dir_given: bool = True):
        self.reason, self.archive, self.data_dir_given = reason, archive, data_dir_given
        super().__init__(self.advice("data_dir=DIR", "try again", "load_fake()"))

    def advice(self, data_dir: str, again: str, fake: str) -> str:
        """The message in the caller's words: how it names the data dir, a retry and fake data."""
        elsewhere = "" if self.data_dir_given else f" (or in DIR/downloads/manual/ with {data_dir})"
        return (
            f"CIFAR-10 is not available ({self.reason}). To train offline, download {CIFAR10_URL} on any "
            f"machine and put the file at {self.archive}{elsewhere}, then {again}; for a smoke run "
            f"without the data use {fake}"
        )


def manual_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Where tfds looks for manually downloaded archives: ``<data_dir>/downloads/manual``, the data
    dir defaulting as in tfds to ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
    return Path(data_dir).expanduser() / "downloads" / "manual"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def network_problem(url: str, timeout: float = 5.0) -> str | None:
    """None when the host of ``url`` (or its proxy) accepts a TCP connection within ``timeout``
    seconds, else why not; in a thread, so that name resolution is bounded too."""
    proxy = urllib.request.getproxies().get(urlsplit(url).scheme)
    target = urlsplit(proxy if "://" in (proxy or "") else f"http://{proxy}") if proxy else urlsplit(url)
    host, port = target.hostname or "", target.port or (443 if target.scheme == "https" else 80)
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
    return None if err is None else f"no network: cannot reach {host}:{port}{via}: {err.strerror or err}"


def _as_arrays(builder, split: str) -> Split:
    """Split ``split`` of a prepared tfds builder (random access) as two numpy arrays."""
    source = builder.as_data_source(split=split)  # pyright: ignore[reportCallIssue] (tfds' decorator hides it)
    keys = list(range(len(source)))
    try:
        records = source.__getitems__(keys)  # one batched read of the array_record files
    except Exception:  # tfds' mock data sources have no working __getitems__
        records = [source[k] for k in keys]
    images = np.stack([r["image"] for r in records]).astype(np.uint8)
    return images, np.asarray([r["label"] for r in records], np.int32)


def _parse_archive(path: Path) -> tuple[Split, Split]:
    """The official binary archive's splits: 1 label byte and 3072 CHW bytes per image."""
    names = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
    out = []
    with tarfile.open(path, "r:gz") as tar:
        for files in names.values():
            parts = []
            for name in files:
                member = tar.extractfile(f"cifar-10-batches-bin/{name}")  # KeyError when absent
                if member is None:
                    raise DataUnavailableError(f"{path}: {name} is not a regular file", path)
                parts.append(np.frombuffer(member.read(), np.uint8))
            raw = np.concatenate(parts).reshape(-1, 1 + 3072)
            images = np.ascontiguousarray(raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            out.append((images, raw[:, 0].astype(np.int32)))
    return out[0], out[1]


def load_cifar10(data_dir: str | os.PathLike | None = None, *, download: bool = True) -> tuple[Split, Split]:
    """CIFAR-10 (50,000 train / 10,000 test images) as numpy arrays, through tensorflow-datasets.

    A copy tfds prepared in ``data_dir`` is read. Otherwise the official ``cifar-10-binary.tar.gz``
    is: from :func:`manual_dir`, or downloaded by tfds' download manager, checksum verified.
    Before a download one connection to the archive's host is tried, so being offline is an
    immediate error; ``download=False`` never uses the network. Nothing is created in
    ``data_dir`` unless a download starts, and a failed download leaves nothing behind.

    Raises:
      DataUnavailableError: none of these works; it names the exact path for the archive.
    """
    import tensorflow_datasets as tfds

    given = data_dir is not None
    manual = manual_dir(data_dir)
    data_dir = manual.parent.parent
    archive = manual / CIFAR10_ARCHIVE
    problem = f"not prepared in {data_dir}" + ("" if download else " and downloads are disabled")
    if data_dir.is_dir():
        try:
            builder = tfds.builder("cifar10", data_dir=str(data_dir))
            splits = (_as_arrays(builder, "train"), _as_arrays(builder, "test")) if builder.is_prepared() else None
        except Exception as err:  # a copy in tfrecord files (tfds' default) has no random access, ...
            problem, splits = _first_line(err), None
        if splits is not None:
            for split, (images, _) in zip(_SIZES, splits, strict=True):
                if len(images) != _SIZES[split]:
                    raise DataUnavailableError(
                        f"the {split} split in {data_dir} has {len(images)} images, expected {_SIZES[split]}; "
                        f"delete {data_dir / 'cifar10'}",
                        archive,
                        given,
                    )
            return splits
    if not archive.exists():
        problem = network_problem(CIFAR10_URL) if download else problem
        if problem:
            raise DataUnavailableError(problem, archive, given)
        existed, before = data_dir.exists(), set((data_dir / "downloads").glob("*.tmp.*"))
        try:
            archive = Path(
                tfds.download.DownloadManager(download_dir=str(data_dir / "downloads")).download(CIFAR10_URL)
            )
        except Exception as err:  # leave nothing behind: the data dir if it was made, else the partial files
            if not existed:
                shutil.rmtree(data_dir, ignore_errors=True)
            else:
                for p in set((data_dir / "downloads").glob("*.tmp.*")) - before:
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            raise DataUnavailableError(f"download failed: {_first_line(err)}", archive, given) from None
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != CIFAR10_SHA256:
        raise DataUnavailableError(
            f"{archive} is not the official {CIFAR10_ARCHIVE} (SHA-256 {digest}, expected {CIFAR10_SHA256}); "
            f"delete it and download it again",
            archive,
        )
    return _parse_archive(archive)


def load_fake(num_examples: int = 512) -> tuple[Split, Split]:
    """CIFAR-10-shaped random data from ``tfds.testing.mock_data`` (no files, no network): both
    splits hold ``num_examples`` images, the same on every call (tfds' mock data is seeded)."""
    import tensorflow_datasets as tfds

    if not (isinstance(num_examples, int) and num_examples >= 1):
        raise ValueError(f"'num_examples' must be an integer >= 1, got {num_examples!r}")
    with tfds.testing.mock_data(num_examples=num_examples):
        builder = tfds.builder("cifar10", data_dir=os.devnull)
        return _as_arrays(builder, "train"), _as_arrays(builder, "test")


def num_batches(num_examples: int, batch_size: int) -> int:
    """Batches in an epoch: the last one may be partial (it is padded, never dropped)."""
    return -(-num_examples // batch_size)


def epoch_indices(key: jax.Array | None, num_examples: int, batch_size: int) -> jax.Array:
    """``(num_batches, batch_size)`` int32 example indices for one epoch; ``-1`` marks padding.

    ``key`` shuffles (a permutation drawn with it); ``None`` keeps the order (evaluation). Every
    example appears exactly once. Jit-able with ``num_examples`` and ``batch_size`` static.
    """
    order = jnp.arange(num_examples) if key is None else jax.random.permutation(key, num_examples)
    nb = num_batches(num_examples, batch_size)
    order = jnp.pad(order.astype(jnp.int32), (0, nb * batch_size - num_examples), constant_values=-1)
    return order.reshape(nb, batch_size)


def take_rows(images, labels, rows) -> tuple[Any, Any]:
    """uint8 images and int32 labels of the examples ``rows`` (of :func:`epoch_indices`, any shape),
    padding as image 0 with label :data:`IGNORE_INDEX`; numpy rows on the host, jax on a device."""
    xp = np if isinstance(rows, np.ndarray) else jnp
    valid = rows >= 0
    safe = xp.where(valid, rows, 0)
    return xp.take(images, safe, axis=0), xp.where(valid, xp.take(labels, safe, axis=0), IGNORE_INDEX).astype(xp.int32)


def gather_batch(images: jax.Array, labels: jax.Array, idx: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Row ``idx`` of :func:`epoch_indices` as :func:`take_rows`, the images float32 in [0, 1]
    (``models.to_tensor``, ToTensor bit for bit)."""
    x, y = take_rows(images, labels, idx)
    return to_tensor(x), y


def iterate_batches(
    images, labels, batch_size: int, *, key: jax.Array | None = None
) -> Iterator[tuple[jax.Array, jax.Array]]:
    """Batches of :func:`gather_batch` for a hand-written loop, gathered on the default device; the
    last one padded. ``key`` shuffles; ``None`` keeps the order."""
    images, labels = jnp.asarray(images), jnp.asarray(labels)
    gather = jax.jit(gather_batch)
    for row in epoch_indices(key, int(images.shape[0]), batch_size):
        yield gather(images, labels, row)
