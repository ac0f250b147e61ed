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

from provenance import config
from provenance.backends import SqlStore, open_store
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
from provenance.merkle import verify_inclusion as _verify_inclusion
from provenance.records import AppendResult, LedgerRecord
from provenance.signing import TrustedKeys, key_id, public_key_b64, sign_checkpoint
from provenance.verify import VerifyReport, parse_checkpoint, require_checkpoint, verify_contents

__all__ = ["open_ledger", "Ledger", "AppendResult", "LedgerRecord"]


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
            if n:
                self._require_same_key(key)
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
            st["predicate"]["previous"] = nodes[node_id(0, n - 1)].hex() if n else None
            body = canonical_json(st)
            created = frontier.push(leaf_hash(body))
            cp = sign_checkpoint(key, origin=origin, tree_size=n + 1, root_hash=frontier.root().hex())
            pred = st["predicate"]
            store.insert(
                [(n, body, source_name(st), pred["verdict"], pred.get("time"))],
                created,
                [(d, n) for d in subject_digests(st)],
                [(n + 1, canonical_json(cp))],
            )
        return AppendResult(index=n, entry_hash=created[0][1].hex(), checkpoint=cp)

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

    def _record(self, idx: int, cp: dict[str, Any]) -> LedgerRecord:
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
        proof = inclusion_proof(idx, size, self._nodes)
        if not _verify_inclusion(idx, size, leaf, proof, bytes.fromhex(cp["root_hash"])):
            raise LedgerIntegrityError(
                "ledger:bad_inclusion", "entry does not prove into the signed root", index=idx,
                expected=f"root {cp['root_hash']}", found=f"leaf {leaf.hex()}",
            )
        statement = parse_entry(body, idx)
        return LedgerRecord(idx, body.decode("utf-8"), statement, leaf.hex(), [p.hex() for p in proof], cp)

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
        """Every record naming ``digest`` (oldest first), each inclusion-proved; ``verdicts=None`` keeps all."""
        d = parse_digest(digest)
        with self.store.read():
            indices = self.store.indices_for(d)
            if not indices:
                return []
            cp = self.checkpoint()
            if cp is None:
                raise self._no_checkpoint(f"lookup of {d}")
            out = []
            for idx in indices:
                rec = self._record(idx, cp)
                if d not in rec.digests:
                    raise LedgerIntegrityError(
                        "ledger:bad_index", "the digest index points at an entry that does not name the digest",
                        index=idx, expected=d, found=", ".join(rec.digests),
                    )
                if verdicts is None or rec.verdict in verdicts:
                    out.append(rec)
        return out

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
        """The DESIGN.md proof of the newest entry naming ``digest`` (any verdict)."""
        records = self.find(digest, verdicts=None)
        if not records:
            from provenance.errors import NotApprovedError

            raise NotApprovedError("ledger:unknown_digest", f"no ledger entry names {parse_digest(digest)}")
        return records[-1].proof()

    def require_contains(self, seen: Mapping[str, Any]) -> None:
        """Fail closed unless the latest signed checkpoint extends ``seen`` (a checkpoint signed earlier, e.g. the
        one a previous gate run returned): a ledger rolled back or forked since then raises."""
        self.trusted.check_checkpoint(require_checkpoint(seen, where="the earlier checkpoint given"))
        with self.store.read():
            cp = self.checkpoint()
            old, old_root = int(seen["tree_size"]), str(seen["root_hash"])
            new = 0 if cp is None else int(cp["tree_size"])
            if cp is None or old > new:
                raise LedgerIntegrityError(
                    "ledger:truncated", "the ledger is shorter than a checkpoint it signed earlier", index=new,
                    expected=f"at least {old} entries (root {old_root[:16]})", found=f"{new} entries")
            proof = consistency_proof(old, new, self._nodes) if old < new else []
            if not verify_consistency(old, new, bytes.fromhex(old_root), bytes.fromhex(cp["root_hash"]), proof):
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
            )

    def iter_entries(self) -> Iterator[tuple[int, bytes]]:
        return self.store.iter_entries()
