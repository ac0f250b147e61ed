"""Contract validation speed and memory: trainguard (vectorised / GX per chunk / streamed) vs plain GX.

One command, results in benchmarks/results/contract.json:

    nice -n 10 .venv/bin/python benchmarks/bench_contract.py            # full: 1M x 50, columns 100..1000
    .venv/bin/python benchmarks/bench_contract.py --rows 100000 --quick  # smaller, for a smoke run

Each measurement runs in its own subprocess so its peak RSS (``VmHWM``) is its own; ``rss_before_mb`` is
the RSS once the batch is in memory, so ``peak - before`` is what validation itself added. ``stream`` reads the
batch from Parquet one 100k-row row group at a time through ``validate_chunks`` and never holds the whole batch.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "contract.json"


def make_frame(rows: int, cols: int, seed: int) -> pd.DataFrame:
    """60% float, 20% int, 20% low-cardinality string columns; 0.1% of rows corrupted in a few columns."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for j in range(cols):
        kind = j % 5
        if kind < 3:
            data[f"f{j}"] = rng.normal(j, 1 + j % 7, rows)
        elif kind == 3:
            data[f"i{j}"] = rng.integers(0, 1000, rows)
        else:
            data[f"s{j}"] = pd.Categorical.from_codes(rng.integers(0, 8, rows), [f"cat_{k}" for k in range(8)]).astype(str)
    return pd.DataFrame(data)


def corrupt(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(frame), max(1, len(frame) // 1000), replace=False)
    cols = list(frame.columns)
    for k, r in enumerate(rows):
        c = cols[k % len(cols)]
        if c.startswith("s"):
            frame.loc[r, c] = "unseen"
        else:
            frame.loc[r, c] = 1e12 if k % 2 else np.nan
    return frame


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    """VmHWM: this process's peak RSS (ru_maxrss would include the parent's RSS at fork, kept across exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(mode: str, rows: int, cols: int, ref_rows: int, chunk_rows: int, parquet: str | None) -> dict[str, Any]:
    """Run one measurement in this process (called in a subprocess)."""
    from checks.contract import infer_contract, validate, validate_chunks
    from checks.contract._suite import _batch_definition, _silenced

    contract = infer_contract(make_frame(ref_rows, cols, seed=1))
    _batch_definition()
    n_exp = len(contract.to_expectation_suite().expectations)
    batch = None if mode == "stream" else corrupt(make_frame(rows, cols, seed=2), seed=3)
    before = _rss_mb()
    t0 = time.perf_counter()
    if mode == "auto" or mode == "gx":
        res = validate(batch, contract, engine=mode, chunk_rows=chunk_rows)  # type: ignore[arg-type]
        failures = len(res.failures)
    elif mode == "stream":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(parquet)  # type: ignore[arg-type]

        def chunks():  # type: ignore[no-untyped-def]
            # one row group at a time: iter_batches() pre-buffers and kept growing (~30 MB per 100k rows here)
            offset = 0
            for i in range(pf.num_row_groups):
                part = pf.read_row_group(i).to_pandas()
                yield offset, part
                offset += len(part)

        failures = len(validate_chunks(chunks(), contract).failures)
    elif mode == "plain_gx":
        suite = contract.to_expectation_suite()
        with _silenced():
            b = _batch_definition().get_batch(batch_parameters={"dataframe": batch})
            r = b.validate(suite, result_format={"result_format": "COMPLETE"})
        failures = sum(len((x.result or {}).get("unexpected_index_list") or []) for x in r.results)
    else:
        raise SystemExit(f"unknown mode {mode}")
    wall = time.perf_counter() - t0
    return {"mode": mode, "rows": rows, "cols": cols, "expectations": n_exp, "chunk_rows": chunk_rows,
            "wall_s": round(wall, 2), "rss_before_mb": round(before, 1), "peak_rss_mb": round(_peak_mb(), 1),
            "added_mb": round(_peak_mb() - before, 1), "failure_rows": int(failures)}


def _sub(mode: str, rows: int, cols: int, ref_rows: int, chunk_rows: int, parquet: str | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", mode, "--rows", str(rows), "--cols", str(cols),
           "--ref-rows", str(ref_rows), "--chunk-rows", str(chunk_rows)] + (["--parquet", parquet] if parquet else [])
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if out.returncode != 0:
        return {"mode": mode, "rows": rows, "cols": cols, "error": out.stderr.strip().splitlines()[-1:]}
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(res), file=sys.stderr, flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cols", type=int, default=50)
    ap.add_argument("--ref-rows", type=int, default=100_000)
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--wide-rows", type=int, default=10_000)
    ap.add_argument("--wide-cols", default="100,250,500,1000")
    ap.add_argument("--quick", action="store_true", help="skip the GX-per-chunk wide runs above 250 columns")
    ap.add_argument("--one")
    ap.add_argument("--parquet")
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one, a.rows, a.cols, a.ref_rows, a.chunk_rows, a.parquet)))
        return
    load = os.getloadavg()
    results: dict[str, Any] = {"load_avg_start": [round(x, 2) for x in load], "cpu_count": os.cpu_count(),
                               "command": " ".join(["benchmarks/bench_contract.py"] + sys.argv[1:]), "large": [],
                               "wide": []}
    with tempfile.TemporaryDirectory() as tmp:
        pq_path = str(Path(tmp) / "batch.parquet")
        corrupt(make_frame(a.rows, a.cols, seed=2), seed=3).to_parquet(pq_path, row_group_size=a.chunk_rows)
        for mode in ("auto", "stream", "gx", "plain_gx"):
            results["large"].append(_sub(mode, a.rows, a.cols, a.ref_rows, a.chunk_rows, pq_path))
        # bounded memory: streaming a batch 4x smaller must peak at about the same RSS
        small = str(Path(tmp) / "small.parquet")
        corrupt(make_frame(a.rows // 4, a.cols, seed=2), seed=3).to_parquet(small, row_group_size=a.chunk_rows)
        results["large"].append(_sub("stream", a.rows // 4, a.cols, a.ref_rows, a.chunk_rows, small))
    for cols in [int(c) for c in a.wide_cols.split(",")]:
        modes = ["auto", "gx", "plain_gx"] if not a.quick or cols <= 250 else ["auto"]
        for mode in modes:
            results["wide"].append(_sub(mode, a.wide_rows, cols, a.wide_rows, a.wide_rows, None))
    results["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
