"""Batch-level findings: what a detector that looks at the whole batch reports back to the scorer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from checks.errors import ChecksDataError

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
    """Labels as strings (so 1, 1.0 and "1" of two files agree); missing labels become "<NA>".

    Each distinct value is converted once, so a million rows of a few classes take milliseconds.
    """
    if pd.api.types.is_numeric_dtype(labels.dtype) and not pd.api.types.is_bool_dtype(labels.dtype):
        floats = labels.to_numpy(dtype=np.float64, na_value=np.nan)
        whole = np.isfinite(floats) & (floats == np.round(floats))
        if whole.all():
            uniq, inv = np.unique(floats.astype(np.int64), return_inverse=True)
            return np.asarray(np.array([str(u) for u in uniq], dtype=object)[np.asarray(inv).reshape(-1)])
    try:
        codes, uniques = pd.factorize(labels.astype("object"), use_na_sentinel=True)
    except TypeError as exc:  # lists or arrays (a nested Parquet column): found by review, was exit 70
        raise ChecksDataError(
            "data:label_values", f"label column {labels.name!r} holds nested values (lists, arrays or maps), "
            "not classes") from exc
    names = np.asarray([str(v) for v in uniques] + ["<NA>"], dtype=object)
    floats = pd.to_numeric(pd.Series(names[:-1]), errors="coerce").to_numpy(dtype=np.float64)
    whole = np.isfinite(floats) & (floats == np.round(floats))
    names[:-1][whole] = [str(int(v)) for v in floats[whole]]
    return np.asarray(names[np.where(codes < 0, len(names) - 1, codes)])


def run_batch_detectors(
    scorer: RowScorer, n: int, cols: Mapping[str, np.ndarray], labels: np.ndarray | None,
    label_p: np.ndarray | None,
) -> list[BatchFinding]:
    """Runs the enabled, applicable batch-level detectors other than the label model and sources, from the
    partitions' per-row columns (``cols``) and the batch's label keys."""
    from checks.detectors.clusters import backdoor_finding
    from checks.detectors.density import density_finding
    from checks.detectors.duplicates import duplicate_finding

    findings: list[BatchFinding] = []
    if "duplicate" in scorer.detectors:
        findings.append(duplicate_finding(scorer, n, cols, labels, label_p))
    if "cluster" in scorer.detectors and labels is not None and scorer.has_reference_:
        codes = np.asarray(np.unique(labels, return_inverse=True)[1]).reshape(-1)
        findings.append(backdoor_finding(scorer, n, cols, codes, label_p))
    if "density" in scorer.detectors:
        findings.append(density_finding(getattr(scorer, "density_", None), n, cols))
    return findings
