"""``losses_jax.ops`` against ``torchvision.ops`` itself: the cases, and torchvision's side recorded.

torchvision's wheels need a torch of their own release (0.29 goes with torch 2.14, not with the
2.13 this project is certified against), so torchvision's values and gradients are recorded once,
where it is installed, into ``parity_tests/data/torchvision_ops.npz`` (committed), and the parity
test (``parity_tests/test_torchvision_ops.py``) compares ``losses_jax.ops`` with that file::

    python -m parity_tests.torchvision_ops            # where torchvision 0.29.1 is installed

:func:`cases` is the one list of cases both sides use. The file is written by
:func:`parity_tests.fixtures.write` (per case: value, gradients, a hash of the inputs and options)
with the torch and torchvision versions; a case whose inputs changed since the recording is
refused as stale.
"""

from __future__ import annotations

import argparse
import itertools
import pathlib
import sys

import numpy as np

from losses_jax import ops

from .cases._data import rng
from .fixtures import FixtureError, write
from .harness import Case

__all__ = ["HOW", "PATH", "TORCHVISION_VERSION", "cases", "main", "record"]

TORCHVISION_VERSION = ops.TORCHVISION_VERSION
PATH = pathlib.Path(__file__).resolve().parent / "data" / "torchvision_ops.npz"
HOW = f"record it where torchvision {TORCHVISION_VERSION} is installed: python -m parity_tests.torchvision_ops"

DTYPES = ("float32", "float64", "bfloat16")
REDUCTIONS = ("none", "mean", "sum")
BOX_LOSSES = ("generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss")


def _torchvision(name: str):
    """``torchvision.ops.<name>``, imported when first called (only the recorder has torchvision)."""

    def call(*args, **kwargs):
        import torchvision.ops  # pyright: ignore[reportMissingImports]  (only where it records)

        return getattr(torchvision.ops, name)(*args, **kwargs)

    call.__name__ = name
    return call


def _case(family: str, fn: str, args: tuple, kwargs: dict, grad: tuple, dtype: str, label: str) -> Case:
    # torchvision's default reduction is 'none' (the harness's tolerance assumes torch.nn's 'mean')
    kind = "elementwise" if kwargs.get("reduction", "none") == "none" else "reduction"
    return Case(
        f"torchvision.ops {fn}: {family}",
        fn,
        args,
        kwargs,
        grad=grad,
        dtype=dtype,
        label=label,
        torch_fn=_torchvision(fn),
        jax_fn=getattr(ops, fn),
        kind=kind,
    )


# -- boxes ---------------------------------------------------------------------------------------


def _random_boxes(key, n: int, scale: float = 10.0, offset: float = 0.0) -> np.ndarray:
    g = rng("boxes", key, n, scale)
    xy = g.uniform(0.0, scale, size=(n, 2)) + offset
    wh = g.uniform(0.1 * scale, 0.6 * scale, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def _scenarios() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Named box pairs ``(boxes1, boxes2)``, float64 (cast to each case's dtype by the harness)."""
    a = _random_boxes("a", 6)
    w, h = a[:, 2:3] - a[:, 0:1], a[:, 3:4] - a[:, 1:2]
    shift = rng("shift").uniform(-0.4, 0.4, size=(6, 2))
    overlapping = a + np.concatenate([shift[:, :1] * w, shift[:, 1:] * h] * 2, axis=1)
    # beside, below, diagonal: no overlap; the last two touch along an edge (zero-width intersection)
    dx, dy = w * [[1.5], [0], [2], [0.5], [1], [0]], h * [[0], [1.25], [3], [-2], [0], [-1]]
    disjoint = a + np.concatenate([dx, dy, dx, dy], 1)
    inner = np.concatenate([a[:, :2] + 0.2 * np.concatenate([w, h], 1), a[:, 2:] - 0.3 * np.concatenate([w, h], 1)], 1)
    zero = np.array(
        [
            [1.0, 1.0, 1.0, 4.0],  # zero width
            [2.0, 3.0, 5.0, 3.0],  # zero height
            [2.0, 2.0, 2.0, 2.0],  # a point
            [0.0, 0.0, 0.0, 0.0],  # a point at the origin
            [1.0, 1.0, 1.0, 4.0],
        ]
    )
    zero_other = np.array(
        [[0.0, 0.0, 3.0, 3.0], [1.0, 1.0, 6.0, 4.0], [1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 4.0]]
    )
    large = _random_boxes("large", 6, scale=1e4, offset=5e4)
    large_other = large + rng("large shift").uniform(-2e3, 2e3, size=(6, 4))
    large_other[:, 2:] = np.maximum(large_other[:, 2:], large_other[:, :2] + 10.0)
    return {
        "random": (_random_boxes("r1", 8), _random_boxes("r2", 8)),
        "overlapping": (a, overlapping),
        "disjoint and touching": (a, disjoint),
        "nested": (a, inner),
        "nested, swapped": (inner, a),
        "identical": (a, a.copy()),
        "zero-area": (zero, zero_other),
        "large coordinates": (large, large_other),
        "one box (4,)": (a[0], overlapping[0]),
        "batched (2, 3, 4)": (a.reshape(2, 3, 4), overlapping.reshape(2, 3, 4)),
        "(N, 4) with (4,)": (a, overlapping[0]),
    }


def _box_cases() -> list[Case]:
    out = []
    scenarios = _scenarios()
    for fn, dtype in itertools.product(BOX_LOSSES, DTYPES):
        for name, (b1, b2) in scenarios.items():
            out.append(_case(name, fn, (b1, b2), {}, (0, 1), dtype, name))
        b1, b2 = scenarios["random"]
        for reduction in ("mean", "sum"):
            out.append(_case("reductions", fn, (b1, b2), {"reduction": reduction}, (0, 1), dtype, reduction))
        for reduction in REDUCTIONS:
            empty = np.zeros((0, 4))
            out.append(_case("no boxes", fn, (empty, empty.copy()), {"reduction": reduction}, (0, 1), dtype, reduction))
        b1, b2 = scenarios["overlapping"]
        out.append(_case("eps", fn, (b1, b2), {"eps": 0.5, "reduction": "sum"}, (0, 1), dtype, "eps=0.5"))
    for fn in BOX_LOSSES:
        # integer boxes are computed in float32 (torchvision's _upcast_non_float); nothing to differentiate
        g = rng("int boxes", fn)
        xy = g.integers(0, 50, size=(6, 2))
        i1 = np.concatenate([xy, xy + g.integers(1, 30, size=(6, 2))], 1)
        i2 = np.concatenate([xy + 5, xy + 5 + g.integers(1, 30, size=(6, 2))], 1)
        out.append(_case("integer boxes", fn, (i1, i2), {}, (), "float32", "int"))
        out.append(_case("integer boxes", fn, (i1, i2), {"reduction": "mean"}, (), "float32", "int,mean"))
        # integer boxes1 (computed in float32) with float32 boxes2
        out.append(_case("integer boxes", fn, (i1, i2.astype(np.float64)), {}, (1,), "float32", "int with float32"))
    return out


# -- sigmoid_focal_loss --------------------------------------------------------------------------


def _focal_cases() -> list[Case]:
    fn = "sigmoid_focal_loss"
    out = []
    g = rng("focal")
    x = g.normal(0.0, 2.0, size=(4, 5))
    y = (g.uniform(size=(4, 5)) < 0.3).astype(np.float64)
    soft = g.uniform(size=(4, 5))
    extreme = np.array([[-1e4, -100.0, -20.0, -5.0, 0.0, 5.0, 20.0, 100.0, 1e4]] * 2)
    extreme_y = np.array([[0.0] * 9, [1.0] * 9])
    for dtype in DTYPES:
        for reduction in REDUCTIONS:
            out.append(_case("reductions", fn, (x, y), {"reduction": reduction}, (0, 1), dtype, reduction))
        for alpha, gamma in itertools.product((0.25, -1, 0.0, 1.0, 0.6), (0, 2, 1.5, 3)):
            label = f"alpha={alpha},gamma={gamma}"
            out.append(_case("alpha x gamma", fn, (x, y), {"alpha": alpha, "gamma": gamma}, (0, 1), dtype, label))
        out.append(_case("soft targets", fn, (x, soft), {"gamma": 0.5, "reduction": "sum"}, (0, 1), dtype, "gamma=0.5"))
        for gamma in (0, 2, 1.5):
            label = f"gamma={gamma}"
            out.append(_case("extreme logits", fn, (extreme, extreme_y), {"gamma": gamma}, (0, 1), dtype, label))
        for reduction in REDUCTIONS:
            empty = np.zeros((0, 5))
            out.append(_case("empty", fn, (empty, empty.copy()), {"reduction": reduction}, (0, 1), dtype, reduction))
        out.append(_case("scalar", fn, (np.array(0.7), np.array(1.0)), {}, (0, 1), dtype, "0-d"))
    return out


def cases() -> list[Case]:
    """Every case of ``losses_jax.ops`` against torchvision: the recorder's and the test's list."""
    return _focal_cases() + _box_cases()


# -- the recording -------------------------------------------------------------------------------


def record(out: pathlib.Path = PATH) -> int:
    """Run torchvision for every case and write the recording; returns the case count."""
    import torch
    import torchvision  # pyright: ignore[reportMissingImports]  (only where it records)

    if torchvision.__version__.split("+")[0] != TORCHVISION_VERSION:
        raise FixtureError(f"the recording needs torchvision {TORCHVISION_VERSION}, this is {torchvision.__version__}")
    all_cases = cases()
    return write(out, all_cases, {"torch": torch.__version__, "torchvision": torchvision.__version__})


def main(argv: list[str] | None = None) -> int:
    """The command line: record torchvision's side."""
    parser = argparse.ArgumentParser(
        prog="python -m parity_tests.torchvision_ops", description="Record torchvision.ops's values and gradients."
    )
    parser.add_argument("--out", type=pathlib.Path, default=PATH, help="where to write (default: the committed file)")
    args = parser.parse_args(argv)
    try:
        count = record(args.out)
    except FixtureError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {count} cases, {args.out.stat().st_size / 2**10:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
