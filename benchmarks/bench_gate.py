"""``trainguard gate`` against ``sha256sum`` on a 1 GB file. Writes benchmarks/results/ledger_gate.json.

Run:  nice -n 10 .venv/bin/python -m benchmarks.bench_gate            (about a minute; needs 1 GB of disk)
      .venv/bin/python -m benchmarks.bench_gate --size-mb 64          (smoke test)

Both commands run as fresh processes on a file already in the page cache, alternately, best of ``--repeats``;
the gate's time includes Python start-up, ledger lookup, checkpoint signature and inclusion proof.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance.entries import make_statement
from provenance.hashing import file_digest
from provenance.ledger import open_ledger

RESULTS = Path(__file__).resolve().parent / "results" / "ledger_gate.json"


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({done.returncode}): {done.stderr.decode()[-300:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    sha256sum = shutil.which("sha256sum")
    if sha256sum is None:
        raise SystemExit("sha256sum not found")
    exe = Path(sys.executable).parent / "trainguard"
    gate = [str(exe)] if exe.exists() else [sys.executable, "-m", "pipelines.cli"]
    with tempfile.TemporaryDirectory(dir=os.environ.get("TRAINGUARD_BENCH_DIR")) as tmp:
        data = Path(tmp) / "data.bin"
        block = os.urandom(1 << 24)
        with open(data, "wb") as fh:
            for i in range(args.size_mb // 16):
                fh.write(block[i % 251 :] + block[: i % 251])
        url = f"sqlite:///{tmp}/ledger.db"
        with open_ledger(url) as led:
            led.append(make_statement(subjects=[("data.bin", file_digest(data))],
                                      predicate={"verdict": "approved", "source": {"name": "bench"}}))
        env = {**os.environ, "TRAINGUARD_LEDGER": url}
        _time([sha256sum, str(data)], env)  # warm the page cache
        load = [round(x, 2) for x in os.getloadavg()]
        openssl = shutil.which("openssl")
        sums, gates, ossl = [], [], []
        for _ in range(args.repeats):
            sums.append(_time([sha256sum, str(data)], env))
            gates.append(_time([*gate, "gate", str(data)], env))
            if openssl:  # the same SHA-256 code hashlib uses: the fair floor for any tool on this CPU
                ossl.append(_time([openssl, "dgst", "-sha256", str(data)], env))
        tiny = Path(tmp) / "tiny.bin"
        tiny.write_bytes(b"x")
        with open_ledger(url) as led:
            led.append(make_statement(subjects=[("tiny.bin", file_digest(tiny))], predicate={"verdict": "approved"}))
        overhead = min(_time([*gate, "gate", str(tiny)], env) for _ in range(args.repeats))
    result = {
        "command": "nice -n 10 .venv/bin/python -m benchmarks.bench_gate"
        + (f" --size-mb {args.size_mb}" if args.size_mb != 1024 else "")
        + (f" --repeats {args.repeats}" if args.repeats != 5 else ""),
        "file_mb": args.size_mb, "repeats": args.repeats,
        "sha256sum_s_best": round(min(sums), 3), "gate_s_best": round(min(gates), 3),
        "ratio_best": round(min(gates) / min(sums), 3),
        "sha256sum_s_all": [round(x, 3) for x in sums], "gate_s_all": [round(x, 3) for x in gates],
        "openssl_dgst_s_best": round(min(ossl), 3) if ossl else None,
        "gate_vs_openssl_ratio_best": round(min(gates) / min(ossl), 3) if ossl else None,
        "gate_on_1_byte_file_s": round(overhead, 3),
        "load_avg": load, "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "goal_ratio<=1.1": min(gates) / min(sums) <= 1.1,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
