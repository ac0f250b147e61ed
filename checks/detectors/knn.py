"""kNN outlier score (Ramaswamy et al., 2000; PyOD's KNN, method "largest"): distance to the k-th nearest
reference row, by scikit-learn's multi-threaded brute-force search over a bounded reference sample."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from checks.detectors._base import OutlierDetector, check_matrix, sample_index

__all__ = ["KNNDetector"]


class KNNDetector(OutlierDetector):
    """Distance to the ``n_neighbors``-th nearest row of the (sampled) reference.

    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 2))
    >>> det = KNNDetector().fit(X)
    >>> bool(det.score_samples(np.array([[5.0, 5.0]]))[0] > det.score_samples(np.zeros((1, 2)))[0])
    True
    """

    def __init__(
        self, *, n_neighbors: int = 5, max_samples: int = 1_024, chunk_size: int = 65_536,
        random_state: int | None = 0,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.max_samples = max_samples
        self.chunk_size = chunk_size
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> KNNDetector:
        X = check_matrix(X)
        self.sample_index_ = sample_index(len(X), self.max_samples, self.random_state)  # rows of X kept
        X = X[self.sample_index_]
        self.reference_ = X
        self.k_ = int(min(self.n_neighbors, X.shape[0]))
        self.index_ = NearestNeighbors(n_neighbors=self.k_, algorithm="brute").fit(X)
        self.n_features_in_ = int(X.shape[1])
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return self.score_from_neighbors(self.neighbors(X, self.k_)[0])

    def neighbors(self, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(distances, positions in ``sample_index_``) of the ``k`` nearest sampled reference rows of each row;
        one search serves this detector and the label model's kNN vote (``RowScorer``)."""
        X = check_matrix(X)
        k = int(min(k, self.reference_.shape[0]))
        dist = np.empty((X.shape[0], k), dtype=np.float64)
        idx = np.empty((X.shape[0], k), dtype=np.int64)
        for lo in range(0, X.shape[0], self.chunk_size):
            dist[lo : lo + self.chunk_size], idx[lo : lo + self.chunk_size] = self.index_.kneighbors(
                X[lo : lo + self.chunk_size], n_neighbors=k)
        return dist, idx

    def score_from_neighbors(self, dist: np.ndarray) -> np.ndarray:
        """The score from ``neighbors``' distances (at least ``k_`` columns)."""
        return np.asarray(dist[:, self.k_ - 1], dtype=np.float64)
