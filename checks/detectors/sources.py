"""Source attribution: which source of a multi-source batch is compromised.

For every source, its rows' suspicion (the combined score before this step) and the trusted label model's
doubt about their labels (the effect of that source's data on a model trained on trusted data, after ART's
ProvenanceDefense) are compared with all other sources' rows (Mann-Whitney U, one-sided), and its flag rate
with the false-positive budget (binomial). A source that stands out is compromised: every one of its rows is
flagged with ``source:compromised:<name>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import binom, mannwhitneyu

from checks.detectors._batch import BatchFinding

if TYPE_CHECKING:  # pragma: no cover
    from checks.scoring import RowScorer

__all__ = ["source_finding", "source_table"]

ALPHA = 1e-3  # family-wise significance (Bonferroni over sources and tests)
MIN_EFFECT = 0.6  # a compromised source's rows are more suspicious than others' with at least this AUC
MIN_ROWS = 10


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


def source_finding(
    scorer: RowScorer, batch: pd.DataFrame, score: np.ndarray, flagged: np.ndarray, label_p: np.ndarray | None
) -> tuple[BatchFinding, pd.DataFrame]:
    assert scorer.source_column is not None
    table = source_table(batch[scorer.source_column], score, flagged, label_p, scorer.fp_budget)
    n_tests = max(1, len(table)) * 3
    alpha = ALPHA / n_tests
    multi = len(table) > 1
    comp = (
        ((table["p_score"] < alpha) & (table["auc_score"] >= MIN_EFFECT))
        | ((table["p_label"] < alpha) & (table["auc_label"] >= MIN_EFFECT))
    ) & multi
    comp |= (table["p_flag"] < alpha) & (table["flag_rate"] >= 0.25) & (table["rows"] >= MIN_ROWS)
    table["compromised"] = comp.to_numpy(dtype=bool)
    names = batch[scorer.source_column].astype("object").where(batch[scorer.source_column].notna(), "<NA>")
    names_arr = names.astype(str).to_numpy()
    bad = set(table.loc[table["compromised"], "source"].tolist())
    fires = np.isin(names_arr, list(bad)) if bad else np.zeros(len(batch), dtype=bool)
    rate = dict(zip(table["source"], table["flag_rate"], strict=True))
    s_score = np.asarray([rate[v] for v in names_arr], dtype=np.float64)
    s_score = np.where(fires, np.maximum(s_score, 0.5), s_score)
    reasons = {int(i): [f"source:compromised:{names_arr[i]}"] for i in np.flatnonzero(fires)}
    return BatchFinding("source", s_score, fires, "source:compromised", reasons), table
