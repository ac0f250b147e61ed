"""Source attribution: which source of a multi-source batch is compromised.

For every source, its rows' suspicion (the combined score before this step) and the trusted label model's
doubt about their labels (the effect of that source's data on a model trained on trusted data, after ART's
ProvenanceDefense) are compared with all other sources' rows (Mann-Whitney U, one-sided), and its flag rate
with the false-positive budget (binomial); its feature distribution is compared with all other sources' rows,
one feature at a time (two-sample Kolmogorov-Smirnov on the preprocessed features, Bonferroni over features): a
source that shifts a few features of otherwise in-range rows stands out there even when no single row does. A
source that stands out is compromised: every one of its rows is flagged with ``source:compromised:<name>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import binom, kstwo, mannwhitneyu

from checks.detectors._base import sample_index
from checks.detectors._batch import BatchFinding
from checks.errors import ChecksConfigError

if TYPE_CHECKING:  # pragma: no cover
    from checks.scoring import RowScorer

__all__ = ["source_finding", "source_table", "MAX_SHIFT_ROWS", "shift_sample_rows"]

ALPHA = 1e-3  # family-wise significance (Bonferroni over sources and tests)
MIN_EFFECT = 0.6  # a compromised source's rows are more suspicious than others' with at least this AUC
MIN_ROWS = 10
MIN_SHIFT = 0.25  # ... and its rows' distribution of some feature is at least this KS distance from the others'
MAX_SHIFT_ROWS = 20_000  # the feature test runs on a seeded sample of at most this many batch rows


def shift_sample_rows(n_rows: int, random_state: int | None) -> np.ndarray:
    """Sorted positions of the batch rows (of ``n_rows``) the source test's feature test runs on: a seeded
    sample of at most ``MAX_SHIFT_ROWS`` (every row when there are fewer). ``RowScorer.finalize``'s
    ``batch_sample`` is the batch's rows at these positions."""
    return sample_index(n_rows, MAX_SHIFT_ROWS, random_state)


def source_table(
    sources: pd.Series, score: np.ndarray, flagged: np.ndarray, label_p: np.ndarray | None, fp_budget: float
) -> pd.DataFrame:
    """One row per source: rows, flag rate, AUC and p-value of its suspicion (and label doubt) vs the rest."""
    names = sources.astype("object").where(sources.notna(), "<NA>").astype(str).to_numpy()
    uniq = np.unique(names)
    rows = []
    for s in uniq:
        mask = names == s
        k, m = int(flagged[mask].sum()), int(mask.sum())
        rec: dict[str, object] = {"source": s, "rows": m, "flagged": k, "flag_rate": k / max(m, 1)}
        rec["p_flag"] = float(binom.sf(k - 1, m, fp_budget)) if m else 1.0
        for name, vals in (("score", score), ("label", label_p)):
            if vals is None or mask.all() or m < MIN_ROWS:
                rec[f"auc_{name}"], rec[f"p_{name}"] = 0.5, 1.0
                continue
            res = mannwhitneyu(vals[mask], vals[~mask], alternative="greater")
            rec[f"auc_{name}"] = float(res.statistic) / (m * int((~mask).sum()))
            rec[f"p_{name}"] = float(res.pvalue)
        rows.append(rec)
    return pd.DataFrame(rows)


def _source_names(values: pd.Series) -> np.ndarray:
    return np.asarray(values.astype("object").where(values.notna(), "<NA>").astype(str).to_numpy())


def feature_shift(scorer: RowScorer, sample: pd.DataFrame) -> dict[str, tuple[float, float, str]]:
    """Per source (of at least ``MIN_ROWS`` sampled rows, when there are two or more sources): the largest KS
    distance of one preprocessed feature between its rows and the other sources' rows, that test's p-value times
    the number of features, and the feature's name. ``sample`` is the batch's rows at
    ``shift_sample_rows(len(batch), random_state)``, with every feature column and the source column."""
    assert scorer.source_column is not None
    idx = np.arange(len(sample))
    src = _source_names(sample[scorer.source_column])
    uniq, inv = np.unique(src, return_inverse=True)
    sizes = np.bincount(inv, minlength=len(uniq))
    tested = [k for k in range(len(uniq)) if sizes[k] >= MIN_ROWS and len(idx) - sizes[k] >= MIN_ROWS]
    if len(uniq) < 2 or not tested:
        return {}
    X = np.asarray(scorer.preprocessor_.transform(sample), dtype=np.float64)
    feats = [str(f) for f in scorer.preprocessor_.feature_names_]
    best = {int(k): (0.0, 1.0, "") for k in tested}
    for j in range(X.shape[1]):
        col = np.where(np.isnan(X[:, j]), np.inf, X[:, j])
        vals, codes = np.unique(col, return_inverse=True)
        if len(vals) < 2:
            continue
        counts = np.zeros((len(uniq), len(vals)))
        np.add.at(counts, (inv, np.asarray(codes).reshape(-1)), 1.0)
        total = counts.sum(axis=0)
        for k in tested:
            m = sizes[k]
            cdf_s = np.cumsum(counts[k]) / m
            cdf_r = np.cumsum(total - counts[k]) / (len(idx) - m)
            d = float(np.abs(cdf_s - cdf_r).max())
            if d > best[k][0]:
                en = m * (len(idx) - m) / len(idx)
                best[k] = (d, float(min(1.0, kstwo.sf(d, max(1, round(en))) * X.shape[1])), feats[j])
    return {str(uniq[k]): v for k, v in best.items()}


def source_finding(
    scorer: RowScorer, batch: pd.DataFrame, score: np.ndarray, flagged: np.ndarray, label_p: np.ndarray | None,
    sample: pd.DataFrame | None = None,
) -> tuple[BatchFinding, pd.DataFrame]:
    assert scorer.source_column is not None
    table = source_table(batch[scorer.source_column], score, flagged, label_p, scorer.fp_budget)
    names_arr = _source_names(batch[scorer.source_column])
    if sample is None:
        missing = [c for c in scorer.preprocessor_.feature_columns_ if c is not None and c not in batch.columns]
        if missing:
            raise ChecksConfigError(
                "scoring:no_source_sample",
                f"the source test compares features, but the batch given to finalize lacks {missing[0]!r}: pass "
                "batch_sample (the batch's rows at shift_sample_rows(len(batch), random_state))")
        sample = batch.iloc[shift_sample_rows(len(batch), scorer.random_state)]
    shift = feature_shift(scorer, sample)
    table["shift"] = [shift.get(str(v), (0.0, 1.0, ""))[0] for v in table["source"]]
    table["p_shift"] = [shift.get(str(v), (0.0, 1.0, ""))[1] for v in table["source"]]
    table["shift_feature"] = [shift.get(str(v), (0.0, 1.0, ""))[2] for v in table["source"]]
    n_tests = max(1, len(table)) * 4
    alpha = ALPHA / n_tests
    multi = len(table) > 1
    comp = (
        ((table["p_score"] < alpha) & (table["auc_score"] >= MIN_EFFECT))
        | ((table["p_label"] < alpha) & (table["auc_label"] >= MIN_EFFECT))
        | ((table["p_shift"] < alpha) & (table["shift"] >= MIN_SHIFT))
    ) & multi
    comp |= (table["p_flag"] < alpha) & (table["flag_rate"] >= 0.25) & (table["rows"] >= MIN_ROWS)
    table["compromised"] = comp.to_numpy(dtype=bool)
    bad = set(table.loc[table["compromised"], "source"].tolist())
    fires = np.isin(names_arr, list(bad)) if bad else np.zeros(len(batch), dtype=bool)
    rate = dict(zip(table["source"], table["flag_rate"], strict=True))
    s_score = np.asarray([rate[v] for v in names_arr], dtype=np.float64)
    s_score = np.where(fires, np.maximum(s_score, 0.5), s_score)
    reasons = {int(i): [f"source:compromised:{names_arr[i]}"] for i in np.flatnonzero(fires)}
    return BatchFinding("source", s_score, fires, "source:compromised", reasons), table
