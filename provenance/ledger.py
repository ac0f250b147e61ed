"""The ledger: an append-only, hash-chained RFC 6962 Merkle log with Ed25519-signed checkpoints.

Each append, under a lock that serializes writers across processes, sets ``predicate.previous`` to the leaf hash of
the entry before it (the hash chain), stores the entry's canonical bytes, the O(log n) Merkle nodes it completes,
the subject digests (the lookup index) and a checkpoint of the new tree signed with the ledger key — all in one
durable transaction, so a crash leaves the entry wholly there or absent. Every lookup answer carries an inclusion
proof checked against the latest checkpoint, whose signature is checked against the trusted keys.

Example::

    >>> from provenance.entries import make_statement
    >>> led = open_ledger("sqlite:////tmp/tg-doc/ledger.db")           # doctest: +SKIP
    >>> st = make_statement(subjects=[("a.csv", "sha256:" + "ab" * 32)], predicate={"verdict": "approved"})
    >>> led.append(st).index                                             # doctest: +SKIP
    0
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

from provenance import config, index, vmap, witness
from provenance.backends import SqlStore, open_store
from provenance.checkpoint_note import checkpoint_note
from provenance.entries import parse_entry, source_name, subject_digests, validate_statement
from provenance.errors import LedgerIntegrityError, ProvenanceConfigError, ProvenanceInputError
from provenance.hashing import canonical_json, parse_digest
from provenance.merkle import (
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_id,
    subtree_ids,
    verify_consistency,
)
from provenance.merkle import fold as _fold
from provenance.merkle import verify_inclusion as _verify_inclusion
from provenance.records import AppendResult, DigestHistory, LedgerRecord
from provenance.signing import MAP_ROOT, TrustedKeys, key_id, public_key_b64, sign_checkpoint
from provenance.verify import VerifyReport, parse_checkpoint, require_checkpoint, verify_contents

__all__ = ["open_ledger", "Ledger", "AppendResult", "LedgerRecord", "DigestHistory"]


_TREE_SIZE = re.compile(rb'"tree_size":(\d+)[,}]')
_ROOT_HASH = re.compile(rb'"root_hash":"([0-9a-f]{64})"')


def _size_and_root(size: int, body: bytes) -> dict[str, Any]:
    """``tree_size`` and ``root_hash`` of a stored checkpoint, falling back to a full parse when unusual."""
    ts, rh = _TREE_SIZE.search(body), _ROOT_HASH.search(body)
    if ts is None or rh is None or body.count(b'"root_hash"') != 1 or body.count(b'"tree_size"') != 1:
        cp = parse_checkpoint(body, where=f"checkpoint {size}")
    else:
        cp = {"tree_size": int(ts.group(1)), "root_hash": rh.group(1).decode("ascii")}
    if cp["tree_size"] != size:
        raise LedgerIntegrityError(
            "ledger:bad_checkpoint", "checkpoint is stored under another tree size", index=size - 1,
            expected=str(size), found=str(cp["tree_size"]),
        )
    return cp


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


class Ledger:
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
            store.insert(
                [(n, body, source_name(st), pred["verdict"], pred.get("time"))],
                created,
                [(d, n) for d in subject_digests(st)],
                [(n + 1, canonical_json(cp))],
            )
            store.put_note(n + 1, checkpoint_note(cp, key))
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
        self._require_same_key(key)
        self.trusted.check_checkpoint(latest)
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

    def _require_same_key(self, key: Any) -> None:
        """Fail closed when the latest checkpoint is signed by another key: appending would re-sign the history
        with a key its readers may not trust (or trust wrongly), unnoticed by a plain ``verify``."""
        body = self.store.latest_checkpoint()
        if body is None:
            return
        signed_by = str(parse_checkpoint(body, where="latest checkpoint").get("key_id", ""))
        ours = key_id(key.public_key())
        if signed_by != ours:
            raise ProvenanceConfigError(
                "ledger:key_mismatch",
                f"the ledger {self.store.describe()} was last signed by key {signed_by[:12]}, not by this signing key "
                f"{ours[:12]}: point $TRAINGUARD_SIGNING_KEY at the ledger's key",
            )

    # --- reading with proofs ---------------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any] | None:
        """The latest checkpoint, signature verified against the trusted keys (None for an empty ledger)."""
        body = self.store.latest_checkpoint()
        if body is None:
            return None
        cp = parse_checkpoint(body, where="latest checkpoint")
        self.trusted.check_checkpoint(cp)
        return cp

    def _record(self, idx: int, cp: dict[str, Any], *, leaf_want: bytes | None = None) -> LedgerRecord:
        size = int(cp["tree_size"])
        if not 0 <= idx < size:
            raise LedgerIntegrityError(
                "ledger:unsigned_entry", "entry is not covered by the latest signed checkpoint", index=idx,
                expected=f"index below {size}", found=f"index {idx}",
            )
        body = self.store.entry(idx)
        if body is None:
            raise LedgerIntegrityError("ledger:gap", "entry is missing", index=idx, expected="an entry", found="none")
        leaf = leaf_hash(body)
        if leaf_want is not None and leaf != leaf_want:
            raise LedgerIntegrityError(
                "ledger:hash_mismatch", "entry differs from the one the signed index names", index=idx,
                expected=f"leaf {leaf_want.hex()}", found=f"leaf {leaf.hex()}")
        proof = inclusion_proof(idx, size, self._nodes)
        if not _verify_inclusion(idx, size, leaf, proof, bytes.fromhex(cp["root_hash"])):
            raise LedgerIntegrityError(
                "ledger:bad_inclusion", "entry does not prove into the signed root", index=idx,
                expected=f"root {cp['root_hash']}", found=f"leaf {leaf.hex()}",
            )
        statement = parse_entry(body, idx)
        return LedgerRecord(idx, body.decode("utf-8"), statement, leaf.hex(), [p.hex() for p in proof], cp)

    def _signed_whole(self, what: str) -> dict[str, Any] | None:
        """The latest checkpoint (signature checked) when it covers every stored entry and signs an index root
        (inside a read transaction); None for an empty ledger. Entries beyond it mean a checkpoint row was
        removed, so the newest decisions would be hidden: refused."""
        cp = self.checkpoint()
        size = self.store.size()
        if cp is None:
            if size:
                raise self._no_checkpoint(what)
            return None
        if size != cp["tree_size"]:
            raise LedgerIntegrityError(
                "ledger:unsigned_entry", f"{what}: the latest signed checkpoint does not cover every entry (its "
                "checkpoint row was removed, or entries were)", index=min(size, cp["tree_size"]),
                expected=f"{cp['tree_size']} entries, as signed", found=f"{size} entries")
        if MAP_ROOT not in cp:
            raise LedgerIntegrityError(
                "ledger:no_index", f"{what}: the latest signed checkpoint has no index root, so a lookup by digest "
                "cannot be proven complete: run `trainguard ledger upgrade` where the signing key is",
                index=cp["tree_size"] - 1, expected="a checkpoint with map_root", found="none")
        return cp

    def history(self, digest: str, *, extends: Sequence[Mapping[str, Any]] = (), use_witness: bool = False
                ) -> DigestHistory:
        """Every entry naming ``digest``, proven complete by the signed index and each inclusion-proved against
        the same signed checkpoint; trusts no row of the database (fail closed). That checkpoint must extend each
        of ``extends`` (checkpoints signed earlier) and, with ``use_witness``, the one the witness remembers, which
        then remembers this one."""
        d = parse_digest(digest)
        with self.store.read():
            cp = self._signed_whole(f"lookup of {d}")
            if cp is None:
                return DigestHistory(d, None, None, [])
            earlier = [require_checkpoint(e, where="the earlier checkpoint given") for e in extends]
            remembered = witness.recall(str(cp["origin"])) if use_witness else None
            for e in earlier + ([remembered] if remembered is not None else []):
                self._require_extends(e, cp)
            proof, refs = index.lookup(self.store, d, map_root=bytes.fromhex(cp[MAP_ROOT]))
            records = [self._record(idx, cp, leaf_want=leaf) for idx, leaf in refs]
        if use_witness:
            witness.remember(cp)
        for rec in records:
            if d not in rec.digests:
                raise LedgerIntegrityError(
                    "ledger:bad_index", "the signed index names an entry that does not name the digest",
                    index=rec.index, expected=d, found=", ".join(rec.digests))
        return DigestHistory(d, cp, proof, records)

    def _nodes(self, ids: list[int]) -> dict[int, bytes]:
        found = self.store.nodes(ids)
        if len(found) != len(ids):
            missing = sorted(set(ids) - set(found))
            raise LedgerIntegrityError(
                "ledger:hash_mismatch", "Merkle nodes needed for a proof are missing",
                expected=f"nodes {missing[:3]}", found="nothing",
            )
        return found

    def _no_checkpoint(self, what: str) -> LedgerIntegrityError:
        return LedgerIntegrityError(
            "ledger:no_checkpoint", f"{what}: the ledger has entries but no signed checkpoint",
            expected="a checkpoint", found="none",
        )

    def find(self, digest: str, *, verdicts: Sequence[str] | None = ("approved", "override")) -> list[LedgerRecord]:
        """Every record naming ``digest`` (oldest first), proven complete (``history``); ``verdicts=None`` keeps
        all."""
        records = self.history(digest).records
        return [r for r in records if verdicts is None or r.verdict in verdicts]

    def latest_approved(self, source: str) -> LedgerRecord | None:
        """The newest approved entry of ``source`` (its predicate names the source data), proved; or None."""
        with self.store.read():
            idx = self.store.latest_index(source, "approved")
            if idx is None:
                return None
            cp = self.checkpoint()
            if cp is None:
                raise self._no_checkpoint(f"latest approved of {source}")
            rec = self._record(idx, cp)
        if rec.verdict != "approved" or rec.source != source:
            raise LedgerIntegrityError(
                "ledger:bad_index", "the source index points at a different entry", index=idx,
                expected=f"approved entry of {source}", found=f"{rec.verdict} entry of {rec.source}",
            )
        return rec

    def record(self, index: int) -> LedgerRecord:
        """Entry ``index`` with its inclusion proof."""
        with self.store.read():
            cp = self.checkpoint()
            if cp is None or not 0 <= index < int(cp["tree_size"]):
                size = 0 if cp is None else cp["tree_size"]
                raise ProvenanceInputError("input:no_such_entry", f"no entry {index} (the ledger has {size})")
            return self._record(index, cp)

    def prove(self, digest: str) -> dict[str, Any]:
        """The proof document of ``digest`` (docs/design.md): the gate's decisive entry with its inclusion proof,
        the index's proof of every entry naming the digest, and the checkpoint in both forms."""
        from provenance.decision import decide_history

        history = self.history(digest)
        if not history.records:
            from provenance.errors import NotApprovedError

            raise NotApprovedError("ledger:unknown_digest", f"no ledger entry names {parse_digest(digest)}")
        assert history.checkpoint is not None
        return history.proof(decide_history(history, self.approvers).decisive,
                             note=self.note(int(history.checkpoint["tree_size"])))

    def note(self, tree_size: int | None = None) -> str | None:
        """The C2SP signed-note form of the checkpoint of ``tree_size`` (default: the latest), as stored."""
        with self.store.read():
            if tree_size is None:
                body = self.store.latest_checkpoint()
                if body is None:
                    return None
                tree_size = int(parse_checkpoint(body, where="latest checkpoint")["tree_size"])
            return self.store.note(tree_size)

    def require_contains(self, seen: Mapping[str, Any]) -> None:
        """Fail closed unless the latest signed checkpoint extends ``seen`` (a checkpoint signed earlier, e.g. the
        one a previous gate run returned): a ledger rolled back or forked since then raises."""
        earlier = require_checkpoint(seen, where="the earlier checkpoint given")
        with self.store.read():
            cp = self.checkpoint()
            if cp is None:
                raise LedgerIntegrityError(
                    "ledger:truncated", "the ledger is shorter than a checkpoint it signed earlier", index=0,
                    expected=f"at least {earlier['tree_size']} entries", found="0 entries")
            self._require_extends(earlier, cp)

    def _require_extends(self, seen: Mapping[str, Any], cp: Mapping[str, Any]) -> None:
        """``cp`` (verified) extends the earlier checkpoint ``seen``: its signature checks and a consistency proof
        from the stored nodes leads from its root to ``cp``'s (inside a read transaction)."""
        self.trusted.check_checkpoint(seen)
        old, old_root = int(seen["tree_size"]), str(seen["root_hash"])
        new = int(cp["tree_size"])
        if old > new:
            raise LedgerIntegrityError(
                "ledger:truncated", "the ledger is shorter than a checkpoint it signed earlier", index=new,
                expected=f"at least {old} entries (root {old_root[:16]})", found=f"{new} entries")
        proof = consistency_proof(old, new, self._nodes) if 0 < old < new else []
        if old and not verify_consistency(old, new, bytes.fromhex(old_root), bytes.fromhex(cp["root_hash"]), proof):
            raise LedgerIntegrityError(
                "ledger:fork", "the ledger does not extend a checkpoint it signed earlier", index=old - 1,
                expected=f"a tree extending root {old_root[:16]} at size {old}", found=f"root "
                f"{cp['root_hash'][:16]} at size {new} without a consistency proof")

    def consistency(self, old_size: int, new_size: int | None = None) -> list[str]:
        """Consistency proof (hex) from tree size ``old_size`` to ``new_size`` (default: the latest)."""
        cp = self.checkpoint()
        size = new_size if new_size is not None else (0 if cp is None else int(cp["tree_size"]))
        return [h.hex() for h in consistency_proof(old_size, size, self._nodes)]

    def log(
        self, *, source: str | None = None, verdict: str | None = None, since: str | None = None,
        until: str | None = None, limit: int | None = None,
    ) -> list[tuple[int, dict[str, Any]]]:
        """Entries (newest first) filtered by source, verdict and time (RFC 3339 strings compare in order)."""
        rows = self.store.filtered(source=source, verdict=verdict, since=since, until=until, limit=limit)
        return [(idx, parse_entry(body, idx)) for idx, body, *_ in rows]

    def size(self) -> int:
        return self.store.size()

    # --- verification ----------------------------------------------------------------------------------------
    def verify(
        self, *, earlier: Sequence[Mapping[str, Any]] = (), all_signatures: bool = False
    ) -> VerifyReport:
        """Recompute every leaf, chain link and stored Merkle node; check the root and signature of the latest
        checkpoint and that each ``earlier`` exported checkpoint is still a prefix of the ledger.

        ``all_signatures`` also checks the root and signature of every stored per-append checkpoint (about 0.15 ms
        each). When the latest root does not match, every stored checkpoint root is checked to name the first bad
        entry.
        """
        try:
            return self._verify(earlier, all_signatures=all_signatures, all_roots=all_signatures)
        except LedgerIntegrityError as exc:
            if exc.code != "ledger:root_mismatch" or all_signatures:
                raise
            self._verify(earlier, all_signatures=False, all_roots=True)  # raises naming the first bad entry
            raise

    def _verify(self, earlier: Sequence[Mapping[str, Any]], *, all_signatures: bool, all_roots: bool) -> VerifyReport:
        with self.store.read():
            size = self.store.size()
            latest_body = self.store.latest_checkpoint()
            latest = None if latest_body is None else parse_checkpoint(latest_body, where="latest checkpoint")
            checkpoints: list[dict[str, Any]] = []
            if all_signatures:
                checkpoints = [parse_checkpoint(b, where=f"checkpoint {s}") for s, b in self.store.checkpoint_bodies()]
            elif all_roots:  # only size and root are needed: read them without a full JSON parse
                checkpoints = [_size_and_root(s, b) for s, b in self.store.checkpoint_bodies()]
            for cp in checkpoints if all_signatures else ():
                if cp.get("origin") != (latest or {}).get("origin"):
                    raise LedgerIntegrityError(
                        "ledger:bad_checkpoint", "checkpoint belongs to another log", index=cp["tree_size"] - 1,
                        expected=str((latest or {}).get("origin")), found=str(cp.get("origin")),
                    )
            return verify_contents(
                self.store.iter_entries(), size=size, latest=latest, trusted=self.trusted,
                checkpoints=checkpoints, stored_nodes=self.store.all_nodes(),
                earlier=[require_checkpoint(e, where="an earlier checkpoint") for e in earlier], all_signatures=all_signatures,
                index_rows=self.store.index_rows,
                stored_map_root=index.stored_root(self.store) if latest is not None and MAP_ROOT in latest else None,
            )

    def iter_entries(self) -> Iterator[tuple[int, bytes]]:
        return self.store.iter_entries()
