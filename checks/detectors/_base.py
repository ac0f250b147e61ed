"""Shared pieces of the detectors: the estimator base and the empirical calibration to [0, 1]."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["OutlierDetector", "EmpiricalCalibrator", "check_matrix", "bounded_sample", "sample_index"]


def check_matrix(X: np.ndarray) -> np.ndarray:
    """A 2-D float64 array with every value finite (the preprocessor guarantees it; this is the guard)."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        arr = np.nan_to_num(arr, nan=0.0, posinf=1e4, neginf=-1e4)
    return arr


def sample_index(n: int, max_samples: int, random_state: int | None) -> np.ndarray:
    """Sorted positions of at most ``max_samples`` of ``n`` rows, drawn without replacement (seeded)."""
    if n <= max_samples:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size=max_samples, replace=False))


def bounded_sample(X: np.ndarray, max_samples: int, random_state: int | None) -> np.ndarray:
    """At most ``max_samples`` rows of X drawn without replacement (seeded); X itself when it is small."""
    if X.shape[0] <= max_samples:
        return X
    return X[sample_index(X.shape[0], max_samples, random_state)]


class OutlierDetector(BaseEstimator):  # type: ignore[misc]
    """Base of the feature-space detectors: ``fit(X)`` then ``score_samples(X)`` (higher = more outlying)."""

    def fit(self, X: np.ndarray, y: object = None) -> OutlierDetector:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_samples(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class EmpiricalCalibrator(BaseEstimator):  # type: ignore[misc]
    """Maps raw scores to [0, 1] by the empirical CDF of scores of held-out trusted rows.

    A score equal to the largest trusted score maps to n/(n+1); beyond it the value keeps rising towards 1
    (exponential tail in units of the trusted scores' spread), so the order of extreme rows is kept. Scores
    within a relative 1e-9 of a trusted score count as equal to it: the same row scored by another summation
    order (a partition, a thread) must not land "beyond every trusted score" by one rounding step.

    >>> cal = EmpiricalCalibrator().fit(np.arange(100.0))
    >>> [round(float(v), 3) for v in cal.transform(np.array([-1.0, 50.0, 1000.0]))]
    [0.0, 0.5, 1.0]
    """

    def fit(self, scores: np.ndarray) -> EmpiricalCalibrator:
        s = np.sort(np.asarray(scores, dtype=np.float64))
        s = s[np.isfinite(s)]
        if s.size == 0:
            s = np.zeros(1)
        self.sorted_ = s
        self.n_ = int(s.size)
        self.tol_ = 1e-9 * max(1.0, float(np.abs(s).max()))
        spread = float(np.percentile(s, 99) - np.percentile(s, 50)) if s.size > 1 else 0.0
        if not spread > 1e3 * self.tol_:  # none, or rounding noise of equal scores
            spread = float(np.std(s))
            if not spread > 1e3 * self.tol_:
                spread = 1.0
        self.tail_scale_ = spread
        # distinct values with the mid-rank ECDF at each and the share strictly below each (one search per score)
        self.values_, first, counts = np.unique(s, return_index=True, return_counts=True)
        self.mid_ = (2 * first + counts) / 2.0 / (self.n_ + 1)
        self.below_ = first / (self.n_ + 1)
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        x = np.asarray(scores, dtype=np.float64)
        x = np.where(np.isnan(x), self.sorted_[-1], x)
        n = self.n_
        # mid-rank ECDF of trusted scores, scaled into [0, n/(n+1)]: at a trusted value its mid-rank, between
        # trusted values the share below
        pos = np.searchsorted(self.values_, x, side="left")
        at = np.minimum(pos, len(self.values_) - 1)
        below = np.maximum(pos - 1, 0)
        near_at = np.abs(x - self.values_[at]) <= self.tol_
        near_below = ~near_at & (np.abs(x - self.values_[below]) <= self.tol_)
        if near_at.any() or near_below.any():  # snap rounding noise onto the trusted value
            x = np.where(near_at, self.values_[at], np.where(near_below, self.values_[below], x))
            pos = np.where(near_below, below, pos)
            at = np.minimum(pos, len(self.values_) - 1)
        p = np.where(self.values_[at] == x, self.mid_[at], np.append(self.below_, n / (n + 1))[pos])
        over = x > self.sorted_[-1]
        if over.any():
            excess = (x[over] - self.sorted_[-1]) / self.tail_scale_
            p[over] = n / (n + 1) + (1.0 / (n + 1)) * (1.0 - np.exp(-np.minimum(excess, 700.0)))
        return np.clip(p, 0.0, 1.0)
