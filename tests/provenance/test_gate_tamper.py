"""An attacker who can write the ledger's database but has no key tries to hide a revocation from the gate.

Bytes are approved, then rejected by a stricter policy (the newest entry). Each attack changes rows the way someone
with write access would (both backends); the gate must refuse with exit 3, never pass the revoked bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provenance import index as ledger_index
from provenance import vmap
from provenance.entries import make_statement
from provenance.errors import LedgerIntegrityError, NotApprovedError
from provenance.gate import require_approved
from provenance.hashing import canonical_json, file_digest
from provenance.ledger import Ledger
from provenance.merkle import leaf_hash as log_leaf
from tests.provenance.conftest import fill, raw_sql

Sql = Callable[..., list[tuple[Any, ...]]]


def _entry(path: Path, verdict: str, source: str = "vendor-a") -> dict[str, Any]:
    return make_statement(subjects=[(path.name, file_digest(path))],
                          predicate={"verdict": verdict, "source": {"name": source}, "reasons": ["stricter policy"]})


@pytest.fixture()
def revoked(ledger: Ledger, tmp_path: Path) -> tuple[Ledger, Path, int, int]:
    """Six other entries, the approval of batch.csv (6), one more (7), its rejection (8): the newest entry."""
    p = tmp_path / "batch.csv"
    p.write_text("a,b\n1,2\n")
    fill(ledger, 6)
    ok = ledger.append(_entry(p, "approved")).index
    fill(ledger, 1)
    rej = ledger.append(_entry(p, "rejected")).index
    with pytest.raises(NotApprovedError):
        require_approved(p, ledger=ledger)  # the gate refuses, and its witness remembers this checkpoint
    return ledger, p, ok, rej


def _key(p: Path) -> bytes:
    return bytes.fromhex(file_digest(p)[7:])


def _delete_subjects_row(led: Ledger, p: Path, ok: int, rej: int, sql: Sql) -> None:
    sql("delete from subjects where digest = ? and idx = ?", (file_digest(p), rej))


def _delete_rejection_rows(led: Ledger, p: Path, ok: int, rej: int, sql: Sql) -> None:
    sql("delete from entries where idx = ?", (rej,))
    sql("delete from subjects where idx = ?", (rej,))


def _relabel_verdict_column(led: Ledger, p: Path, ok: int, rej: int, sql: Sql) -> None:
    sql("update entries set verdict = 'approved' where idx = ?", (rej,))


def _relabel_body(led: Ledger, p: Path, ok: int, rej: int, sql: Sql) -> None:
    st = json.loads(sql("select body from entries where idx = ?", (rej,))[0][0])
    st["predicate"]["verdict"] = "approved"
    sql("update entries set body = ?, verdict = 'approved' where idx = ?", (canonical_json(st), rej))


def _repoint_subject(led: Ledger, p: Path, ok: int, rej: int, sql: Sql) -> None:
    sql("update subjects set idx = ? where digest = ? and idx = ?", (0, file_digest(p), rej))


def _swap_entries(led: Ledger, p: Path, ok: int, rej: int, sql: Sql) -> None:
    a, b = (sql("select body, source, verdict, time from entries where idx = ?", (i,))[0] for i in (ok, rej))
    for idx, row in ((ok, b), (rej, a)):
        sql("update entries set body = ?, source = ?, verdict = ?, time = ? where idx = ?", (*row, idx))


def _drop_map_nodes(led: Ledger, p: Path, ok: int, rej: int, sql: Sql) -> None:
    sql("delete from map_nodes")


def _drop_the_digests_map_leaf(led: Ledger, p: Path, ok: int, rej: int, sql: Sql) -> None:
    sql("delete from map_nodes where leaf_key = ?", (_key(p),))


def _edit_map_value(led: Ledger, p: Path, ok: int, rej: int, sql: Sql) -> None:
    refs = vmap.unpack_refs(bytes(sql("select refs from map_values where key = ?", (_key(p),))[0][0]))
    sql("update map_values set refs = ? where key = ?", (vmap.pack_refs(refs[:1]), _key(p)))


def _rebuild_map_without_the_rejection(led: Ledger, p: Path, ok: int, rej: int, sql: Sql) -> None:
    """The careful attacker: a whole, consistent index of the history without the rejection."""
    values: dict[bytes, list[vmap.Ref]] = {}
    for idx, body in led.store.iter_entries():
        if idx != rej:
            for s in json.loads(body)["subject"]:
                values.setdefault(bytes.fromhex(s["digest"]["sha256"]), []).append((idx, log_leaf(body)))
    _, nodes = vmap.build(values)
    sql("delete from map_nodes")
    sql("delete from map_values")
    led.store.write_map(dict(nodes), values)


def _delete_latest_checkpoint(led: Ledger, p: Path, ok: int, rej: int, sql: Sql) -> None:
    sql("delete from checkpoints where tree_size = ?", (rej + 1,))


def _older_checkpoint_as_latest(led: Ledger, p: Path, ok: int, rej: int, sql: Sql) -> None:
    older = sql("select body from checkpoints where tree_size = ?", (rej,))[0][0]
    sql("update checkpoints set body = ? where tree_size = ?", (older, rej + 1))


def _truncate_everything_consistently(led: Ledger, p: Path, ok: int, rej: int, sql: Sql) -> None:
    """Every table rolled back to the signed state before the rejection: every proof in it verifies."""
    sql("delete from entries where idx >= ?", (rej,))
    sql("delete from subjects where idx >= ?", (rej,))
    sql("delete from checkpoints where tree_size > ?", (rej,))
    for (nid,) in sql("select id from nodes"):
        level, i = int(nid) >> 48, int(nid) & ((1 << 48) - 1)
        if (i + 1) << level > rej:
            sql("delete from nodes where id = ?", (nid,))
    cp = json.loads(sql("select body from checkpoints where tree_size = ?", (rej,))[0][0])
    with led.store.write():
        ledger_index.rebuild(led.store, tree_size=rej, root_hash=cp["root_hash"])


ATTACKS = [_delete_subjects_row, _delete_rejection_rows, _relabel_verdict_column, _relabel_body, _repoint_subject,
           _swap_entries, _drop_map_nodes, _drop_the_digests_map_leaf, _edit_map_value,
           _rebuild_map_without_the_rejection, _delete_latest_checkpoint, _older_checkpoint_as_latest,
           _truncate_everything_consistently]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.__name__.strip("_") for a in ATTACKS])
def test_the_gate_refuses_a_hidden_revocation_with_exit_3(revoked: tuple[Ledger, Path, int, int],
                                                          attack: Callable[..., None]) -> None:
    led, p, ok, rej = revoked
    attack(led, p, ok, rej, raw_sql(led))
    with pytest.raises(LedgerIntegrityError) as err:
        require_approved(p, ledger=led)
    assert err.value.exit_code == 3, err.value


def test_an_untouched_digest_still_answers_after_unrelated_map_damage(revoked: tuple[Ledger, Path, int, int],
                                                                       tmp_path: Path) -> None:
    """Fail closed only where the damage is: a lookup whose whole path is intact still proves its answer."""
    led, p, ok, rej = revoked
    other = tmp_path / "other.csv"
    other.write_text("x\n")
    led.append(_entry(other, "approved"))
    assert require_approved(other, ledger=led).verdict == "approved"
    with pytest.raises(NotApprovedError):
        require_approved(p, ledger=led)


def test_the_cli_gate_exits_3(revoked: tuple[Ledger, Path, int, int], ledger_url: str, key_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines.cli.main import main

    led, p, ok, rej = revoked
    _delete_subjects_row(led, p, ok, rej, raw_sql(led))
    _relabel_verdict_column(led, p, ok, rej, raw_sql(led))
    trusted = p.parent / "trusted.txt"
    assert main(["keys", "show", "--key", str(key_path)]) == 0
    trusted.write_text(capsys.readouterr().out)
    assert main(["gate", str(p), "--ledger", ledger_url, "--trusted-keys", str(trusted), "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["code"] == "ledger:bad_index" and doc["approved"] is False
