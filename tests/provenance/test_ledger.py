"""The ledger on both backends: append, lookup with proofs, verify, concurrent writers, a writer killed mid-append."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from provenance.errors import NotApprovedError, ProvenanceConfigError, ProvenanceInputError
from provenance.ledger import Ledger, open_ledger
from provenance.merkle import verify_consistency, verify_inclusion
from tests.provenance.conftest import digest, fill, statement


def test_append_chains_and_signs(ledger: Ledger) -> None:
    results = [ledger.append(statement(i)) for i in range(5)]
    assert [r.index for r in results] == list(range(5))
    assert [r.checkpoint["tree_size"] for r in results] == [1, 2, 3, 4, 5]
    entries = [s for _, s in sorted(ledger.log())]
    assert entries[0]["predicate"]["previous"] is None
    for prev, cur in zip(results, entries[1:], strict=False):
        assert cur["predicate"]["previous"] == prev.entry_hash
    report = ledger.verify(all_signatures=True)
    assert report.tree_size == 5 and report.root_hash == results[-1].checkpoint["root_hash"]
    assert report.signatures_checked == 6


def test_find_prove_and_latest_approved(ledger: Ledger) -> None:
    fill(ledger, 6)
    ledger.append(statement(2, verdict="rejected"))
    ledger.append(statement(9, source="vendor-b"))
    assert [r.index for r in ledger.find(digest(2))] == [2]
    assert [r.verdict for r in ledger.find(digest(2), verdicts=None)] == ["approved", "rejected"]
    assert ledger.find(digest(77)) == []
    proof = ledger.prove(digest(3))
    assert list(proof) == ["entry", "leaf_index", "tree_size", "leaf_hash", "inclusion_proof", "root_hash",
                           "checkpoint", "digest", "map_root", "map_proof", "entries", "checkpoint_note"]
    assert [e["index"] for e in ledger.prove(digest(2))["entries"]] == [2, 6]
    assert ledger.prove(digest(2))["leaf_index"] == 6  # the decisive entry: the rejection
    assert verify_inclusion(proof["leaf_index"], proof["tree_size"], bytes.fromhex(proof["leaf_hash"]),
                            [bytes.fromhex(h) for h in proof["inclusion_proof"]], bytes.fromhex(proof["root_hash"]))
    latest = ledger.latest_approved("vendor-a")
    assert latest is not None and latest.index == 5 and latest.source == "vendor-a"
    assert ledger.latest_approved("nobody") is None
    with pytest.raises(NotApprovedError):
        ledger.prove(digest(77))
    with pytest.raises(ProvenanceInputError):
        ledger.record(99)


def test_consistency_between_checkpoints(ledger: Ledger) -> None:
    old = [ledger.append(statement(i)).checkpoint for i in range(7)][-1]
    fill(ledger, 6)
    new = ledger.checkpoint()
    assert new is not None
    proof = [bytes.fromhex(h) for h in ledger.consistency(old["tree_size"])]
    assert verify_consistency(7, new["tree_size"], bytes.fromhex(old["root_hash"]), bytes.fromhex(new["root_hash"]),
                              proof)


def test_log_filters(ledger: Ledger) -> None:
    fill(ledger, 3)
    ledger.append(statement(10, verdict="rejected", source="vendor-b"))
    assert [i for i, _ in ledger.log(source="vendor-b")] == [3]
    assert [i for i, _ in ledger.log(verdict="approved")] == [2, 1, 0]
    t = ledger.record(1).time
    assert [i for i, _ in ledger.log(since=t)] == [3, 2, 1]
    assert [i for i, _ in ledger.log(until=t)] == [1, 0]


def test_signing_key_created_beside_sqlite_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    led = open_ledger(f"sqlite:///{tmp_path}/l/ledger.db")
    led.append(statement(0))
    key = tmp_path / "l" / "ledger.key"
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600
    assert "created ledger signing key" in capsys.readouterr().err
    led.verify()
    led.close()


def test_bad_urls() -> None:
    with pytest.raises(ProvenanceConfigError):
        open_ledger("mysql://x")
    with pytest.raises(ProvenanceConfigError):
        open_ledger("sqlite://relative-without-path")


def _writer(url: str, key: str, worker: int, count: int) -> None:
    led = open_ledger(url, signing_key=key)
    for j in range(count):
        led.append(statement(worker * 1000 + j, source=f"w{worker}"))
    led.close()


def test_no_new_signing_key_for_a_ledger_with_entries(tmp_path: Path) -> None:
    """Found by review: with its key file missing (or on PostgreSQL, from another working directory) the first
    append minted a new key and signed the whole history with it, and plain ``verify`` still said ok."""
    url = f"sqlite:///{tmp_path}/l/ledger.db"
    with open_ledger(url) as led:
        led.append(statement(0))
    key = tmp_path / "l" / "ledger.key"
    moved = tmp_path / "elsewhere.key"
    key.rename(moved)
    with open_ledger(url) as led, pytest.raises(ProvenanceConfigError) as err:
        led.append(statement(1))
    assert err.value.code == "ledger:no_signing_key" and "has 1 entries" in str(err.value)
    assert not key.exists()
    with open_ledger(url, signing_key=str(moved)) as led:  # the right key, given explicitly
        led.append(statement(1))
        led.verify(all_signatures=True)


def test_a_writer_with_another_key_is_refused(tmp_path: Path) -> None:
    """Found by a second review: with the real key kept elsewhere, a key made by ``keys generate`` signed the next
    checkpoint, and a plain ``verify`` (latest signature only, by the default trust: that new key) said ok."""
    from provenance.signing import generate_private_key

    url = f"sqlite:///{tmp_path}/l.db"
    with open_ledger(url) as led:
        led.append(statement(0))
    with open_ledger(url, signing_key=generate_private_key()) as led, pytest.raises(ProvenanceConfigError) as err:
        led.append(statement(1))
    assert err.value.code == "ledger:key_mismatch"
    with open_ledger(url) as led:
        assert led.size() == 1


def _first_append(url: str, barrier: Any, i: int) -> None:
    barrier.wait()
    with open_ledger(url) as led:  # no key yet: each process may try to create it
        led.append(statement(i))


def test_processes_racing_to_create_the_key_all_append(tmp_path: Path) -> None:
    """Found by review: two first appends at once both created the key; the loser failed (keys:exists) and its
    attempt was lost. The loser now reads the winner's key."""
    url = f"sqlite:///{tmp_path}/race/ledger.db"
    ctx = mp.get_context("spawn")  # fork after other tests started threads is unsafe
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_first_append, args=(url, barrier, i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with open_ledger(url) as led:
        assert led.size() == 4
        led.verify(all_signatures=True)


def test_readers_refuse_a_ledger_that_does_not_exist(ledger_url: str, tmp_path: Path) -> None:
    """A mistyped URL is not an empty ledger: readers (gate, audit commands) say so and create nothing (found by
    review: the gate created an empty database and answered "no ledger entry")."""
    from provenance.errors import ProvenanceConfigError

    url = ledger_url if ledger_url.startswith("postgres") else f"sqlite:///{tmp_path}/typo/ledger.db"
    with pytest.raises(ProvenanceConfigError, match="check the ledger URL") as err:
        open_ledger(url, create=False)
    assert err.value.code == "ledger:not_found" and err.value.exit_code == 2
    assert not (tmp_path / "typo").exists()
    if url.startswith("sqlite"):
        other = tmp_path / "other.db"
        sqlite3.connect(other).execute("create table t (x)").connection.close()
        with pytest.raises(ProvenanceConfigError, match="not a trainguard ledger"):
            open_ledger(f"sqlite:///{other}", create=False)
    with open_ledger(url) as led:  # writers create it
        assert led.size() == 0
    with open_ledger(url, create=False) as led:
        assert led.size() == 0


@pytest.mark.slow
def test_eight_processes_fifty_appends_each(ledger: Ledger, ledger_url: str, key_path: Path) -> None:
    ledger.append(statement(99_999))  # tables and origin exist before the race
    # spawn, not fork: writers are separate programs, and forking a pytest process that Prefect's tests
    # left threads and at-fork handlers in made children exit 1 at start-up.
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(ledger_url, str(key_path), w, 50)) for w in range(8)]
    for p in procs:
        p.start()
    try:
        for w, p in enumerate(procs):
            p.join(180)
            assert p.exitcode == 0, f"writer {w} exited with {p.exitcode}"
    finally:
        for p in procs:  # never leave writers running into the fixture's teardown
            if p.is_alive():
                p.kill()
                p.join(10)
    report = ledger.verify()
    assert report.tree_size == 401
    rows = ledger.log()
    assert sorted(i for i, _ in rows) == list(range(401))  # no gap, no duplicate
    names = [st["subject"][0]["digest"]["sha256"] for _, st in rows]
    assert len(set(names)) == 401
    for w in range(8):
        mine = sorted(i for i, st in rows if st["predicate"]["source"]["name"] == f"w{w}")
        assert len(mine) == 50


def _endless(url: str, key: str) -> None:
    led = open_ledger(url, signing_key=key)
    i = 0
    while True:
        led.append(statement(500_000 + i, source="killed"))
        i += 1


@pytest.mark.slow
def test_sigkill_during_append_leaves_a_valid_ledger(ledger: Ledger, ledger_url: str, key_path: Path) -> None:
    ledger.append(statement(0))
    ctx = mp.get_context("spawn")  # see test_eight_processes_fifty_appends_each
    for delay in (0.0, 0.0031, 0.0173):
        before = ledger.size()
        p = ctx.Process(target=_endless, args=(ledger_url, str(key_path)))
        p.start()
        deadline = time.monotonic() + 30
        while ledger.size() < before + 3 and time.monotonic() < deadline:  # the writer is in its append loop
            time.sleep(0.005)
        time.sleep(delay)
        assert p.pid is not None and ledger.size() >= before + 3
        os.kill(p.pid, signal.SIGKILL)
        p.join(10)
        report = ledger.verify()
        assert report.tree_size == ledger.size() >= 1
        last = ledger.record(report.tree_size - 1)
        assert last.index == report.tree_size - 1
    ledger.append(statement(1))  # the ledger keeps working after the crashes
    assert ledger.verify().tree_size == report.tree_size + 1


def test_every_checkpoint_is_consistent_with_the_next(tmp_path: Path, key_path: Path) -> None:
    """Property over one growing ledger: each old checkpoint proves into the newest; each entry proves in."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    led = open_ledger(f"sqlite:///{tmp_path}/p.db", signing_key=str(key_path))
    cps = [led.append(statement(i)).checkpoint for i in range(37)]
    last = cps[-1]

    @settings(max_examples=60, deadline=None)
    @given(st.integers(0, 36), st.integers(0, 36))
    def check(i: int, j: int) -> None:
        old, new = sorted((cps[i], cps[j]), key=lambda c: c["tree_size"])
        proof = [bytes.fromhex(h) for h in led.consistency(old["tree_size"], new["tree_size"])]
        assert verify_consistency(old["tree_size"], new["tree_size"], bytes.fromhex(old["root_hash"]),
                                  bytes.fromhex(new["root_hash"]), proof)
        rec = led.record(i)
        assert rec.checkpoint == last
        assert verify_inclusion(i, last["tree_size"], bytes.fromhex(rec.leaf_hash),
                                [bytes.fromhex(h) for h in rec.inclusion_proof], bytes.fromhex(last["root_hash"]))

    check()
    led.close()


def test_a_read_only_sqlite_ledger_is_a_setting_not_tampering(tmp_path: Path) -> None:
    """Found by review: a ledger file without write permission was reported damaged (exit 3)."""
    import sqlite3

    from provenance.backends.sqlite import _integrity

    err = _integrity(sqlite3.OperationalError("attempt to write a readonly database"), tmp_path / "l.db")
    assert isinstance(err, ProvenanceConfigError) and err.code == "ledger:read_only" and err.exit_code == 2


@pytest.mark.postgres
def test_a_read_only_postgres_role_is_refused_before_any_work(postgres_schema: str, key_path: Path) -> None:
    """Found by review: a role that may not insert was reported as a damaged ledger (exit 3) at append time.
    ``require_writable`` says ``ledger:read_only`` (exit 2) up front; an append says the same."""
    import uuid

    import psycopg

    with open_ledger(postgres_schema, signing_key=str(key_path)) as led:
        fill(led, 2)
    role = f"tg_ro_{uuid.uuid4().hex[:8]}"
    schema = postgres_schema.rsplit("%3D", 1)[1]
    admin = postgres_schema.split("?")[0]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create role "{role}" login')
        conn.execute(f'grant usage on schema "{schema}" to "{role}"')
        conn.execute(f'grant select on all tables in schema "{schema}" to "{role}"')
    try:
        ro_url = postgres_schema.replace("://postgres@", f"://{role}@", 1)
        assert ro_url != postgres_schema
        with open_ledger(ro_url, signing_key=str(key_path)) as led:
            assert led.size() == 2  # reading works
            with pytest.raises(ProvenanceConfigError) as info:
                led.require_writable()
            assert info.value.code == "ledger:read_only" and info.value.exit_code == 2
            with pytest.raises(ProvenanceConfigError) as info:
                led.append(statement(3))
            assert info.value.code == "ledger:read_only"
        with open_ledger(postgres_schema, signing_key=str(key_path)) as led:
            led.require_writable()  # the owner may write
            led.verify()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop owned by "{role}"')
            conn.execute(f'drop role "{role}"')


def test_a_read_only_sqlite_ledger_is_refused_before_any_work(tmp_path: Path, key_path: Path) -> None:
    """The probe on a real read-only connection to the file (what SQLite opens for a user without write
    permission; root ignores file modes, so the mode is asked for here)."""
    db = tmp_path / "l.db"
    with open_ledger(f"sqlite:///{db}", signing_key=str(key_path)) as led:
        fill(led, 2)
    led = open_ledger(f"sqlite:///{db}", signing_key=str(key_path), create=False)
    store: Any = led.store
    store.conn.close()
    store.conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
    try:
        assert led.size() == 2  # reading works
        with pytest.raises(ProvenanceConfigError) as info:
            led.require_writable()
        assert info.value.code == "ledger:read_only" and info.value.exit_code == 2
    finally:
        led.close()
    with open_ledger(f"sqlite:///{db}", signing_key=str(key_path)) as led:
        led.require_writable()
        assert led.size() == 2
