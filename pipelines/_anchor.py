"""The source's anchor: its first approved data, which stays fixed while the rolling reference moves on.

Scheduled ingestion judges each batch against the source's recent approved data, so a few poisoned rows that slip
through one batch become trusted and make the next batch's poison look normal (a slow campaign). Before a rolling
reference is used, the source's recent approved sets (the window: up to ``MAX_WINDOW_SETS`` of them, at most
``MAX_ROWS`` rows) and the batch itself are scored together against the anchor with the detectors that poisoning
trips and honest change does not (label consistency, conflicting duplicates, backdoor-like clusters, density
excess). Seen together, the few rows a campaign slips into each batch add up to a cluster these detectors find:

- the window's flagged rows are left out: the reference is the window's other rows (so it still follows honest
  change; the anchor's rows make up the minimum when too few are left);
- the batch's rows flagged by the cross-batch detectors (clusters, duplicates) are quarantined with
  ``campaign:<reason>``; label doubts alone are left to the batch's own scoring against the recent data.

The entry records it as ``reference.anchor`` (``index``, ``digest``, ``window``: the entries of the sets used,
``rows``, ``dropped``, ``batch_flagged``); a re-run uses the same window. Not applied to a reference given with
``--reference`` (the user vouches for it), when the reference is the anchor itself, to a batch without a label
column (the detectors need labels), when the anchor holds fewer rows than a reference needs, or to the batch's
rows when it has more than ``MAX_ROWS`` (a campaign hides in small batches; a large one is judged as a whole).

Example::

    >>> from pipelines._anchor import find_anchor                                   # doctest: +SKIP
    >>> find_anchor("sqlite:///.trainguard/ledger.db", "credit", state, work).index  # doctest: +SKIP
    0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ANCHOR_DETECTORS", "Anchor", "AnchorCheck", "find_anchor", "window_of", "check_against_anchor"]

ANCHOR_DETECTORS = ("label", "duplicate", "cluster", "density")
CROSS_BATCH = ("cluster:", "duplicate:")  # the reasons that flag a batch row here
MAX_WINDOW_SETS = 8
MAX_ROWS = 50_000  # the scorer fits on at most this many reference rows; a batch above it is judged as a whole


@dataclass(frozen=True)
class Anchor:
    """The oldest approved entry of a source and a checked copy of its approved data."""

    index: int
    digest: str
    path: Path


@dataclass(frozen=True)
class AnchorCheck:
    """The cleaned reference (``path`` in the work dir) and the batch rows the cross-batch detectors flag."""

    path: str
    rows: int
    dropped: int
    anchor: Anchor
    window: list[int]
    batch_reasons: dict[int, list[str]] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {"index": self.anchor.index, "digest": self.anchor.digest, "window": list(self.window),
                "rows": self.rows, "dropped": self.dropped, "batch_flagged": len(self.batch_reasons)}


def _data_copy(record: Any, state: Any, work: Path) -> tuple[str, Path] | None:
    from pipelines._reference import copy_verified

    data = record.statement["predicate"].get("approved_data") or {}
    digest = data.get("digest")
    if not digest:
        return None
    dest = work / "anchor-window" / (str(digest).removeprefix("sha256:") + ".parquet")
    found = copy_verified(str(digest), dest, state.approved_path(str(digest)), Path(str(data.get("uri") or "")))
    return None if found is None else (str(digest), found)


def find_anchor(ledger_url: str, source: str, state: Any, work: Path) -> Anchor | None:
    """The source's anchor (its oldest approved entry's data, copied into ``work`` and checked against its
    digest), or None when the source has no approved data with its bytes at hand."""
    from provenance.ledger import open_ledger

    with open_ledger(ledger_url) as ledger:
        record = ledger.latest_approved(source, oldest=True)  # inclusion-proved; one indexed query, not a scan
    if record is None:
        return None
    found = _data_copy(record, state, work)
    return None if found is None else Anchor(record.index, found[0], found[1])


def window_of(ledger_url: str, source: str, state: Any, work: Path, anchor: Anchor,
              indices: Sequence[int] | None = None) -> list[tuple[int, Path]]:
    """The source's newest approved sets other than the anchor (``indices``: exactly those entries, as a re-run
    replays them), newest first, as checked copies; sets whose bytes are gone are skipped."""
    import pyarrow.parquet as pq

    from provenance.ledger import open_ledger

    with open_ledger(ledger_url) as ledger:
        wanted = list(indices) if indices is not None else [
            i for i, _ in ledger.log(source=source, verdict="approved", limit=MAX_WINDOW_SETS + 1) if i != anchor.index]
        out: list[tuple[int, Path]] = []
        rows = 0
        for idx in wanted[:MAX_WINDOW_SETS]:
            record = ledger.record(idx)
            found = _data_copy(record, state, work) if record.verdict == "approved" else None
            if found is None:
                continue
            out.append((idx, found[1]))
            rows += pq.ParquetFile(found[1]).metadata.num_rows
            if rows >= MAX_ROWS:
                break
    return out


def check_against_anchor(anchor: Anchor, window: list[tuple[int, Path]], batch_path: str, params: dict[str, Any],
                         work: Path) -> AnchorCheck | None:
    """Score the window and the batch together against the anchor (see the module docstring); None when it does
    not apply. ``params`` are the run's scorer parameters (label and source column, budget, seed)."""
    import pandas as pd
    import pyarrow.parquet as pq

    from checks.scoring import RowScorer, min_reference_rows
    from pipelines.tasks import load_frame

    label = params.get("label_column")
    if not label or not window:
        return None
    anchor_df = load_frame(anchor.path)
    need = min_reference_rows(float(params["fp_budget"]))
    if len(anchor_df) < need or label not in anchor_df.columns:
        return None
    seed = int(params.get("random_state", 0))
    parts = [load_frame(p) for _, p in window]
    if any(label not in p.columns for p in parts):
        return None
    win = pd.concat(parts, ignore_index=True)
    if len(win) > MAX_ROWS:
        win = win.sample(MAX_ROWS, random_state=seed).sort_index().reset_index(drop=True)
    batch_rows = pq.ParquetFile(batch_path).metadata.num_rows
    batch = load_frame(batch_path) if batch_rows <= MAX_ROWS else None
    common = [c for c in win.columns if c in anchor_df.columns and (batch is None or c in batch.columns)]
    frame = win[common] if batch is None else pd.concat([win[common], batch[common]], ignore_index=True)
    scorer = RowScorer(**params, detectors=ANCHOR_DETECTORS).fit(anchor_df[common], frame)
    scores = scorer.score(frame).sort_values("row")
    flagged = scores["flagged"].to_numpy(dtype=bool)
    kept = win[~flagged[:len(win)]]
    if len(kept) < need:  # the window is mostly flagged: the anchor's rows make up what it lacks
        fill = anchor_df[common].sample(min(len(anchor_df), need - len(kept)), random_state=seed)
        kept = pd.concat([kept[common], fill], ignore_index=True)
    out = work / "reference-clean.parquet"
    kept.to_parquet(out, index=False)
    batch_reasons: dict[int, list[str]] = {}
    if batch is not None:
        reasons = scores["reasons"].to_list()[len(win):]
        for row in range(len(batch)):
            cross = [f"campaign:{r}" for r in (reasons[row] if reasons[row] is not None else [])
                     if str(r).startswith(CROSS_BATCH)]
            if flagged[len(win) + row] and cross:
                batch_reasons[row] = cross[:3]
    return AnchorCheck(str(out), int(len(kept)), int(flagged[:len(win)].sum()), anchor, [i for i, _ in window],
                       batch_reasons)
