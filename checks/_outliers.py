"""The outlier family of ``RowScorer``: one evidence value from the row detectors' calibrated p-values, and the
reasons that explain a flagged outlier (which detectors, which features deviate most)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from checks.detectors.ecod import FastECOD

if TYPE_CHECKING:  # pragma: no cover
    from checks.scoring import RowScorer

__all__ = ["outlier_features", "outlier_reasons"]

_EPS = 1e-12
_SEP = "\x1f"  # joins feature names in the hidden ``_outlier_features`` column (names may hold commas)


def _combine(p: np.ndarray) -> np.ndarray:
    """Calibrated per-detector p (rows x detectors) -> one raw outlier evidence per row (mean -log tail)."""
    return np.asarray(-np.log(np.clip(1.0 - p, _EPS, 1.0)).mean(axis=1))


def outlier_features(scorer: RowScorer, X: np.ndarray, cols: Mapping[str, np.ndarray]) -> np.ndarray:
    """For rows beyond the outlier threshold, the most deviant features (ECOD's per-feature tails), joined
    by ``_SEP``; None elsewhere."""
    out = np.full(len(X), None, dtype=object)
    ecod = scorer.models_.get("ecod")
    if not isinstance(ecod, FastECOD) or len(X) == 0:
        return out
    p_rows = np.column_stack([cols[f"score_{d}"] for d in scorer.row_detectors_])
    idx = np.flatnonzero(scorer.outlier_calibrator_.transform(_combine(p_rows)) > scorer.threshold_)
    if idx.size == 0:
        return out
    feat_scores = ecod.feature_scores(X[idx])
    pre = scorer.preprocessor_
    names = [c if c is not None else n for c, n in zip(pre.feature_columns_, pre.feature_names_, strict=True)]
    for k, i in enumerate(idx):
        top = [j for j in np.argsort(-feat_scores[k])[: scorer.top_features] if feat_scores[k, j] > 0]
        out[i] = _SEP.join(dict.fromkeys(names[j] for j in top))
    return out


def outlier_reasons(
    scorer: RowScorer, features: np.ndarray, p_rows: np.ndarray, outlier: np.ndarray, flagged: np.ndarray,
    reasons: defaultdict[int, list[str]],
) -> None:
    """``outlier:<detector>`` (and ``outlier:ecod:feature=<column>``) codes of the flagged outlying rows."""
    thr = scorer.threshold_
    names = scorer.row_detectors_
    for i in np.flatnonzero(flagged & (outlier > thr)):
        hits = [names[j] for j in range(len(names)) if p_rows[i, j] > thr] or [names[int(np.argmax(p_rows[i]))]]
        codes = [f"outlier:{h}" for h in hits]
        if isinstance(features[i], str) and features[i]:
            codes += [f"outlier:ecod:feature={c}" for c in str(features[i]).split(_SEP)]
        reasons[int(i)].extend(codes)
