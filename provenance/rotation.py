"""Key rotation: the ledger's signing key is replaced by an entry that the old key signs and the new key accepts.

A rotation entry (``predicateType`` ``https://trainguard.dev/key-rotation/v1``, verdict ``key_rotation``) names the
new key (subject ``key:<new key id>``, digest ``sha256:<new key id>``) and the ledger's list of rotations (subject
``trainguard:key-rotations``, whose digest ``ROTATIONS_DIGEST`` is the SHA-256 of that text), so the verifiable
index proves the complete list of rotations like any digest's history. Its ``predicate.rotation`` holds ``origin``,
``old_key_id``, ``old_public_key``, ``new_key_id``, ``new_public_key`` (base64 of the raw 32 bytes) and two Ed25519
signatures over the canonical JSON of those fields with ``"type": "trainguard key rotation v1"``: ``signature`` by the old key and
``new_key_signature`` by the new one (it holds the key it accepts). The checkpoint of the rotation entry (tree size
``index + 1``) is the old key's last; every later one is the new key's.

A verifier follows the chain from the keys it trusts: a valid rotation from a trusted key makes the new key
trusted for checkpoints after the rotation, and a valid rotation to a trusted key makes the old key trusted for
checkpoints up to the rotation (the new key vouches for the history it takes over). A rotated-out key signs no
later checkpoint, and a key a rotation introduced signs no earlier one, even where it is trusted directly.

Example::

    >>> from provenance.signing import TrustedKeys, generate_private_key, key_id
    >>> old, new = generate_private_key(), generate_private_key()
    >>> st = make_rotation(old, new, origin="demo", reason="yearly rotation")
    >>> chain = KeyChain(TrustedKeys.of([old.public_key()]), [(7, st)])
    >>> key_id(new.public_key()) in chain.valid_keys(tree_size=9), key_id(old.public_key()) in chain.valid_keys(tree_size=9)
    (True, False)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provenance.entries import ROTATION_V1, make_statement
from provenance.errors import LedgerIntegrityError, ProvenanceConfigError
from provenance.hashing import canonical_json
from provenance.signing import TrustedKeys, key_id, public_key_b64, public_key_from_b64, sign_bytes

__all__ = ["ROTATIONS_NAME", "ROTATIONS_DIGEST", "make_rotation", "rotation_of", "KeyChain"]

ROTATIONS_NAME = "trainguard:key-rotations"
ROTATIONS_DIGEST = "sha256:" + hashlib.sha256(ROTATIONS_NAME.encode("ascii")).hexdigest()
_FIELDS = ("origin", "old_key_id", "old_public_key", "new_key_id", "new_public_key")


def _message(rotation: Mapping[str, Any]) -> bytes:
    return canonical_json({"type": "trainguard key rotation v1", **{f: rotation[f] for f in _FIELDS}})


def make_rotation(old_key: Ed25519PrivateKey, new_key: Ed25519PrivateKey, *, origin: str, reason: str,
                  actor: str | None = None) -> dict[str, Any]:
    """The rotation statement from ``old_key`` to ``new_key`` on the ledger ``origin``, signed by both."""
    old_pub, new_pub = old_key.public_key(), new_key.public_key()
    rotation: dict[str, Any] = {"origin": origin, "old_key_id": key_id(old_pub), "old_public_key": public_key_b64(old_pub),
                                "new_key_id": key_id(new_pub), "new_public_key": public_key_b64(new_pub)}
    message = _message(rotation)
    rotation.update(signature=sign_bytes(old_key, message), new_key_signature=sign_bytes(new_key, message))
    predicate: dict[str, Any] = {"verdict": "key_rotation", "reason": reason, "rotation": rotation}
    if actor:
        predicate["actor"] = actor
    return make_statement(subjects=[(f"key:{rotation['new_key_id']}", "sha256:" + rotation["new_key_id"]),
                                    (ROTATIONS_NAME, ROTATIONS_DIGEST)],
                          predicate=predicate, predicate_type=ROTATION_V1)


def rotation_of(statement: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``predicate.rotation`` of a rotation entry, None for any other entry."""
    if statement.get("predicateType") != ROTATION_V1:
        return None
    return dict(statement["predicate"]["rotation"])


class KeyChain:
    """Trusted keys extended by a ledger's rotations, each key with the tree sizes it may sign.

    ``rotations`` are ``(index, statement)`` of the rotation entries; a rotation extends the chain when the chain
    trusts its old or its new key (until nothing changes, so chains run both ways). ``ledger:bad_rotation`` when
    a rotation the chain reaches does not carry both valid signatures."""

    def __init__(self, trusted: TrustedKeys, rotations: Iterable[tuple[int, Mapping[str, Any]]] = ()) -> None:
        self.direct = trusted
        self.keys: dict[str, Ed25519PublicKey] = dict(trusted.keys)
        self.valid_from: dict[str, int] = {}  # a key a rotation introduced signs tree sizes above this
        self.valid_until: dict[str, int] = {}  # a rotated-out key signs tree sizes up to this
        pending = [(i, rot) for i, st in rotations if (rot := rotation_of(st)) is not None]
        changed = True
        while changed and pending:
            changed = False
            for item in list(pending):
                index, rot = item
                if str(rot.get("old_key_id")) in self.keys or str(rot.get("new_key_id")) in self.keys:
                    self._apply(index, rot)
                    pending.remove(item)
                    changed = True

    def _apply(self, index: int, rot: Mapping[str, Any]) -> None:
        old_pub = _key(rot, "old", index)
        new_pub = _key(rot, "new", index)
        message = _message(rot)
        pair = TrustedKeys({key_id(old_pub): old_pub, key_id(new_pub): new_pub})
        for who, field in (("old", "signature"), ("new", "new_key_signature")):
            kid = str(rot[f"{who}_key_id"])
            if not pair.verify(kid, str(rot.get(field, "")), message):
                raise LedgerIntegrityError("ledger:bad_rotation", f"rotation entry's {field} by the {who} key does "
                                           "not check", index=index, expected=f"Ed25519 signature by {kid[:12]}",
                                           found=str(rot.get(field, ""))[:16])
        old, new = key_id(old_pub), key_id(new_pub)
        self.valid_from[new] = max(index + 1, self.valid_from.get(new, index + 1))
        self.keys.setdefault(new, new_pub)
        self.keys.setdefault(old, old_pub)
        self.valid_until[old] = min(index + 1, self.valid_until.get(old, index + 1))

    def valid_keys(self, *, tree_size: int) -> TrustedKeys:
        """The keys that may sign a checkpoint of ``tree_size``."""
        ok = {kid: pub for kid, pub in self.keys.items()
              if self.valid_from.get(kid, -1) < tree_size <= self.valid_until.get(kid, tree_size)}
        return TrustedKeys(ok, source=f"{self.direct.source} and its key rotations")

    def check_checkpoint(self, cp: Mapping[str, Any], *, index: int | None = None, signed: bool = True) -> None:
        """``TrustedKeys.check_checkpoint`` with the keys valid at ``cp``'s tree size (``signed=False``: its
        signature was checked already, check only the key's range); a rotated-out key is ``ledger:retired_key``."""
        size, kid = int(cp["tree_size"]), str(cp.get("key_id"))
        if kid in self.keys and size > self.valid_until.get(kid, size):
            raise LedgerIntegrityError(
                "ledger:retired_key", f"checkpoint of tree size {size} is signed by key {kid[:12]}, rotated out at "
                f"tree size {self.valid_until[kid]}", index=index, expected="the key that replaced it",
                found=kid[:12])
        if kid in self.keys and size <= self.valid_from.get(kid, -1):
            raise LedgerIntegrityError(
                "ledger:untrusted_key", f"checkpoint of tree size {size} is signed by key {kid[:12]} before the "
                f"rotation that introduced it", index=index, expected="the key it replaced", found=kid[:12])
        if signed:
            self.valid_keys(tree_size=size).check_checkpoint(cp, index=index)


def _key(rot: Mapping[str, Any], who: str, index: int) -> Ed25519PublicKey:
    try:
        pub = public_key_from_b64(str(rot.get(f"{who}_public_key")), where=f"rotation entry {index}")
    except ProvenanceConfigError as exc:
        raise LedgerIntegrityError("ledger:bad_rotation", f"rotation entry holds no valid {who} public key",
                                   index=index, expected="base64 of 32 raw bytes", found=str(exc)) from exc
    if key_id(pub) != rot.get(f"{who}_key_id"):
        raise LedgerIntegrityError("ledger:bad_rotation", f"rotation entry's {who} key does not match its key id",
                                   index=index, expected=str(rot.get(f"{who}_key_id"))[:12], found=key_id(pub)[:12])
    return pub
