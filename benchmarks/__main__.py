"""``python -m benchmarks``: every benchmark suite, printed and written to BENCHMARKS.md.

Suites (``--only NAME`` to run some): losses (every loss fwd+bwd vs torch), cross_entropy
(4096 x 32000 vs torch and the memory floor), linear_cross_entropy (time and peak memory vs
torch's chunked and plain paths, each in a fresh process), train (Tudui training throughput vs
torch eager and torch.compile), floor (each convolution pass of a Tudui step, XLA against
torch channels_last and against a matmul of the same size). ``--no-write`` prints without touching BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import sys
import time

from .common import machine, now, table, versions

SUITES = {
    "losses": ("Every loss, forward + backward", "benchmarks.losses"),
    "cross_entropy": ("cross_entropy at 4096 x 32000 against torch and the memory floor", "benchmarks.cross_entropy"),
    "linear_cross_entropy": ("linear_cross_entropy: time and peak memory", None),
    "train": ("Tudui training throughput", "benchmarks.train_throughput"),
    "floor": ("Tudui's convolutions against torch's and the matmul floor", "benchmarks.floor"),
}


def _linear_cross_entropy(rounds: int) -> str:
    """D's stand-alone script (each variant in a fresh process); its measured block, embedded."""
    from . import linear_cross_entropy as lce

    lce.main(["--runs", str(min(rounds, 3))])
    text = pathlib.Path(lce.__file__).with_name("results").joinpath("linear_cross_entropy.md").read_text()
    begin, end = "<!-- measured: begin -->", "<!-- measured: end -->"
    block = text[text.index(begin) + len(begin) : text.index(end)].strip()
    return block + "\n\nFloor, expectation and analysis: `benchmarks/results/linear_cross_entropy.md`."


#: Suites that take ``--baseline`` (another checkout's losses_jax timed in the same rounds).
BASELINE_SUITES = ("losses", "cross_entropy")


def run_suite(name: str, rounds: int, baseline=None) -> str:
    module = SUITES[name][1]
    if module is None:
        return _linear_cross_entropy(rounds)
    extra = {"baseline": baseline} if baseline is not None and name in BASELINE_SUITES else {}
    header, rows, *notes = importlib.import_module(module).run(rounds=rounds, **extra)
    return table(header, rows) + ("\n\n" + notes[0] if notes else "")


START, END = "<!-- results:start -->", "<!-- results:end -->"


def write_results(path: pathlib.Path, results: str) -> None:
    """Replace the text between the results markers, keeping the written analysis around it."""
    block = f"{START}\n{results}\n{END}"
    text = path.read_text() if path.exists() else ""
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    else:
        text = (text or "# Benchmarks\n") + "\n" + block + "\n"
    path.write_text(text)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--device" in argv:  # one command that checks an accelerator: benchmarks/device.py
        from . import device

        args = device.parse(argv)
        return device.main(args.fixtures, args.tiny, args.out)
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument("--only", action="append", choices=sorted(SUITES), help="run only this suite (repeatable)")
    parser.add_argument(
        "--rounds", type=int, default=7, help="interleaved rounds per measurement (at least 5 are used)"
    )
    parser.add_argument(
        "--baseline",
        metavar="PATH",
        help="another checkout (its root or its losses_jax directory) whose losses are timed in the same "
        f"rounds as ours, for a before/after comparison ({', '.join(BASELINE_SUITES)})",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write BENCHMARKS.md")
    parser.add_argument("--output", default="BENCHMARKS.md", help="where to write the results")
    args = parser.parse_args(argv)

    names = args.only or list(SUITES)
    command = "python -m benchmarks" + "".join(f" --only {n}" for n in args.only or [])
    baseline = None
    if args.baseline is not None:
        from .common import load_baseline

        baseline = load_baseline(args.baseline)
        command += f" --baseline {args.baseline}"
    sections = [
        "# Benchmarks",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Software: {versions()}  ",
        f"Date: {now()}",
        "",
        "Contenders take turns in interleaved rounds after warm-up (compile time reported apart). Times",
        "are medians over the rounds; ratios are the median of the per-round ratios, with their min and",
        "max in brackets. Ratios compare runs made in the same process at the same moment; absolute",
        "times on this shared machine vary from run to run.",
    ]
    for name in names:
        title = SUITES[name][0]
        print(f"== {title}", flush=True)
        start = time.perf_counter()
        text = run_suite(name, args.rounds, baseline)
        print(text, flush=True)
        sections += ["", f"## {title}", "", text]
        sections.append(f"\n_{name}: {time.perf_counter() - start:.0f} s_")
    if not args.no_write:
        write_results(pathlib.Path(args.output), "\n".join(sections[1:]).strip())
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
