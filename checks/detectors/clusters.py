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
RARE = 0.005  # a trigger value (or pair) is held by at most this share of the reference rows
DOUBT = 0.8  # median label-model suspicion a trigger pair's rows must reach (relabelled rows)
PAIR_P = 1e-6  # family-wise Poisson tail for the enrichment of a value pair
LIFT = 4.0  # a trigger pair holds at least this many times the batch rows the reference predicts
PAIR_RARE = 0.001  # a trigger pair is held by at most this share of the reference rows
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
        tail = np.where(ref_cnt <= max(RARE * n_ref, 3), poisson.sf(cnt[cand] - 1, expected), 1.0)
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
    _value_pairs(scorer, X, codes, score, fires, reasons, label_p)
    if label_p is not None:
        _dense_groups(scorer, X, codes, label_p, score, fires, reasons)
    for key in reasons:
        reasons[key] = list(dict.fromkeys(reasons[key]))
    return BatchFinding("cluster", score, fires, "cluster:backdoor", reasons)


def _codes(ref_col: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """Small integer codes of a column for the reference and the batch: the value itself when the reference
    has few distinct values, else its reference-quantile bin (32 bins)."""
    uniq = np.unique(ref_col)
    if len(uniq) <= 64:
        edges = uniq
        k = len(uniq) + 1

        def code(v: np.ndarray) -> np.ndarray:
            pos = np.clip(np.searchsorted(edges, v), 0, len(edges) - 1)
            return np.where(edges[pos] == v, pos, len(edges))
    else:
        edges = np.unique(np.quantile(ref_col, np.linspace(0, 1, 33)[1:-1]))
        k = len(edges) + 1

        def code(v: np.ndarray) -> np.ndarray:
            return np.searchsorted(edges, v, side="right")
    ref_codes = code(ref_col)
    mode = int(np.argmax(np.bincount(ref_codes, minlength=k))) if len(ref_codes) else -1
    unseen = k - 1 if len(uniq) <= 64 else -1  # values the reference never shows: a bucket, not a value
    return ref_codes, code(col), k, mode, unseen


def _value_pairs(
    scorer: RowScorer, X: np.ndarray, codes: np.ndarray, score: np.ndarray, fires: np.ndarray,
    reasons: dict[int, list[str]], label_p: np.ndarray | None = None, max_rows: int = 50_000,
) -> None:
    """Conjunctions of two feature values (or bins) that the reference (almost) never shows but that hold many
    batch rows of one label: a two-feature trigger whose single values are common."""
    ref = scorer.reference_X_
    n, n_ref = len(X), max(len(ref), 1)
    d = len(scorer.preprocessor_.numeric_) + len(scorer.preprocessor_.categorical_)
    if d < 2 or n < MIN_ROWS:
        return
    names = scorer.preprocessor_.feature_names_
    rng = np.random.default_rng(scorer.random_state)
    sample = np.arange(n) if n <= max_rows else np.sort(rng.choice(n, max_rows, replace=False))
    # count distinct rows: natural repeats of whole records (spam corpora, logs) are not an enriched trigger
    sample = sample[np.sort(np.unique(group_ids(X[sample], None), return_index=True)[1])]
    ref = ref[np.sort(np.unique(group_ids(ref, None), return_index=True)[1])]
    n_ref = max(len(ref), 1)
    enc = [_codes(ref[:, j], X[:, j]) for j in range(d)]
    n_pairs = d * (d - 1) // 2
    n_cls = int(codes.max()) + 1 if len(codes) else 1
    alpha = PAIR_P / n_pairs  # Bonferroni over the pairs
    for a in range(d):
        ra, ba, ka, mode_a, unseen_a = enc[a]
        for b in range(a + 1, d):
            rb, bb, kb, mode_b, unseen_b = enc[b]
            joint = ba[sample] * kb + bb[sample]
            cnt = np.bincount(joint, minlength=ka * kb)
            cand = np.flatnonzero(cnt >= max(MIN_ROWS, 0.002 * len(sample)))
            # a conjunction with a column's most common value (0 of a sparse column) is not a trigger
            # nor is the bucket of values unseen in the reference (single unseen values are tested above)
            cand = cand[(cand // kb != mode_a) & (cand % kb != mode_b) & (cand // kb != unseen_a) & (cand % kb != unseen_b)]
            if cand.size == 0:
                continue
            ref_cnt = np.bincount(ra * kb + rb, minlength=ka * kb)[cand]
            expected = (ref_cnt + 0.5) * len(sample) / n_ref
            tail = poisson.sf(cnt[cand] - 1, expected)
            # the planted pair is (almost) absent from the reference and strongly enriched in the batch
            rare = (ref_cnt <= max(PAIR_RARE * n_ref, 3)) & (cnt[cand] >= LIFT * expected)
            tail = np.where(rare, tail, 1.0)
            hot = cand[tail < alpha]
            if hot.size == 0:
                continue
            lab = np.bincount(joint * n_cls + codes[sample], minlength=ka * kb * n_cls).reshape(-1, n_cls)
            for cell, t in zip(hot, tail[tail < alpha], strict=True):
                top = int(np.argmax(lab[cell]))
                if lab[cell, top] < PURITY * cnt[cell]:
                    continue
                rows = np.flatnonzero((ba * kb + bb == cell) & (codes == top))
                if label_p is not None and np.median(label_p[rows]) < DOUBT:
                    continue  # the trusted label model finds these labels plausible: a natural pattern
                fires[rows] = True
                score[rows] = np.maximum(score[rows], min(1.0, -np.log10(t + 1e-300) / 30))
                code = f"cluster:backdoor:features={names[a]},{names[b]}"
                for i in rows:
                    reasons.setdefault(int(i), []).extend(["cluster:backdoor", code])


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
