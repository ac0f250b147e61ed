"""The ledger: an append-only, hash-chained RFC 6962 Merkle log with Ed25519-signed checkpoints.

Each append, under a lock that serializes writers across processes, sets ``predicate.previous`` to the leaf hash of
the entry before it (the hash chain), stores the entry's canonical bytes, the O(log n) Merkle nodes it completes,
the verifiable index's updated paths (``provenance.index``: each subject digest's complete entry list) and a
checkpoint of the new tree and index signed with the ledger key (as JSON and as a C2SP signed note): all in one
durable transaction, so a crash leaves the entry wholly there or absent. Before building on them it checks that the
stored nodes lead to the roots the latest checkpoint signed. Reading, lookups with proofs and verification are in
``provenance.reading``; key rotation in ``provenance.rotation``.

Example::

    >>> from provenance.entries import make_statement
    >>> led = open_ledger("sqlite:////tmp/tg-doc/ledger.db")           # doctest: +SKIP
    >>> st = make_statement(subjects=[("a.csv", "sha256:" + "ab" * 32)], predicate={"verdict": "approved"})
    >>> led.append(st).index                                             # doctest: +SKIP
    0
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provenance import config, index, vmap, witness
from provenance.backends import SqlStore, open_store
from provenance.entries import parse_entry, source_name, subject_digests, validate_statement
from provenance.errors import LedgerIntegrityError, ProvenanceConfigError, ProvenanceInputError
from provenance.hashing import canonical_json
from provenance.merkle import (
    Frontier,
    leaf_hash,
    node_id,
    subtree_ids,
)
from provenance.merkle import fold as _fold
from provenance.reading import LedgerReading
from provenance.records import AppendResult, DigestHistory, LedgerRecord
from provenance.rotation import make_rotation, rotation_of
from provenance.signing import MAP_ROOT, TrustedKeys, key_id, public_key_b64, sign_checkpoint
from provenance.verify import parse_checkpoint

__all__ = ["open_ledger", "Ledger", "AppendResult", "LedgerRecord", "DigestHistory"]




def open_ledger(
    url: str | None = None,
    *,
    signing_key: config.KeySpec = None,
    trusted_keys: config.TrustedSpec = None,
    approver_keys: config.TrustedSpec = None,
    create: bool = True,
) -> Ledger:
    """Open the ledger at ``url`` (default ``$TRAINGUARD_LEDGER`` or ``sqlite:///.trainguard/ledger.db``); with
    ``create=False`` (readers: gate, audit commands) a ledger that does not exist is ``ledger:not_found``."""
    resolved = config.ledger_url(url)
    return Ledger(open_store(resolved, create=create), resolved, signing_key, trusted_keys, approver_keys)


class Ledger(LedgerReading):
    """A ledger on one store; see the module docstring. Use ``open_ledger`` to make one."""

    def __init__(
        self,
        store: SqlStore,
        url: str,
        signing_key: config.KeySpec = None,
        trusted_keys: config.TrustedSpec = None,
        approver_keys: config.TrustedSpec = None,
    ) -> None:
        self.store = store
        self.url = url
        self._key_spec = signing_key
        self._trusted_spec = trusted_keys
        self._approver_spec = approver_keys
        self._key = config.resolve_signing_key(signing_key, url, create=False)
        self.upgraded = False  # set when an append or ``upgrade`` built the verifiable index of an older ledger
        self._key_ids: dict[int, str] = {}
        self._signed_body = b""  # the checkpoint this process signed last, as stored

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- keys ------------------------------------------------------------------------------------------------
    def signing_key(self) -> Any:
        """The private signing key, created beside the ledger on first need."""
        if self._key is None:
            # another process may have created it since this ledger was opened
            key = config.resolve_signing_key(self._key_spec, self.url, create=False)
            if key is None:
                with self.store.read():
                    entries = self.store.size()
                if entries:  # fail closed: a new key would sign this history, and nobody trusts it
                    raise ProvenanceConfigError(
                        "ledger:no_signing_key",
                        f"the ledger {self.store.describe()} has {entries} entries but its signing key is not at "
                        f"{config.default_key_path(self.url)}: point $TRAINGUARD_SIGNING_KEY at it (for "
                        "PostgreSQL, or $TRAINGUARD_HOME at its directory); trainguard creates a key only for an "
                        "empty ledger",
                    )
                key = config.resolve_signing_key(self._key_spec, self.url, create=True)
            self._key = key
            self.__dict__.pop("trusted", None)  # the key is now the default trusted key
            self.__dict__.pop("approvers", None)
        return self._key

    @cached_property
    def trusted(self) -> TrustedKeys:
        return config.resolve_trusted(self._trusted_spec, self._key)

    @cached_property
    def approvers(self) -> TrustedKeys:
        return config.resolve_approvers(self._approver_spec, self.trusted)

    def public_keys(self) -> list[str]:
        """Base64 public keys a verifier of this ledger trusts."""
        return [public_key_b64(k) for k in self.trusted.keys.values()]

    @cached_property
    def origin(self) -> str:
        with self.store.write():
            origin = self.store.get_meta("origin")
            if origin is None:
                import uuid

                origin = f"trainguard-ledger/{uuid.uuid4()}"
                self.store.set_meta("origin", origin)
        return origin

    # --- writing ---------------------------------------------------------------------------------------------
    def require_writable(self) -> None:
        """Raise ``ledger:read_only`` (exit 2) when this process could not append here; writes nothing."""
        self.store.require_writable()

    def require_appendable(self) -> None:
        """Raise, writing nothing, when an append would fail for want of a writable store (``ledger:read_only``),
        of the ledger's signing key (``ledger:no_signing_key``), or because the key here is not the one that
        signed the latest checkpoint (``ledger:key_mismatch``). An empty ledger gets its key now."""
        self.require_writable()
        key = self.signing_key()
        with self.store.read():
            if self.store.size():
                self._require_same_key(key)

    def append(self, statement: Mapping[str, Any]) -> AppendResult:
        """Durably append ``statement`` (validated; ``predicate.previous`` is set here) and sign a checkpoint."""
        validate_statement(statement)
        # only predicate.previous is set here: a copy of the top level and of the predicate protects the caller
        st = {**statement, "predicate": {**statement["predicate"]}}
        key = self.signing_key()
        origin = self.origin
        store = self.store
        with store.write():
            n = store.size()
            latest = self._latest_for_append(key, n)
            if not n:
                store.create_map_schema()  # an empty ledger made before the index has no map tables
            want = subtree_ids(0, n) + ([node_id(0, n - 1)] if n else [])
            nodes = store.nodes(want)
            missing = [i for i in want if i not in nodes]
            if missing:
                raise LedgerIntegrityError(
                    "ledger:hash_mismatch", "stored Merkle nodes of the tree's right border are missing",
                    index=n - 1, expected=f"nodes {missing[:3]}", found="nothing",
                )
            frontier = Frontier()
            frontier.size = n
            frontier.stack = [nodes[i] for i in subtree_ids(0, n)]
            if latest is not None and _fold(frontier.stack).hex() != latest["root_hash"]:
                raise LedgerIntegrityError(  # never sign a root built on changed rows
                    "ledger:hash_mismatch", "the stored Merkle nodes of the tree's right border do not lead to the "
                    "latest signed root", index=n - 1, expected=latest["root_hash"], found=_fold(frontier.stack).hex())
            if latest is not None and MAP_ROOT not in latest:
                latest = self._build_index(key, origin, latest)
            signed_map = bytes.fromhex(latest[MAP_ROOT]) if latest is not None else vmap.EMPTY
            st["predicate"]["previous"] = nodes[node_id(0, n - 1)].hex() if n else None
            body = canonical_json(st)
            created = frontier.push(leaf_hash(body))
            map_root = index.add_entry(store, subject_digests(st), n, created[0][1], signed_root=signed_map)
            cp = sign_checkpoint(key, origin=origin, tree_size=n + 1, root_hash=frontier.root().hex(),
                                 map_root=map_root.hex())
            pred = st["predicate"]
            cp_body = canonical_json(cp)
            store.insert(
                [(n, body, source_name(st), pred["verdict"], pred.get("time"))],
                created,
                [(d, n) for d in subject_digests(st)],
                [(n + 1, cp_body)],
            )
            from provenance.checkpoint_note import checkpoint_note

            store.put_note(n + 1, checkpoint_note(cp, key))
        self._signed_body = cp_body
        witness.remember(cp)
        return AppendResult(index=n, entry_hash=created[0][1].hex(), checkpoint=cp)

    def _latest_for_append(self, key: Any, n: int) -> dict[str, Any] | None:
        """The latest checkpoint, checked before an append builds on it (inside the write transaction)."""
        if not n:
            return None
        body = self.store.latest_checkpoint()
        if body is None:
            raise self._no_checkpoint("append")
        latest = parse_checkpoint(body, where="latest checkpoint")
        if latest["tree_size"] != n:
            raise LedgerIntegrityError(
                "ledger:unsigned_entry", "the latest signed checkpoint does not cover every entry (a checkpoint "
                "row was removed)", index=n - 1, expected=f"a checkpoint of {n} entries",
                found=f"one of {latest['tree_size']}")
        self._require_same_key(key, latest)
        if body != self._signed_body:  # the exact bytes this process signed last are known good
            self._check_signed(latest)
        return latest

    def _build_index(self, key: Any, origin: str, latest: dict[str, Any]) -> dict[str, Any]:
        """Build the verifiable index of a ledger made before it, and re-sign its latest checkpoint with the index
        root (inside the write transaction). The entries must lead to the signed root first."""
        self.store.create_map_schema()
        size = int(latest["tree_size"])
        root, keys = index.rebuild(self.store, tree_size=size, root_hash=str(latest["root_hash"]))
        cp = sign_checkpoint(key, origin=origin, tree_size=size, root_hash=str(latest["root_hash"]),
                             map_root=root.hex())
        self.store.replace_checkpoint(size, canonical_json(cp))
        from provenance.checkpoint_note import checkpoint_note

        self.store.put_note(size, checkpoint_note(cp, key))
        index.note_upgrade(self.store.describe(), size, keys)
        self.upgraded = True
        return cp

    def upgrade(self, *, rebuild: bool = False) -> dict[str, Any]:
        """Give a ledger made before the verifiable index its index and a checkpoint signing the index root
        (``trainguard ledger upgrade``); ``rebuild`` also rebuilds an existing index whose rows were damaged.
        Needs the signing key; idempotent."""
        key = self.signing_key()
        origin = self.origin
        self.upgraded = False
        with self.store.write():
            n = self.store.size()
            latest = self._latest_for_append(key, n)
            if latest is not None and (rebuild or MAP_ROOT not in latest):
                latest = self._build_index(key, origin, latest)
        return {"entries": n, "upgraded": self.upgraded, "checkpoint": latest}

    def rotate(self, new_key: Ed25519PrivateKey, *, reason: str, actor: str | None = None) -> AppendResult:
        """Append a rotation entry from the current signing key to ``new_key`` (signed by both; its checkpoint is
        the old key's last), then sign with ``new_key``. Store the new key where the ledger's key is read from
        (``trainguard keys rotate`` does)."""
        old = self.signing_key()
        if key_id(old.public_key()) == key_id(new_key.public_key()):
            raise ProvenanceInputError("keys:same_key", "the new signing key is the current one")
        res = self.append(make_rotation(old, new_key, origin=self.origin, reason=reason, actor=actor))
        self._key = new_key
        self.__dict__.pop("trusted", None)  # the default trusted key follows the signing key
        self.__dict__.pop("approvers", None)
        return res

    def _require_same_key(self, key: Any, latest: Mapping[str, Any] | None = None) -> None:
        """Fail closed when the latest checkpoint is signed by another key: appending would re-sign the history
        with a key its readers may not trust (or trust wrongly), unnoticed by a plain ``verify``. The one exception
        is the key the newest entry rotated to."""
        if latest is None:
            body = self.store.latest_checkpoint()
            if body is None:
                return
            latest = parse_checkpoint(body, where="latest checkpoint")
        signed_by = str(latest.get("key_id", ""))
        ours = self._key_ids.get(id(key)) or key_id(key.public_key())
        self._key_ids = {id(key): ours}
        if signed_by == ours:
            return
        last = self.store.entry(int(latest["tree_size"]) - 1) if latest["tree_size"] else None
        rot = rotation_of(parse_entry(last, int(latest["tree_size"]) - 1)) if last is not None else None
        if rot is not None and rot.get("old_key_id") == signed_by and rot.get("new_key_id") == ours:
            return  # the newest entry rotated the signing key to this one: it signs from here on
        if signed_by != ours:
            raise ProvenanceConfigError(
                "ledger:key_mismatch",
                f"the ledger {self.store.describe()} was last signed by key {signed_by[:12]}, not by this signing key "
                f"{ours[:12]}: point $TRAINGUARD_SIGNING_KEY at the ledger's key",
            )

