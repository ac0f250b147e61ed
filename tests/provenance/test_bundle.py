"""Export a ledger and verify the bundle with no database and no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenance.bundle import export_bundle, read_checkpoint, verify_bundle
from provenance.errors import LedgerIntegrityError, ProvenanceInputError
from provenance.ledger import Ledger
from provenance.signing import TrustedKeys, generate_private_key
from tests.provenance.conftest import fill


def test_export_and_verify(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger, 9)
    doc = export_bundle(ledger, tmp_path / "b")
    assert doc["entries"] == 9 and doc["keys"] == ledger.public_keys()
    report = verify_bundle(tmp_path / "b")
    assert report.tree_size == 9 and report.root_hash == doc["checkpoint"]["root_hash"]
    lines = (tmp_path / "b" / "entries.jsonl").read_bytes().splitlines()
    assert lines[0] == ledger.store.entry(0)


def test_bundle_tampering(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger, 9)
    export_bundle(ledger, tmp_path / "b")
    entries = tmp_path / "b" / "entries.jsonl"
    good = entries.read_bytes()
    lines = good.splitlines(keepends=True)
    entries.write_bytes(b"".join(lines[:4] + lines[5:]))  # deleted entry
    with pytest.raises(LedgerIntegrityError, match="entries do not match"):
        verify_bundle(tmp_path / "b")
    entries.write_bytes(good.replace(b'"flagged":3', b'"flagged":0', 1))  # edited field (entry 3)
    with pytest.raises(LedgerIntegrityError, match="entry 3"):
        verify_bundle(tmp_path / "b")
    entries.write_bytes(good)
    with pytest.raises(LedgerIntegrityError, match="untrusted key"):
        verify_bundle(tmp_path / "b", trusted_keys=TrustedKeys.of([generate_private_key().public_key()]))


def test_bundle_against_a_later_checkpoint_catches_truncation(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger, 5)
    export_bundle(ledger, tmp_path / "old")
    fill(ledger, 3)
    export_bundle(ledger, tmp_path / "new")
    old_cp = read_checkpoint(tmp_path / "old" / "checkpoint.json")
    assert verify_bundle(tmp_path / "new", earlier=[old_cp]).tree_size == 8
    new_cp = read_checkpoint(tmp_path / "new" / "checkpoint.json")
    with pytest.raises(LedgerIntegrityError, match="shorter"):
        verify_bundle(tmp_path / "old", earlier=[new_cp])
    cp = json.loads((tmp_path / "old" / "checkpoint.json").read_text())
    assert cp["tree_size"] == 5


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(ProvenanceInputError, match="entries.jsonl"):
        verify_bundle(tmp_path)


def test_bundle_carries_the_approver_keys_so_overrides_check_offline(
    ledger_url: str, key_path: Path, tmp_path: Path
) -> None:
    """Found by review: keys.txt held only the ledger key, so an auditor could not check an override's signature."""
    import base64
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from provenance.gate import append_override
    from provenance.ledger import open_ledger

    approver = generate_private_key()
    with open_ledger(ledger_url, signing_key=str(key_path),
                     approver_keys=TrustedKeys.of([approver.public_key()])) as led:
        append_override(led, "sha256:" + "ab" * 32, reason="vetted by hand", approver_key=approver)
        doc = export_bundle(led, tmp_path / "b")
    keys = [line.split()[0] for line in (tmp_path / "b" / "approvers.txt").read_text().splitlines()]
    assert keys == doc["approver_keys"] and len(keys) == 1
    # an auditor's check, without provenance: Ed25519 over the canonical entry minus previous and the signature
    entry = json.loads((tmp_path / "b" / "entries.jsonl").read_text().splitlines()[0])
    approval = entry["predicate"].pop("approval")
    entry["predicate"].pop("previous")
    signature = base64.b64decode(approval.pop("signature"))
    entry["predicate"]["approval"] = approval
    raw = base64.b64decode(keys[0])
    assert hashlib.sha256(raw).hexdigest() == approval["key_id"]
    message = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    Ed25519PublicKey.from_public_bytes(raw).verify(signature, message)  # raises if it does not check
