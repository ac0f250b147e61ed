"""Checkpoints in the C2SP tlog-checkpoint signed-note form, so standard transparency-log tooling reads them.

Each append signs its checkpoint twice with the ledger key: as JSON (``provenance.signing``) and as a signed note::

    <origin>
    <tree size>
    <base64 log root>
    trainguard-map-root <base64 index root>

    — <origin> <base64(4-byte key hash || Ed25519 signature)>

The note's key name is the ledger's origin, so its verifier key is ``verifier_key(origin, public key)``
(``<origin>+<key hash>+<base64(0x01 || key)>``), printed by ``trainguard ledger checkpoint --json``.

Example::

    >>> from provenance.signing import generate_private_key, sign_checkpoint, TrustedKeys
    >>> key = generate_private_key()
    >>> cp = sign_checkpoint(key, origin="example.com/log", tree_size=2, root_hash="11" * 32, map_root="22" * 32)
    >>> n = checkpoint_note(cp, key)
    >>> n.splitlines()[:2]
    ['example.com/log', '2']
    >>> verify_checkpoint_note(n, TrustedKeys.of([key.public_key()]), cp=cp).tree_size
    2
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provenance import note
from provenance.errors import LedgerIntegrityError
from provenance.signing import MAP_ROOT, TrustedKeys

__all__ = ["MAP_EXTENSION", "checkpoint_note", "verify_checkpoint_note", "verifier_keys"]

MAP_EXTENSION = "trainguard-map-root"


def checkpoint_note(cp: Mapping[str, Any], key: Ed25519PrivateKey) -> str:
    """The signed note of the JSON checkpoint ``cp``, signed by ``key`` under the name ``cp["origin"]``."""
    ext = [f"{MAP_EXTENSION} {base64.b64encode(bytes.fromhex(cp[MAP_ROOT])).decode()}"] if MAP_ROOT in cp else []
    text = note.checkpoint_text(str(cp["origin"]), int(cp["tree_size"]), bytes.fromhex(cp["root_hash"]), ext)
    return note.sign_note(text, str(cp["origin"]), key)


def verifier_keys(origin: str, trusted: TrustedKeys) -> list[str]:
    """C2SP verifier keys of the trusted keys for notes of the ledger ``origin``."""
    return [note.verifier_key(origin, pub) for pub in trusted.keys.values()]


def map_root_of(ck: note.Checkpoint) -> bytes | None:
    """The index root a checkpoint note carries (None when it has none)."""
    for line in ck.extensions:
        name, _, value = line.partition(" ")
        if name == MAP_EXTENSION:
            return base64.b64decode(value, validate=True)
    return None


def verify_checkpoint_note(text: str, trusted: TrustedKeys, *, cp: Mapping[str, Any] | None = None
                           ) -> note.Checkpoint:
    """The checkpoint of a signed note that a trusted key signed under the note's origin; with ``cp`` (a JSON
    checkpoint) it must state the same origin, size, log root and index root. ``LedgerIntegrityError`` otherwise."""
    origin = text.split("\n", 1)[0]
    body, _names = note.verify_note(text, [(origin, pub) for pub in trusted.keys.values()])
    ck = note.parse_checkpoint(body)
    if cp is not None:
        want = (cp["origin"], cp["tree_size"], cp["root_hash"], cp.get(MAP_ROOT))
        root = map_root_of(ck)
        got = (ck.origin, ck.tree_size, ck.root_hash.hex(), None if root is None else root.hex())
        if want != got:
            raise LedgerIntegrityError("ledger:bad_note", "the checkpoint note states another tree than the JSON "
                                       "checkpoint", index=int(cp["tree_size"]) - 1, expected=str(want),
                                       found=str(got))
    return ck
