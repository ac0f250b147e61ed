"""A threshold that widens when the batch itself is significantly contaminated.

The false-positive budget on trusted rows sets the strictest threshold. A batch whose rows' conformal p-values
(1 - the calibrated score) show a significant excess of small values is contaminated: Storey's estimator gives
its poisoned share, and the threshold moves to the p-value cut that maximises the expected F1 (expected true
positives = rejections minus the expected clean ones), as long as at least half of what it flags is expected to
be poison. A clean batch, even a mildly drifted one, keeps the budget's threshold: the share estimate uses only
p-values above 0.2, where poison rarely lands, and must be significant (3 standard errors). A strongly drifted
batch (more than about twice the budget's share under its cut) can widen it; the drift check reports such batches.

The other way (``narrowed_cut``): when the batch holds significantly more rows at p-values at or below the budget
than clean rows would put there (binomial tail below ``TAIL_P``), that excess is poison concentrated at the
smallest p-values (a trigger, a flood, injected outliers), and a stricter cut keeps nearly all of it while
dropping most of the budget's clean rows: the cut moves to the expected-F1 optimum at or below the budget. Not
when the upper bound of Storey's estimate of the whole batch's poison is well above that excess (``SPREAD``):
then the poison may be spread over larger p-values (flipped labels the model is unsure of, a slowly shifted
feature), and a stricter cut would lose it; a small batch, whose estimate is too loose to tell, keeps the budget. Clean
rows are then flagged at a lower rate than the budget, never a higher one.

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
from scipy.stats import binom

__all__ = ["adaptive_cut", "choose_cut", "contaminated_share", "narrowed_cut"]

LAMBDA = 0.2  # Storey's tuning point: p-values above it are taken to come from clean rows
Z = 3.0  # the share estimate must exceed this many standard errors to count
MAX_CUT = 0.2  # the widened cut never passes this p-value
MIN_PRECISION = 0.5  # expected share of poison among the rows a widened cut flags
SPREAD = 2.0  # a narrower cut only when the whole batch's poison is at most this times the excess at the budget's
# cut or below, at Storey's upper bound (else the poison may be spread over larger p-values and a narrower cut
# would lose it)
MIN_EXCESS = 0.5  # ... and only when that excess is at least this share of the clean rows the budget flags
TAIL_P = 1e-6  # binomial tail below which a narrower cut's count of rows is more than clean rows would give


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


def narrowed_cut(p: np.ndarray, budget: float) -> float:
    """The p-value cut (at most ``budget``; rows with p < cut are flagged) that maximises the expected F1 when the
    batch has significantly more rows at p-values below the budget than clean rows would put there; else
    ``budget``.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clean = rng.uniform(size=2000)
    >>> narrowed_cut(clean, 0.01)
    0.01
    >>> narrowed_cut(np.concatenate([clean, np.full(60, 1e-5)]), 0.01) < 0.01
    True
    """
    return _narrowing(p, budget)[0]


def choose_cut(p: np.ndarray, budget: float, *, narrow: bool = True) -> tuple[float, str]:
    """(p-value cut, ``"budget"`` | ``"widened"`` | ``"narrowed"``): the widened cut of ``adaptive_cut`` or the
    narrowed one of ``narrowed_cut``; when both apply, the one with the higher expected F1 under the narrowing's
    poison estimate (the excess below the budget's cut, or Storey's lower bound when larger). Rows with p < cut
    are flagged. ``narrow=False``: the widened cut or the budget's (``RowScorer(narrow=...)``, off by default).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> choose_cut(rng.uniform(size=2000), 0.01)
    (0.01, 'budget')
    """
    wide = adaptive_cut(p, budget)
    if not narrow:  # the widened cut or the budget's only
        return (wide, "widened") if wide > budget else (budget, "budget")
    narrowed, narrow_f1, poison = _narrowing(p, budget)
    if narrowed < budget and wide > budget:
        flagged = float(np.count_nonzero(p < wide))
        true_pos = min(flagged - min(flagged, (len(p) - poison) * wide), poison)
        if 2.0 * true_pos / (flagged + poison) > narrow_f1:
            return wide, "widened"
        return narrowed, "narrowed"
    if wide > budget:
        return wide, "widened"
    return (narrowed, "narrowed") if narrowed < budget else (budget, "budget")


def _narrowing(p: np.ndarray, budget: float) -> tuple[float, float, float]:
    """(narrowed cut, its expected F1, the poison count estimated), ``(budget, 0, 0)`` when it does not apply."""
    n = len(p)
    if n == 0:
        return budget, 0.0, 0.0
    ordered = np.sort(p)
    # rows with p < cut are flagged, as the budget's own cut does: each distinct p-value as a cut leaves out the
    # rows that share it (calibrated p-values are discrete, and ties are clean and poisoned rows alike)
    cuts = np.concatenate([[budget], np.unique(ordered[ordered <= budget])])
    rejected = np.searchsorted(ordered, cuts, side="left").astype(np.float64)
    # an exact binomial tail per candidate cut (the counts are small there), strict for the many cuts tried
    significant = (rejected > 0) & (binom.sf(rejected - 1, n, cuts) < TAIL_P)
    if not significant.any():
        return budget, 0.0, 0.0
    inside = float((rejected - n * cuts)[significant].max())
    if inside < MIN_EXCESS * n * budget:  # a small excess (a clean batch's slightly heavy tail): not worth a cut
        return budget, 0.0, 0.0
    # Storey's whole-batch estimate, with two standard errors either way: narrow only when even its upper bound
    # says the poison is concentrated (a small batch cannot show that, so it keeps the budget's cut)
    storey, error = contaminated_share(p) * n, 2.0 * np.sqrt(LAMBDA / (1.0 - LAMBDA) * n)
    if storey + error > SPREAD * inside:  # the poison may lie beyond the budget's cut (flips, shifts): keep it
        return budget, 0.0, 0.0
    poison = max(storey - error, inside)
    clean_expected = np.minimum(rejected, (n - poison) * cuts)
    true_pos = np.minimum(rejected - clean_expected, poison)
    f1 = 2.0 * true_pos / (rejected + poison)
    best = int(np.argmax(f1))
    return float(cuts[best]), float(f1[best]), poison
