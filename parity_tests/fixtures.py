"""Torch's side of every parity case, recorded once so that it can be compared where torch 2.13 is not.

``python -m parity_tests.fixtures [--out PATH] [--limit N]`` runs :func:`parity_tests.harness.record_torch`
for every case of :func:`parity_tests.cases.all_cases` (the first ``N`` with ``--limit``) and writes
one compressed ``.npz``: per case, keyed ``family|id``, its value and gradients, and a hash of its
inputs; plus the torch version and the case count. Values are stored as float32 where that is exact
(every case below float64), else float64. :func:`load` reads it back and :func:`reference` returns a
case's recorded side, refusing a stale one (inputs changed since it was built), as a
:class:`losses_jax.testing.Reference`.
"""

from __future__ import annotations

import argparse
import hashlib
import pathlib
import sys

import numpy as np

__all__ = [
    "DEFAULT_PATH",
    "TORCH_VERSION",
    "FixtureError",
    "build",
    "case_key",
    "input_hash",
    "load",
    "reference",
    "write",
]

TORCH_VERSION = "2.13.0"
DEFAULT_PATH = pathlib.Path(".parity-fixtures") / f"torch-{TORCH_VERSION}.npz"
HOW = f"build it where torch {TORCH_VERSION} is: python -m parity_tests.fixtures --out {{path}}"


class FixtureError(Exception):
    """A fixture file that is missing, stale or for other cases; its message is one line."""


def case_key(case) -> str:
    """The fixture key of a case: ``family|id``."""
    return f"{case.family}|{case.id}"


def _feed(h, v) -> None:
    if isinstance(v, np.ndarray):
        h.update(f"{v.dtype.str}{v.shape}".encode())
        h.update(np.ascontiguousarray(v).tobytes())
    elif isinstance(v, dict):
        for k in sorted(v):
            h.update(repr(k).encode())
            _feed(h, v[k])
    elif isinstance(v, (list, tuple)):
        h.update(f"{type(v).__name__}{len(v)}".encode())
        for x in v:
            _feed(h, x)
    else:
        h.update(repr(v).encode())


def input_hash(case) -> str:
    """A hash of what a case feeds torch: its function, dtype, arguments and differentiated positions."""
    h = hashlib.sha256()
    _feed(h, (case.fn, case.dtype, case.args, case.kwargs, case.grad, case.module_kwargs, case.label))
    return h.hexdigest()[:16]


def _compact(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    with np.errstate(over="ignore"):
        f32 = a.astype(np.float32)
    return f32 if np.array_equal(f32.astype(np.float64), a, equal_nan=True) else a


def build(out: pathlib.Path, limit: int | None = None) -> int:
    """Run torch for the cases and write the fixture file; returns the case count."""
    import torch

    from .cases import all_cases

    if not torch.__version__.startswith(TORCH_VERSION):
        raise FixtureError(f"fixtures need torch {TORCH_VERSION}, this is torch {torch.__version__}")
    cases = all_cases()[:limit] if limit is not None else all_cases()
    return write(out, cases, {"torch": torch.__version__})


def write(out: pathlib.Path, cases, meta: dict[str, str]) -> int:
    """Run each case's torch side (:func:`parity_tests.harness.record_torch`) and write them, keyed
    by :func:`case_key`, with their :func:`input_hash`, ``meta`` (as ``meta|<key>``) and the case
    count to ``out``; returns the case count."""
    from .harness import record_torch

    arrays: dict[str, np.ndarray] = {}
    for case in cases:
        key = case_key(case)
        if f"{key}|hash" in arrays:
            raise FixtureError(f"two cases share the key {key}")
        recorded = record_torch(case)
        (value,), grads = recorded.outputs, recorded.grads
        arrays[f"{key}|value"] = _compact(value)
        for i, g in enumerate(grads):
            arrays[f"{key}|grad{i}"] = _compact(g)
        arrays[f"{key}|ngrad"] = np.asarray(len(grads))
        arrays[f"{key}|hash"] = np.asarray(input_hash(case))
    for k, v in meta.items():
        arrays[f"meta|{k}"] = np.asarray(v)
    arrays["meta|count"] = np.asarray(len(cases))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    return len(cases)


def load(path: pathlib.Path | str, how: str = HOW) -> dict[str, np.ndarray]:
    """The fixture file's arrays; :class:`FixtureError` (one line, saying how to build it: ``how``,
    formatted with the ``path``) when missing."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FixtureError(f"no parity fixtures at {path}; " + how.format(path=path))
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def reference(data: dict[str, np.ndarray], case, path: pathlib.Path | str = DEFAULT_PATH, how: str = HOW):
    """A case's recorded torch side, a :class:`losses_jax.testing.Reference` in float64 for
    ``harness.run_case(case, torch_side=...)``; :class:`FixtureError` when absent or stale (its
    message ends with ``how``, as in :func:`load`)."""
    from .harness import reference as make_reference

    key = case_key(case)
    if f"{key}|hash" not in data:
        raise FixtureError(f"parity fixtures at {path} lack case {key}; " + how.format(path=path))
    if str(data[f"{key}|hash"]) != input_hash(case):
        raise FixtureError(f"parity fixtures at {path} are stale (inputs of {key} changed); " + how.format(path=path))
    grads = [np.asarray(data[f"{key}|grad{i}"], np.float64) for i in range(int(data[f"{key}|ngrad"]))]
    return make_reference(case, np.asarray(data[f"{key}|value"], np.float64), grads)


def main(argv: list[str] | None = None) -> int:
    """The command line: build the fixture file."""
    parser = argparse.ArgumentParser(prog="python -m parity_tests.fixtures", description="Record the torch side.")
    parser.add_argument(
        "--out", type=pathlib.Path, default=DEFAULT_PATH, help=f"where to write (default {DEFAULT_PATH})"
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N cases")
    args = parser.parse_args(argv)
    try:
        count = build(args.out, args.limit)
    except FixtureError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {count} cases, {args.out.stat().st_size / 2**20:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
