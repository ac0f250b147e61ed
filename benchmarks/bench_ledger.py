"""Ledger speed with the verifiable index: durable appends/s (SQLite, PostgreSQL; 1 and 8 writers; on an empty
ledger and on one already holding 100k entries), full verification (map rebuild included) at 1M entries on SQLite
and 100k on both backends, and the gate's lookup (``gate.judge``: map proof + every entry naming the digest
inclusion-proved + witness check) at 1M entries. Writes benchmarks/results/ledger.json unless ``--out`` says where.

Run:  nice -n 10 .venv/bin/python -m benchmarks.bench_ledger --only appends --out benchmarks/results/ledger_appends.json
      nice -n 10 .venv/bin/python -m benchmarks.bench_ledger --only verify --profile \\
          --out benchmarks/results/ledger_verify.json
      nice -n 10 .venv/bin/python -m benchmarks.bench_ledger --only lookup --out benchmarks/results/ledger_gate_lookup.json
      .venv/bin/python -m benchmarks.bench_ledger --quick       (small sizes, a smoke test; ledger_quick.json)

The 100k and 1M ledgers are built with a bulk-load path (entries chained, Merkle nodes, the index's map nodes and
values and the signed checkpoints computed in memory, rows inserted in batches) because appending a million
entries one by one would take far too long; the timed appends, verification and lookups are the real ``Ledger``
code paths. Every entry names 3 digests (batch, clean, quarantine), and entry i's clean and quarantine digests are
entries i+1's and i+2's batch and clean ones, so a digest present in the ledger is named by up to 3 entries. The
digests are SHA-256 outputs (uniform keys): the map's depth is then about log2(digests), as for real data.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import inspect
import json
import multiprocessing as mp
import os
import pstats
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provenance import index, vmap
from provenance.checkpoint_note import checkpoint_note
from provenance.entries import make_statement, subject_digests
from provenance.gate import judge
from provenance.hashing import canonical_json
from provenance.ledger import Ledger, open_ledger
from provenance.merkle import Frontier
from provenance.signing import generate_private_key, load_private_key, sign_checkpoint, write_private_key

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESULTS = RESULTS_DIR / "ledger.json"
QUICK_RESULTS = RESULTS_DIR / "ledger_quick.json"
PG_URL = os.environ.get("TRAINGUARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PARTS = ("appends", "verify", "lookup")
#: offsets of the statements appended by the timed writers: never the digests of a bulk-loaded entry
_ONE_WRITER_BASE = 10**8
_WRITER_BASE = 10**6


def _digest(j: int) -> str:
    """The j-th benchmark digest: a SHA-256 output, so map keys are spread as real digests are."""
    return "sha256:" + hashlib.sha256(b"trainguard-bench:%d" % j).hexdigest()


def _statement(i: int) -> dict[str, Any]:
    """A realistic ingestion entry (~1 kB) naming 3 digests: i, i+1 and i+2 (see the module docstring)."""
    return make_statement(
        subjects=[(f"batch-{i}.csv", _digest(i)), ("clean.parquet", _digest(i + 1)),
                  ("quarantine.parquet", _digest(i + 2))],
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


def _naming(j: int, n: int) -> list[int]:
    """Indices of the bulk-loaded entries (of ``n``) that name ``_digest(j)``."""
    return [i for i in (j - 2, j - 1, j) if 0 <= i < n]


def _load(load: list[float]) -> list[float]:
    return [round(x, 2) for x in os.getloadavg()] if not load else load


def _ms(xs: list[float], q: float | None = None) -> float:
    """Median (``q`` None) or the ``q`` quantile of ``xs`` (seconds) in ms."""
    if q is None:
        return round(1000 * statistics.median(xs), 3)
    return round(1000 * sorted(xs)[int(q * (len(xs) - 1))], 3)


def _summary(wall: list[float], cpu: list[float]) -> dict[str, Any]:
    return {"calls": len(wall), "ms_median": _ms(wall), "ms_p90": _ms(wall, 0.9), "ms_p99": _ms(wall, 0.99),
            "ms_max": _ms(wall, 1.0), "ms_mean": round(1000 * statistics.fmean(wall), 3),
            "cpu_ms_median": _ms(cpu), "cpu_ms_p99": _ms(cpu, 0.99)}


def _profile(fn: Callable[[], Any], top: int = 25) -> dict[str, Any]:
    """Run ``fn`` under cProfile: its wall time there and the ``top`` functions by own time and by cumulative
    time, as ``file:line(function)`` with calls, own seconds and cumulative seconds."""
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    fn()
    prof.disable()
    wall = time.perf_counter() - t
    st = pstats.Stats(prof)
    rows = st.stats  # type: ignore[attr-defined]  # {(file, line, name): (cc, nc, tt, ct, callers)}

    def fmt(key: tuple[str, int, str]) -> dict[str, Any]:
        _cc, nc, tt, ct, _callers = rows[key]
        where = f"{Path(key[0]).name}:{key[1]}({key[2]})" if key[0] != "~" else key[2]
        return {"function": where, "calls": nc, "own_s": round(tt, 3), "cumulative_s": round(ct, 3)}

    total = sum(v[2] for v in rows.values())
    return {
        "profiled_wall_s": round(wall, 2), "profiled_own_s_total": round(total, 2),
        "by_own_time": [fmt(k) for k in sorted(rows, key=lambda k: -rows[k][2])[:top]],
        "by_cumulative_time": [fmt(k) for k in sorted(rows, key=lambda k: -rows[k][3])[:top]],
    }


# --- bulk load ---------------------------------------------------------------------------------------------------
def bulk_load(led: Ledger, n: int, key: Any, *, every_size: bool, batch: int = 20_000) -> dict[str, Any]:
    """Build a valid ledger of ``n`` entries fast: the entry bytes, Merkle nodes, subject rows, map nodes and map
    values that ``n`` appends would leave. ``every_size``: a signed checkpoint (and its C2SP note) for every tree
    size, each with the map root at that size (the map is then also grown in memory by the appends' own
    ``vmap.Updater`` and checked against ``vmap.build``); otherwise only the final checkpoint and note are stored,
    which is all an append, a lookup or a default ``verify`` reads."""
    origin = led.origin
    store = led.store
    frontier = Frontier()
    previous: str | None = None
    values: dict[bytes, list[vmap.Ref]] = {}
    up = vmap.Updater(lambda ids: {}, lambda key: None) if every_size else None
    t = time.perf_counter()
    for lo in range(0, n, batch):
        entries: list[tuple[int, bytes, str, str, str]] = []
        nodes: list[tuple[int, bytes]] = []
        subjects: list[tuple[str, int]] = []
        cps: list[tuple[int, bytes]] = []
        notes: list[tuple[int, str]] = []
        for i in range(lo, min(n, lo + batch)):
            st = _statement(i)
            st["predicate"]["previous"] = previous
            body = canonical_json(st)
            created = frontier.push(hashlib.sha256(b"\x00" + body).digest())
            leaf = created[0][1]
            previous = leaf.hex()
            p = st["predicate"]
            entries.append((i, body, p["source"]["name"], p["verdict"], p["time"]))
            nodes.extend(created)
            digests = subject_digests(st)
            subjects.extend((d, i) for d in digests)
            for d in digests:
                k = index.map_key(d)
                values.setdefault(k, []).append((i, leaf))
                if up is not None:
                    up.add(k, (i, leaf))
            if up is not None:
                cp = sign_checkpoint(key, origin=origin, tree_size=i + 1, root_hash=frontier.root().hex(),
                                     map_root=up.root().hex())
                cps.append((i + 1, canonical_json(cp)))
                notes.append((i + 1, checkpoint_note(cp, key)))
        with store.write():
            store.insert(entries, nodes, subjects, cps)
            for size, note in notes:
                store.put_note(size, note)
    log_s = time.perf_counter() - t
    t = time.perf_counter()
    root, map_nodes = vmap.build(values)
    if up is not None:  # the appends' incremental update and the whole-map build agree, node for node
        assert root == up.root(), "vmap.Updater and vmap.build disagree on the map root"
        assert {i: nd for i, nd in up.nodes.items() if nd is not None} == map_nodes, "map nodes disagree"
        del up
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    n_nodes, n_keys = len(map_nodes), len(values)
    with store.write():  # in key order: B-tree inserts at the end of the tables
        store.write_map(dict(sorted(map_nodes.items())), dict(sorted(values.items())))
        if not every_size:
            cp = sign_checkpoint(key, origin=origin, tree_size=n, root_hash=frontier.root().hex(),
                                 map_root=root.hex())
            store.insert([], [], [], [(n, canonical_json(cp))])
            store.put_note(n, checkpoint_note(cp, key))
    del map_nodes, values
    gc.collect()
    return {"entries": n, "map_keys": n_keys, "map_nodes": n_nodes, "checkpoints": n if every_size else 1,
            "log_rows_s": round(log_s, 1), "map_build_s": round(build_s, 1),
            "map_write_s": round(time.perf_counter() - t, 1)}


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


def bench_appends(url: str, key_path: str, n_single: int, n_each: int, writers: int, *, preload: int = 0,
                  profile: bool = False) -> dict[str, Any]:
    """Durable appends (each: hash chain, Merkle nodes, map path re-verified and rewritten, two signatures, one
    commit, the witness file) by one writer, then by ``writers`` processes at once, on a ledger holding
    ``preload`` bulk-loaded entries (or one entry); ``profile``: then 500 more one-writer appends under cProfile."""
    led = open_ledger(url, signing_key=key_path)
    out: dict[str, Any] = {"entries_before": max(preload, 1)}
    if preload:
        out["bulk_load"] = bulk_load(led, preload, load_private_key(key_path), every_size=False)
    else:
        led.append(_statement(10**9))
    stmts = [_statement(_ONE_WRITER_BASE + j) for j in range(n_single)]
    load = _load([])
    t, c = time.perf_counter(), time.process_time()
    for st in stmts:
        led.append(st)
    single, single_cpu = time.perf_counter() - t, time.process_time() - c
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_appender, args=(url, key_path, _WRITER_BASE * (w + 1), n_each, q))
             for w in range(writers)]
    t = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    wall = time.perf_counter() - t
    assert all(p.exitcode == 0 for p in procs), "a writer process failed"
    t = time.perf_counter()
    report = led.verify()
    verify_s = time.perf_counter() - t
    total = max(preload, 1) + n_single + writers * n_each
    assert report.tree_size == total, (report.tree_size, total)
    if profile:  # untimed: cProfile slows Python code down
        more = [_statement(2 * _ONE_WRITER_BASE + j) for j in range(500)]
        out["profile_500_appends"] = _profile(lambda: [led.append(st) for st in more])
    led.close()
    out.update({
        "one_writer_appends": n_single, "one_writer_appends_per_s": round(n_single / single, 1),
        "one_writer_cpu_ms_per_append": round(1000 * single_cpu / n_single, 3),
        "concurrent_writers": writers, "concurrent_appends": writers * n_each,
        "concurrent_appends_per_s": round(writers * n_each / wall, 1),
        "entries_after": total, "verify_after_s": round(verify_s, 2), "load_avg": load, "load_avg_end": _load([]),
    })
    return out


# --- verification ------------------------------------------------------------------------------------------------
def bench_verify(url: str, key_path: str, n: int, *, every_size: bool, profile: bool) -> dict[str, Any]:
    """``Ledger.verify()`` (leaves, chain, nodes, index columns, map rebuilt and compared with the signed and the
    stored map root) on ``n`` entries; with ``every_size`` also ``verify(all_signatures=True)``."""
    led = open_ledger(url, signing_key=key_path)
    t = time.perf_counter()
    build = bulk_load(led, n, load_private_key(key_path), every_size=every_size)
    build["total_s"] = round(time.perf_counter() - t, 1)
    load = _load([])
    t, c = time.perf_counter(), time.process_time()
    report = led.verify()
    default, default_cpu = time.perf_counter() - t, time.process_time() - c
    assert report.tree_size == n
    out: dict[str, Any] = {
        "entries": n, "bulk_load": build,
        "verify_s": round(default, 2), "verify_entries_per_s": round(n / default),
        "verify_cpu_s": round(default_cpu, 2), "verify_entries_per_cpu_s": round(n / default_cpu),
    }
    if every_size:
        t, c = time.perf_counter(), time.process_time()
        report = led.verify(all_signatures=True)
        full, full_cpu = time.perf_counter() - t, time.process_time() - c
        assert report.checkpoints_checked == n and report.signatures_checked == n + 1
        out.update({"verify_all_signatures_s": round(full, 2), "verify_all_signatures_entries_per_s": round(n / full),
                    "verify_all_signatures_entries_per_cpu_s": round(n / full_cpu)})
    if profile:  # a separate, untimed run: cProfile slows Python code down (about 1.5-2x)
        # the map rebuild alone, as verify does it (values collected from the entries, then vmap.build)
        values: dict[bytes, list[vmap.Ref]] = {}
        with led.store.read():
            for idx, body in led.store.iter_entries():
                leaf = hashlib.sha256(b"\x00" + body).digest()
                for d in subject_digests(json.loads(body)):
                    values.setdefault(index.map_key(d), []).append((idx, leaf))
        gc.collect()
        t = time.perf_counter()
        vmap.build(values, nodes=False)
        out["map_build_alone_s"] = round(time.perf_counter() - t, 2)
        del values
        gc.collect()
        out["profile"] = _profile(led.verify)
    out.update({"load_avg": load, "load_avg_end": _load([])})
    led.close()
    return out


# --- the gate's lookup -------------------------------------------------------------------------------------------
def bench_lookup(url: str, key_path: str, n: int, samples: int, absent: int, *, profile: bool = False
                 ) -> dict[str, Any]:
    """``gate.judge`` (the gate's whole answer once the file is hashed: signed checkpoint, witness, map proof,
    every entry naming the digest inclusion-proved, the rule), ``Ledger.history`` alone and ``Ledger.prove`` (the
    proof document) for ``samples`` random digests the ledger names and ``absent`` it does not."""
    led = open_ledger(url, signing_key=key_path)
    t = time.perf_counter()
    build = bulk_load(led, n, load_private_key(key_path), every_size=False)
    build["total_s"] = round(time.perf_counter() - t, 1)
    rng = random.Random(0)
    items: list[tuple[str, int | None]] = [(_digest(j), j) for j in (rng.randrange(n + 2) for _ in range(samples))]
    items += [(_digest(n + 10 + j), None) for j in range(absent)]
    rng.shuffle(items)
    for _ in range(50):  # warm up: imports, statement caches, the witness file
        judge(led, _digest(rng.randrange(n)), label="x")
    with_proof = "with_proof" in inspect.signature(judge).parameters  # the CLI gate's call, where it exists

    def expect(j: int | None) -> tuple[list[int], bool]:
        idx = [] if j is None else _naming(j, n)
        return idx, bool(idx) and all(i % 5 for i in idx)  # refusals stick: one rejection refuses the bytes

    depths: list[int] = []
    entries_named: list[int] = []

    def history(d: str, j: int | None) -> None:
        h = led.history(d)
        got = [r.index for r in h.records]
        assert got == expect(j)[0], (d, got, expect(j)[0])
        assert h.map_proof is not None
        depths.append(len(h.map_proof.siblings))
        entries_named.append(len(got))

    def gate(d: str, j: int | None) -> None:
        decision = judge(led, d, label="x")
        assert decision.approved == expect(j)[1], (d, decision.code)

    def gate_with_proof(d: str, j: int | None) -> None:
        decision, _doc = judge(led, d, label="x", with_proof=True)  # type: ignore[call-overload, unused-ignore]
        assert decision.approved == expect(j)[1], (d, decision.code)

    def prove(d: str, j: int | None) -> None:
        doc = led.prove(d)
        assert doc["leaf_index"] in expect(j)[0]

    calls: dict[str, Callable[[str, int | None], None]] = {"judge": gate, "history": history}
    if with_proof:
        calls["judge_with_proof"] = gate_with_proof
    calls["prove"] = prove  # present digests only (an absent one has no proof document)
    names = list(calls)
    wall: dict[tuple[str, bool], list[float]] = {(m, p): [] for m in names for p in (True, False)}
    cpu: dict[tuple[str, bool], list[float]] = {(m, p): [] for m in names for p in (True, False)}
    load = _load([])
    gc.collect()
    # each digest through every call, the order rotating, so a change of load on the machine hits all alike
    for k, (d, j) in enumerate(items):
        for m in names[k % len(names):] + names[:k % len(names)]:
            if m == "prove" and j is None:
                continue
            t, c = time.perf_counter(), time.process_time()
            calls[m](d, j)
            wall[m, j is not None].append(time.perf_counter() - t)
            cpu[m, j is not None].append(time.process_time() - c)
    out: dict[str, Any] = {"entries": n, "bulk_load": build, "present_digests": samples, "absent_digests": absent}
    for m in names:
        res = {"all": _summary(wall[m, True] + wall[m, False], cpu[m, True] + cpu[m, False]),
               "present": _summary(wall[m, True], cpu[m, True])}
        if wall[m, False]:
            res["absent"] = _summary(wall[m, False], cpu[m, False])
        out[m] = res
    out["map_proof_depth"] = {"median": statistics.median(depths), "max": max(depths)}
    out["entries_per_present_digest_mean"] = round(statistics.fmean(
        [e for e, (_d, j) in zip(entries_named, items, strict=True) if j is not None]), 2)
    out.update({"load_avg": load, "load_avg_end": _load([])})
    if profile:  # untimed: cProfile slows Python code down
        out["profile_500_judge"] = _profile(lambda: [judge(led, d, label="x") for d, _j in items[:500]])
    led.close()
    return out


# --- driver ------------------------------------------------------------------------------------------------------
def code_version() -> dict[str, Any]:
    """The commit measured, and the files of ``provenance/`` changed from it in the work tree at the time."""
    import subprocess

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], capture_output=True, text=True, check=False,
                                  cwd=Path(__file__).resolve().parent).stdout.strip()
        except OSError:
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--", "../provenance").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD") or None, "provenance_uncommitted": changed}


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


def _pg_drop(schema: str) -> None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')
    except Exception:  # noqa: BLE001
        pass


_PG_SCHEMAS = ("tg_bench_appends", "tg_bench_appends_100k", "tg_bench_verify")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"results file (default {RESULTS.name}; with --quick {QUICK_RESULTS.name})")
    ap.add_argument("--only", default=",".join(PARTS),
                    help="comma list of parts to (re)run: appends, verify, lookup (alias: proofs); results merge "
                    "into --out")
    ap.add_argument("--entries", type=int, default=None,
                    help="size of the big SQLite ledgers of verify and lookup (default 1,000,000; --quick 20,000)")
    ap.add_argument("--preload", type=int, default=None,
                    help="entries already in the ledger for the second append run (default 100,000; --quick 5,000)")
    ap.add_argument("--samples", type=int, default=None, help="present digests looked up (default 2000)")
    ap.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL rows")
    ap.add_argument("--profile", action="store_true",
                    help="also cProfile (untimed runs) 500 appends to the preloaded SQLite ledger, the big verify "
                    "and 500 gate lookups")
    args = ap.parse_args(argv)
    q = args.quick
    out_path: Path = args.out or (QUICK_RESULTS if q else RESULTS)
    parts = {"lookup" if p == "proofs" else p for p in args.only.split(",") if p}
    unknown = parts - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    big = args.entries or (20_000 if q else 1_000_000)
    preload = args.preload if args.preload is not None else (5_000 if q else 100_000)
    samples = args.samples or (200 if q else 2000)
    results: dict[str, Any] = json.loads(out_path.read_text()) if out_path.is_file() and not q else {}
    results.pop("goals", None)
    command = ["nice -n 10 .venv/bin/python -m benchmarks.bench_ledger"] + (["--quick"] if q else [])
    if args.only != ",".join(PARTS):
        command.append(f"--only {args.only}")
    for flag, value in (("--entries", args.entries), ("--preload", args.preload), ("--samples", args.samples)):
        if value is not None:
            command.append(f"{flag} {value}")
    command += (["--no-postgres"] if args.no_postgres else []) + (["--profile"] if args.profile else [])
    if args.out is not None:
        command.append(f"--out {args.out}")
    results.update({"command": " ".join(command), "cpus": os.cpu_count(), "load_avg_start": _load([]),
                    "witness": "TRAINGUARD_WITNESS in the run's temporary directory"})
    results.update(code_version())
    with tempfile.TemporaryDirectory(dir=os.environ.get("TRAINGUARD_BENCH_DIR")) as tmp:
        os.environ["TRAINGUARD_WITNESS"] = str(Path(tmp) / "witness")  # not the user's own witness
        key = str(write_private_key(generate_private_key(), Path(tmp) / "bench.key"))
        use_pg = not args.no_postgres

        def pg(schema: str) -> str | None:
            return _pg_fresh(schema) if use_pg else None

        if "appends" in parts:
            n1, ne = (300, 25) if q else (3000, 250)
            results["sqlite_appends"] = bench_appends(f"sqlite:///{tmp}/a.db", key, n1, ne, 8)
            results["sqlite_appends"]["bare_sqlite_durable_commits_per_s"] = bare_sqlite_commits(
                f"{tmp}/bare.db", n1)
            print("sqlite appends", results["sqlite_appends"], flush=True)
            results["sqlite_appends_on_preloaded"] = bench_appends(f"sqlite:///{tmp}/a100k.db", key, n1, ne, 8,
                                                                   preload=preload, profile=args.profile)
            print("sqlite appends on a preloaded ledger", {k: v for k, v in results["sqlite_appends_on_preloaded"].items()
                                                           if not k.startswith("profile")}, flush=True)
            p1, pe = (200, 25) if q else (2000, 125)
            url = pg("tg_bench_appends")
            results["postgres_appends"] = bench_appends(url, key, p1, pe, 8) if url else "skipped: no PostgreSQL"
            print("postgres appends", results["postgres_appends"], flush=True)
            url = pg("tg_bench_appends_100k")
            results["postgres_appends_on_preloaded"] = (
                bench_appends(url, key, p1, pe, 8, preload=preload) if url else "skipped: no PostgreSQL")
            print("postgres appends on a preloaded ledger", results["postgres_appends_on_preloaded"], flush=True)
        if "verify" in parts:
            results["sqlite_verify_big"] = bench_verify(f"sqlite:///{tmp}/v.db", key, big, every_size=False,
                                                        profile=args.profile)
            print("sqlite verify (big)", {k: v for k, v in results["sqlite_verify_big"].items() if k != "profile"},
                  flush=True)
            os.unlink(f"{tmp}/v.db")
            small = 2_000 if q else 100_000
            results["sqlite_verify"] = bench_verify(f"sqlite:///{tmp}/v100k.db", key, small, every_size=True,
                                                    profile=False)
            print("sqlite verify", results["sqlite_verify"], flush=True)
            url = pg("tg_bench_verify")
            results["postgres_verify"] = (bench_verify(url, key, small, every_size=True, profile=False) if url
                                          else "skipped: no PostgreSQL")
            print("postgres verify", results["postgres_verify"], flush=True)
        if "lookup" in parts:
            results["sqlite_gate_lookup"] = bench_lookup(f"sqlite:///{tmp}/p.db", key, big, samples, samples // 10,
                                                         profile=args.profile)
            print("gate lookup", {k: v for k, v in results["sqlite_gate_lookup"].items() if not k.startswith("profile")},
                  flush=True)
        for schema in _PG_SCHEMAS:
            _pg_drop(schema)
    results["load_avg_end"] = _load([])
    results["goals"] = _goals(results)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["goals"], indent=2))
    print(f"wrote {out_path}")


def _goals(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals, for the parts in ``results``: True / False each."""
    goals: dict[str, Any] = {}
    for name in ("sqlite_appends", "sqlite_appends_on_preloaded"):
        r = results.get(name)
        if isinstance(r, dict):
            goals[f"{name}: one writer >= 1000/s"] = r["one_writer_appends_per_s"] >= 1000
            goals[f"{name}: 8 writers >= 1000/s"] = r["concurrent_appends_per_s"] >= 1000
    r = results.get("sqlite_verify_big")
    if isinstance(r, dict):
        goals[f"verify >= 50000 entries/s at {r['entries']:,} (SQLite)"] = r["verify_entries_per_s"] >= 50_000
    r = results.get("sqlite_gate_lookup")
    if isinstance(r, dict):
        goals[f"gate judge p99 <= 5 ms at {r['entries']:,}"] = r["judge"]["all"]["ms_p99"] <= 5
    return goals


if __name__ == "__main__":
    main()
