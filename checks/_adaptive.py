"""A threshold that widens when the batch itself is significantly contaminated.

The false-positive budget on trusted rows sets the strictest threshold. A batch whose rows' conformal p-values
(1 - the calibrated score) show a significant excess of small values is contaminated: Storey's estimator gives
its poisoned share, and the threshold moves to the p-value cut that maximises the expected F1 (expected true
positives = rejections minus the expected clean ones), as long as at least half of what it flags is expected to
be poison. A clean batch, even a mildly drifted one, keeps the budget's threshold: the share estimate uses only
p-values above 0.2, where poison rarely lands, and must be significant (3 standard errors). A strongly drifted
batch (more than about twice the budget's share under its cut) can widen it; the drift check reports such batches.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> clean = rng.uniform(size=2000)
>>> round(adaptive_cut(clean, 0.01), 3)
0.01
>>> poisoned = np.concatenate([clean[:1800], rng.uniform(0, 0.03, size=200)])
>>> adaptive_cut(poisoned, 0.01) > 0.01
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["adaptive_cut", "contaminated_share"]

LAMBDA = 0.2  # Storey's tuning point: p-values above it are taken to come from clean rows
Z = 3.0  # the share estimate must exceed this many standard errors to count
MAX_CUT = 0.2  # the widened cut never passes this p-value
MIN_PRECISION = 0.5  # expected share of poison among the rows a widened cut flags


def contaminated_share(p: np.ndarray) -> float:
    """Storey's estimate of the share of rows that are not clean (0 when not significant)."""
    n = len(p)
    if n == 0:
        return 0.0
    share = 1.0 - float(np.count_nonzero(p > LAMBDA)) / ((1.0 - LAMBDA) * n)
    return share if share > Z * np.sqrt(LAMBDA / ((1.0 - LAMBDA) * n)) else 0.0


def adaptive_cut(p: np.ndarray, budget: float) -> float:
    """The p-value cut (at least ``budget``) that maximises the expected F1 of flagging rows with p <= cut."""
    share = contaminated_share(p)
    n = len(p)
    if share <= 0.0:
        return budget
    poison = share * n
    cand = np.sort(p[(p >= budget) & (p <= MAX_CUT)])
    if cand.size == 0:
        return budget
    cuts = np.concatenate([[budget], cand])
    rejected = np.searchsorted(np.sort(p), cuts, side="right").astype(np.float64)
    clean_expected = np.minimum(rejected, (1.0 - share) * n * cuts)
    true_pos = np.minimum(rejected - clean_expected, poison)
    f1 = 2.0 * true_pos / (rejected + poison)
    # a cut whose flagged rows would be mostly clean is refused: a batch whose p-values are all a little lower
    # (a clean batch that drifted) shows a share, but not one concentrated at small p-values like poison
    f1 = np.where(true_pos >= MIN_PRECISION * rejected, f1, -1.0)
    f1[0] = max(f1[0], 0.0)  # the budget's own cut is always allowed
    return float(cuts[int(np.argmax(f1))])
