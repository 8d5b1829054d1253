"""linear_cross_entropy (functional and class): both paths against torch's function.

Every case runs torch 2.13's ``F.linear_cross_entropy`` (with the same ``options``: ``None`` for
the reference path, ``LinearCrossEntropyOptions(...)`` for the chunked one; torch falls back to
its reference path where its chunked op does not apply) and ours, values and gradients of
``input``, ``linear_weight``, ``linear_bias`` and a probability target. Chunk sizes are chosen not
to divide N. A second group compares against torch's ``cross_entropy`` of explicitly built logits.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as TF

import losses_jax

from ..harness import Case
from ._data import FLOAT_DTYPES, HALF_DTYPES, REDUCTIONS, class_targets, normal, positive, probabilities

C, H, N = 5, 4, 7
FN = "linear_cross_entropy"


def _options(lib, chunk):
    """``chunk``: None (reference path), 'auto' (default options) or rows per chunk."""
    if chunk is None:
        return None
    cls = torch.nn.LinearCrossEntropyOptions if lib == "torch" else losses_jax.LinearCrossEntropyOptions
    return cls() if chunk == "auto" else cls(batch_chunk_size=chunk)


def _fns(chunk, *, explicit=False, torch_reference=False):
    """(torch_fn, jax_fn) taking ``(input, linear_weight, target[, linear_bias], **kwargs)``.

    ``explicit``: torch side is ``cross_entropy(linear(input, W, b).reshape(logits), ...)``.
    ``torch_reference``: torch side on its reference path (``options=None``) whatever ``chunk``
    is: where torch's chunked op departs from its own reference path (see parity_tests/test_linear.py).
    """

    def torch_fn(x, w, t, b=None, **kw):
        if explicit:
            h = x.shape[-1]
            logits = TF.linear(x, w.reshape(-1, h), None if b is None else b.reshape(-1))
            logits = logits.reshape((*x.shape[:-1], *w.shape[:-1]))
            kw = dict(kw)
            if kw.get("ignore_index") is None:
                kw.pop("ignore_index", None)
            return TF.cross_entropy(logits, t, **kw)
        opts = None if torch_reference else _options("torch", chunk)
        return TF.linear_cross_entropy(x, w, t, linear_bias=b, options=opts, **kw)

    def jax_fn(x, w, t, b=None, **kw):
        return losses_jax.linear_cross_entropy(x, w, t, linear_bias=b, options=_options("jax", chunk), **kw)

    return torch_fn, jax_fn


def _case(family, args, kw, chunk, dtype, label, grad=None, explicit=False, kind=None, torch_reference=False):
    tf, jf = _fns(chunk, explicit=explicit, torch_reference=torch_reference)
    if grad is None:
        grad = (0, 1) + ((3,) if len(args) > 3 else ())
    path = "reference" if chunk is None else f"chunk={chunk}"
    return Case(
        f"{FN}: {family}",
        FN,
        args,
        kw,
        grad=grad,
        dtype=dtype,
        torch_fn=tf,
        jax_fn=jf,
        label=f"{path},{label}",
        kind=kind,
    )


# (weight, ignore_index, label_smoothing, bias): a covering set of the option product (every
# pair of options appears together), each under every reduction.
OPTION_SETS = [
    (False, None, 0.0, False),
    (True, 2, 0.2, True),
    (True, None, 0.0, True),
    (False, 2, 0.2, False),
    (True, 2, 0.0, False),
    (False, None, 0.2, True),
]


def _index_cases(dtype):
    out = []
    full = dtype == "float32"  # float64 repeats a core subset (compile time per case adds up)
    x = normal((FN, "x"), (N, H), 1.5)
    w = normal((FN, "w"), (C, H))
    b = normal((FN, "b"), (C,))
    cw = positive((FN, "cw"), (C,))
    # the option combinations on the chunked path (chunks of 3 rows: 7 = 3 + 3 + 1)
    for red, (use_w, ignore, ls, bias) in itertools.product(REDUCTIONS, OPTION_SETS if full else OPTION_SETS[:2]):
        t = class_targets((FN, ignore), (N,), C, ignore=-100 if ignore is None else ignore, ignore_frac=0.3)
        kw = {"reduction": red}
        if use_w:
            kw["weight"] = cw
        if ignore is not None:
            kw["ignore_index"] = ignore
        if ls:
            kw["label_smoothing"] = ls
        args = (x, w, t, b) if bias else (x, w, t)
        out.append(
            _case(
                "index targets: reduction x weight x ignore_index x label_smoothing x bias",
                args,
                kw,
                3,
                dtype,
                f"{red},w={use_w},ignore={ignore},ls={ls},bias={bias}",
            )
        )
    # the reference path, and other chunk sizes (1 row, more rows than N, torch's default options)
    t = class_targets((FN, "r"), (N,), C, ignore=-100, ignore_frac=0.3)
    for chunk, red in itertools.product((None, 1, 16, "auto") if full else (None,), REDUCTIONS):
        kw = {"reduction": red, "weight": cw, "label_smoothing": 0.1}
        out.append(_case("index targets: paths and chunk sizes", (x, w, t, b), kw, chunk, dtype, f"{red}"))
    # unbatched input
    xu = normal((FN, "xu"), (H,))
    for chunk, red in itertools.product((None, 2), REDUCTIONS if full else ("mean",)):
        for tt in (np.array(3), np.array([1]), np.array(-100)):
            grad = (0, 1) if tt.shape == () else ()  # torch's backward rejects the (1,) target
            # torch's chunked op rejects the (1,) target (an indexing error): compare with its
            # reference path there
            out.append(
                _case(
                    "unbatched input",
                    (xu, w, tt, b),
                    {"reduction": red},
                    chunk,
                    dtype,
                    f"{red},target={tt.tolist()}",
                    grad=grad if grad == () else None,
                    torch_reference=tt.shape == (1,) or int(tt.reshape(-1)[0]) == -100,
                )
            )
    # K-dimensional: linear_weight (C, 2, H) and (C, 2, 3, H)
    for chunk, red, (dk, opts) in itertools.product(
        (None, 3), REDUCTIONS if full else ("sum",), [((2,), False), ((2,), True), ((2, 3), True)]
    ):
        wk = normal((FN, "wk", dk), (C, *dk, H))
        bk = normal((FN, "bk", dk), (C, *dk))
        tk = class_targets((FN, "tk", dk), (N, *dk), C, ignore=1 if opts else -100, ignore_frac=0.2 if opts else 0.0)
        kw = {"reduction": red}
        if opts:
            kw.update(weight=cw, ignore_index=1, label_smoothing=0.3)
        out.append(
            _case("K-dimensional linear_weight", (x, wk, tk, bk), kw, chunk, dtype, f"{dk},{red},options={opts}")
        )
    # every target ignored (mean: NaN, zero gradients), zero weights on every target class.
    # Against torch's reference path: torch's chunked op gives NaN gradients under 'mean' here
    # where its reference path gives zeros (tested in parity_tests/test_linear.py); ours follows
    # the reference path on both paths.
    for chunk, red, ls in itertools.product((None, 3) if full else (3,), REDUCTIONS, (0.0, 0.4)):
        kw = {"reduction": red, "label_smoothing": ls}
        out.append(
            _case(
                "edge: all targets ignored",
                (x, w, np.full((N,), -100), b),
                kw,
                chunk,
                dtype,
                f"{red},ls={ls}",
                torch_reference=True,
            )
        )
        w0 = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
        t0 = np.array([0, 1, 0, -100, 1, 0, 1])
        out.append(
            _case(
                "edge: zero target weights",
                (x, w, t0, b),
                dict(kw, weight=w0),
                chunk,
                dtype,
                f"{red},ls={ls}",
                torch_reference=True,
            )
        )
    # empty batch, extreme logits (|z| ~ 1e4)
    for chunk, red in itertools.product((None, 3) if full else (3,), REDUCTIONS):
        out.append(
            _case(
                "edge: empty batch",
                (np.zeros((0, H)), w, np.zeros((0,), np.int64), b),
                {"reduction": red},
                chunk,
                dtype,
                red,
            )
        )
        big = normal((FN, "big"), (N, H), 1.0) * 3e3
        out.append(
            _case(
                "edge: extreme logits",
                (big, w, class_targets((FN, "big"), (N,), C), b),
                {"reduction": red, "label_smoothing": 0.1},
                chunk,
                dtype,
                red,
            )
        )
    return out


def _prob_cases(dtype):
    out = []
    cw = positive((FN, "pcw"), (C,))
    full = dtype == "float32"
    for chunk, shape_name, (red, opts) in itertools.product(
        (None, 3) if full else (3,),
        ("batched", "unbatched", "K=1"),
        [("none", True), ("mean", False), ("sum", True), ("mean", True)] if full else [("mean", True)],
    ):
        if shape_name == "unbatched":
            x, w, ts, axis = normal((FN, "pxu"), (H,)), normal((FN, "pw"), (C, H)), (C,), 0
        elif shape_name == "batched":
            x, w, ts, axis = normal((FN, "px"), (N, H), 1.5), normal((FN, "pw"), (C, H)), (N, C), 1
        else:
            x, w, ts, axis = normal((FN, "px"), (N, H), 1.5), normal((FN, "pwk"), (C, 2, H)), (N, C, 2), 1
        t = probabilities((FN, ts), ts, axis)
        b = normal((FN, "pb", w.shape), w.shape[:-1])
        kw = {"reduction": red}
        if opts:
            kw.update(weight=cw, label_smoothing=0.25)
        out.append(
            _case(
                "probability targets (grad of target too)",
                (x, w, t, b),
                kw,
                chunk,
                dtype,
                f"{shape_name},{red},w+ls={opts}",
                grad=(0, 1, 2, 3),
            )
        )
    return out


def _explicit_cases(dtype):
    """Against torch's cross_entropy of the explicit logits, not torch's linear_cross_entropy."""
    out = []
    x = normal((FN, "ex"), (N, H), 1.5)
    cw = positive((FN, "ecw"), (C,))
    for chunk, red, dk in itertools.product((None, 4), REDUCTIONS if dtype == "float32" else ("mean",), ((), (3,))):
        w = normal((FN, "ew", dk), (C, *dk, H))
        b = normal((FN, "eb", dk), (C, *dk))
        t = class_targets((FN, "et", dk), (N, *dk), C, ignore=0, ignore_frac=0.2)
        kw = {"reduction": red, "weight": cw, "ignore_index": 0, "label_smoothing": 0.15}
        out.append(
            _case("vs cross_entropy(explicit logits)", (x, w, t, b), kw, chunk, dtype, f"{dk},{red}", explicit=True)
        )
    return out


def _class_cases(dtype):
    """The class: torch's module with its parameters replaced by ours (torch.func.functional_call)."""
    out = []
    x = normal((FN, "cx"), (N, H), 1.5)
    cw = positive((FN, "ccw"), (C,))
    for chunk, (dk, kw) in itertools.product(
        (None, 3),
        [
            ((), {}),
            ((), {"reduction": "sum", "weight": cw, "ignore_index": 1, "label_smoothing": 0.2}),
            ((2,), {"reduction": "none", "label_smoothing": 0.1}),
        ],
    ):
        rows = C * int(np.prod(dk, dtype=np.int64))
        lw = normal((FN, "clw", dk), (rows, H))
        lb = normal((FN, "clb", dk), (rows,))
        t = class_targets((FN, "ct", dk), (N, *dk), C, ignore=kw.get("ignore_index", -100), ignore_frac=0.2)

        def torch_fn(x, lw, t, lb, _dk=dk, _kw=kw, _chunk=chunk):
            kw2 = {k: (torch.tensor(v, dtype=lw.dtype) if isinstance(v, np.ndarray) else v) for k, v in _kw.items()}
            m = torch.nn.LinearCrossEntropyLoss(
                H, C, out_features=_dk, bias=True, dtype=lw.dtype, options=_options("torch", _chunk), **kw2
            )
            return torch.func.functional_call(m, {"linear.weight": lw, "linear.bias": lb}, (x, t))

        def jax_fn(x, lw, t, lb, _dk=dk, _kw=kw, _chunk=chunk):
            m = losses_jax.LinearCrossEntropyLoss(
                H, C, out_features=_dk, bias=True, dtype=lw.dtype, options=_options("jax", _chunk), **_kw
            )
            m.linear_weight, m.linear_bias = lw, lb
            return m(x, t)

        kind = "elementwise" if kw.get("reduction") == "none" else "reduction"
        out.append(
            Case(
                f"{FN}: class API",
                "LinearCrossEntropyLoss",
                (x, lw, t, lb),
                grad=(0, 1, 3),
                dtype=dtype,
                torch_fn=torch_fn,
                jax_fn=jax_fn,
                kind=kind,
                label=f"{'reference' if chunk is None else 'chunk=' + str(chunk)},{dk},{sorted(kw)}",
            )
        )
    return out


def _half_cases():
    """bf16 / fp16: the chunked path (float32 inside) against torch's chunked op (float32 inside
    on CPU), and the reference path against torch's reference path."""
    out = []
    x = normal((FN, "hx"), (16, 8))
    w = normal((FN, "hw"), (C, 8), 0.5)
    t = class_targets((FN, "ht"), (16,), C, ignore=-100, ignore_frac=0.2)
    for dtype, chunk, red in itertools.product(HALF_DTYPES, (None, 5), REDUCTIONS):
        # Reference path: values only. torch differentiates its half-precision log_softmax
        # through the rounded half-precision output; our cross_entropy's gradient is computed in
        # float32 and rounded once, and the two gradients differ by up to ~1.1e-2 (relative to the
        # largest) at float16, 'sum', just over the half tolerance.
        grad = () if chunk is None else None
        out.append(_case("half precision", (x, w, t), {"reduction": red}, chunk, dtype, red, grad=grad))
    return out


def cases() -> list[Case]:
    out = []
    for dtype in FLOAT_DTYPES:
        out += _index_cases(dtype)
        out += _prob_cases(dtype)
        out += _explicit_cases(dtype)
        out += _class_cases(dtype)
    out += _half_cases()
    return out
