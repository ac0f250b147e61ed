r"""C2SP signed notes (https://c2sp.org/signed-note) and tlog checkpoints (https://c2sp.org/tlog-checkpoint).

Ed25519 only. A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
``— <key name> base64(key hash || signature)``; the signature covers exactly the text bytes and the key hash is
SHA-256(name || "\n" || 0x01 || raw public key)[:4]. Verifier keys are ``<name>+<hash hex>+base64(0x01 || key)``.
This is the format of golang.org/x/mod/sumdb/note, so notes and keys interoperate with Go and transparency-dev.
A checkpoint is the note text ``origin\nsize\nbase64(root)\n`` plus optional extension lines.

Example::

    >>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    >>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    >>> text = checkpoint_text("example.com/log", 2, bytes(32))
    >>> print(text, end="")
    example.com/log
    2
    AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
    >>> note = sign_note(text, "example.com/log", key)
    >>> verify_note(note, {"example.com/log": key.public_key()}) == (text, ["example.com/log"])
    True
    >>> parse_checkpoint(text).tree_size
    2
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provenance.errors import LedgerIntegrityError, ProvenanceConfigError

__all__ = [
    "Checkpoint", "Signature", "key_hash", "verifier_key", "parse_verifier_key", "checkpoint_text", "sign_note",
    "split_note", "verify_note", "parse_checkpoint",
]

_ALG_ED25519 = b"\x01"  # signature type byte of Ed25519 in c2sp.org/signed-note
_SIG_PREFIX = "\u2014 "  # em dash, space
_MAX_SIGNATURES = 100  # the spec asks for at least 16; golang.org/x/mod/sumdb/note allows 100
_MAX_TREE_SIZE = 2**64 - 1  # tree sizes are uint64 in transparency-dev/formats
# Notes may not hold ASCII control characters other than newline; lone surrogates are not UTF-8.
_FORBIDDEN = re.compile(r"[\x00-\x09\x0b-\x1f\ud800-\udfff]")
_HEX8 = re.compile(r"[0-9a-f]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True)
class Checkpoint:
    """The text of a tlog checkpoint: origin, tree size, RFC 6962 root hash and extension lines."""
    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Signature:
    """One signature line of a note: key name, 4-byte key hash and the signature bytes after it."""
    name: str
    key_hash: bytes
    signature: bytes


def _b64decode(text: str) -> bytes | None:
    """Strict standard base64 (RFC 4648 section 4, padded, canonical), or None when ``text`` is not that."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _valid_name(name: str) -> bool:
    """Key names are non-empty, without Unicode spaces, '+' or control characters."""
    return bool(name) and not _FORBIDDEN.search(name) and not any(c.isspace() or c == "+" for c in name)


def _check_name(name: str) -> None:
    if not _valid_name(name):
        why = f"expected a non-empty key name without spaces, '+' or control characters, found {name!r}"
        raise ProvenanceConfigError("keys:bad_key_name", why)


def _is_line(line: str) -> bool:
    return bool(line) and "\n" not in line and not _FORBIDDEN.search(line)


def key_hash(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + _ALG_ED25519 + public_key.public_bytes_raw()).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The verifier key string ``<name>+<8 hex>+base64(0x01 || public key)``."""
    _check_name(name)
    return f"{name}+{key_hash(name, public_key).hex()}+{_b64(_ALG_ED25519 + public_key.public_bytes_raw())}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """Name, key hash and public key of a verifier key; ``keys:bad_verifier_key`` when anything is off."""

    def bad(part: str, expected: str, found: str) -> ProvenanceConfigError:
        return ProvenanceConfigError("keys:bad_verifier_key", f"bad verifier key {part}: expected {expected}, found {found}")

    if vkey.startswith("PRIVATE+KEY+"):
        raise bad("layout", "a public verifier key", "a PRIVATE+KEY signer key (keep it secret)")
    parts = vkey.split("+", 2)  # names have no '+'; base64 may
    if len(parts) != 3:
        raise bad("layout", "<name>+<8 hex digits>+<base64 key>", f"{len(parts)} '+'-separated part(s)")
    name, hash_hex, key_b64 = parts
    if not _valid_name(name):
        raise bad("name", "non-empty, without spaces or control characters", repr(name))
    if not _HEX8.fullmatch(hash_hex):
        raise bad("hash", "8 lowercase hex digits", repr(hash_hex))
    raw = _b64decode(key_b64)
    if raw is None:
        raise bad("data", "standard padded base64", repr(key_b64))
    if raw[:1] != _ALG_ED25519:
        raise bad("type", "01 (Ed25519)", raw[:1].hex() or "no bytes")
    if len(raw) != 33:
        raise bad("length", "32 Ed25519 key bytes after the type byte", f"{len(raw) - 1}")
    public_key = Ed25519PublicKey.from_public_bytes(raw[1:])  # any 32 bytes load; points are checked on use
    want = key_hash(name, public_key)
    if want.hex() != hash_hex:
        raise bad("hash", f"{want.hex()} (computed from name and key)", hash_hex)
    return name, want, public_key


def checkpoint_text(origin: str, tree_size: int, root_hash: bytes, extensions: Sequence[str] = ()) -> str:
    """The note text of a checkpoint; ``ValueError`` on a value the format cannot carry."""
    if not _is_line(origin):
        raise ValueError(f"checkpoint origin must be one non-empty line without control characters: {origin!r}")
    if isinstance(tree_size, bool) or not isinstance(tree_size, int) or not 0 <= tree_size <= _MAX_TREE_SIZE:
        raise ValueError(f"checkpoint tree size must be an int in [0, 2**64), found {tree_size!r}")
    if len(root_hash) != 32:
        raise ValueError(f"checkpoint root hash must be 32 bytes, found {len(root_hash)}")
    if isinstance(extensions, str):
        raise ValueError("checkpoint extensions must be a sequence of lines, not one string")
    for line in extensions:
        if not _is_line(line):
            raise ValueError(f"checkpoint extension must be a non-empty line without control characters: {line!r}")
    return "".join(f"{line}\n" for line in (origin, str(tree_size), _b64(bytes(root_hash)), *extensions))


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """The signed note: ``text``, a blank line and one signature line by ``key`` under ``name``."""
    if not text.endswith("\n") or _FORBIDDEN.search(text):
        raise ValueError("note text must end in a newline and hold no control characters other than newline")
    _check_name(name)
    signature = key_hash(name, key.public_key()) + key.sign(text.encode())
    return f"{text}\n{_SIG_PREFIX}{name} {_b64(signature)}\n"


def split_note(note: str) -> tuple[str, list[Signature]]:
    """The text of ``note`` and its parsed (unverified) signature lines; ``ledger:bad_note`` when malformed."""

    def bad(why: str, expected: str, found: str) -> LedgerIntegrityError:
        return LedgerIntegrityError("ledger:bad_note", f"malformed signed note: {why}", expected=expected, found=found)

    forbidden = _FORBIDDEN.search(note)
    if forbidden:
        raise bad(f"forbidden character at offset {forbidden.start()}", "UTF-8 text", repr(forbidden.group()))
    split = note.rfind("\n\n")
    if split < 0:
        raise bad("no signature block", "text, a blank line, then signature lines", "no blank line")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise bad("unterminated signature block", "signature lines ending in a newline", repr(block[-20:]))
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise bad("too many signatures", f"at most {_MAX_SIGNATURES}", str(len(lines)))
    signatures = []
    for number, line in enumerate(lines, 1):
        name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        raw = _b64decode(b64)
        if not line.startswith(_SIG_PREFIX) or not _valid_name(name) or raw is None or len(raw) < 5:
            raise bad(f"signature line {number}", "'\u2014 <key name> <base64(key hash || signature)>'", repr(line))
        signatures.append(Signature(name, raw[:4], raw[4:]))
    return text, signatures


def verify_note(
    note: str, verifiers: Mapping[str, Ed25519PublicKey] | Iterable[tuple[str, Ed25519PublicKey]]
) -> tuple[str, list[str]]:
    """The text of ``note`` and the names of the trusted keys that signed it.

    Signatures by unknown keys (name and key hash not both known) are ignored, as the spec requires; every
    signature claiming a known key must verify (``ledger:bad_note_signature``), and at least one must be there
    (``ledger:untrusted_note``).
    """
    text, signatures = split_note(note)
    pairs = verifiers.items() if isinstance(verifiers, Mapping) else verifiers
    known: dict[tuple[str, bytes], Ed25519PublicKey] = {}
    for name, public_key in pairs:
        _check_name(name)
        ident = (name, key_hash(name, public_key))
        if known.setdefault(ident, public_key).public_bytes_raw() != public_key.public_bytes_raw():
            why = f"two trusted keys share the name {name!r} and key hash {ident[1].hex()}"
            raise ProvenanceConfigError("keys:ambiguous_verifier", why)
    data = text.encode()
    signers: list[str] = []
    for sig in signatures:
        public_key = known.get((sig.name, sig.key_hash))
        if public_key is None:
            continue
        try:
            public_key.verify(sig.signature, data)  # a wrong-length signature is an InvalidSignature too
        except InvalidSignature:
            raise LedgerIntegrityError("ledger:bad_note_signature", "a trusted key's signature does not verify",
                                       expected=f"a valid Ed25519 signature by {sig.name}+{sig.key_hash.hex()}",
                                       found=f"{len(sig.signature)} bytes that do not verify") from None
        if sig.name not in signers:
            signers.append(sig.name)
    if not signers:
        trusted = ", ".join(f"{n}+{h.hex()}" for n, h in known) or "(no trusted keys)"
        found = "signatures by " + ", ".join(f"{s.name}+{s.key_hash.hex()}" for s in signatures)
        raise LedgerIntegrityError("ledger:untrusted_note", "no trusted key signed the note",
                                   expected=f"a signature by one of {trusted}", found=found)
    return text, signers


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text (from ``verify_note``); ``ledger:bad_note`` when malformed."""

    def bad(why: str, expected: str, found: str) -> LedgerIntegrityError:
        return LedgerIntegrityError("ledger:bad_note", f"malformed checkpoint: {why}", expected=expected, found=found)

    if not text.endswith("\n"):
        raise bad("unterminated text", "a final newline", repr(text[-20:]))
    forbidden = _FORBIDDEN.search(text)
    if forbidden:
        raise bad(f"forbidden character at offset {forbidden.start()}", "UTF-8 text", repr(forbidden.group()))
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise bad("too few lines", "origin, tree size and root hash lines", f"{len(lines)} line(s)")
    origin, size, root_b64, *extensions = lines
    if not origin:
        raise bad("empty origin", "a non-empty origin line", "an empty line")
    if not _DECIMAL.fullmatch(size) or int(size) > _MAX_TREE_SIZE:
        raise bad("tree size", "a decimal below 2**64 without leading zeros", repr(size))
    root = _b64decode(root_b64)
    if root is None or len(root) != 32:
        raise bad("root hash", "standard base64 of 32 bytes", repr(root_b64))
    if "" in extensions:
        raise bad("empty extension line", "non-empty extension lines", f"line {extensions.index('') + 4} empty")
    return Checkpoint(origin, int(size), root, tuple(extensions))
