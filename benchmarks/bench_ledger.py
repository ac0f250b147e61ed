"""Ledger speed: durable appends/s (SQLite, PostgreSQL; 1 and 8 writers), full verification at 100k entries,
proof generation and verification at 1M entries. Writes benchmarks/results/ledger.json.

Run:  nice -n 10 .venv/bin/python -m benchmarks.bench_ledger            (about 3-5 minutes)
      .venv/bin/python -m benchmarks.bench_ledger --quick               (smaller sizes, a smoke test)

The 100k and 1M ledgers are built with a bulk-load path (entries chained, Merkle nodes and checkpoints computed in
memory, rows inserted in batches) because appending a million entries one by one would take ~10 minutes; the
timed verification, lookup and proof calls are the real ``Ledger`` code paths.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from provenance.entries import make_statement
from provenance.hashing import canonical_json
from provenance.ledger import Ledger, open_ledger
from provenance.merkle import Frontier, verify_inclusion
from provenance.signing import TrustedKeys, generate_private_key, sign_checkpoint, write_private_key

RESULTS = Path(__file__).resolve().parent / "results" / "ledger.json"
PG_URL = os.environ.get("TRAINGUARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _statement(i: int) -> dict[str, Any]:
    """A realistic ingestion entry (~900 bytes)."""
    return make_statement(
        subjects=[(f"batch-{i}.csv", "sha256:" + f"{i:064x}"), ("clean.parquet", "sha256:" + f"{i + 1:064x}"),
                  ("quarantine.parquet", "sha256:" + f"{i + 2:064x}")],
        predicate={
            "verdict": "approved" if i % 5 else "rejected",
            "source": {"name": f"vendor-{i % 7}", "uri": f"s3://bucket/vendor/batch-{i}.csv"},
            "run_id": f"run-{i}", "config_digest": "sha256:" + "c" * 64, "contract_digest": "sha256:" + "d" * 64,
            "reference_digest": "sha256:" + "e" * 64,
            "detectors": [{"name": "iforest", "version": "pyod-3.6.7", "params": {"n_estimators": 100}},
                          {"name": "ecod", "version": "pyod-3.6.7", "params": {}}],
            "counts": {"rows": 10_000 + i, "flagged": i % 97, "quarantined": i % 13},
            "checks": {"contract": "passed", "drift": "passed"}, "reasons": [],
            "code_version": "0.1.0", "actor": "bench",
        },
    )


def _load(load: list[float]) -> list[float]:
    return [round(x, 2) for x in os.getloadavg()] if not load else load


# --- appends -----------------------------------------------------------------------------------------------------
def _appender(url: str, key: str, start: int, count: int, out: Any) -> None:
    led = open_ledger(url, signing_key=key)
    stmts = [_statement(start + j) for j in range(count)]
    t = time.perf_counter()
    for st in stmts:
        led.append(st)
    out.put(time.perf_counter() - t)
    led.close()


def bare_sqlite_commits(path: str, n: int) -> float:
    """The I/O floor: bare 900-byte inserts, one durable commit each, same pragmas as the ledger."""
    import sqlite3

    con = sqlite3.connect(path, isolation_level=None)
    con.execute("pragma journal_mode = wal")
    con.execute("pragma synchronous = full")
    con.execute("create table t (a integer primary key, b blob)")
    t = time.perf_counter()
    for i in range(n):
        con.execute("begin immediate")
        con.execute("insert into t values (?, ?)", (i, b"x" * 900))
        con.execute("commit")
    elapsed = time.perf_counter() - t
    con.close()
    return round(n / elapsed, 1)


def bench_appends(url: str, key: str, n_single: int, n_each: int, writers: int) -> dict[str, Any]:
    led = open_ledger(url, signing_key=key)
    led.append(_statement(10**9))
    stmts = [_statement(j) for j in range(n_single)]
    t, c = time.perf_counter(), time.process_time()
    for st in stmts:
        led.append(st)
    single, single_cpu = time.perf_counter() - t, time.process_time() - c
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_appender, args=(url, key, 10**6 * (w + 1), n_each, q)) for w in range(writers)]
    t = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    wall = time.perf_counter() - t
    led.verify()
    led.close()
    return {
        "one_writer_appends": n_single, "one_writer_appends_per_s": round(n_single / single, 1),
        "one_writer_cpu_ms_per_append": round(1000 * single_cpu / n_single, 3),
        "concurrent_writers": writers, "concurrent_appends": writers * n_each,
        "concurrent_appends_per_s": round(writers * n_each / wall, 1), "load_avg": _load([]),
    }


# --- bulk load ---------------------------------------------------------------------------------------------------
def bulk_load(led: Ledger, n: int, key: Any, *, checkpoint_every: int, batch: int = 20_000) -> None:
    """Build a valid ledger of ``n`` entries fast: same bytes, nodes and checkpoints as appends would produce."""
    origin = led.origin
    frontier = Frontier()
    previous: str | None = None
    store = led.store
    for lo in range(0, n, batch):
        entries, nodes, subjects, cps = [], [], [], []
        for i in range(lo, min(n, lo + batch)):
            st = _statement(i)
            st["predicate"]["previous"] = previous
            body = canonical_json(st)
            created = frontier.push(_leaf(body))
            previous = created[0][1].hex()
            p = st["predicate"]
            entries.append((i, body, p["source"]["name"], p["verdict"], p["time"]))
            nodes.extend(created)
            subjects.extend((f"sha256:{s['digest']['sha256']}", i) for s in st["subject"])
            if (i + 1) % checkpoint_every == 0 or i + 1 == n:
                cp = sign_checkpoint(key, origin=origin, tree_size=i + 1, root_hash=frontier.root().hex())
                cps.append((i + 1, canonical_json(cp)))
        with store.write():
            store.insert(entries, nodes, subjects, cps)


def _leaf(body: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(b"\x00" + body).digest()


def bench_verify(url: str, key_path: str, n: int) -> dict[str, Any]:
    from provenance.signing import load_private_key

    key = load_private_key(key_path)
    led = open_ledger(url, signing_key=key_path)
    t = time.perf_counter()
    bulk_load(led, n, key, checkpoint_every=1)  # a checkpoint per size, exactly as n appends leave it
    build = time.perf_counter() - t
    load = _load([])
    t, c = time.perf_counter(), time.process_time()
    report = led.verify()
    default, default_cpu = time.perf_counter() - t, time.process_time() - c
    assert report.tree_size == n
    t, c = time.perf_counter(), time.process_time()
    report = led.verify(all_signatures=True)
    full, full_cpu = time.perf_counter() - t, time.process_time() - c
    assert report.checkpoints_checked == n and report.signatures_checked == n + 1
    led.close()
    return {
        "entries": n, "bulk_build_s": round(build, 1),
        "verify_s": round(default, 2), "verify_entries_per_s": round(n / default),
        "verify_cpu_s": round(default_cpu, 2), "verify_entries_per_cpu_s": round(n / default_cpu),
        "verify_all_signatures_s": round(full, 2), "verify_all_signatures_entries_per_s": round(n / full),
        "verify_all_signatures_entries_per_cpu_s": round(n / full_cpu),
        "load_avg": load,
    }


def bench_proofs(url: str, key_path: str, n: int, samples: int) -> dict[str, Any]:
    from provenance.signing import load_private_key

    key = load_private_key(key_path)
    led = open_ledger(url, signing_key=key_path)
    t = time.perf_counter()
    bulk_load(led, n, key, checkpoint_every=n)
    build = time.perf_counter() - t
    load = _load([])
    rng = random.Random(0)
    gen, ver, gen_cpu = [], [], []
    trusted = TrustedKeys.of([key.public_key()])
    for _ in range(samples):
        i = rng.randrange(n)
        t, c = time.perf_counter(), time.process_time()
        proof = led.prove("sha256:" + f"{i:064x}")  # lookup + signed-checkpoint check + proof + self-check
        gen.append(time.perf_counter() - t)
        gen_cpu.append(time.process_time() - c)
        t = time.perf_counter()
        trusted.check_checkpoint(proof["checkpoint"])
        ok = verify_inclusion(proof["leaf_index"], proof["tree_size"], _leaf(proof["entry"].encode()),
                              [bytes.fromhex(h) for h in proof["inclusion_proof"]], bytes.fromhex(proof["root_hash"]))
        ver.append(time.perf_counter() - t)
        assert ok
    led.close()
    ms = lambda xs: round(1000 * statistics.median(xs), 3)  # noqa: E731
    p99 = lambda xs: round(1000 * sorted(xs)[int(0.99 * (len(xs) - 1))], 3)  # noqa: E731
    return {
        "entries": n, "bulk_build_s": round(build, 1), "samples": samples,
        "prove_ms_median": ms(gen), "prove_ms_p99": p99(gen), "prove_cpu_ms_median": ms(gen_cpu),
        "verify_ms_median": ms(ver), "verify_ms_p99": p99(ver), "load_avg": load,
    }


def _pg_fresh(schema: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')
            conn.execute(f'create schema "{schema}"')
    except Exception:  # noqa: BLE001 - no server: the PostgreSQL rows are skipped and say so
        return None
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--only", default="appends,verify,proofs",
                    help="comma list of parts to (re)run: appends, verify, proofs; results merge into --out")
    args = ap.parse_args()
    q = args.quick
    parts = set(args.only.split(","))
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() and not q else {}
    results.update({"command": "nice -n 10 .venv/bin/python -m benchmarks.bench_ledger" + (" --quick" * q),
                    "cpus": os.cpu_count(), "load_avg_start": _load([])})
    with tempfile.TemporaryDirectory(dir=os.environ.get("TRAINGUARD_BENCH_DIR")) as tmp:
        key = str(write_private_key(generate_private_key(), Path(tmp) / "bench.key"))
        pg = _pg_fresh("tg_bench_appends")
        if "appends" in parts:
            results["sqlite_appends"] = bench_appends(f"sqlite:///{tmp}/a.db", key, 300 if q else 3000,
                                                      25 if q else 250, 8)
            results["sqlite_appends"]["bare_sqlite_durable_commits_per_s"] = bare_sqlite_commits(
                f"{tmp}/bare.db", 300 if q else 3000)
            print("sqlite appends", results["sqlite_appends"], flush=True)
            results["postgres_appends"] = (
                bench_appends(pg, key, 200 if q else 2000, 25 if q else 125, 8) if pg else "skipped: no PostgreSQL"
            )
            print("postgres appends", results["postgres_appends"], flush=True)
        if "verify" in parts:
            results["sqlite_verify"] = bench_verify(f"sqlite:///{tmp}/v.db", key, 5_000 if q else 100_000)
            print("verify", results["sqlite_verify"], flush=True)
        if "proofs" in parts:
            results["sqlite_proofs"] = bench_proofs(f"sqlite:///{tmp}/p.db", key, 20_000 if q else 1_000_000, 200)
            print("proofs", results["sqlite_proofs"], flush=True)
        if not q and pg and "verify" in parts:
            pgv = _pg_fresh("tg_bench_verify")
            assert pgv is not None
            results["postgres_verify"] = bench_verify(pgv, key, 100_000)
            print("postgres verify", results["postgres_verify"], flush=True)
        for schema in ("tg_bench_appends", "tg_bench_verify"):
            _pg_drop(schema)
    results["load_avg_end"] = _load([])
    goals = {}  # the goals of the parts that ran (--only)
    if "sqlite_appends" in results:
        goals["sqlite_appends_per_s>=1000"] = results["sqlite_appends"]["one_writer_appends_per_s"] >= 1000
    if "sqlite_verify" in results:
        goals["verify_entries_per_s>=50000"] = results["sqlite_verify"]["verify_entries_per_s"] >= 50_000
    if "sqlite_proofs" in results:
        goals["prove_ms_median<=5_at_1M"] = (results["sqlite_proofs"]["prove_ms_median"] <= 5
                                             and results["sqlite_proofs"]["entries"] >= 1_000_000)
    results["goals"] = goals
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


def _pg_drop(schema: str) -> None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')
    except Exception:  # noqa: BLE001
        pass


if __name__ == "__main__":
    main()
