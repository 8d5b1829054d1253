"""nll_loss and cross_entropy (functional and class): every option and their interactions."""

from __future__ import annotations

import itertools

import numpy as np

from ..harness import Case
from ._data import FLOAT_DTYPES, HALF_DTYPES, REDUCTIONS, class_targets, normal, positive, probabilities

C = 5
# (input shape, target shape): unbatched, batched, K = 1 and K = 2 spatial dimensions
INDEX_SHAPES = [((C,), ()), ((6, C), (6,)), ((3, C, 4), (3, 4)), ((2, C, 3, 2), (2, 3, 2))]


def _log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _input(fn, key, shape):
    """Logits for cross_entropy, log-probabilities for nll_loss."""
    x = normal((fn, key, shape), shape, scale=2.0)
    return _log_softmax(x, 0 if len(shape) == 1 else 1) if fn == "nll_loss" else x


def _index_cases(fn: str, dtype: str) -> list[Case]:
    out = []
    smoothings = (0.0, 0.1, 1.0) if fn == "cross_entropy" else (0.0,)
    fam = lambda what: f"{fn}: {what}"
    for (xs, ts), red in itertools.product(INDEX_SHAPES, REDUCTIONS):
        x = _input(fn, "x", xs)
        t = class_targets((fn, ts), ts, C)
        out.append(
            Case(
                fam("index targets, shapes x reductions"),
                fn,
                (x, t),
                {"reduction": red},
                dtype=dtype,
                label=f"{xs},{red}",
            )
        )
    # every combination of weight, ignore_index (default and custom, present or not) and smoothing
    combos = list(itertools.product(INDEX_SHAPES[1:], REDUCTIONS, (False, True), (None, -100, 2, 7), smoothings))
    for i, ((xs, ts), red, use_w, ignore, ls) in enumerate(combos):
        # float64 runs the full product; float32 runs every option combination once, on one of
        # the three layouts in turn (the layouts are crossed with everything in float64).
        if dtype == "float32" and INDEX_SHAPES[1 + (i // len(INDEX_SHAPES[1:])) % 3] != (xs, ts):
            continue
        x = _input(fn, "x", xs)
        kw = {"reduction": red}
        if ignore is not None:
            kw["ignore_index"] = ignore
        t = class_targets(
            (fn, ts, ignore),
            ts,
            C,
            ignore=ignore if ignore is not None else -100,
            ignore_frac=0.3 if ignore is not None else 0.0,
        )
        if use_w:
            kw["weight"] = positive((fn, "w"), (C,))
        if ls:
            kw["label_smoothing"] = ls
        what = "weight x ignore_index" + (" x label_smoothing" if fn == "cross_entropy" else "")
        out.append(Case(fam(what), fn, (x, t), kw, dtype=dtype, label=f"{xs},{red},w={use_w},ignore={ignore},ls={ls}"))
    for sa, rd in itertools.product((None, True, False), repeat=2):
        if sa is None and rd is None:
            continue
        out.append(
            Case(
                fam("legacy size_average/reduce"),
                fn,
                (_input(fn, "l", (4, C)), class_targets(fn, (4,), C)),
                {"size_average": sa, "reduce": rd, "weight": positive((fn, "w"), (C,))},
                dtype=dtype,
                label=f"sa={sa},reduce={rd}",
                kind="reduction",
            )
        )
    for red, ls in itertools.product(REDUCTIONS, smoothings):
        kw = {"reduction": red, "label_smoothing": ls} if ls else {"reduction": red}
        # empty batch: mean is NaN, sum is 0
        out.append(
            Case(
                fam("edge: empty batch"),
                fn,
                (np.zeros((0, C)), np.zeros((0,), np.int64)),
                dict(kw),
                dtype=dtype,
                label=f"{red},ls={ls}",
            )
        )
        out.append(
            Case(
                fam("edge: empty batch"),
                fn,
                (np.zeros((2, C, 0)), np.zeros((2, 0), np.int64)),
                dict(kw),
                dtype=dtype,
                label=f"K=1 empty,{red},ls={ls}",
            )
        )
        # every target ignored: mean is NaN with zero gradients
        for w in (None, positive((fn, "w"), (C,))):
            kw2 = dict(kw, weight=w) if w is not None else dict(kw)
            out.append(
                Case(
                    fam("edge: all targets ignored"),
                    fn,
                    (_input(fn, "a", (4, C)), np.full((4,), -100)),
                    kw2,
                    dtype=dtype,
                    label=f"{red},ls={ls},w={w is not None}",
                )
            )
        # zero weight on every target class present: mean is 0/0, torch's NaN gradients
        w0 = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
        out.append(
            Case(
                fam("edge: zero target weights"),
                fn,
                (_input(fn, "z", (3, C)), np.array([0, 1, -100])),
                dict(kw, weight=w0),
                dtype=dtype,
                label=f"{red},ls={ls}",
            )
        )
        if fn == "cross_entropy":
            # extreme logits: +-1e4 and -inf on non-target classes, an -inf target logit
            ext = np.array(
                [
                    [1e4, -1e4, 0.0, 3.0, -2.0],
                    [-np.inf, 0.0, 1.0, 2.0, -np.inf],
                    [5e3, 5e3, -5e3, 0.0, 1.0],
                    [1e4, 1e4, 1e4, 1e4, 1e4],
                ]
            )
            for tgt in ([1, 2, 0, 4], [1, 0, 2, 3]):
                out.append(
                    Case(
                        fam("edge: extreme logits (+-1e4, -inf)"),
                        fn,
                        (ext, np.array(tgt)),
                        dict(kw),
                        dtype=dtype,
                        label=f"{red},ls={ls},t={tgt}",
                    )
                )
        nan_x = _input(fn, "n", (3, C))
        nan_x[1, 2] = np.nan
        out.append(
            Case(
                fam("edge: NaN input"), fn, (nan_x, np.array([0, 1, 2])), dict(kw), dtype=dtype, label=f"{red},ls={ls}"
            )
        )
    # unbatched input with a (1,) target (torch accepts it and returns a scalar)
    for red in REDUCTIONS:
        out.append(
            Case(
                fam("index targets, shapes x reductions"),
                fn,
                (_input(fn, "u", (C,)), np.array([3])),
                {"reduction": red},
                dtype=dtype,
                label=f"(C,) with (1,) target,{red}",
                grad=(),
            )
        )  # torch's own backward raises a size mismatch here: values only
        out.append(
            Case(
                fam("edge: ignored unbatched"),
                fn,
                (_input(fn, "u", (C,)), np.array(-100)),
                {"reduction": red},
                dtype=dtype,
                label=red,
            )
        )
    return out


def _prob_cases(dtype: str) -> list[Case]:
    fn = "cross_entropy"
    fam = lambda what: f"{fn}: {what}"
    out = []
    shapes = [(C,), (6, C), (3, C, 4), (2, C, 3, 2)]
    for xs, red, use_w, ls in itertools.product(shapes, REDUCTIONS, (False, True), (0.0, 0.2)):
        axis = 0 if len(xs) == 1 else 1
        kw = {"reduction": red}
        if use_w:
            kw["weight"] = positive((fn, "pw"), (C,))
        if ls:
            kw["label_smoothing"] = ls
        out.append(
            Case(
                fam("probability targets x weight x label_smoothing"),
                fn,
                (normal((fn, "px", xs), xs, 2.0), probabilities((fn, xs), xs, axis)),
                kw,
                grad=(0, 1),
                dtype=dtype,
                label=f"{xs},{red},w={use_w},ls={ls}",
            )
        )
    for red in REDUCTIONS:
        out.append(
            Case(
                fam("edge: empty batch"),
                fn,
                (np.zeros((0, C)), np.zeros((0, C))),
                {"reduction": red},
                grad=(0, 1),
                dtype=dtype,
                label=f"probabilities,{red}",
            )
        )
        ext = np.array([[1e4, -1e4, 0.0, 3.0, -2.0], [-np.inf, 0.0, 1.0, 2.0, -np.inf]])
        p = np.array([[0.0, 0.5, 0.5, 0.0, 0.0], [0.0, 0.2, 0.3, 0.5, 0.0]])
        out.append(
            Case(
                fam("edge: extreme logits (+-1e4, -inf)"),
                fn,
                (ext, p),
                {"reduction": red},
                grad=(0, 1),
                dtype=dtype,
                label=f"probabilities,{red}",
            )
        )
        # soft targets that are not normalised (torch does not require it)
        out.append(
            Case(
                fam("probability targets x weight x label_smoothing"),
                fn,
                (normal((fn, "u"), (4, C)), positive((fn, "u"), (4, C))),
                {"reduction": red},
                grad=(0, 1),
                dtype=dtype,
                label=f"unnormalised,{red}",
            )
        )
    return out


def cases() -> list[Case]:
    out = []
    for dtype in FLOAT_DTYPES:
        out += _index_cases("nll_loss", dtype)
        out += _index_cases("cross_entropy", dtype)
        out += _prob_cases(dtype)
        # the tutorials' worked numbers (the L1/MSE and cross-entropy lessons)
        out.append(
            Case(
                "cross_entropy: tutorial examples",
                "cross_entropy",
                (np.array([[0.1, 0.2, 0.3]]), np.array([1])),
                dtype=dtype,
                label="1.1019",
            )
        )
        out.append(
            Case(
                "cross_entropy: tutorial examples",
                "cross_entropy",
                (np.array([[0.5, 1.0, 2.0], [0.5, 1.0, 2.0]]), np.array([0, 1])),
                dtype=dtype,
                label="2x3",
            )
        )
        w = positive("cw", (C,))
        for cls, kw in [
            ("CrossEntropyLoss", {}),
            ("CrossEntropyLoss", {"weight": w, "ignore_index": 1, "reduction": "sum", "label_smoothing": 0.3}),
            ("CrossEntropyLoss", {"size_average": False}),
            ("NLLLoss", {}),
            ("NLLLoss", {"weight": w, "ignore_index": 0, "reduction": "none"}),
            ("NLLLoss", {"reduce": False}),
        ]:
            fn = "nll_loss" if cls == "NLLLoss" else "cross_entropy"
            kind = "elementwise" if kw.get("reduction") == "none" or kw.get("reduce") is False else "reduction"
            out.append(
                Case(
                    f"{fn}: class API",
                    cls,
                    (_input(fn, "c", (6, C)), class_targets("c", (6,), C)),
                    module_kwargs=kw,
                    dtype=dtype,
                    label=str(sorted(kw)),
                    kind=kind,
                )
            )
        out.append(
            Case(
                "cross_entropy: class API",
                "CrossEntropyLoss",
                (normal("cp", (6, C)), probabilities("cp", (6, C), 1)),
                module_kwargs={"label_smoothing": 0.1},
                grad=(0, 1),
                dtype=dtype,
                label="probabilities",
            )
        )
        # int64 class indices in JAX (x64 enabled) as well as the default int32
        out.append(
            Case(
                "nll_loss: index targets, shapes x reductions",
                "nll_loss",
                (_input("nll_loss", "i64", (6, C)), class_targets("i64", (6,), C)),
                dtype=dtype,
                label="int64 targets",
            )
        )
    for dtype, red in itertools.product(HALF_DTYPES, REDUCTIONS):
        for fn in ("nll_loss", "cross_entropy"):
            t = class_targets((fn, "h"), (8,), C, ignore=-100, ignore_frac=0.2)
            out.append(
                Case(
                    f"{fn}: half precision",
                    fn,
                    (_input(fn, "h", (8, C)), t),
                    {"reduction": red, "weight": positive("hw", (C,))},
                    dtype=dtype,
                    label=red,
                )
            )
        out.append(
            Case(
                "cross_entropy: half precision",
                "cross_entropy",
                (normal("hp", (8, C), 2.0), probabilities("hp", (8, C), 1)),
                {"reduction": red, "label_smoothing": 0.1},
                grad=(0, 1),
                dtype=dtype,
                label=f"probabilities,{red}",
            )
        )
    return out
