"""What the ledger hands back: where an append landed, an entry with its inclusion proof, and a digest's proven
history (every entry naming it, proven complete by the signed index)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provenance.entries import source_name, subject_digests
from provenance.vmap import MapProof

__all__ = ["AppendResult", "LedgerRecord", "DigestHistory"]


@dataclass(frozen=True)
class AppendResult:
    """Where an appended entry landed: its index, its hash (leaf hash, hex) and the new signed checkpoint."""

    index: int
    entry_hash: str
    checkpoint: dict[str, Any]


@dataclass(frozen=True)
class LedgerRecord:
    """One entry with its inclusion proof against a verified, signed checkpoint."""

    index: int
    entry: str  # canonical JSON text, exactly the hashed bytes
    statement: dict[str, Any] = field(repr=False)
    leaf_hash: str
    inclusion_proof: list[str]
    checkpoint: dict[str, Any]

    @property
    def verdict(self) -> str:
        return str(self.statement["predicate"]["verdict"])

    @property
    def digests(self) -> list[str]:
        return subject_digests(self.statement)

    @property
    def source(self) -> str | None:
        return source_name(self.statement)

    @property
    def time(self) -> str | None:
        t = self.statement["predicate"].get("time")
        return str(t) if t is not None else None

    def proof(self) -> dict[str, Any]:
        """The docs/design.md proof document (``trainguard ledger prove --json``)."""
        return {
            "entry": self.entry,
            "leaf_index": self.index,
            "tree_size": self.checkpoint["tree_size"],
            "leaf_hash": self.leaf_hash,
            "inclusion_proof": list(self.inclusion_proof),
            "root_hash": self.checkpoint["root_hash"],
            "checkpoint": dict(self.checkpoint),
        }


@dataclass(frozen=True)
class DigestHistory:
    """Every entry naming ``digest`` (oldest first), each inclusion-proved against ``checkpoint``, and the index's
    ``map_proof`` that no other entry names it. ``checkpoint`` and ``map_proof`` are None for an empty ledger."""

    digest: str
    checkpoint: dict[str, Any] | None
    map_proof: MapProof | None
    records: list[LedgerRecord]

    def proof(self, decisive: LedgerRecord | None, *, note: str | None) -> dict[str, Any]:
        """The proof document: ``decisive``'s proof (or the newest entry's) with the index's proof of the digest's
        whole history, the entries it names, and the checkpoint's C2SP signed note."""
        rec = decisive if decisive is not None else self.records[-1]
        doc = rec.proof()
        doc["digest"] = self.digest
        doc["map_root"] = None if self.checkpoint is None else self.checkpoint.get("map_root")
        doc["map_proof"] = None if self.map_proof is None else self.map_proof.to_json()
        doc["entries"] = [{"index": r.index, "entry": r.entry} for r in self.records]
        doc["checkpoint_note"] = note
        return doc
