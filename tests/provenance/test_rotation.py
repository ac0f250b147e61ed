"""Key rotation: a rotation entry signed by the old key (and accepted by the new one) hands the ledger over; verifiers
follow the chain from any trusted key, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenance.bundle import export_bundle, verify_bundle
from provenance.errors import LedgerIntegrityError, ProvenanceConfigError
from provenance.gate import decide
from provenance.hashing import canonical_json
from provenance.ledger import Ledger, open_ledger
from provenance.rotation import KeyChain, make_rotation
from provenance.signing import TrustedKeys, generate_private_key, key_id, sign_checkpoint
from tests.provenance.conftest import digest, fill, raw_sql, statement


@pytest.fixture()
def rotated(ledger: Ledger) -> tuple[Ledger, object, object]:
    """Five entries signed by the old key, the rotation (entry 5), three more signed by the new key."""
    old = ledger.signing_key()
    new = generate_private_key()
    fill(ledger, 5)
    res = ledger.rotate(new, reason="yearly rotation", actor="ops")
    assert res.index == 5 and res.checkpoint["key_id"] == key_id(old.public_key())  # the old key's last
    for i in range(6, 9):
        assert ledger.append(statement(i)).checkpoint["key_id"] == key_id(new.public_key())
    return ledger, old, new


def test_verifiers_follow_the_chain_from_either_key(rotated: tuple[Ledger, object, object], ledger_url: str) -> None:
    led, old, new = rotated
    for keys in ([old.public_key()], [new.public_key()], [old.public_key(), new.public_key()]):  # type: ignore[attr-defined]
        with open_ledger(ledger_url, trusted_keys=keys, create=False) as reader:
            report = reader.verify(all_signatures=True)
            assert report.tree_size == 9 and report.signatures_checked == 10
            assert decide(reader, digest(7), label="b7").index == 7  # signed by the new key
            assert decide(reader, digest(2), label="b2").index == 2


def test_a_key_nobody_trusts_is_still_refused(rotated: tuple[Ledger, object, object], ledger_url: str) -> None:
    with open_ledger(ledger_url, trusted_keys=[generate_private_key().public_key()], create=False) as reader:
        with pytest.raises(LedgerIntegrityError) as err:
            decide(reader, digest(7), label="b7")
        assert err.value.code == "ledger:untrusted_key"


def test_the_old_key_cannot_append_after_the_rotation(rotated: tuple[Ledger, object, object], ledger_url: str) -> None:
    _, old, _ = rotated
    with open_ledger(ledger_url, signing_key=old, create=False) as stale:  # type: ignore[arg-type]
        with pytest.raises(ProvenanceConfigError) as err:
            stale.append(statement(99))
        assert err.value.code == "ledger:key_mismatch"


def test_a_checkpoint_the_retired_key_signs_later_is_refused(rotated: tuple[Ledger, object, object]) -> None:
    """A thief of the old key signs the newest tree: a verifier that follows the rotations refuses it."""
    led, old, new = rotated
    latest = led.checkpoint()
    assert latest is not None
    forged = sign_checkpoint(old, origin=latest["origin"], tree_size=latest["tree_size"],  # type: ignore[arg-type]
                             root_hash=latest["root_hash"], map_root=latest["map_root"])
    raw_sql(led)("update checkpoints set body = ? where tree_size = ?", (canonical_json(forged), latest["tree_size"]))
    with pytest.raises(LedgerIntegrityError) as err:
        led.verify()
    assert err.value.code == "ledger:retired_key"


def test_a_rotation_with_a_bad_signature_fails_verification(ledger: Ledger) -> None:
    fill(ledger, 2)
    new = generate_private_key()
    st = make_rotation(ledger.signing_key(), new, origin=ledger.origin, reason="r")
    st["predicate"]["rotation"]["signature"] = st["predicate"]["rotation"]["new_key_signature"]
    ledger.append(st)
    with pytest.raises(LedgerIntegrityError) as err:
        ledger.verify()
    assert err.value.code == "ledger:bad_rotation" and err.value.index == 2


def test_a_bundle_exported_after_rotation_verifies_offline(rotated: tuple[Ledger, object, object],
                                                           tmp_path: Path) -> None:
    led, old, _ = rotated
    export_bundle(led, tmp_path / "bundle")
    assert verify_bundle(tmp_path / "bundle").tree_size == 9  # keys.txt holds the new key: it vouches the old
    only_old = TrustedKeys.of([old.public_key()])  # type: ignore[attr-defined]
    assert verify_bundle(tmp_path / "bundle", trusted_keys=only_old).tree_size == 9


def test_chains_of_rotations_run_both_ways() -> None:
    k1, k2, k3 = (generate_private_key() for _ in range(3))
    r1 = make_rotation(k1, k2, origin="o", reason="r")
    r2 = make_rotation(k2, k3, origin="o", reason="r")
    ids = [key_id(k.public_key()) for k in (k1, k2, k3)]
    for trusted in (k1, k2, k3):
        chain = KeyChain(TrustedKeys.of([trusted.public_key()]), [(4, r1), (9, r2)])
        assert [sorted(chain.valid_keys(tree_size=s).keys) for s in (3, 5, 6, 10, 11)] == [
            [ids[0]], [ids[0]], [ids[1]], [ids[1]], [ids[2]]]
