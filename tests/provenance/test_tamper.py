"""Someone with write access to the database changes history: verification and lookups must catch it (both backends)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenance import index as ledger_index
from provenance.errors import LedgerIntegrityError
from provenance.gate import decide
from provenance.hashing import canonical_json
from provenance.ledger import Ledger, open_ledger
from provenance.merkle import build_nodes, leaf_hash, node_id
from provenance.signing import generate_private_key, sign_checkpoint
from tests.provenance.conftest import digest, fill, raw_sql, statement

N = 12


def _body(led: Ledger, idx: int) -> bytes:
    body = led.store.entry(idx)
    assert body is not None
    return body


def _expect(led: Ledger, code: str, index: int, **kw: object) -> LedgerIntegrityError:
    with pytest.raises(LedgerIntegrityError) as err:
        led.verify(**kw)  # type: ignore[arg-type]
    assert err.value.code == code, str(err.value)
    assert err.value.index == index, str(err.value)
    assert err.value.exit_code == 3
    assert f"entry {index}" in str(err.value)
    return err.value


def _rewrite_nodes(led: Ledger) -> None:
    """The careful attacker: recompute every stored Merkle node from the (tampered) entries."""
    sql = raw_sql(led)
    leaves = [leaf_hash(body) for _, body in led.store.iter_entries()]
    sql("delete from nodes")
    led.store.insert([], list(build_nodes(leaves).items()), [], [])


@pytest.fixture()
def full(ledger: Ledger) -> Ledger:
    fill(ledger, N)
    ledger.verify()
    return ledger


def test_edited_field(full: Ledger) -> None:
    st = json.loads(_body(full, 5))
    st["predicate"]["counts"]["flagged"] = 0
    raw_sql(full)("update entries set body = ? where idx = ?", (canonical_json(st), 5))
    err = _expect(full, "ledger:hash_mismatch", 5)
    assert err.expected and err.found and err.expected != err.found
    with pytest.raises(LedgerIntegrityError):  # the gate's lookup path fails closed too (exit 3)
        decide(full, digest(5), label="batch-5.csv")


def test_edited_field_with_recomputed_nodes(full: Ledger) -> None:
    st = json.loads(_body(full, N - 1))
    st["predicate"]["verdict"] = "approved"
    st["predicate"]["reasons"] = ["edited"]
    raw_sql(full)("update entries set body = ? where idx = ?", (canonical_json(st), N - 1))
    _rewrite_nodes(full)
    _expect(full, "ledger:root_mismatch", N - 1)
    with pytest.raises(LedgerIntegrityError, match="signed"):
        full.find(digest(N - 1))


def test_deleted_entry(full: Ledger) -> None:
    raw_sql(full)("delete from entries where idx = ?", (4,))
    _expect(full, "ledger:gap", 4)


def test_swapped_entries(full: Ledger) -> None:
    a, b = _body(full, 3), _body(full, 7)
    sql = raw_sql(full)
    sql("update entries set body = ? where idx = ?", (b, 3))
    sql("update entries set body = ? where idx = ?", (a, 7))
    _expect(full, "ledger:broken_chain", 3)


def test_inserted_entry(full: Ledger) -> None:
    sql = raw_sql(full)
    sql("update entries set idx = idx + 1000000 where idx >= ?", (6,))
    sql("update entries set idx = idx - 999999 where idx >= ?", (1000000,))
    forged = statement(4242)
    forged["predicate"]["previous"] = leaf_hash(_body(full, 5)).hex()
    full.store.insert([(6, canonical_json(forged), "vendor-a", "approved", forged["predicate"]["time"])], [], [], [])
    _expect(full, "ledger:size_mismatch", N)
    _rewrite_nodes(full)  # hide the size mismatch: the attacker cannot sign a checkpoint with a trusted key
    sql("delete from checkpoints")
    leaves = [leaf_hash(body) for _, body in full.store.iter_entries()]
    from provenance.merkle import root_from_leaves

    forged_cp = sign_checkpoint(generate_private_key(), origin=full.origin, tree_size=N + 1,
                                root_hash=root_from_leaves(leaves).hex(), map_root="00" * 32)
    full.store.insert([], [], [], [(N + 1, canonical_json(forged_cp))])
    # a key no trusted key's rotation reaches: refused after the scan, which finds the broken chain first
    with pytest.raises(LedgerIntegrityError) as err:
        full.verify()
    assert err.value.code in ("ledger:untrusted_key", "ledger:broken_chain") and err.value.exit_code == 3
    with pytest.raises(LedgerIntegrityError, match="untrusted"):  # the gate checks the checkpoint first
        full.find(digest(4242))


def test_inserted_entry_at_the_end_without_a_checkpoint(full: Ledger) -> None:
    forged = statement(4242)
    forged["predicate"]["previous"] = leaf_hash(_body(full, N - 1)).hex()
    full.store.insert([(N, canonical_json(forged), "vendor-a", "approved", "2030-01-01T00:00:00Z")],
                      [(node_id(0, N), leaf_hash(canonical_json(forged)))], [(digest(4242), N)], [])
    _expect(full, "ledger:size_mismatch", N)
    with pytest.raises(LedgerIntegrityError, match="does not cover every entry"):
        full.find(digest(4242))  # the gate never honours an entry no signed checkpoint covers


def test_truncated_tail_caught_against_an_exported_checkpoint(full: Ledger) -> None:
    exported = full.checkpoint()
    assert exported is not None and exported["tree_size"] == N
    fill(full, 3)
    keep = 7
    sql = raw_sql(full)
    sql("delete from entries where idx >= ?", (keep,))
    sql("delete from subjects where idx >= ?", (keep,))  # left behind, they would give the cut away by themselves
    sql("delete from checkpoints where tree_size > ?", (keep,))
    for (nid,) in sql("select id from nodes"):
        level, index = int(nid) >> 48, int(nid) & ((1 << 48) - 1)
        if (index + 1) << level > keep:
            sql("delete from nodes where id = ?", (nid,))
    cut = json.loads(sql("select body from checkpoints where tree_size = ?", (keep,))[0][0])
    with full.store.write():  # the careful attacker recomputes the index of the shorter ledger too
        ledger_index.rebuild(full.store, tree_size=keep, root_hash=cut["root_hash"])
    assert full.verify().tree_size == keep  # on its own, a cleanly cut ledger still verifies ...
    err = _expect(full, "ledger:truncated", keep, earlier=[exported])  # ... but not against the export
    assert err.expected is not None and str(N) in err.expected


def test_checkpoint_signed_by_untrusted_key(full: Ledger) -> None:
    latest = full.checkpoint()
    assert latest is not None
    forged = sign_checkpoint(generate_private_key(), origin=latest["origin"], tree_size=N, root_hash=latest["root_hash"],
                             map_root=latest["map_root"])
    raw_sql(full)("update checkpoints set body = ? where tree_size = ?", (canonical_json(forged), N))
    with pytest.raises(LedgerIntegrityError, match="untrusted key") as err:
        full.verify()
    assert err.value.code == "ledger:untrusted_key"
    with pytest.raises(LedgerIntegrityError, match="untrusted key"):
        decide(full, digest(1), label="batch-1.csv")


def test_older_checkpoint_with_a_wrong_root(full: Ledger) -> None:
    cp = json.loads(raw_sql(full)("select body from checkpoints where tree_size = ?", (4,))[0][0])
    cp["root_hash"] = "00" * 32
    raw_sql(full)("update checkpoints set body = ? where tree_size = ?", (canonical_json(cp), 4))
    full.verify()  # the default pass reads only the latest checkpoint; the full pass reads every one
    with pytest.raises(LedgerIntegrityError, match="invalid signature") as err:
        full.verify(all_signatures=True)
    assert err.value.index == 3


def test_corrupted_entry_bytes(full: Ledger) -> None:
    body = bytearray(_body(full, 8))
    body[10] ^= 0xFF
    raw_sql(full)("update entries set body = ? where idx = ?", (bytes(body), 8))
    _expect(full, "ledger:corrupt_entry", 8)


def test_corrupted_sqlite_file(tmp_path: Path, key_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    led = open_ledger(url, signing_key=str(key_path))
    fill(led, 300)
    led.store.conn.execute("pragma wal_checkpoint(truncate)")
    led.close()
    path = tmp_path / "c.db"
    data = bytearray(path.read_bytes())
    for page in range(1, len(data) // 4096):  # scribble over the middle of every page but the header page
        data[page * 4096 + 2000 : page * 4096 + 2064] = bytes(range(64))
    path.write_bytes(bytes(data))
    with pytest.raises(LedgerIntegrityError):
        open_ledger(url, signing_key=str(key_path)).verify()


def test_edit_in_the_middle_rechained_and_rehashed(full: Ledger) -> None:
    """The most careful attacker: edits entry 5, re-links every later entry and recomputes every node."""
    sql = raw_sql(full)
    previous = leaf_hash(_body(full, 4)).hex()
    for idx in range(5, N):
        st = json.loads(_body(full, idx))
        if idx == 5:
            st["predicate"]["verdict"] = "approved"
            st["predicate"]["counts"]["flagged"] = 0
        st["predicate"]["previous"] = previous
        body = canonical_json(st)
        sql("update entries set body = ? where idx = ?", (body, idx))
        previous = leaf_hash(body).hex()
    _rewrite_nodes(full)
    err = _expect(full, "ledger:root_mismatch", 5)
    assert err.found != err.expected


@pytest.mark.parametrize(("change", "index"), [
    ("delete from subjects where idx = 7", 7),  # a later refusal hidden from the gate's lookup
    ("update entries set verdict = 'tampered' where idx = 4", 4),  # ledger log --verdict filters on this column
    ("update entries set source = 'other' where idx = 9", 9),
    ("insert into subjects (digest, idx) values ('sha256:" + "0" * 64 + "', 3)", 3),
    ("insert into subjects (digest, idx) values ('sha256:" + "0" * 64 + "', 99)", 99),  # beyond the last entry
])
def test_index_columns_that_differ_from_the_signed_bodies_are_caught(full: Ledger, change: str, index: int) -> None:
    """The gate and ``ledger log`` look entries up through the unsigned index (subjects; source, verdict and
    time): verify rebuilds it from the signed bodies (found by review: deleting one subjects row made the gate
    pass a refused file while verify stayed ok)."""
    raw_sql(full)(change)
    err = _expect(full, "ledger:bad_index", index)
    assert err.expected != err.found


@pytest.mark.parametrize("change", [
    "update entries set body = 'text' where idx = 3",
    "update entries set idx = 'x' where idx = 3",
    "update entries set idx = 2.5 where idx = 3",
    "update nodes set hash = 'text' where id = 0",
    "update nodes set hash = 7 where id = 0",
    "insert into nodes values ('x', x'00')",
    "update checkpoints set body = 'text' where tree_size = (select max(tree_size) from checkpoints)",
])
def test_values_of_the_wrong_sql_type_are_integrity_failures(tmp_path: Path, key_path: Path, change: str) -> None:
    """SQLite keeps any type in any column: a row written around trainguard is a corrupt store (exit 3), not an
    internal error (found by review: ``bytes('text')`` raised TypeError, exit 70)."""
    led = open_ledger(f"sqlite:///{tmp_path}/l.db", signing_key=str(key_path))
    fill(led, N)
    raw_sql(led)(change)
    with pytest.raises(LedgerIntegrityError) as err:
        led.verify()
    assert err.value.code == "ledger:corrupt_store" and err.value.exit_code == 3, str(err.value)
    led.close()
