"""``python -m parity_tests``: the parity report against torch.

Runs every deterministic case in ``parity_tests/cases`` (the same cases the test suite asserts)
through torch.nn and losses_jax under ``jax.jit``, and prints one row per loss and configuration
family: the number of cases, the largest value error and gradient error (relative, absolute below
atol/rtol; see ``parity_tests.harness``), the tolerance, and PASS/FAIL. Exits 1 if any case fails.

Options: ``--filter TEXT`` keeps families whose name contains TEXT; ``--verbose`` prints every
failing case in full.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity_tests", description=__doc__.split("\n\n")[1])
    parser.add_argument("--filter", default="", help="only families whose name contains this text")
    parser.add_argument("--verbose", action="store_true", help="print every failing case in full")
    args = parser.parse_args(argv)

    import jax
    import torch

    import losses_jax
    from parity_tests.cases import all_cases
    from parity_tests.harness import run_case

    cases = [c for c in all_cases() if args.filter in c.family]
    if not cases:
        print(f"no parity family matches {args.filter!r}", file=sys.stderr)
        return 2
    print(
        f"losses_jax {losses_jax.__version__} vs torch {torch.__version__} "
        f"(certified: {losses_jax.TORCH_VERSION}); jax {jax.__version__} on {jax.default_backend()}"
    )
    if not torch.__version__.startswith(losses_jax.TORCH_VERSION):
        print(f"warning: parity is certified against torch {losses_jax.TORCH_VERSION} only")

    families: OrderedDict[str, list] = OrderedDict()
    start = time.perf_counter()
    for i, case in enumerate(cases, 1):
        try:
            result = run_case(case)
        except Exception as e:  # a crash is a failure of that row, not of the report
            from parity_tests.harness import Result

            result = Result(case, None, repr(e))
        families.setdefault(case.family, []).append(result)
        if sys.stderr.isatty():
            print(f"\r{i}/{len(cases)} cases", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print("\r", end="", file=sys.stderr)

    width = max(len(f) for f in families)
    header = (
        f"{'loss: configuration family':<{width}}  {'cases':>5}  {'dtypes':<16}  "
        f"{'value err':>9}  {'grad err':>9}  {'max rtol':>8}  result"
    )
    print(header)
    print("-" * len(header))
    failures = []
    for fam, results in families.items():
        dtypes = ",".join(sorted({r.case.dtype.replace("float", "f").replace("bf16", "bf16") for r in results}))
        verr = max(r.value_error for r in results)
        gerr = max(r.grad_error for r in results)
        rtol = max(r.case.tolerance()[0] for r in results)
        ok = all(r.passed for r in results)
        failures += [r for r in results if not r.passed]
        print(
            f"{fam:<{width}}  {len(results):>5}  {dtypes:<16}  {verr:>9.1e}  {gerr:>9.1e}  {rtol:>8.0e}  "
            f"{'PASS' if ok else f'FAIL ({sum(not r.passed for r in results)})'}"
        )
    print("-" * len(header))
    n = sum(len(r) for r in families.values())
    print(
        f"{n - len(failures)}/{n} cases pass in {len(families)} families "
        f"({time.perf_counter() - start:.0f} s). Errors are relative (absolute below atol/rtol); "
        "NaN must match NaN."
    )
    for r in failures[: None if args.verbose else 5]:
        print("\n" + r.detail)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
