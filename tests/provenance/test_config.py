"""Where the ledger URL, the signing key and the trusted keys come from."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from provenance.config import (
    default_key_path,
    ledger_url,
    resolve_approvers,
    resolve_signing_key,
    resolve_trusted,
)
from provenance.signing import TrustedKeys, generate_private_key, key_id, public_key_b64


def test_ledger_url_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ledger_url(None) == "sqlite:///.trainguard/ledger.db"
    monkeypatch.setenv("TRAINGUARD_LEDGER", "sqlite:////srv/l.db")
    assert ledger_url(None) == "sqlite:////srv/l.db"
    assert ledger_url("postgresql://x/y") == "postgresql://x/y"


def test_default_key_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_key_path("sqlite:////srv/tg/ledger.db") == Path("/srv/tg/ledger.key")
    assert default_key_path("sqlite:///rel/ledger.db") == Path("rel/ledger.key")
    monkeypatch.setenv("TRAINGUARD_HOME", str(tmp_path))
    assert default_key_path("postgresql://h/db") == tmp_path / "signing.key"


def test_signing_key_from_env_seed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = generate_private_key()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    monkeypatch.setenv("TRAINGUARD_SIGNING_KEY", base64.b64encode(seed).decode())
    url = f"sqlite:///{tmp_path}/l.db"
    got = resolve_signing_key(None, url, create=True)
    assert got is not None and key_id(got.public_key()) == key_id(key.public_key())
    assert not (tmp_path / "l.key").exists()  # configured: nothing created


def test_no_key_is_created_unless_needed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/l.db"
    assert resolve_signing_key(None, url, create=False) is None
    assert resolve_signing_key(None, url, create=True) is not None
    assert (tmp_path / "l.key").stat().st_mode & 0o777 == 0o600


def test_trusted_and_approver_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    own, other, approver = (generate_private_key() for _ in range(3))
    assert key_id(own.public_key()) in resolve_trusted(None, own)
    assert len(resolve_trusted(None, None)) == 0  # nothing trusted: verification fails closed
    f = tmp_path / "t.txt"
    f.write_text(public_key_b64(other.public_key()) + "\n")
    monkeypatch.setenv("TRAINGUARD_TRUSTED_KEYS", str(f))
    trusted = resolve_trusted(None, own)
    assert key_id(other.public_key()) in trusted and key_id(own.public_key()) not in trusted
    assert key_id(own.public_key()) in resolve_trusted([public_key_b64(own.public_key())], None)
    a = tmp_path / "a.txt"
    a.write_text(public_key_b64(approver.public_key()) + " approver\n")
    monkeypatch.setenv("TRAINGUARD_APPROVER_KEYS", str(a))
    approvers = resolve_approvers(None, trusted)
    assert key_id(approver.public_key()) in approvers and key_id(other.public_key()) in approvers
    only = resolve_approvers(TrustedKeys.of([own.public_key()]), trusted)
    assert list(only.keys) == [key_id(own.public_key())]
