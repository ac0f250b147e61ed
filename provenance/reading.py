"""Reading a ledger with proofs: lookups by digest through the verifiable index, records with inclusion proofs,
consistency with earlier checkpoints, and full verification. Mixed into ``provenance.ledger.Ledger``.

Every answer is checked against the latest signed checkpoint (signature checked against the trusted keys and
their rotations); no row of the database is trusted.

Example::

    >>> from provenance.ledger import open_ledger                                  # doctest: +SKIP
    >>> [r.verdict for r in open_ledger(create=False).history("sha256:" + "ab" * 32).records]  # doctest: +SKIP
    ['approved', 'rejected']
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from provenance import index, witness
from provenance.backends import SqlStore
from provenance.entries import index_row, parse_entry
from provenance.errors import LedgerIntegrityError, ProvenanceInputError
from provenance.hashing import parse_digest
from provenance.merkle import consistency_proof, inclusion_proof, leaf_hash, verify_consistency
from provenance.merkle import verify_inclusion as _verify_inclusion
from provenance.records import DigestHistory, LedgerRecord
from provenance.rotation import ROTATIONS_DIGEST, KeyChain
from provenance.signing import MAP_ROOT, TrustedKeys
from provenance.verify import VerifyReport, parse_checkpoint, require_checkpoint, verify_contents

__all__ = ["LedgerReading"]

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


class LedgerReading:
    """The reading half of ``Ledger``: needs ``store``, ``trusted`` and ``approvers``."""

    store: SqlStore

    @property
    def trusted(self) -> TrustedKeys:  # pragma: no cover - Ledger's
        raise NotImplementedError

    @property
    def approvers(self) -> TrustedKeys:  # pragma: no cover - Ledger's
        raise NotImplementedError

    def checkpoint(self) -> dict[str, Any] | None:
        """The latest checkpoint, signature verified against the trusted keys (None for an empty ledger)."""
        body = self.store.latest_checkpoint()
        if body is None:
            return None
        cp = parse_checkpoint(body, where="latest checkpoint")
        self._check_signed(cp)
        return cp

    def _check_signed(self, cp: Mapping[str, Any], *, latest: Mapping[str, Any] | None = None,
                      index: int | None = None) -> None:
        """``cp``'s signature by a trusted key, or by a key the ledger's rotations chain to one (read from the
        index under ``latest``, default ``cp``)."""
        if str(cp.get("key_id")) in self.trusted or not len(self.trusted):
            self.trusted.check_checkpoint(cp, index=index)
            return
        try:
            chain = self._key_chain(latest if latest is not None else cp)
        except LedgerIntegrityError:  # no rotation chain can be read under it: say what is wrong with cp itself
            self.trusted.check_checkpoint(cp, index=index)
            raise
        chain.check_checkpoint(cp, index=index)

    def keys_for(self, cp: Mapping[str, Any]) -> TrustedKeys:
        """The keys that may sign ``cp`` (a checked checkpoint): the trusted keys, or those their rotations reach."""
        if str(cp.get("key_id")) in self.trusted:
            return self.trusted
        return self._key_chain(cp).valid_keys(tree_size=int(cp["tree_size"]))

    def _key_chain(self, cp: Mapping[str, Any]) -> KeyChain:
        """The trusted keys extended by the rotation entries the index under ``cp`` lists. Their own signatures
        make the chain; the index proof then binds them (and their positions) to ``cp`` once its signature checks."""
        rotations: list[tuple[int, dict[str, Any]]] = []
        if MAP_ROOT in cp:
            _, refs = index.lookup(self.store, ROTATIONS_DIGEST, map_root=bytes.fromhex(str(cp[MAP_ROOT])))
            for idx, leaf in refs:
                body = self.store.entry(idx)
                if body is None or leaf_hash(body) != leaf:
                    raise LedgerIntegrityError("ledger:hash_mismatch", "a rotation entry differs from the one the "
                                               "signed index names", index=idx, expected=leaf.hex(),
                                               found="nothing" if body is None else leaf_hash(body).hex())
                rotations.append((idx, parse_entry(body, idx)))
        else:
            rotations = [(idx, parse_entry(body, idx)) for idx, body, *_ in self.store.filtered(
                source=None, verdict="key_rotation", since=None, until=None, limit=None)]
        return KeyChain(self.trusted, rotations)

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
            for e in earlier:
                self._require_extends(e, cp)
            remembered = witness.recall(str(cp["origin"])) if use_witness else None
            if remembered is not None:
                try:
                    self._require_extends(remembered, cp)
                except LedgerIntegrityError as exc:
                    raise LedgerIntegrityError(exc.code, f"{exc.message}; the witness {witness.file_for(cp['origin'])} "
                                               "remembers the newer checkpoint (if the ledger was restored from a "
                                               "backup on purpose, remove that file)") from exc
            proof, refs = index.lookup(self.store, d, map_root=bytes.fromhex(cp[MAP_ROOT]))
            records = [self._record(idx, cp, leaf_want=leaf) for idx, leaf in refs]
            self._require_lookup_rows(d, records)
        if use_witness:
            witness.remember(cp)
        for rec in records:
            if d not in rec.digests:
                raise LedgerIntegrityError(
                    "ledger:bad_index", "the signed index names an entry that does not name the digest",
                    index=rec.index, expected=d, found=", ".join(rec.digests))
        return DigestHistory(d, cp, proof, records)

    def _require_lookup_rows(self, digest: str, records: Sequence[LedgerRecord]) -> None:
        """The database's own lookup rows (``subjects``, the entries' verdict and source columns) must say what the
        signed index and bodies say: the answer never rests on them, but a changed row is tampering, and
        ``ledger log`` reads them."""
        listed = self.store.indices_for(digest)
        if listed != [r.index for r in records]:
            first = min(set(listed) ^ {r.index for r in records})
            raise LedgerIntegrityError(
                "ledger:bad_index", f"the lookup table lists other entries for {digest} than the signed index (rows "
                "were changed)", index=first, expected=str([r.index for r in records]), found=str(listed))
        for rec in records:
            columns = self.store.entry_columns(rec.index)
            if columns != index_row(rec.statement)[:3]:
                raise LedgerIntegrityError(
                    "ledger:bad_index", "the entry's source, verdict or time column differs from its signed body "
                    "(rows were changed)", index=rec.index, expected=str(index_row(rec.statement)[:3]),
                    found=str(columns))

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

    def latest_approved(self, source: str, *, oldest: bool = False) -> LedgerRecord | None:
        """The newest (``oldest``: the first) approved entry of ``source`` (its predicate names the source data),
        proved; or None."""
        with self.store.read():
            idx = self.store.latest_index(source, "approved", oldest=oldest)
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
        self._check_signed(seen, latest=cp)
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
