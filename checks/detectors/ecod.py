"""ECOD (Li et al., 2022) scored against the reference's sorted columns with ``np.searchsorted``.

PyOD's ECOD recomputes the empirical CDFs over reference + batch on every call (19 s for 1M rows); here the
ECDF of each column is the reference's, looked up by binary search, as if each scored row were added to the
reference alone. On data of the reference's distribution the scores rank like PyOD's (tested, Spearman >= 0.999).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.stats import skew

from checks.detectors._base import OutlierDetector, bounded_sample, check_matrix

__all__ = ["FastECOD"]


class FastECOD(OutlierDetector):
    """Empirical-CDF outlier detector: sum over features of the larger tail's -log probability.

    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> det = FastECOD().fit(X)
    >>> bool(det.score_samples(np.array([[6.0, 0, 0]]))[0] > det.score_samples(np.zeros((1, 3)))[0])
    True
    """

    def __init__(self, *, max_samples: int = 20_000, random_state: int | None = 0) -> None:
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> FastECOD:
        X = bounded_sample(check_matrix(X), self.max_samples, self.random_state)
        self.sorted_ = np.sort(X, axis=0)
        self.n_samples_ = int(X.shape[0])
        self.log_n1_ = float(np.log(self.n_samples_ + 1.0))
        # run_end_[i, j]: one past the last position holding the value sorted_[i, j] (ties share it)
        n = self.n_samples_
        self.run_end_ = np.empty(self.sorted_.shape, dtype=np.int64)
        for j in range(self.sorted_.shape[1]):
            self.run_end_[:, j] = np.searchsorted(self.sorted_[:, j], self.sorted_[:, j], side="right")
        self.sorted_ = np.asfortranarray(self.sorted_)
        del n
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant columns: skew is undefined -> 0
            sk = np.nan_to_num(skew(X, axis=0), nan=0.0)
        self.skew_sign_ = np.sign(sk)
        self.n_features_in_ = int(X.shape[1])
        return self

    def feature_scores(self, X: np.ndarray) -> np.ndarray:
        """Per-feature outlyingness (rows x features); ``score_samples`` is its row sum."""
        X = np.asfortranarray(check_matrix(X))
        out = np.empty(X.shape, dtype=np.float64, order="F")

        def column(j: int) -> None:
            col, x, n = self.sorted_[:, j], X[:, j], self.n_samples_
            below = np.searchsorted(col, x, side="left")  # reference values < x
            at = np.minimum(below, n - 1)
            equal = np.where(col[at] == x, self.run_end_[at, j] - below, 0)
            u_l = self.log_n1_ - np.log(below + equal + 1.0)  # values <= x, plus the row itself
            u_r = self.log_n1_ - np.log(n - below + 1.0)  # values >= x, plus the row itself
            o = np.maximum(u_l, u_r)
            if self.skew_sign_[j] == 0:
                o = np.maximum(o, u_l + u_r)
            out[:, j] = o

        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(column, range(X.shape[1])))
        return out

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return self.feature_scores(X).sum(axis=1)
