"""The gate: only bytes with an approving, provable entry (or a trusted signed override) pass."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from provenance.bundle import read_checkpoint
from provenance.entries import make_statement
from provenance.errors import (
    LedgerIntegrityError,
    NotApprovedError,
    ProvenanceConfigError,
    ProvenanceInputError,
)
from provenance.gate import append_override, make_override, require_approved
from provenance.hashing import file_digest, path_digest
from provenance.ledger import Ledger, open_ledger
from provenance.signing import TrustedKeys, generate_private_key, load_private_key, public_key_b64
from tests.provenance.conftest import raw_sql, unblocked


def _data(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _entry(path: Path, verdict: str, reasons: list[str] | None = None) -> dict:  # type: ignore[type-arg]
    return make_statement(subjects=[(path.name, file_digest(path))],
                          predicate={"verdict": verdict, "source": {"name": "s"}, "reasons": reasons or []})


def test_approved_passes_unknown_and_rejected_refused(ledger: Ledger, tmp_path: Path) -> None:
    good, bad, unknown = (_data(tmp_path, n, n) for n in ("good.csv", "bad.csv", "unknown.csv"))
    ledger.append(_entry(good, "approved"))
    ledger.append(_entry(bad, "rejected", ["outlier:iforest", "label:inconsistent"]))
    rec = require_approved(good, ledger=ledger)
    assert rec.index == 0 and rec.verdict == "approved"
    with pytest.raises(NotApprovedError, match="outlier:iforest") as err:
        require_approved(bad, ledger=ledger)
    assert err.value.code == "gate:rejected" and err.value.exit_code == 1
    with pytest.raises(NotApprovedError, match="no ledger entry") as err:
        require_approved(unknown, ledger=ledger)
    assert err.value.code == "gate:unknown"
    good.write_text("good.csv but one byte more")
    with pytest.raises(NotApprovedError):
        require_approved(good, ledger=ledger)


def test_newest_decision_wins(ledger: Ledger, tmp_path: Path) -> None:
    p = _data(tmp_path, "a.csv", "a")
    ledger.append(_entry(p, "approved"))
    ledger.append(_entry(p, "rejected"))
    with pytest.raises(NotApprovedError, match="rejected by ledger entry 1"):
        require_approved(p, ledger=ledger)


def test_a_failed_attempt_neither_approves_nor_revokes(ledger: Ledger, tmp_path: Path) -> None:
    """Found by review: re-ingesting approved bytes with a typo in --label-column recorded an error entry, and
    the gate then refused the approved file ("was error by ledger entry ...")."""
    p, q = _data(tmp_path, "a.csv", "a"), _data(tmp_path, "b.csv", "b")
    ledger.append(_entry(p, "approved"))
    failed = _entry(p, "error")
    failed["predicate"]["error"] = {"code": "data:unknown_label_column", "message": "no column klass"}
    ledger.append(failed)
    assert require_approved(p, ledger=ledger).index == 0
    ledger.append(_entry(q, "rejected"))
    ledger.append(_entry(q, "error"))
    with pytest.raises(NotApprovedError, match="rejected by ledger entry 2"):
        require_approved(q, ledger=ledger)
    r = _data(tmp_path, "c.csv", "c")
    ledger.append(failed | {"subject": [{"name": "c.csv", "digest": {"sha256": file_digest(r).split(":")[1]}}]})
    with pytest.raises(NotApprovedError, match="data:unknown_label_column, ledger entry 4") as err:
        require_approved(r, ledger=ledger)
    assert err.value.code == "gate:no_verdict" and err.value.exit_code == 1


def test_override_signed_by_trusted_approver(ledger: Ledger, ledger_url: str, key_path: Path, tmp_path: Path) -> None:
    p = _data(tmp_path, "b.csv", "b")
    ledger.append(_entry(p, "rejected"))
    approver = generate_private_key()
    append_override(ledger, file_digest(p), reason="owner reviewed", approver_key=approver, actor="alice")
    with pytest.raises(NotApprovedError, match="not trusted") as err:  # default trust: the ledger key only
        require_approved(p, ledger=ledger)
    assert err.value.code == "gate:untrusted_override"
    trusted = tmp_path / "trusted.txt"
    own = load_private_key(key_path).public_key()
    trusted.write_text(f"{public_key_b64(own)} ledger\n{public_key_b64(approver.public_key())} alice\n")
    with open_ledger(ledger_url, signing_key=str(key_path), trusted_keys=str(trusted)) as led:
        rec = require_approved(p, ledger=led)
    assert rec.verdict == "override" and rec.statement["predicate"]["actor"] == "alice"


def test_override_with_forged_signature_refused(ledger: Ledger, ledger_url: str, tmp_path: Path) -> None:
    p = _data(tmp_path, "c.csv", "c")
    approver = generate_private_key()
    st = make_override(file_digest(p), reason="x", approver_key=approver, supersedes=None)
    st["predicate"]["reason"] = "changed after signing"
    ledger.append(st)
    keys = TrustedKeys.of([approver.public_key()]).merged(ledger.trusted)
    with open_ledger(ledger_url, signing_key=ledger.signing_key(), approver_keys=keys) as led:
        with pytest.raises(NotApprovedError, match="invalid approver signature"):
            require_approved(p, ledger=led)


def test_replayed_override_does_not_approve_after_a_later_rejection(ledger: Ledger, tmp_path: Path) -> None:
    """Whoever can append entries (but holds no approver key) cannot re-use an old signed override: the approver's
    signature covers the entry it overrides (found by review: the signature bound nothing about position)."""
    p = _data(tmp_path, "r.csv", "r")
    ledger.append(_entry(p, "rejected", ["label:inconsistent"]))
    append_override(ledger, file_digest(p), reason="owner reviewed", approver_key=ledger.signing_key())
    signed = ledger.record(1).statement
    assert require_approved(p, ledger=ledger).index == 1
    ledger.append(_entry(p, "rejected", ["outlier:iforest"]))  # a later ingest of the same bytes rejects them
    with pytest.raises(NotApprovedError, match="rejected by ledger entry 2"):
        require_approved(p, ledger=ledger)
    replay = {**signed, "predicate": {k: v for k, v in signed["predicate"].items() if k != "previous"}}
    ledger.append(replay)
    with pytest.raises(NotApprovedError, match="signed over entry 0, but the entry before it naming the digest is "
                                               "entry 2") as err:
        require_approved(p, ledger=ledger)
    assert err.value.code == "gate:untrusted_override"
    append_override(ledger, file_digest(p), reason="reviewed again", approver_key=ledger.signing_key())
    assert require_approved(p, ledger=ledger).index == 4


def test_override_without_earlier_entry_and_unbound_override(ledger: Ledger, tmp_path: Path) -> None:
    p = _data(tmp_path, "n.csv", "n")
    append_override(ledger, file_digest(p), reason="vetted by hand", approver_key=ledger.signing_key())
    assert require_approved(p, ledger=ledger).verdict == "override"
    q = _data(tmp_path, "o.csv", "o")
    ledger.append(_entry(q, "rejected"))
    st = make_override(file_digest(q), reason="x", approver_key=ledger.signing_key(), supersedes=None)
    ledger.append(st)  # signed as if nothing came before: the rejection it would overrule is not the one it names
    with pytest.raises(NotApprovedError, match="signed over no earlier entry"):
        require_approved(q, ledger=ledger)


def test_gate_fails_closed_on_tampering(ledger: Ledger, tmp_path: Path) -> None:
    p = _data(tmp_path, "d.csv", "d")
    ledger.append(_entry(p, "approved"))
    ledger.append(_entry(_data(tmp_path, "e.csv", "e"), "approved"))
    raw_sql(ledger)("update nodes set hash = ? where id = ?", (b"\x00" * 32, 1))
    with pytest.raises(LedgerIntegrityError) as err:
        require_approved(p, ledger=ledger)
    assert err.value.exit_code == 3


def test_gate_with_ledger_url_and_untrusted_checkpoints(ledger: Ledger, ledger_url: str, tmp_path: Path) -> None:
    p = _data(tmp_path, "f.csv", "f")
    ledger.append(_entry(p, "approved"))
    other = TrustedKeys.of([generate_private_key().public_key()])
    with pytest.raises(LedgerIntegrityError, match="untrusted key"):
        require_approved(p, ledger=ledger_url, trusted_keys=other)


def test_trusted_keys_with_an_open_ledger_are_refused_not_ignored(ledger: Ledger, tmp_path: Path) -> None:
    """Pinned keys cannot be checked against a Ledger the caller opened: the gate refuses instead of passing a
    rogue ledger's approval (found by review: it used to ignore ``trusted_keys`` here)."""
    from provenance.errors import ProvenanceConfigError

    good = _data(tmp_path, "good.csv", "good.csv")
    ledger.append(_entry(good, "approved"))
    with pytest.raises(ProvenanceConfigError) as err:
        require_approved(good, ledger=ledger, trusted_keys=[])
    assert err.value.code == "gate:trusted_keys_with_open_ledger" and err.value.exit_code == 2


def test_a_rolled_back_ledger_is_refused_against_a_checkpoint_seen_before(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker with write access to the database rolls every table back to an earlier signed state (the
    rejection gone). Every proof in that state verifies, so only a checkpoint kept outside the database catches it:
    the witness (on by default) or one the caller kept."""
    p = _data(tmp_path, "g.csv", "g")
    ledger.append(_entry(p, "approved"))
    sql = raw_sql(ledger)
    saved = {t: sql(f"select * from {t}") for t in ("map_nodes", "map_values")}
    ledger.append(_entry(p, "rejected", ["label:inconsistent"]))
    seen = ledger.record(1).checkpoint
    sql("delete from entries where idx = 1")
    sql("delete from subjects where idx = 1")
    sql("delete from nodes where id <> 0")
    sql("delete from checkpoints where tree_size = 2")
    for table, rows in saved.items():
        sql(f"delete from {table}")
        for row in rows:
            sql(f"insert into {table} values ({', '.join('?' * len(row))})", tuple(row))
    with pytest.raises(LedgerIntegrityError) as err:  # the witness remembers the checkpoint of the rejection
        require_approved(p, ledger=ledger)
    assert err.value.code == "ledger:truncated" and err.value.exit_code == 3
    monkeypatch.setenv("TRAINGUARD_WITNESS", "off")
    assert require_approved(p, ledger=ledger).index == 0  # no witness, no checkpoint kept: the old approval
    with pytest.raises(LedgerIntegrityError) as err:
        require_approved(p, ledger=ledger, seen=seen)
    assert err.value.code == "ledger:truncated" and err.value.exit_code == 3


def test_a_ledger_that_extends_the_checkpoint_seen_passes(ledger: Ledger, tmp_path: Path) -> None:
    p = _data(tmp_path, "h.csv", "h")
    ledger.append(_entry(p, "approved"))
    seen = ledger.record(0).checkpoint
    for name in ("i.csv", "j.csv", "k.csv"):
        ledger.append(_entry(_data(tmp_path, name, name), "approved"))
    assert require_approved(p, ledger=ledger, seen=seen).index == 0
    forged = {**seen, "root_hash": "00" * 32}
    with pytest.raises(LedgerIntegrityError):  # a checkpoint not signed by a trusted key (or another tree)
        require_approved(p, ledger=ledger, seen=forged)


def test_an_approved_directory_with_a_symlinked_subdirectory_added_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    """Found by review (F1): after a symlinked subdirectory of poisoned data was added to an approved directory the
    gate still passed it (its digest skipped the link), while pandas/pyarrow read the linked files too."""
    dset = tmp_path / "dset"
    dset.mkdir()
    _data(dset, "part-0.csv", "x,y\n1,0\n")
    evil = tmp_path / "evil"
    evil.mkdir()
    _data(evil, "part-1.csv", "x,y\n9,1\n")
    append_override(ledger, path_digest(dset), reason="dir approved", approver_key=ledger.signing_key())
    assert require_approved(dset, ledger=ledger).verdict == "override"
    os.symlink(evil, dset / "more")
    with pytest.raises(ProvenanceInputError, match="more") as err:
        require_approved(dset, ledger=ledger)
    assert err.value.code == "input:symlink" and err.value.exit_code == 2


@pytest.mark.timeout(60)
def test_the_gate_refuses_a_fifo_without_blocking(ledger: Ledger, tmp_path: Path) -> None:
    """Found by review (F1): the gate hung in open() on a FIFO."""
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    with unblocked(fifo), pytest.raises(ProvenanceInputError, match="FIFO") as err:
        require_approved(fifo, ledger=ledger)
    assert err.value.code == "input:not_a_file" and err.value.exit_code == 2


def _documents(ledger: Ledger, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A checkpoint, and a gate's --json output and a proof document that both hold it."""
    p = _data(tmp_path, "cp.csv", "cp")
    ledger.append(_entry(p, "approved"))
    rec = require_approved(p, ledger=ledger)
    gate_doc = {"approved": True, "path": str(p), "digest": file_digest(p), "verdict": rec.verdict,
                "leaf_index": rec.index, "tree_size": rec.checkpoint["tree_size"],
                "root_hash": rec.checkpoint["root_hash"], "checkpoint": rec.checkpoint}
    return dict(rec.checkpoint), gate_doc, ledger.prove(file_digest(p))


def test_a_document_that_is_not_a_checkpoint_is_bad_input_not_tampering(ledger: Ledger, tmp_path: Path) -> None:
    """Found by review (F5): ``--checkpoint`` given a whole gate or proof document was exit 3 ``ledger:bad_checkpoint``
    ("ledger integrity failure"). It is exit 2 ``input:bad_checkpoint``, naming the file and what was expected."""
    cp, gate_doc, proof = _documents(ledger, tmp_path)
    for name, doc in (("gate.json", gate_doc), ("proof.json", proof), ("list.json", [cp]), ("part.json",
                      {k: v for k, v in cp.items() if k != "signature"})):
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        with pytest.raises(ProvenanceInputError, match=name) as err:
            read_checkpoint(path)
        assert err.value.code == "input:bad_checkpoint" and err.value.exit_code == 2
        assert ("expected a JSON object with exactly the fields origin, tree_size" in err.value.message
                or 'holds one under "checkpoint"' in err.value.message)
    assert "jq .checkpoint" in str(_refusal(tmp_path / "gate.json"))
    assert "exactly the fields" in str(_refusal(tmp_path / "list.json"))
    (tmp_path / "latin1.json").write_bytes(b'{"origin": "\xe9"}')
    assert _refusal(tmp_path / "latin1.json").code == "input:bad_checkpoint"
    for doc in (gate_doc, proof):  # the same through the Python API (require_approved(seen=...), verify(earlier=...))
        with pytest.raises(ProvenanceInputError) as err:
            require_approved(tmp_path / "cp.csv", ledger=ledger, seen=doc)
        assert err.value.code == "input:bad_checkpoint"
        with pytest.raises(ProvenanceInputError):
            ledger.verify(earlier=[doc])
    (tmp_path / "cp.json").write_text(json.dumps(cp))
    assert read_checkpoint(tmp_path / "cp.json") == cp


def _refusal(path: Path) -> ProvenanceInputError:
    with pytest.raises(ProvenanceInputError) as err:
        read_checkpoint(path)
    return err.value


@pytest.mark.timeout(60)
def test_a_fifo_given_as_checkpoint_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "cp.json"
    os.mkfifo(fifo)
    with unblocked(fifo):
        assert _refusal(fifo).code == "input:not_a_file"


def test_a_well_formed_checkpoint_that_does_not_check_out_is_still_an_integrity_failure(
        ledger: Ledger, tmp_path: Path) -> None:
    cp, _, _ = _documents(ledger, tmp_path)
    for name, forged in (("root", {**cp, "root_hash": "00" * 32}), ("key", {**cp, "key_id": "ab" * 32})):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(forged))
        with pytest.raises(LedgerIntegrityError) as err:
            require_approved(tmp_path / "cp.csv", ledger=ledger, seen=read_checkpoint(path))
        assert err.value.exit_code == 3 and err.value.code in ("ledger:bad_signature", "ledger:untrusted_key")


def test_no_trusted_keys_is_a_config_error_not_an_integrity_failure(
        ledger: Ledger, ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by review (F5): a reader with no trusted keys (the ledger's key file absent and no
    $TRAINGUARD_TRUSTED_KEYS, or an empty --trusted-keys file) got exit 3 ``ledger:untrusted_key`` and a garbled
    message. It is exit 2 ``keys:missing``, saying how to configure trusted keys; still refused (fail closed)."""
    p = _data(tmp_path, "t.csv", "t")
    ledger.append(_entry(p, "approved"))
    monkeypatch.setenv("TRAINGUARD_HOME", str(tmp_path / "home"))  # PostgreSQL's default key: absent
    empty = tmp_path / "empty.txt"
    empty.write_text("# nobody yet\n")
    for trusted, named in ((None, "signing key (the default, not found; $TRAINGUARD_TRUSTED_KEYS is not set)"),
                           (str(empty), "none from trusted-keys file")):
        with open_ledger(ledger_url, trusted_keys=trusted, create=False) as led:  # no signing key given
            for check in (lambda: require_approved(p, ledger=led), led.verify):
                with pytest.raises(ProvenanceConfigError) as err:
                    check()
                assert err.value.code == "keys:missing" and err.value.exit_code == 2
                assert named in err.value.message and "--trusted-keys" in err.value.message
                assert "trainguard keys > trusted.txt" in err.value.message
    monkeypatch.setenv("TRAINGUARD_TRUSTED_KEYS", str(empty))
    with pytest.raises(ProvenanceConfigError, match=r"none from \$TRAINGUARD_TRUSTED_KEYS file .*empty.txt"):
        require_approved(p, ledger=ledger_url)
