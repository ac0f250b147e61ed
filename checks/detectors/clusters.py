"""Backdoors and clustered poison.

Two signals: (1) a feature value that is rare in the reference but frequent in the batch and whose batch rows
nearly all carry one label (a backdoor trigger stamped on rows relabelled to its target); (2) a dense group of
batch rows, all with one label, that the trusted label model finds inconsistent (clean-label collisions,
relabelled clusters). Both need a label column and a reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import poisson

from checks.detectors._batch import BatchFinding, label_keys
from checks.detectors.duplicates import group_ids

if TYPE_CHECKING:  # pragma: no cover
    from checks.scoring import RowScorer

__all__ = ["backdoor_finding"]

TAIL_P = 1e-8  # Poisson tail probability below which a value is over-represented in the batch
MIN_ROWS = 5  # a trigger or a dense group has at least this many batch rows
PURITY = 0.8  # share of a trigger value's batch rows that carry its dominant label
CELL = 0.5  # dense-group cell width in robust units


def _value_counts(col: np.ndarray, among: np.ndarray) -> np.ndarray:
    uniq, cnt = np.unique(among, return_counts=True)
    if len(uniq) == 0:
        return np.zeros(len(col), dtype=np.int64)
    pos = np.clip(np.searchsorted(uniq, col), 0, len(uniq) - 1)
    return np.where(uniq[pos] == col, cnt[pos], 0)


def backdoor_finding(
    scorer: RowScorer, batch: pd.DataFrame, X: np.ndarray, label_p: np.ndarray | None = None
) -> BatchFinding:
    assert scorer.label_column is not None
    n = len(batch)
    ref = scorer.reference_X_
    n_ref = max(len(ref), 1)
    labels = label_keys(batch[scorer.label_column])
    classes, codes = np.unique(labels, return_inverse=True)
    score = np.zeros(n)
    fires = np.zeros(n, dtype=bool)
    reasons: dict[int, list[str]] = {}
    names = scorer.preprocessor_.feature_names_
    n_orig = len(scorer.preprocessor_.numeric_) + len(scorer.preprocessor_.categorical_)
    for j in range(n_orig):
        col = X[:, j]
        uniq, inv, cnt = np.unique(col, return_inverse=True, return_counts=True)
        cand = np.flatnonzero(cnt >= max(MIN_ROWS, 0.002 * n))
        if cand.size == 0:
            continue
        ref_cnt = _value_counts(uniq[cand], ref[:, j])
        expected = (ref_cnt + 0.5) * n / n_ref
        tail = poisson.sf(cnt[cand] - 1, expected)
        for v, t in zip(cand[tail < TAIL_P], tail[tail < TAIL_P], strict=True):
            rows = np.flatnonzero(inv == v)
            lab = np.bincount(codes[rows], minlength=len(classes))
            top = int(np.argmax(lab))
            share = lab[top] / len(rows)
            if share >= PURITY:
                hit = rows[codes[rows] == top]
                fires[hit] = True
                score[hit] = np.maximum(score[hit], min(1.0, -np.log10(t + 1e-300) / 30))
                for i in hit:
                    reasons.setdefault(int(i), []).extend(["cluster:backdoor", f"cluster:backdoor:feature={names[j]}"])
    if label_p is not None:
        _dense_groups(scorer, X, codes, label_p, score, fires, reasons)
    for key in reasons:
        reasons[key] = list(dict.fromkeys(reasons[key]))
    return BatchFinding("cluster", score, fires, "cluster:backdoor", reasons)


def _dense_groups(
    scorer: RowScorer, X: np.ndarray, codes: np.ndarray, label_p: np.ndarray, score: np.ndarray,
    fires: np.ndarray, reasons: dict[int, list[str]],
) -> None:
    """Cells of the coarse grid holding many same-label rows that the label model doubts."""
    suspicious = label_p > 0.9
    if suspicious.sum() < MIN_ROWS:
        return
    idx = np.flatnonzero(suspicious)
    ids = group_ids(X[idx], CELL)
    key = ids ^ (codes[idx].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    ref_ids = group_ids(scorer.reference_X_, CELL)
    ref_cnt = _value_counts(ids, ref_ids)
    expected = (ref_cnt + 1.0) * 0.1 * len(X) / max(len(scorer.reference_X_), 1)
    tail = poisson.sf(cnt[inv] - 1, expected)
    dense = (cnt[inv] >= MIN_ROWS) & (tail < 1e-6)
    for i in idx[dense]:
        fires[i] = True
        score[i] = max(score[i], 0.9)
        reasons.setdefault(int(i), []).append("cluster:dense_label_group")
