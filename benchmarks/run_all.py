"""Run every benchmark and evaluation in sequence (``make bench``); each writes benchmarks/results/*.json.

Run: ``python -m benchmarks.run_all`` (full sizes, about an hour on 2 cores) or ``--quick`` (smoke sizes).
Results are read into benchmarks/README.md by hand, with the load average each run recorded.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

# (module, arguments for a full run, arguments for a quick run)
_RUNS: list[tuple[str, list[str], list[str]]] = [
    ("benchmarks.bench_ledger", [], ["--quick"]),
    ("benchmarks.bench_gate", [], ["--size-mb", "64", "--repeats", "2"]),
    ("benchmarks.bench_contract", [], ["--rows", "100000", "--cols", "20", "--quick"]),
    ("benchmarks.bench_scoring", [], ["--rows", "100000", "--reference", "20000", "--no-pyod"]),
    ("benchmarks.bench_ingest", [], ["--quick"]),
    ("benchmarks.eval_poisoning", [], ["--quick"]),
    ("benchmarks.eval_adbench", [], ["--quick"]),
    ("benchmarks.eval_threshold", [], ["--datasets", "credit-g", "--attacks", "label_flip",
                                       "--out", "benchmarks/results/scoring_threshold_quick.json"]),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke sizes: minutes instead of an hour")
    ap.add_argument("--only", nargs="*", help="module names to run, e.g. bench_ledger eval_adbench")
    args = ap.parse_args(argv)
    failed = []
    for module, full, quick in _RUNS:
        if args.only and module.rsplit(".", 1)[-1] not in args.only:
            continue
        cmd = [sys.executable, "-m", module, *(quick if args.quick else full)]
        print(f"== {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        code = subprocess.call(cmd)
        print(f"   exit {code} after {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        if code != 0:
            failed.append(module)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
