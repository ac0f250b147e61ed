"""Batch-level findings: what a detector that looks at the whole batch reports back to the scorer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from checks.scoring import RowScorer

__all__ = ["BatchFinding", "run_batch_detectors", "label_keys"]


@dataclass
class BatchFinding:
    """One batch-level detector's result for every row of the batch.

    ``score`` in [0, 1] is the ``score_<name>`` column. ``fires`` marks rows the detector flags; when
    ``calibrated`` the score is already a trusted-reference p-value that enters the combined score directly,
    otherwise a firing row's final score is raised above the threshold. ``reasons`` holds per-row reason codes
    (rows absent from it get ``default_reason``).
    """

    name: str
    score: np.ndarray
    fires: np.ndarray
    default_reason: str
    reasons: dict[int, list[str]] = field(default_factory=dict)
    calibrated: bool = False


def label_keys(labels: pd.Series) -> np.ndarray:
    """Labels as strings (so 1, 1.0 and "1" of two files agree); missing labels become "<NA>"."""
    if pd.api.types.is_numeric_dtype(labels.dtype) and not pd.api.types.is_bool_dtype(labels.dtype):
        floats = labels.to_numpy(dtype=np.float64, na_value=np.nan)
        whole = np.isfinite(floats) & (floats == np.round(floats))
        if whole.all():
            return np.asarray(pd.Series(floats.astype(np.int64)).astype(str).to_numpy(dtype=object))
    s = labels.astype("object")
    mask = s.isna().to_numpy()
    out = np.asarray([str(v) for v in s.to_numpy()], dtype=object)
    floats = pd.to_numeric(pd.Series(out), errors="coerce").to_numpy(dtype=np.float64)
    whole = np.isfinite(floats) & (floats == np.round(floats))
    out[whole] = [str(int(v)) for v in floats[whole]]
    out[mask] = "<NA>"
    return out


def run_batch_detectors(
    scorer: RowScorer, batch: pd.DataFrame, X: np.ndarray, label_p: np.ndarray | None
) -> list[BatchFinding]:
    """Runs the enabled, applicable batch-level detectors other than the label model and sources."""
    from checks.detectors.clusters import backdoor_finding
    from checks.detectors.duplicates import duplicate_finding

    findings: list[BatchFinding] = []
    if "duplicate" in scorer.detectors:
        findings.append(duplicate_finding(scorer, batch, X, label_p))
    if "cluster" in scorer.detectors and scorer.label_column is not None and scorer.has_reference_:
        findings.append(backdoor_finding(scorer, batch, X, label_p))
    return findings
