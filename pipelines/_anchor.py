"""The source's anchor: its first approved data, which stays fixed while the rolling reference moves on.

Scheduled ingestion judges each batch against the source's recent approved data, so a few poisoned rows that slip
through one batch become trusted and make the next batch's poison look normal (a slow campaign). Before a rolling
reference is used, its rows are re-scored against the anchor with the detectors that poisoning trips and honest
change does not (label consistency, conflicting duplicates, backdoor-like clusters, density excess); the rows they
flag are left out of the reference, which otherwise stays the recent data, so seasonality and growth keep
passing. The entry records it as ``reference.anchor`` (``index``, ``digest``, ``rows``, ``dropped``).

Not applied to a reference given with ``--reference`` (the user vouches for it), to the anchor itself, to a batch
without a label column (the detectors need labels), or when the anchor holds fewer rows than a reference needs.

Example::

    >>> from pipelines._anchor import find_anchor                                   # doctest: +SKIP
    >>> find_anchor("sqlite:///.trainguard/ledger.db", "credit", state, work).index  # doctest: +SKIP
    0
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ANCHOR_DETECTORS", "Anchor", "CleanedReference", "find_anchor", "clean_against_anchor"]

ANCHOR_DETECTORS = ("label", "duplicate", "cluster", "density")
MAX_CLEAN_ROWS = 50_000  # the scorer fits on at most this many reference rows: only those need cleaning


@dataclass(frozen=True)
class Anchor:
    """The oldest approved entry of a source and a checked copy of its approved data."""

    index: int
    digest: str
    path: Path


@dataclass(frozen=True)
class CleanedReference:
    """The rolling reference without the rows the anchor's detectors flag (``path`` in the work dir)."""

    path: str
    rows: int
    dropped: int
    anchor: Anchor

    def record(self) -> dict[str, Any]:
        return {"index": self.anchor.index, "digest": self.anchor.digest, "rows": self.rows, "dropped": self.dropped}


def find_anchor(ledger_url: str, source: str, state: Any, work: Path) -> Anchor | None:
    """The source's anchor (its oldest approved entry's data, copied into ``work`` and checked against its
    digest), or None when the source has no approved data with its bytes at hand."""
    from pipelines._reference import _copy_verified
    from provenance.ledger import open_ledger

    with open_ledger(ledger_url) as ledger:
        approved = ledger.log(source=source, verdict="approved")
        if not approved:
            return None
        record = ledger.record(approved[-1][0])  # the oldest, inclusion-proved
    data = record.statement["predicate"].get("approved_data") or {}
    digest = data.get("digest")
    if not digest or record.source != source:
        return None
    found = _copy_verified(str(digest), work / "anchor.parquet", state.approved_path(str(digest)),
                           Path(str(data.get("uri") or "")))
    return None if found is None else Anchor(record.index, str(digest), found)


def clean_against_anchor(reference_path: str, anchor: Anchor, params: dict[str, Any], work: Path
                         ) -> CleanedReference | None:
    """The reference's rows (a seeded sample of at most ``MAX_CLEAN_ROWS``) that the anchor's detectors do not
    flag, written to ``work``; None when it does not apply (see the module docstring). ``params`` are the run's
    scorer parameters (label and source column, budget, seed)."""
    import pandas as pd

    from checks.scoring import RowScorer, min_reference_rows
    from pipelines.tasks import load_frame

    label = params.get("label_column")
    if not label:
        return None
    anchor_df = load_frame(str(anchor.path))
    reference = load_frame(reference_path)
    need = min_reference_rows(float(params["fp_budget"]))
    if len(anchor_df) < need or label not in anchor_df.columns or label not in reference.columns:
        return None
    seed = int(params.get("random_state", 0))
    if len(reference) > MAX_CLEAN_ROWS:
        reference = reference.sample(MAX_CLEAN_ROWS, random_state=seed).sort_index()
    reference = reference.reset_index(drop=True)
    common = [c for c in reference.columns if c in anchor_df.columns]
    scorer = RowScorer(**params, detectors=ANCHOR_DETECTORS).fit(anchor_df[common], reference[common])
    scores = scorer.score(reference[common]).sort_values("row")
    keep = ~scores["flagged"].to_numpy(dtype=bool)
    kept = reference[keep]
    if len(kept) < need:  # the reference is mostly flagged: the anchor's rows make up what it lacks
        fill = anchor_df[common].sample(min(len(anchor_df), need - len(kept)), random_state=seed)
        kept = pd.concat([kept, fill], ignore_index=True)
    out = work / "reference-clean.parquet"
    kept.to_parquet(out, index=False)
    return CleanedReference(str(out), int(len(kept)), int((~keep).sum()), anchor)
