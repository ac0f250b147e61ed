"""What the ledger hands back: where an append landed, and an entry with its inclusion proof."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provenance.entries import source_name, subject_digests

__all__ = ["AppendResult", "LedgerRecord"]


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
        """The DESIGN.md proof document (``trainguard ledger prove --json``)."""
        return {
            "entry": self.entry,
            "leaf_index": self.index,
            "tree_size": self.checkpoint["tree_size"],
            "leaf_hash": self.leaf_hash,
            "inclusion_proof": list(self.inclusion_proof),
            "root_hash": self.checkpoint["root_hash"],
            "checkpoint": dict(self.checkpoint),
        }
