"""Backdoors and clustered poison.

Two signals: (1) a feature value that is rare in the reference but frequent in the batch and whose batch rows
nearly all carry one label (a backdoor trigger stamped on rows relabelled to its target); (2) a dense group of
batch rows, all with one label, that the trusted label model finds inconsistent (clean-label collisions,
relabelled clusters). Both need a label column and a reference.

A single value is a candidate trigger when the batch holds it far more often than the reference's rate predicts
(Poisson tail below ``TAIL_P``) and ``PURITY`` of its batch rows carry one label. That alone is no evidence of
poison: the reference is a sample too, so among the thousands of values a wide batch holds, a few that the
reference happens to lack turn up in the batch a dozen times (spambase's word frequencies, records that repeat),
and their rows can be of one label by chance. So a candidate fires only with one more piece of evidence:
- its rows carry labels the trusted label model doubts (rows relabelled to a target): the mean calibrated label p
  of its distinct records exceeds the trusted held-out rows' mean by ``DOUBT_Z`` standard errors; or
- its enrichment is beyond what sampling explains: if batch and reference were drawn alike, each distinct record
  holding the value would be a batch record with probability (batch records) / (all records); the binomial tail
  of its batch count, times the number of values tested (Bonferroni), is below ``EXCHANGEABLE_P`` (a trigger the
  label model cannot judge, e.g. a weak model on noisy labels).
A value pair needs a median label p of ``DOUBT``. Each row names at most ``scorer.top_features`` triggers (the most
significant): a row repeating a record holds all of its rare values at once, and naming them all says no more.

Per-row inputs come from the partitions (``partition_columns``): a 32-bit hash of each feature value, the
feature's reference bin (for value pairs) and the coarse grid cell; ``backdoor_finding`` tests them over the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import binom, poisson

from checks.detectors._batch import BatchFinding
from checks.detectors.duplicates import count_in, group_ids

if TYPE_CHECKING:  # pragma: no cover
    from checks.scoring import RowScorer

__all__ = ["backdoor_finding", "partition_columns", "fit_encoders"]

TAIL_P = 1e-8  # Poisson tail probability below which a value is over-represented in the batch
MIN_ROWS = 5  # a trigger or a dense group has at least this many batch rows
PURITY = 0.8  # share of a trigger value's batch rows that carry its dominant label
RARE = 0.005  # a trigger value (or pair) is held by at most this share of the reference rows
DOUBT = 0.8  # median label-model suspicion a trigger pair's rows must reach (relabelled rows)
DOUBT_Z = 3.09  # standard errors by which a trigger value's mean label doubt exceeds the trusted rows' (p ~ 1e-3)
EXCHANGEABLE_P = 1e-3  # family-wise binomial tail of a value's batch share of its distinct records
PAIR_P = 1e-6  # family-wise Poisson tail for the enrichment of a value pair
LIFT = 4.0  # a trigger pair holds at least this many times the batch rows the reference predicts
PAIR_RARE = 0.001  # a trigger pair is held by at most this share of the reference rows
CELL = 0.5  # dense-group cell width in robust units
SAMPLE = 50_000  # rows of a larger batch sampled to find candidate values and pairs
_HASH = np.uint64(0x9E3779B97F4A7C15)


def _n_features(scorer: RowScorer) -> int:
    return len(scorer.preprocessor_.numeric_) + len(scorer.preprocessor_.categorical_)


def value_hash(col: np.ndarray) -> np.ndarray:
    """A 32-bit hash of each float value (equal values, equal hashes; -0.0 counts as 0.0)."""
    bits = np.ascontiguousarray(col + 0.0).view(np.uint64)
    with np.errstate(over="ignore"):
        return ((bits * _HASH) >> np.uint64(32)).astype(np.uint32)


class _Encoder:
    """Small integer codes of one feature: the value itself when the (deduplicated) reference has few distinct
    values, else its reference-quantile bin (32 bins)."""

    def __init__(self, ref_col: np.ndarray) -> None:
        uniq = np.unique(ref_col)
        self.discrete = len(uniq) <= 64
        self.edges = uniq if self.discrete else np.unique(np.quantile(ref_col, np.linspace(0, 1, 33)[1:-1]))
        self.k = len(self.edges) + 1
        ref_codes = self.codes(ref_col)
        self.mode = int(np.argmax(np.bincount(ref_codes, minlength=self.k))) if len(ref_codes) else -1
        self.unseen = self.k - 1 if self.discrete else -1  # values the reference never shows: a bucket, not a value

    def codes(self, v: np.ndarray) -> np.ndarray:
        if self.discrete:
            pos = np.clip(np.searchsorted(self.edges, v), 0, len(self.edges) - 1)
            return np.where(self.edges[pos] == v, pos, len(self.edges)).astype(np.uint8)
        return np.searchsorted(self.edges, v, side="right").astype(np.uint8)


def _distinct_reference(scorer: RowScorer) -> np.ndarray:
    """The reference rows without repeats of whole records."""
    ref = scorer.reference_X_
    return ref[np.sort(np.unique(group_ids(ref, None), return_index=True)[1])]


def fit_encoders(scorer: RowScorer) -> list[_Encoder]:
    """One encoder per original feature, fitted on the distinct reference rows (at ``RowScorer.fit``)."""
    ref = _distinct_reference(scorer)
    return [_Encoder(ref[:, j]) for j in range(_n_features(scorer))]


def partition_columns(scorer: RowScorer, X: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row inputs of the cluster tests for one partition: ``_cell``, ``_vh_<j>`` and ``_code_<j>``."""
    cols: dict[str, np.ndarray] = {"_cell": group_ids(X, CELL)}
    for j, enc in enumerate(scorer.cluster_encoders_):
        cols[f"_vh_{j}"] = value_hash(X[:, j])
        cols[f"_code_{j}"] = enc.codes(X[:, j])
    return cols


def _sample(n: int, random_state: int | None) -> np.ndarray:
    if n <= SAMPLE:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, SAMPLE, replace=False))


def _frequent_values(col: np.ndarray, rows: np.ndarray, min_count: float) -> tuple[np.ndarray, np.ndarray]:
    """(values, batch counts) of the values of ``col`` held by at least ``min_count`` rows; candidates come from
    the sampled ``rows`` (at half the rate a frequent value must reach), their counts from the whole column."""
    n = len(col)
    if len(rows) == n:
        uniq, cnt = np.unique(col, return_counts=True)
        keep = cnt >= min_count
        return uniq[keep], cnt[keep]
    uniq, cnt = np.unique(col[rows], return_counts=True)
    cand = uniq[cnt >= max(MIN_ROWS, 0.5 * min_count * len(rows) / n)]
    if len(cand) > 256:  # many frequent values (a low-cardinality column): count them all at once
        uniq, cnt = np.unique(col, return_counts=True)
        keep = cnt >= min_count
        return uniq[keep], cnt[keep]
    full = np.asarray([int(np.count_nonzero(col == v)) for v in cand], dtype=np.int64)
    keep = full >= min_count
    return cand[keep], full[keep]


def backdoor_finding(
    scorer: RowScorer, n: int, cols: Mapping[str, np.ndarray], codes: np.ndarray, label_p: np.ndarray | None = None
) -> BatchFinding:
    """Trigger values, trigger pairs and dense doubted groups, from the partition columns and label codes."""
    score = np.zeros(n)
    fires = np.zeros(n, dtype=bool)
    reasons: dict[int, list[str]] = {}
    evidence: dict[int, list[tuple[float, str]]] = {}  # per row: (tail, trigger code) of every trigger it holds
    ref_distinct = _distinct_reference(scorer)
    _single_values(scorer, cols, codes, label_p, ref_distinct, score, fires, evidence)
    _value_pairs(scorer, cols, codes, ref_distinct, score, fires, evidence, label_p)
    for i, found in evidence.items():
        reasons[i] = ["cluster:backdoor"] + [code for _, code in sorted(found)[: max(scorer.top_features, 1)]]
    if label_p is not None:
        _dense_groups(scorer, cols["_cell"], codes, label_p, score, fires, reasons)
    for key in reasons:
        reasons[key] = list(dict.fromkeys(reasons[key]))
    return BatchFinding("cluster", score, fires, "cluster:backdoor", reasons)


def _single_values(
    scorer: RowScorer, cols: Mapping[str, np.ndarray], codes: np.ndarray, label_p: np.ndarray | None,
    ref_distinct: np.ndarray, score: np.ndarray, fires: np.ndarray, evidence: dict[int, list[tuple[float, str]]],
) -> None:
    """Feature values rare in the reference, enriched in the batch, nearly all of one label, and either doubted
    by the label model or enriched beyond sampling (see the module docstring)."""
    n = len(codes)
    ref = scorer.reference_X_
    n_ref = max(len(ref), 1)
    n_cls = int(codes.max()) + 1 if n else 1
    names = scorer.preprocessor_.feature_names_
    rows_s = _sample(n, scorer.random_state)
    candidates = [(j, cols[f"_vh_{j}"]) for j in range(_n_features(scorer))]
    frequent = [_frequent_values(col, rows_s, max(MIN_ROWS, 0.002 * n)) for _, col in candidates]
    n_tests = max(sum(len(vals) for vals, _ in frequent), 1)
    records = np.asarray(cols["_dup_exact"])
    doubted = _doubt_test(scorer, label_p, records)
    beyond_sampling = _exchangeable_test(records, ref_distinct, n_tests)
    for (j, col), (vals, cnt) in zip(candidates, frequent, strict=True):
        if vals.size == 0:
            continue
        ref_cnt = count_in(vals, value_hash(ref[:, j]))
        expected = (ref_cnt + 0.5) * n / n_ref
        tail = np.where(ref_cnt <= max(RARE * n_ref, 3), poisson.sf(cnt - 1, expected), 1.0)
        for v, t in zip(vals[tail < TAIL_P], tail[tail < TAIL_P], strict=True):
            rows = np.flatnonzero(col == v)
            lab = np.bincount(codes[rows], minlength=n_cls)
            top = int(np.argmax(lab))
            if lab[top] / len(rows) < PURITY:
                continue
            hit = rows[codes[rows] == top]
            if doubted(hit) or beyond_sampling(rows, j, v):
                _fire(hit, float(t), f"cluster:backdoor:feature={names[j]}", score, fires, evidence)


def _fire(
    rows: np.ndarray, tail: float, code: str, score: np.ndarray, fires: np.ndarray,
    evidence: dict[int, list[tuple[float, str]]],
) -> None:
    """Rows of one trigger (a value or a value pair) fire, scored by its enrichment tail; the code is kept
    with its tail so that each row's reasons can name its most significant triggers only."""
    fires[rows] = True
    score[rows] = np.maximum(score[rows], min(1.0, -np.log10(tail + 1e-300) / 30))
    for i in rows:
        evidence.setdefault(int(i), []).append((tail, code))


def _doubt_test(
    scorer: RowScorer, label_p: np.ndarray | None, records: np.ndarray
) -> Callable[[np.ndarray], bool]:
    """Whether a candidate trigger's rows (positions) carry labels the trusted model doubts: the mean calibrated
    label p of its distinct records (``records``: exact-duplicate ids; a repeated record is one piece of
    evidence) exceeds the trusted held-out rows' mean by ``DOUBT_Z`` standard errors. Without a label model no
    candidate is doubted."""
    model = getattr(scorer, "label_model_", None)
    if label_p is None or model is None:
        return lambda rows: False
    held = np.asarray(model.heldout_p_, dtype=np.float64)
    mean0, sd0 = float(held.mean()), max(float(held.std()), 1e-6)

    def doubted(rows: np.ndarray) -> bool:
        distinct = rows[np.unique(records[rows], return_index=True)[1]]
        z = (float(label_p[distinct].mean()) - mean0) * np.sqrt(len(distinct)) / sd0
        return bool(z >= DOUBT_Z)

    return doubted


def _exchangeable_test(
    records: np.ndarray, ref_distinct: np.ndarray, n_tests: int
) -> Callable[[np.ndarray, int, np.uint32], bool]:
    """Whether a value of feature ``j`` held by batch ``rows`` is enriched beyond what drawing batch and reference
    alike explains: among the distinct records holding it, the batch's count has a binomial tail (at the batch's
    share of all distinct records), times ``n_tests``, below ``EXCHANGEABLE_P``."""
    share: list[float] = []  # the batch's share of distinct records, counted on first use

    def beyond(rows: np.ndarray, j: int, value: np.uint32) -> bool:
        if not share:
            n_batch = len(np.unique(records))
            share.append(n_batch / max(n_batch + len(ref_distinct), 1))
        k = len(np.unique(records[rows]))
        in_ref = int(count_in(np.asarray([value]), value_hash(ref_distinct[:, j]))[0])
        return bool(binom.sf(k - 1, k + in_ref, share[0]) * n_tests < EXCHANGEABLE_P)

    return beyond


def _value_pairs(
    scorer: RowScorer, cols: Mapping[str, np.ndarray], codes: np.ndarray, ref: np.ndarray, score: np.ndarray,
    fires: np.ndarray, evidence: dict[int, list[tuple[float, str]]], label_p: np.ndarray | None = None,
) -> None:
    """Conjunctions of two feature values (or bins) that the reference (almost) never shows but that hold many
    batch rows of one label: a two-feature trigger whose single values are common."""
    n = len(codes)
    d = _n_features(scorer)
    if d < 2 or n < MIN_ROWS:
        return
    names = scorer.preprocessor_.feature_names_
    sample = _sample(n, scorer.random_state)
    # count distinct rows: natural repeats of whole records (spam corpora, logs) are not an enriched trigger
    sample = sample[np.sort(np.unique(cols["_dup_exact"][sample], return_index=True)[1])]
    n_ref = max(len(ref), 1)
    encs = scorer.cluster_encoders_
    ref_codes = [enc.codes(ref[:, j]).astype(np.int64) for j, enc in enumerate(encs)]
    batch_codes = [cols[f"_code_{j}"] for j in range(d)]
    sample_codes = [c[sample].astype(np.int64) for c in batch_codes]
    n_pairs = d * (d - 1) // 2
    n_cls = int(codes.max()) + 1 if len(codes) else 1
    codes_s = codes[sample]
    alpha = PAIR_P / n_pairs  # Bonferroni over the pairs
    for a in range(d):
        ea, ra, ba = encs[a], ref_codes[a], sample_codes[a]
        for b in range(a + 1, d):
            eb, rb, bb = encs[b], ref_codes[b], sample_codes[b]
            kb = eb.k
            joint = ba * kb + bb
            cnt = np.bincount(joint, minlength=ea.k * kb)
            cand = np.flatnonzero(cnt >= max(MIN_ROWS, 0.002 * len(sample)))
            # a conjunction with a column's most common value (0 of a sparse column) is not a trigger
            # nor is the bucket of values unseen in the reference (single unseen values are tested above)
            cand = cand[(cand // kb != ea.mode) & (cand % kb != eb.mode)
                        & (cand // kb != ea.unseen) & (cand % kb != eb.unseen)]
            if cand.size == 0:
                continue
            ref_cnt = np.bincount(ra * kb + rb, minlength=ea.k * kb)[cand]
            expected = (ref_cnt + 0.5) * len(sample) / n_ref
            tail = poisson.sf(cnt[cand] - 1, expected)
            # the planted pair is (almost) absent from the reference and strongly enriched in the batch
            rare = (ref_cnt <= max(PAIR_RARE * n_ref, 3)) & (cnt[cand] >= LIFT * expected)
            tail = np.where(rare, tail, 1.0)
            hot = cand[tail < alpha]
            if hot.size == 0:
                continue
            lab = np.bincount(joint * n_cls + codes_s, minlength=ea.k * kb * n_cls).reshape(-1, n_cls)
            for cell, t in zip(hot, tail[tail < alpha], strict=True):
                top = int(np.argmax(lab[cell]))
                if lab[cell, top] < PURITY * cnt[cell]:
                    continue
                rows = np.flatnonzero((batch_codes[a] == cell // kb) & (batch_codes[b] == cell % kb) & (codes == top))
                if label_p is not None and np.median(label_p[rows]) < DOUBT:
                    continue  # the trusted label model finds these labels plausible: a natural pattern
                _fire(rows, float(t), f"cluster:backdoor:features={names[a]},{names[b]}", score, fires, evidence)


def _dense_groups(
    scorer: RowScorer, cells: np.ndarray, codes: np.ndarray, label_p: np.ndarray, score: np.ndarray,
    fires: np.ndarray, reasons: dict[int, list[str]],
) -> None:
    """Cells of the coarse grid holding many same-label rows that the label model doubts."""
    suspicious = label_p > 0.9
    if suspicious.sum() < MIN_ROWS:
        return
    idx = np.flatnonzero(suspicious)
    ids = cells[idx]
    key = ids ^ (codes[idx].astype(np.uint64) * _HASH)
    _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    inv = np.asarray(inv).reshape(-1)
    ref_cnt = count_in(ids, group_ids(scorer.reference_X_, CELL))
    expected = (ref_cnt + 1.0) * 0.1 * len(codes) / max(len(scorer.reference_X_), 1)
    tail = poisson.sf(cnt[inv] - 1, expected)
    dense = (cnt[inv] >= MIN_ROWS) & (tail < 1e-6)
    for i in idx[dense]:
        fires[i] = True
        score[i] = max(score[i], 0.9)
        reasons.setdefault(int(i), []).append("cluster:dense_label_group")
