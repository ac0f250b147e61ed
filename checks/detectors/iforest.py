"""Isolation Forest (Liu et al., 2008): scikit-learn's trees, scored by leaf lookup in chunks on threads.

The forest is scikit-learn's ``IsolationForest`` (as in PyOD's IForest) fitted on a bounded sample. Scoring
maps each row to its leaf per tree (``tree.apply``, which releases the GIL) and adds the precomputed path
length of that leaf; trees are split across threads and rows across chunks. Scores equal
``-IsolationForest.score_samples`` (tested against PyOD's IForest on real data).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.ensemble import IsolationForest

from checks.detectors._base import OutlierDetector, bounded_sample, check_matrix

__all__ = ["FastIForest"]


def _avg_path_length(n: np.ndarray) -> np.ndarray:
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


class FastIForest(OutlierDetector):
    """Isolation Forest anomaly score in (0, 1): ``2 ** (-mean path length / c(max_samples))``.

    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> det = FastIForest(random_state=0).fit(X)
    >>> bool(det.score_samples(np.array([[8.0, 8.0, 8.0]]))[0] > det.score_samples(np.zeros((1, 3)))[0])
    True
    """

    def __init__(
        self, *, n_estimators: int = 100, max_samples: int = 256, fit_samples: int = 100_000,
        chunk_size: int = 131_072, n_jobs: int | None = None, random_state: int | None = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.fit_samples = fit_samples
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> FastIForest:
        X = bounded_sample(check_matrix(X), self.fit_samples, self.random_state)
        forest = IsolationForest(
            n_estimators=self.n_estimators, max_samples=min(self.max_samples, X.shape[0]),
            random_state=self.random_state,
        ).fit(X)
        return self._from_forest(forest)

    def _from_forest(self, forest: IsolationForest) -> FastIForest:
        """Adopt an already fitted scikit-learn (or PyOD ``detector_``) IsolationForest."""
        self.forest_ = forest
        self.trees_ = [est.tree_ for est in forest.estimators_]
        self.features_ = [np.asarray(f) for f in forest.estimators_features_]
        self.leaf_values_ = []
        for tree in self.trees_:
            depth = np.zeros(tree.node_count, dtype=np.float64)
            left, right = tree.children_left, tree.children_right
            for node in range(tree.node_count):  # parents precede children in sklearn's node order
                if left[node] >= 0:
                    depth[left[node]] = depth[node] + 1
                    depth[right[node]] = depth[node] + 1
            self.leaf_values_.append(depth + _avg_path_length(tree.n_node_samples))
        self.denominator_ = len(self.trees_) * float(_avg_path_length(np.array([forest.max_samples_]))[0])
        self.n_features_in_ = int(forest.n_features_in_)
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        X32 = np.ascontiguousarray(check_matrix(X), dtype=np.float32)
        n = X32.shape[0]
        depths = np.zeros(n, dtype=np.float64)
        n_jobs = self.n_jobs or min(4, os.cpu_count() or 1)
        groups = [list(range(k, len(self.trees_), n_jobs)) for k in range(n_jobs)]

        def run(group: list[int], lo: int, hi: int) -> np.ndarray:
            acc = np.zeros(hi - lo, dtype=np.float64)
            for t in group:
                feats = self.features_[t]
                sub = X32[lo:hi] if feats.size == X32.shape[1] and np.all(feats == np.arange(feats.size)) \
                    else np.ascontiguousarray(X32[lo:hi][:, feats])
                acc += self.leaf_values_[t][self.trees_[t].apply(sub)]
            return acc

        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            for lo in range(0, n, self.chunk_size):
                hi = min(n, lo + self.chunk_size)
                for part in pool.map(lambda g: run(g, lo, hi), groups):  # noqa: B023 - used immediately
                    depths[lo:hi] += part
        if self.denominator_ == 0:
            return np.ones(n)
        return np.asarray(2.0 ** (-depths / self.denominator_))
