"""Where the ledger, its signing key and the trusted keys come from: arguments, then environment, then defaults.

- ledger URL: argument, ``$TRAINGUARD_LEDGER``, else ``sqlite:///.trainguard/ledger.db``;
- signing key: argument (path, base64 seed or key object), ``$TRAINGUARD_SIGNING_KEY`` (path or base64 seed),
  else ``<ledger dir>/<ledger name>.key`` for SQLite and ``$TRAINGUARD_HOME/signing.key`` (default
  ``.trainguard/``) for PostgreSQL, created 0600 on first need with a note on stderr;
- trusted keys: argument (file path, ``TrustedKeys`` or public keys), ``$TRAINGUARD_TRUSTED_KEYS`` (file), else the
  ledger's own signing key; approver keys for overrides add ``$TRAINGUARD_APPROVER_KEYS`` (file).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provenance.backends import sqlite_path
from provenance.errors import ProvenanceConfigError
from provenance.signing import (
    TrustedKeys,
    generate_private_key,
    load_private_key,
    public_key_from_b64,
    write_private_key,
)

__all__ = ["ledger_url", "default_key_path", "resolve_signing_key", "resolve_trusted", "TrustedSpec", "KeySpec"]

DEFAULT_URL = "sqlite:///.trainguard/ledger.db"
KeySpec = str | os.PathLike[str] | Ed25519PrivateKey | None
TrustedSpec = str | os.PathLike[str] | TrustedKeys | Iterable[Ed25519PublicKey | str] | None


def ledger_url(url: str | None) -> str:
    return url or os.environ.get("TRAINGUARD_LEDGER") or DEFAULT_URL


def default_key_path(url: str) -> Path:
    if url.startswith("sqlite:"):
        db = sqlite_path(url)
        return db.with_name(db.stem + ".key")
    return Path(os.environ.get("TRAINGUARD_HOME", ".trainguard")) / "signing.key"


def resolve_signing_key(spec: KeySpec, url: str, *, create: bool) -> Ed25519PrivateKey | None:
    """The signing key; when none is configured and ``create``, make one beside the ledger and say so."""
    if isinstance(spec, Ed25519PrivateKey):
        return spec
    chosen = spec if spec is not None else os.environ.get("TRAINGUARD_SIGNING_KEY")
    if chosen:
        return load_private_key(chosen)
    path = default_key_path(url)
    if path.is_file():
        return load_private_key(path)
    if not create:
        return None
    key = generate_private_key()
    try:
        write_private_key(key, path)
    except ProvenanceConfigError as exc:  # another process created it first: use theirs (one key per ledger)
        if exc.code != "keys:exists":
            raise
        return load_private_key(path)
    print(f"trainguard: created ledger signing key {path} (mode 0600); back it up", file=sys.stderr)
    return key


def resolve_trusted(spec: TrustedSpec, own: Ed25519PrivateKey | None) -> TrustedKeys:
    """Trusted checkpoint keys: explicit, else ``$TRAINGUARD_TRUSTED_KEYS``, else the ledger's own key."""
    if isinstance(spec, TrustedKeys):
        return spec
    if isinstance(spec, str | os.PathLike):
        return TrustedKeys.from_file(spec)
    if spec is not None:
        keys = [public_key_from_b64(k) if isinstance(k, str) else k for k in spec]
        return TrustedKeys.of(keys, source="given trusted keys")
    env = os.environ.get("TRAINGUARD_TRUSTED_KEYS")
    if env:
        return TrustedKeys.from_file(env, what="$TRAINGUARD_TRUSTED_KEYS file")
    if own is not None:
        return TrustedKeys.of([own.public_key()], source="the ledger's own signing key")
    return TrustedKeys({}, source="the ledger's own signing key (the default, not found; $TRAINGUARD_TRUSTED_KEYS "
                                  "is not set)")


def resolve_approvers(spec: TrustedSpec, trusted: TrustedKeys) -> TrustedKeys:
    """Keys whose overrides the gate honours: explicit, else trusted keys plus ``$TRAINGUARD_APPROVER_KEYS``."""
    if spec is not None:
        return resolve_trusted(spec, None)
    env = os.environ.get("TRAINGUARD_APPROVER_KEYS")
    return trusted.merged(TrustedKeys.from_file(env, what="$TRAINGUARD_APPROVER_KEYS file")) if env else trusted
