"""Every public loss has torch 2.13's signature: parameter names, order, kinds and defaults, for
the functionals (torch.nn.functional) and the class constructors (torch.nn), so torch code ports
by changing the import. Every public name is documented."""

from __future__ import annotations

import inspect

import pytest
import torch

import losses_jax

PUBLIC = [n for n in losses_jax.__all__ if n not in ("REDUCTIONS", "TORCH_VERSION")]
FUNCTIONS = [n for n in PUBLIC if n[0].islower()]
CLASSES = [n for n in PUBLIC if n[0].isupper()]

# Parameters we add beyond torch's signature (always keyword-only with a default, so every torch
# call still means the same): name -> why.
EXTRA_PARAMETERS: dict[str, set[str]] = {
    # The class owns a linear layer; torch draws its initial weights from the global RNG, JAX needs
    # an explicit key (None: jax.random.key(0)).
    "LinearCrossEntropyLoss": {"key"},
    # Likewise for the head and tail projections of the adaptive softmax.
    "AdaptiveLogSoftmaxWithLoss": {"key"},
}


def _signature(fn):
    try:
        return inspect.signature(fn)
    except ValueError:
        # C builtins (torch.nn.functional.pairwise_distance, cosine_similarity) carry their
        # signature only as the first docstring line: "name(x1, x2, dim=1, eps=1e-8) -> Tensor".
        first = inspect.getdoc(fn).splitlines()[0]
        args = first[first.index("(") + 1 : first.rindex(")")]
        return inspect.signature(eval(f"lambda {args}: None"))


def _params(fn):
    return [(p.name, p.kind, p.default) for p in _signature(fn).parameters.values() if p.name != "self"]


def _torch_object(name):
    mod = torch.nn.functional if name[0].islower() else torch.nn
    return getattr(mod, name, None)


def _same_default(a, b) -> bool:
    if a is inspect.Parameter.empty or b is inspect.Parameter.empty:
        return a is b
    try:
        return bool(a == b) and type(a) is type(b) or (a is None and b is None)
    except Exception:
        return a is b


def _compare(ours_fn, theirs_fn, name):
    ours = _params(ours_fn)
    theirs = _params(theirs_fn)
    extra = EXTRA_PARAMETERS.get(name, set())
    ours_core = [p for p in ours if p[0] not in extra]
    for p in ours:
        if p[0] in extra:
            assert p[1] is inspect.Parameter.KEYWORD_ONLY and p[2] is not inspect.Parameter.empty, p
    assert [p[0] for p in ours_core] == [p[0] for p in theirs], f"{name}: parameter names/order differ"
    for (n, k1, d1), (_, k2, d2) in zip(ours_core, theirs, strict=True):
        assert k1 == k2, f"{name}({n}): kind {k1} vs torch {k2}"
        assert _same_default(d1, d2), f"{name}({n}): default {d1!r} vs torch {d2!r}"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_functional_signature_is_torchs(name):
    theirs = _torch_object(name)
    assert theirs is not None, f"torch.nn.functional has no {name}"
    _compare(getattr(losses_jax, name), theirs, name)


@pytest.mark.parametrize("name", CLASSES)
def test_class_constructor_is_torchs(name):
    theirs = _torch_object(name)
    if theirs is None:
        theirs = getattr(torch.nn.functional, name, None)  # e.g. an options class
    assert theirs is not None, f"torch.nn has no {name}"
    _compare(getattr(losses_jax, name).__init__, theirs.__init__, name)


def test_every_torch_loss_is_here():
    torch_losses = {n for n in dir(torch.nn) if "Loss" in n and not n.startswith("_")}
    torch_losses -= {"NLLLoss2d"}  # deprecated alias of NLLLoss in torch
    assert torch_losses <= set(CLASSES), sorted(torch_losses - set(CLASSES))


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_is_documented(name):
    doc = inspect.getdoc(getattr(losses_jax, name))
    assert doc and len(doc) > 40, f"{name} has no real docstring"
