"""What a user of the built wheel gets, checked from outside the checkout (.ci/run wheel).

python wheel_check.py files WHEEL      the wheel holds losses_jax/ and its metadata, nothing else
python wheel_check.py bare             installed alone: jax, jaxlib, numpy; no torch, flax, optax
python wheel_check.py testing          with the testing extra: losses_jax.testing passes a correct
                                       port and fails a wrong one with the report
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import pathlib
import sys
import zipfile


def files(wheel: str) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = f"losses_jax-{importlib.metadata.version('losses-jax')}.dist-info/"
    stray = [n for n in names if not (n.startswith("losses_jax/") or n.startswith(dist_info))]
    assert not stray, f"the wheel holds more than losses_jax: {stray}"
    assert "losses_jax/py.typed" in names, "the wheel lacks losses_jax/py.typed"
    assert not [n for n in names if "/test_" in n or n.startswith("tests/")], "the wheel holds test files"
    size = pathlib.Path(wheel).stat().st_size
    print(f"wheel: {len(names)} files, {size / 1024:.0f} KiB, only losses_jax/ and its metadata")


def bare() -> None:
    import losses_jax

    here = pathlib.Path(losses_jax.__file__).resolve()
    assert "site-packages" in here.parts, f"losses_jax imported from {here}, not from the installed wheel"
    for name in ("torch", "flax", "optax", "models", "train", "parity_tests"):
        assert importlib.util.find_spec(name) is None, f"{name} is importable after installing the wheel alone"
    requires = importlib.metadata.requires("losses-jax") or []
    core = sorted(r.split(">")[0].split("=")[0] for r in requires if "extra ==" not in r)
    assert core == ["jax", "jaxlib", "numpy"], f"core dependencies: {core}"
    assert losses_jax.__version__ == importlib.metadata.version("losses-jax")
    print(f"bare: losses_jax {losses_jax.__version__} from {here.parent}; core dependencies {core}")


def testing() -> None:
    import jax.numpy as jnp
    import numpy as np

    import losses_jax
    from losses_jax import testing

    assert not {"torch", "flax", "optax"} & set(sys.modules), "import losses_jax imported torch, flax or optax"
    import torch

    x = np.linspace(-3.0, 3.0, 12).reshape(3, 4)
    y = np.full((3, 4), 0.5)

    def torch_fn(a, b):
        return torch.nn.functional.smooth_l1_loss(a, b, beta=0.5)

    def right(a, b):
        return losses_jax.smooth_l1_loss(a, b, beta=0.5)

    def wrong(a, b):  # l1: equal where |a - b| >= beta, wrong below it
        return jnp.mean(jnp.abs(a - b))

    report = testing.assert_parity(torch_fn, right, (x, y), grad=(0, 1), kind="reduction")
    assert report.ok
    try:
        testing.assert_parity(torch_fn, wrong, (x, y), grad=(0, 1), kind="reduction")
    except AssertionError as e:
        text = str(e)
        assert text.startswith("parity FAIL") and "worst index" in text, text
    else:
        raise AssertionError("a wrong port passed assert_parity")
    print(f"testing: a right port passes, a wrong one fails with the report (torch {torch.__version__})")


if __name__ == "__main__":
    what, *rest = sys.argv[1:]
    {"files": files, "bare": bare, "testing": testing}[what](*rest)
