"""The gate: only bytes with an approving, provable entry (or a trusted signed override) pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenance.entries import make_statement
from provenance.errors import LedgerIntegrityError, NotApprovedError
from provenance.gate import append_override, make_override, require_approved
from provenance.hashing import file_digest
from provenance.ledger import Ledger, open_ledger
from provenance.signing import TrustedKeys, generate_private_key, load_private_key, public_key_b64
from tests.provenance.conftest import raw_sql


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


def test_a_rolled_back_ledger_is_refused_against_a_checkpoint_seen_before(ledger: Ledger, tmp_path: Path) -> None:
    """Found by review: deleting the newest rows (entries, nodes, checkpoints) returned the ledger to an earlier
    signed state that the gate and ``verify`` accepted. A caller that kept a checkpoint it saw refuses it."""
    p = _data(tmp_path, "g.csv", "g")
    ledger.append(_entry(p, "approved"))
    ledger.append(_entry(p, "rejected", ["label:inconsistent"]))
    seen = ledger.record(1).checkpoint
    sql = raw_sql(ledger)
    sql("delete from entries where idx = 1")
    sql("delete from subjects where idx = 1")
    sql("delete from nodes where id <> 0")
    sql("delete from checkpoints where tree_size = 2")
    assert require_approved(p, ledger=ledger).index == 0  # without a checkpoint to hold it to: the old approval
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
