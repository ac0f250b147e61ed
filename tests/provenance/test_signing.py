"""Keys, trusted-key files and signed checkpoints."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from provenance.errors import LedgerIntegrityError, ProvenanceConfigError
from provenance.hashing import canonical_json
from provenance.signing import (
    TrustedKeys,
    generate_private_key,
    key_id,
    load_private_key,
    public_key_b64,
    sign_checkpoint,
    write_private_key,
)


def test_key_file_is_0600_and_roundtrips(tmp_path: Path) -> None:
    key = generate_private_key()
    p = write_private_key(key, tmp_path / "k" / "signing.key")
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert public_key_b64(load_private_key(p).public_key()) == public_key_b64(key.public_key())
    with pytest.raises(ProvenanceConfigError, match="already exists"):
        write_private_key(generate_private_key(), p)


def test_key_from_base64_seed_and_missing() -> None:
    key = generate_private_key()
    from cryptography.hazmat.primitives import serialization

    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    assert key_id(load_private_key(base64.b64encode(seed).decode()).public_key()) == key_id(key.public_key())
    with pytest.raises(ProvenanceConfigError):
        load_private_key("/nonexistent/key.pem")


def test_checkpoint_signature_is_over_canonical_json_without_signature() -> None:
    key = generate_private_key()
    cp = sign_checkpoint(key, origin="o", tree_size=3, root_hash="11" * 32, map_root="22" * 32)
    raw = base64.b64decode(public_key_b64(key.public_key()))
    assert cp["key_id"] == hashlib.sha256(raw).hexdigest()
    body = {k: v for k, v in cp.items() if k != "signature"}
    Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(cp["signature"]), canonical_json(body))
    trusted = TrustedKeys.of([key.public_key()])
    trusted.check_checkpoint(cp)
    with pytest.raises(LedgerIntegrityError, match="invalid signature"):
        trusted.check_checkpoint({**cp, "tree_size": 4})
    with pytest.raises(LedgerIntegrityError, match="untrusted key") as err:
        TrustedKeys.of([generate_private_key().public_key()]).check_checkpoint(cp)
    assert err.value.exit_code == 3
    with pytest.raises(LedgerIntegrityError, match="malformed"):
        trusted.check_checkpoint({k: v for k, v in cp.items() if k != "origin"})


def test_trusted_keys_file(tmp_path: Path) -> None:
    a, b = generate_private_key().public_key(), generate_private_key().public_key()
    p = tmp_path / "trusted.txt"
    p.write_text(f"# team keys\n{public_key_b64(a)} alice\n\n{public_key_b64(b)}  # bob\n")
    keys = TrustedKeys.from_file(p)
    assert key_id(a) in keys and key_id(b) in keys and len(keys) == 2
    p.write_text("not-a-key\n")
    with pytest.raises(ProvenanceConfigError, match="line 1"):
        TrustedKeys.from_file(p)
