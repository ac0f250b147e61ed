"""Local density excess: batch rows packed, with labels the reference doubts, far beyond the reference's density.

In-distribution poison that is over-represented somewhere (clean-label collision points gathered around one base
row of another class) makes batch rows whose nearest neighbours, among a pool of sampled reference and batch
rows, are batch rows far more often than the pool's batch share predicts. For each row, the share of batch rows
among its ``n_neighbors`` pool neighbours gets a one-sided Beta (Clopper-Pearson) lower bound at level ``alpha``;
the bound on the batch/reference density ratio turns into a lower bound on the local share of batch rows the
reference cannot account for, ``excess = 1 - reference density / batch density``. Under exchangeability (a clean
batch of the reference's distribution) the bound is rarely above 0. The bound depends only on the neighbour count
(and on whether the row is itself in the pool), so it is a table, computed once at ``fit``.

Density alone is not poison: a source that over-samples a sub-population packs correctly labelled rows. Poison
that must sit in a dense region to work (a collision) keeps its label where the reference says another class, so
a row counts only when the label model doubts its label at least as much as the median trusted row (calibrated
label p >= ``min_doubt``; without a label model every row counts). Repeated copies of one point are the duplicate
detector's business (``duplicate:flood``): each pool keeps one row per coarse near-duplicate cell, so a flood
neither fires here nor makes the clean rows beside it look packed.

A row fires ``cluster:density_excess`` when its bound reaches ``min_excess`` (at least half of the batch rows
around it are in excess, so it is more likely poison than not); a rule that fires on more of the batch than
``max_share`` describes a drifted batch (the drift check reports it), not poison, and fires nowhere.

Speed: the rows packed among batch rows lie where the batch pool's own rows are packed, so at ``fit`` the batch
pool rows that fire themselves (leave-one-out) are kept with their neighbourhood radius, and the exact pool search
runs only for doubted rows within ``REACH`` radii of one of them; the others score 0. A clean batch has next to no
such pool rows, so scoring costs one distance per such pool row (a matrix product) and no search. This is a
heuristic, not a bound: on the poisoning evaluation's 40 batches (8 datasets; clean, feature collision, flood,
backdoor, mixed) it kept 654 of the 656 rows the exact search fires on (the other two were flagged anyway).

The pool is fixed at ``fit`` (a seeded sample of the reference and of the batch), so every partition scores
against the same pool and partitioned scores equal whole-batch ones. Without batch rows at fit the detector is
inactive (every row scores 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import beta
from sklearn.base import BaseEstimator
from sklearn.neighbors import NearestNeighbors

from checks.detectors._base import check_matrix, sample_index
from checks.detectors._batch import BatchFinding
from checks.detectors.duplicates import COARSE, group_ids

if TYPE_CHECKING:  # pragma: no cover
    from checks.scoring import RowScorer

__all__ = ["DensityExcess", "density_finding", "fit_density", "density_columns", "POOL_ROWS", "pool_rows"]

MIN_BATCH_ROWS = 50  # fewer sampled batch rows than this: no pool, the detector stays inactive
REACH = 2.0  # rows within this many times a firing pool row's neighbourhood radius get the exact search
_SELF = 1e-12  # a pool batch row this close to the scored row is the row itself
POOL_ROWS = 1_024  # the detector's default ``max_samples``: batch rows drawn for its pool


def pool_rows(n_rows: int, random_state: int | None) -> np.ndarray:
    """Sorted positions of the batch rows (of ``n_rows``) that ``fit_density`` draws for the scorer's density
    pool with this seed: every row when there are at most ``POOL_ROWS``. A caller that reads only these rows of
    a large batch and passes them to ``RowScorer.fit`` fits the same detector."""
    return sample_index(n_rows, POOL_ROWS, random_state)


def _distinct(X: np.ndarray) -> np.ndarray:
    """Positions of the first row of each coarse near-duplicate cell (the duplicate detector's flood grid)."""
    return np.sort(np.unique(group_ids(X, COARSE), return_index=True)[1])


class DensityExcess(BaseEstimator):  # type: ignore[misc]
    """Per-row lower bound on the local share of batch rows in excess of the reference (in [0, 1]).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(800, 4))
    >>> batch = np.vstack([rng.normal(size=(740, 4)), 0.15 * rng.normal(size=(60, 4)) + 1.0])
    >>> det = DensityExcess().fit(ref, batch)
    >>> e = det.excess(batch)
    >>> bool((e[740:] >= 0.5).mean() > 0.8 and (e[:740] >= 0.5).mean() < 0.02)
    True
    """

    def __init__(
        self, *, n_neighbors: int = 20, max_samples: int = POOL_ROWS, alpha: float = 0.01, min_excess: float = 0.5,
        max_share: float = 0.25, min_doubt: float = 0.5, chunk_size: int = 65_536, random_state: int | None = 0,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.max_samples = max_samples
        self.alpha = alpha
        self.min_excess = min_excess
        self.max_share = max_share
        self.min_doubt = min_doubt
        self.chunk_size = chunk_size
        self.random_state = random_state

    def fit(self, X_ref: np.ndarray, X_batch: np.ndarray | None) -> DensityExcess:
        """Draw the pool (at most ``max_samples`` reference rows and as many batch rows, seeded; one row per
        near-duplicate cell), tabulate the bound per neighbour count and find the batch pool rows in excess."""
        X_ref = check_matrix(X_ref)
        nb = 0 if X_batch is None else len(X_batch)
        self.active_ = nb >= MIN_BATCH_ROWS and len(X_ref) >= MIN_BATCH_ROWS
        if not self.active_:
            return self
        assert X_batch is not None
        ref = X_ref[sample_index(len(X_ref), self.max_samples, self.random_state)]
        bat = check_matrix(X_batch)[sample_index(nb, self.max_samples, self.random_state)]
        ref, bat = ref[_distinct(ref)], bat[_distinct(bat)]
        pool = np.vstack([ref, bat])
        order = np.random.default_rng(self.random_state).permutation(len(pool))  # ties break at random, not by set
        self.pool_ = pool[order]
        self.is_batch_ = order >= len(ref)
        self.n_ref_, self.n_batch_ = len(ref), len(bat)
        self.k_ = k = int(min(self.n_neighbors, len(pool) - 1))
        self.index_ = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(self.pool_)
        # the bound per (row in the pool as a batch row?, batch rows among its k other neighbours)
        b = np.arange(k + 1)
        lower = np.where(b > 0, beta.ppf(self.alpha, np.maximum(b, 1), k - b + 1), 0.0)
        odds = lower / np.maximum(1.0 - lower, 1e-12)
        ratio = (self.n_batch_ - np.array([0.0, 1.0]))[:, None] / max(self.n_ref_, 1)  # null odds of a batch row
        self.table_ = np.clip(1.0 - ratio / np.maximum(odds, 1e-12)[None, :], 0.0, 1.0)
        own, radius = self._exact(bat)
        hot = own >= self.min_excess
        self.hot_, self.hot_sq_ = bat[hot], (bat[hot] ** 2).sum(axis=1)
        self.hot_reach_sq_ = (REACH * radius[hot]) ** 2
        return self

    def _exact(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bound, distance to the farthest neighbour counted) of each row, by the exact pool search."""
        k = self.k_
        dist, nb = self.index_.kneighbors(X, n_neighbors=k + 1)
        batch = self.is_batch_[nb]
        own = batch & (dist <= _SELF)
        self_hit = own.any(axis=1)
        drop = np.where(self_hit, np.argmax(own, axis=1), k)  # the row itself, else the farthest neighbour
        rows = np.arange(len(nb))
        b = batch.sum(axis=1) - batch[rows, drop]
        far = np.where(self_hit, dist[:, k], dist[:, k - 1])
        return self.table_[self_hit.astype(np.int64), b], far

    def excess(self, X: np.ndarray, doubt: np.ndarray | None = None) -> np.ndarray:
        """Lower bound (level ``alpha``) on the share of batch rows near each row that the reference does not
        account for; 0 for rows whose label the model doubts less than ``min_doubt`` (``doubt``: calibrated label
        p), for rows beyond ``REACH`` radii of every firing batch pool row, and when the detector is inactive."""
        X = check_matrix(X)
        out = np.zeros(len(X))
        if not getattr(self, "active_", False) or len(X) == 0 or len(self.hot_) == 0:
            return out
        cand = np.arange(len(X)) if doubt is None else np.flatnonzero(np.asarray(doubt) >= self.min_doubt)
        for lo in range(0, len(cand), self.chunk_size):
            rows = cand[lo : lo + self.chunk_size]
            x = X[rows]
            sq = (x**2).sum(axis=1)[:, None] - 2.0 * (x @ self.hot_.T) + self.hot_sq_[None, :]  # squared distances
            near = (sq <= self.hot_reach_sq_[None, :] * (1.0 + 1e-9) + 1e-12).any(axis=1)
            if near.any():
                out[rows[near]] = self._exact(X[rows[near]])[0]
        return out

    def finding(self, n: int, cols: Mapping[str, np.ndarray]) -> BatchFinding:
        """``density`` finding from the partitions' ``_density`` column: fires at ``min_excess`` unless that
        happens on more than ``max_share`` of the batch."""
        score = np.asarray(cols["_density"], dtype=np.float64) if "_density" in cols else np.zeros(n)
        fires = score >= self.min_excess
        if fires.mean() > self.max_share if n else False:
            fires = np.zeros(n, dtype=bool)
        return BatchFinding("density", score, fires, "cluster:density_excess")


def fit_density(scorer: RowScorer, X_ref: np.ndarray, batch: pd.DataFrame | None) -> DensityExcess | None:
    """The scorer's fitted detector: needs the detector enabled, a reference and batch rows at ``fit``."""
    if "density" not in scorer.detectors or not scorer.has_reference_ or batch is None or len(batch) == 0:
        return None
    det = DensityExcess(random_state=scorer.random_state)  # max_samples = POOL_ROWS
    pool = batch.iloc[pool_rows(len(batch), scorer.random_state)]
    return det.fit(X_ref, scorer.preprocessor_.transform(pool))


def density_on(scorer: RowScorer) -> bool:
    return bool(getattr(getattr(scorer, "density_", None), "active_", False))


def density_columns(scorer: RowScorer, X: np.ndarray, cols: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The partition's ``_density`` column (after the label columns, whose doubt gates it), if the detector is on."""
    if not density_on(scorer):
        return {}
    det = scorer.density_
    assert det is not None
    return {"_density": det.excess(X, cols.get("_label_p"))}


def density_finding(detector: DensityExcess | None, n: int, cols: Mapping[str, np.ndarray]) -> BatchFinding:
    """The detector's finding, or an all-zero one (same schema for every run of a config) when there is none."""
    if detector is None:
        return BatchFinding("density", np.zeros(n), np.zeros(n, dtype=bool), "cluster:density_excess")
    return detector.finding(n, cols)
