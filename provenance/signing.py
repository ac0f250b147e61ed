"""Ed25519 keys, trusted-key sets and signed checkpoints.

A checkpoint is ``{origin, tree_size, root_hash, map_root, timestamp, key_id, signature}``: ``map_root`` is the root
of the verifiable index (``provenance.vmap``) over the same entries, ``key_id`` the SHA-256 hex of the raw 32-byte
public key and ``signature`` the base64 Ed25519 signature over the canonical JSON of the checkpoint without
``signature``. Checkpoints signed before the index existed have no ``map_root``; they verify as before, but the
gate needs one. Public keys travel as base64 of the raw 32 bytes; a trusted-keys file holds one per line,
optionally followed by a comment (``#`` lines are ignored).

Example::

    >>> key = generate_private_key()
    >>> cp = sign_checkpoint(key, origin="demo", tree_size=1, root_hash="00" * 32, map_root="00" * 32)
    >>> TrustedKeys.of([key.public_key()]).check_checkpoint(cp)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provenance.entries import utc_now
from provenance.errors import LedgerIntegrityError, ProvenanceConfigError
from provenance.hashing import canonical_json

__all__ = [
    "generate_private_key",
    "write_private_key",
    "load_private_key",
    "public_key_b64",
    "public_key_from_b64",
    "key_id",
    "TrustedKeys",
    "sign_checkpoint",
    "sign_bytes",
    "checkpoint_shape_problem",
]

CHECKPOINT_FIELDS = ("origin", "tree_size", "root_hash", "timestamp", "key_id", "signature")
MAP_ROOT = "map_root"  # optional only in checkpoints signed before the verifiable index
_SHAPES = (frozenset(CHECKPOINT_FIELDS), frozenset(CHECKPOINT_FIELDS) | {MAP_ROOT})


def generate_private_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def write_private_key(key: Ed25519PrivateKey, path: str | os.PathLike[str]) -> Path:
    """Write ``key`` as PKCS#8 PEM with mode 0600; refuses to overwrite an existing file. The file appears whole
    (written aside, then hard-linked into place), so a process racing to create the same key reads a complete one."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        if p.exists():
            raise FileExistsError(p)
        _write_new(tmp, pem)
        try:
            os.link(tmp, p)  # atomic, and fails if another process got there first
        except FileExistsError:
            raise
        except OSError:  # a filesystem without hard links (vfat, some network mounts): create it exclusively
            _write_new(p, pem)
    except FileExistsError as exc:
        raise ProvenanceConfigError("keys:exists", f"key file already exists, not overwriting: {p}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return p


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (mode 0600; ``FileExistsError`` if it exists) holding ``data``, synced to disk."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def load_private_key(spec: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """A private key from a PEM file path, or from base64 of the raw 32-byte seed (e.g. an env variable)."""
    text = os.fspath(spec)
    p = Path(text)
    if p.is_file():
        try:
            key = serialization.load_pem_private_key(p.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ProvenanceConfigError("keys:bad_private_key", f"{p} is not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ProvenanceConfigError("keys:not_ed25519", f"{p} holds a {type(key).__name__}, not an Ed25519 key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == 32:
        return Ed25519PrivateKey.from_private_bytes(raw)
    raise ProvenanceConfigError("keys:missing", f"signing key not found: {text!r} is neither a key file nor base64")


def _raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_b64(pub: Ed25519PublicKey) -> str:
    """Base64 of the raw 32-byte public key."""
    return base64.b64encode(_raw(pub)).decode("ascii")


def public_key_from_b64(text: str, *, where: str = "public key") -> Ed25519PublicKey:
    """Parse base64 of a raw 32-byte Ed25519 public key."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProvenanceConfigError("keys:bad_public_key", f"{where}: not base64: {text!r}") from exc
    if len(raw) != 32:
        raise ProvenanceConfigError("keys:bad_public_key", f"{where}: want 32 raw bytes, found {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id(pub: Ed25519PublicKey) -> str:
    """SHA-256 hex of the raw 32-byte public key."""
    return hashlib.sha256(_raw(pub)).hexdigest()


def sign_bytes(key: Ed25519PrivateKey, message: bytes) -> str:
    """Base64 Ed25519 signature of ``message``."""
    return base64.b64encode(key.sign(message)).decode("ascii")


def sign_checkpoint(
    key: Ed25519PrivateKey, *, origin: str, tree_size: int, root_hash: str, map_root: str | None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """A signed checkpoint for a tree of ``tree_size`` leaves with root ``root_hash`` and index root ``map_root``
    (hex; None only to make a checkpoint of the old shape, as tests of upgrades do)."""
    body: dict[str, Any] = {
        "origin": origin,
        "tree_size": tree_size,
        "root_hash": root_hash,
        "timestamp": timestamp or utc_now(),
        "key_id": key_id(key.public_key()),
    }
    if map_root is not None:
        body[MAP_ROOT] = map_root
    body["signature"] = sign_bytes(key, canonical_json(body))
    return body


def checkpoint_shape_problem(cp: object) -> str | None:
    """Why ``cp`` is not a checkpoint document at all (None when it has exactly the checkpoint fields, with
    ``tree_size`` a non-negative integer and the others strings). Says nothing about its signature or root."""
    if not isinstance(cp, Mapping):
        return f"a JSON {type(cp).__name__}, not an object"
    missing = [f for f in CHECKPOINT_FIELDS if f not in cp]
    extra = sorted(str(f) for f in cp if f not in CHECKPOINT_FIELDS and f != MAP_ROOT)
    if missing or extra:
        return "; ".join(part for part in (f"no {', '.join(missing)}" if missing else "",
                                           f"unexpected {', '.join(extra[:6])}" if extra else "") if part)
    size = cp["tree_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return f"tree_size is {size!r}, not a non-negative integer"
    wrong = [f for f in (*CHECKPOINT_FIELDS, MAP_ROOT) if f != "tree_size" and f in cp and not isinstance(cp[f], str)]
    return f"{', '.join(wrong)} not a string" if wrong else None


class TrustedKeys:
    """The public keys a verifier accepts, by key id."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey], *, source: str = "trusted keys") -> None:
        self.keys = dict(keys)
        self.source = source

    @classmethod
    def of(cls, keys: Iterable[Ed25519PublicKey], *, source: str = "trusted keys") -> TrustedKeys:
        return cls({key_id(k): k for k in keys}, source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, what: str = "trusted-keys file") -> TrustedKeys:
        """Parse a trusted-keys file: one base64 public key per line, optional comment after it."""
        p = Path(path)
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ProvenanceConfigError("keys:trusted_unreadable", f"cannot read {what} {p}: {why}") from exc
        keys = []
        for n, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            keys.append(public_key_from_b64(text.split()[0], where=f"{p} line {n}"))
        return cls.of(keys, source=f"{what} {p}")

    def __contains__(self, kid: object) -> bool:
        return kid in self.keys

    def __len__(self) -> int:
        return len(self.keys)

    def merged(self, other: TrustedKeys) -> TrustedKeys:
        return TrustedKeys({**self.keys, **other.keys}, source=f"{self.source} + {other.source}")

    def verify(self, kid: str, signature_b64: str, message: bytes) -> bool:
        """True when ``kid`` is trusted and its key signed ``message``."""
        pub = self.keys.get(kid)
        if pub is None:
            return False
        try:
            pub.verify(base64.b64decode(signature_b64, validate=True), message)
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def check_checkpoint(self, cp: Mapping[str, Any], *, index: int | None = None) -> None:
        """Raise ``LedgerIntegrityError`` unless ``cp`` is well formed and signed by a trusted key.

        With no trusted key at all nothing can be checked: that is missing configuration, not a ledger that fails
        its check, so it raises ``ProvenanceConfigError`` (``keys:missing``, exit 2) instead (still fail closed).
        """
        if not self.keys:
            raise ProvenanceConfigError(
                "keys:missing", f"no trusted keys to check the ledger's signed checkpoint with: none from "
                f"{self.source}; write the ledger's public keys to a file with `trainguard keys > trusted.txt` where "
                "its signing key is, then pass --trusted-keys trusted.txt or set TRAINGUARD_TRUSTED_KEYS=trusted.txt",
            )
        if not isinstance(cp, Mapping) or frozenset(cp) not in _SHAPES:
            found = sorted(cp) if isinstance(cp, Mapping) else type(cp).__name__
            raise LedgerIntegrityError(
                "ledger:bad_checkpoint", "malformed checkpoint", index=index,
                expected=str([*CHECKPOINT_FIELDS, MAP_ROOT]), found=str(found),
            )
        kid = str(cp["key_id"])
        if kid not in self.keys:
            raise LedgerIntegrityError(
                "ledger:untrusted_key", f"checkpoint of tree size {cp['tree_size']} is signed by an untrusted key",
                index=index, expected=f"a key in {self.source} ({', '.join(k[:12] for k in self.keys) or 'none'})",
                found=kid[:12],
            )
        body = {k: v for k, v in cp.items() if k != "signature"}
        if not self.verify(kid, str(cp["signature"]), canonical_json(body)):
            raise LedgerIntegrityError(
                "ledger:bad_signature", f"checkpoint of tree size {cp['tree_size']} has an invalid signature",
                index=index, expected=f"Ed25519 signature by {kid[:12]}", found=str(cp["signature"])[:16],
            )
