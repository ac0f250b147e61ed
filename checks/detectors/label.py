"""Label consistency: out-of-fold probability of the given label and kNN label disagreement.

A gradient-boosting model trained on the trusted reference (out-of-fold on the reference itself, to calibrate)
gives each batch row the probability of the label it carries (confident learning); the labels of its nearest
reference rows give a second, model-free opinion. Both are calibrated on the reference's own held-out values.
Training on the trusted reference only keeps a consistent poison pattern in the batch (a backdoor trigger, a
flood) from teaching the model that its labels are right.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import binom
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from checks._sklearn_private import predict_proba_binned as _predict_proba_binned
from checks.detectors._base import EmpiricalCalibrator, sample_index
from checks.detectors._batch import BatchFinding, label_keys

if TYPE_CHECKING:  # pragma: no cover
    from checks.scoring import RowScorer

__all__ = ["LabelModel", "rank_by_class_excess"]

SHIFT_P = 1e-6  # binomial tail (Bonferroni over classes) for a class over-represented in the batch
SHIFT_LIFT = 1.2  # ... and at least this many times its reference share
CONF_FLOOR = 1e-3  # 1 - p(given label) below this is "fully consistent": the fold models that calibrate and the
# full model that scores differ in their last digits of near-certainty, which must not rank clean rows
EARLY_STOP_ROWS = 5_000  # label-model fits on at least this many rows stop early (see ``LabelModel._model``)


def _tail(p: np.ndarray) -> np.ndarray:
    return np.asarray(-np.log(np.clip(1.0 - p, 1e-12, 1.0)))


def _class_share(nb_codes: np.ndarray, keep: np.ndarray, n_classes: int) -> np.ndarray:
    """(rows, classes): each row's share of kept neighbours per class (neighbours of an unknown class, -1,
    count in the denominator only)."""
    share = np.zeros((len(nb_codes), n_classes))
    rows = np.arange(len(nb_codes))
    for j in range(nb_codes.shape[1]):
        ok = keep[:, j] & (nb_codes[:, j] >= 0)
        share[rows[ok], nb_codes[ok, j]] += 1.0  # one (row, class) pair per row and column: no repeats
    return share / np.maximum(keep.sum(axis=1), 1)[:, None]


class LabelModel(BaseEstimator):  # type: ignore[misc]
    """Fits on reference features ``X`` and labels ``y``; ``score_samples(X, y)`` = suspicion of each label.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 2)); y = pd.Series((X[:, 0] > 0).astype(int))
    >>> m = LabelModel().fit(X, y)
    >>> s = m.score_samples(np.array([[2.0, 0.0], [2.0, 0.0]]), pd.Series([1, 0]))
    >>> bool(s[1] > s[0])
    True
    """

    def __init__(
        self, *, n_folds: int = 3, n_neighbors: int = 10, max_iter: int = 100, learning_rate: float = 0.1,
        max_neighbors_ref: int = 1_024, max_fit_rows: int = 20_000, random_state: int | None = 0,
    ) -> None:
        self.n_folds = n_folds
        self.n_neighbors = n_neighbors
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_neighbors_ref = max_neighbors_ref
        self.max_fit_rows = max_fit_rows
        self.random_state = random_state

    def _model(self, codes: np.ndarray) -> HistGradientBoostingClassifier:
        # on large fits, stop adding trees once a held-out tenth stops improving: simple labels need far fewer
        # than max_iter trees (and every tree costs time on each scored row); small or rare-class fits run all
        early = len(codes) >= EARLY_STOP_ROWS and int(np.bincount(codes).min()) >= 20
        return HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate, early_stopping=early, n_iter_no_change=10,
            validation_fraction=0.1, random_state=self.random_state,
        )

    def fit(self, X: np.ndarray, y: pd.Series, *, neighbor_rows: np.ndarray | None = None) -> LabelModel:
        """Fit on reference rows. ``neighbor_rows`` (positions in X) are the kNN vote's reference rows, e.g. the
        ``KNNDetector``'s sample so that one neighbour search serves both; default: a seeded sample."""
        X_all, y_all = X, y
        self.fit_index_ = sample_index(len(X), self.max_fit_rows, self.random_state)  # a bounded, seeded sample
        if len(self.fit_index_) < len(X):
            X, y = X[self.fit_index_], y.iloc[self.fit_index_]
        keys = label_keys(y)
        self.classes_, codes = np.unique(keys, return_inverse=True)
        codes = np.asarray(codes)
        n = len(codes)
        self.class_share_ = np.bincount(codes, minlength=len(self.classes_)) / max(n, 1)
        oof_proba = np.zeros((n, len(self.classes_)))
        oof_proba[np.arange(n), codes] = 1.0  # one class, or too few rows to fold: every label is the model's
        folds = min(self.n_folds, n)
        if len(self.classes_) >= 2 and folds >= 2:
            counts = np.bincount(codes)
            splitter: StratifiedKFold | KFold = (
                StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
                if counts.min() >= folds else KFold(folds, shuffle=True, random_state=self.random_state)
            )
            for tr, te in splitter.split(X, codes):
                fold_model = self._fit_model(X[tr], codes[tr])
                if fold_model is not None:  # else a fold of one class: its rows keep their own label's 1.0
                    oof_proba[te] = self._class_proba(fold_model, X[te])
        oof = oof_proba[np.arange(n), codes]
        self.heldout_accuracy_ = float(np.mean(np.argmax(oof_proba, axis=1) == codes)) if n else 1.0
        self.model_ = self._fit_model(X, codes) if len(self.classes_) >= 2 else None
        # kNN label disagreement against a bounded reference sample (positions in X_all)
        if neighbor_rows is None:
            full_idx = self.fit_index_[sample_index(n, self.max_neighbors_ref, self.random_state)]
        else:
            full_idx = np.asarray(neighbor_rows, dtype=np.int64)
        self.nn_X_ = X_all[full_idx]
        self.nn_codes_ = self._codes(label_keys(y_all.iloc[full_idx]))
        self.k_ = int(max(1, min(self.n_neighbors, len(full_idx) - 1)))
        self.nn_ = NearestNeighbors(n_neighbors=self.k_ + 1, algorithm="brute").fit(self.nn_X_)
        _, nb = self.nn_.kneighbors(X, n_neighbors=min(self.k_ + 1, len(full_idx)))
        to_nn = np.full(len(X_all), -1)
        to_nn[full_idx] = np.arange(len(full_idx))
        pos_in_sample = to_nn[self.fit_index_]
        in_sample = pos_in_sample >= 0
        # drop each sampled row's own entry; others drop their farthest neighbour
        own = nb == pos_in_sample[:, None]
        keep = ~own
        keep[~in_sample, -1] = False
        keep[in_sample & ~own.any(axis=1), -1] = False
        nb_codes = self.nn_codes_[nb]
        disagree = ((nb_codes != codes[:, None]) & keep).sum(axis=1) / np.maximum(keep.sum(axis=1), 1)
        view = 0.5 * oof_proba + 0.5 * _class_share(nb_codes, keep, len(self.classes_))
        # confident learning's per-class thresholds: how sure the out-of-fold view is, on average, of a trusted
        # row's own class; a suggestion must reach its class's value (an unsure class needs less certainty)
        sums = np.bincount(codes, weights=view[np.arange(n), codes], minlength=len(self.classes_))
        self.class_threshold_ = np.where(self.class_share_ > 0, sums / np.maximum(np.bincount(
            codes, minlength=len(self.classes_)), 1), 1.0)
        # the reference's own rate of confident suggestions per class: natural label noise and classes the
        # features do not separate; a batch's suggestions count as flips only beyond it (``credible``)
        natural = self.suggest(view, codes)[0] >= 0
        self.suggest_rate_ = np.bincount(codes, weights=natural, minlength=len(self.classes_)) / np.maximum(
            np.bincount(codes, minlength=len(self.classes_)), 1)
        raw_conf = np.maximum(1.0 - oof, CONF_FLOOR)
        self.conf_calibrator_ = EmpiricalCalibrator().fit(raw_conf)
        self.knn_calibrator_ = EmpiricalCalibrator().fit(disagree)
        comb = _tail(self.conf_calibrator_.transform(raw_conf)) + _tail(self.knn_calibrator_.transform(disagree))
        self.calibrator_ = EmpiricalCalibrator().fit(comb)
        self.heldout_p_ = self.calibrator_.transform(comb)
        return self

    def _fit_model(self, X: np.ndarray, codes: np.ndarray) -> HistGradientBoostingClassifier | None:
        if len(np.unique(codes)) < 2:
            return None
        # OpenMP threads only pay off on large fits; on small ones (and a busy machine) they spin and stall
        with threadpool_limits(limits=1 if len(codes) < 50_000 else None, user_api="openmp"):
            return self._model(codes).fit(X, codes)

    def _class_proba(self, model: HistGradientBoostingClassifier, X: np.ndarray) -> np.ndarray:
        """(rows, classes) probabilities of ``model`` over all of ``classes_`` (0 for a class it never saw)."""
        with threadpool_limits(limits=1 if len(X) < 50_000 else None, user_api="openmp"):
            proba = _predict_proba_binned(model, X)
        out = np.zeros((len(X), len(self.classes_)))
        out[:, np.asarray(model.classes_, dtype=np.int64)] = proba
        return out

    def _codes(self, keys: np.ndarray) -> np.ndarray:
        """Positions of label keys in ``classes_``; -1 for a label the fit rows never show."""
        pos = np.clip(np.searchsorted(self.classes_, keys), 0, len(self.classes_) - 1)
        return np.where(self.classes_[pos] == keys, pos, -1)

    def components(
        self, X: np.ndarray, y: pd.Series, neighbors: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(combined p, confident-learning p, kNN-disagreement p, label unseen in the reference) per row.
        ``neighbors``: positions in the kNN vote's reference rows of each row's nearest ones (at least ``k_``
        columns), when the caller already searched them; else they are searched here."""
        return self._evidence(X, self._codes(label_keys(y)), neighbors)[:4]

    def _evidence(
        self, X: np.ndarray, codes: np.ndarray, neighbors: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``components`` plus the trusted view of each row's class: (rows, classes), the mean of the model's
        probabilities and the nearest reference rows' class shares."""
        known = codes >= 0
        if len(self.classes_) >= 2:
            assert self.model_ is not None
            proba = self._class_proba(self.model_, X)
        else:
            proba = np.ones((len(X), 1))
        given = np.where(known, proba[np.arange(len(codes)), np.maximum(codes, 0)], 0.0)
        nb = self.nn_.kneighbors(X, n_neighbors=self.k_)[1] if neighbors is None else neighbors[:, : self.k_]
        nb_codes = self.nn_codes_[nb]
        disagree = (nb_codes != codes[:, None]).mean(axis=1)
        p_conf = self.conf_calibrator_.transform(np.maximum(1.0 - given, CONF_FLOOR))
        p_knn = self.knn_calibrator_.transform(disagree)
        p = self.calibrator_.transform(_tail(p_conf) + _tail(p_knn))
        p = np.where(known, p, 1.0)
        view = 0.5 * proba + 0.5 * _class_share(nb_codes, np.ones(nb.shape, dtype=bool), len(self.classes_))
        return p, p_conf, p_knn, ~known, view

    def suggest(self, view: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(suggested class code, label quality) per row from the trusted ``view`` (see ``_evidence``).

        The label quality is the view's probability of the given label (0 for a label the reference never
        shows); the suggestion is the view's most likely class where it differs from the given label and
        reaches that class's threshold (``class_threshold_``, confident learning), else -1."""
        rows = np.arange(len(codes))
        quality = np.where(codes >= 0, view[rows, np.maximum(codes, 0)], 0.0)
        best = np.argmax(view, axis=1)
        sure = (best != codes) & (view[rows, best] >= self.class_threshold_[best])
        return np.where(sure, best, -1).astype(np.int32), np.clip(quality, 0.0, 1.0)

    def credible(self, suggested: np.ndarray, quality: np.ndarray, keys: np.ndarray, alpha: float) -> np.ndarray:
        """The batch's suggestions that estimate flipped labels: per given class, only as many as exceed the
        count the reference's own rate (``suggest_rate_``) reaches with probability ``1 - alpha`` (binomial),
        the lowest label qualities first; the rest become -1. A batch whose labels are as noisy as the trusted
        data's keeps none. Rows whose label the reference never shows keep theirs."""
        codes = self._codes(keys)
        out = np.where(codes < 0, suggested, -1).astype(np.int32)
        for c in range(len(self.classes_)):
            of_class = codes == c
            rows = np.flatnonzero(of_class & (suggested >= 0))
            natural = int(binom.ppf(1.0 - alpha, int(of_class.sum()), self.suggest_rate_[c])) if len(rows) else 0
            if len(rows) > natural:
                top = rows[np.argsort(quality[rows], kind="stable")[: len(rows) - natural]]
                out[top] = suggested[top]
        return out

    def label_values(self, codes: np.ndarray, columns: tuple[pd.Series, ...]) -> np.ndarray:
        """Class codes as label values (object array, None for -1): each class as the first of ``columns``
        (e.g. the batch's label column, then the reference's) writes it, so a corrected label keeps the data's
        own type and spelling."""
        values = np.full(len(self.classes_), None, dtype=object)
        for column in columns:
            uniq, first = np.unique(label_keys(column), return_index=True)
            if len(uniq) == 0:
                continue
            pos = np.clip(np.searchsorted(uniq, self.classes_), 0, len(uniq) - 1)
            missing = np.array([v is None for v in values])
            for c in np.flatnonzero(missing & (uniq[pos] == self.classes_)):
                value = column.iloc[int(first[pos[c]])]
                values[c] = value.item() if isinstance(value, np.generic) else value
        out = np.full(len(codes), None, dtype=object)
        some = codes >= 0
        out[some] = values[codes[some]]
        return out

    def score_samples(self, X: np.ndarray, y: pd.Series) -> np.ndarray:
        return self.components(X, y)[0]

    def partition_columns(
        self, X: np.ndarray, y: pd.Series, neighbors: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Per-row label evidence of one partition: ``_label_p`` (combined), ``_label_conf``, ``_label_knn``
        and ``_label_unseen`` (see ``components``), ``_label_suggested`` and ``_label_quality`` (``suggest``), and
        ``_label_pred``, the trusted view's most likely class (a code into ``classes_``; -1 with one class)."""
        codes = self._codes(label_keys(y))
        p, p_conf, p_knn, unseen, view = self._evidence(X, codes, neighbors)
        suggested, quality = self.suggest(view, codes)
        preferred = np.argmax(view, axis=1).astype(np.int32) if len(self.classes_) >= 2 else np.full(len(X), -1,
                                                                                                  np.int32)
        return {"_label_p": p, "_label_conf": p_conf, "_label_knn": p_knn, "_label_unseen": unseen,
                "_label_suggested": suggested, "_label_quality": quality, "_label_pred": preferred}

    @staticmethod
    def finding(scorer: RowScorer, cols: Mapping[str, np.ndarray]) -> BatchFinding:
        """The per-row label finding (``label:inconsistent``, ``label:knn_disagreement``, ``label:unseen``)
        from the partition columns."""
        p, p_conf, p_knn = cols["_label_p"], cols["_label_conf"], cols["_label_knn"]
        unseen = np.asarray(cols["_label_unseen"], dtype=bool)
        thr = scorer.threshold_
        fires = p > thr
        reasons: dict[int, list[str]] = {}
        for i in np.flatnonzero(fires):
            codes = []
            if unseen[i]:
                codes.append("label:unseen")
            if p_conf[i] > thr or not codes and p_conf[i] >= p_knn[i]:
                codes.append("label:inconsistent")
            if p_knn[i] > thr or not codes:
                codes.append("label:knn_disagreement")
            reasons[int(i)] = codes
        return BatchFinding("label", p, fires, "label:inconsistent", reasons, calibrated=True)

    def _shifted_classes(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                           np.ndarray]:
        """(class position of each row, whether its class is known, counts, expected counts, shifted classes)."""
        pos = np.clip(np.searchsorted(self.classes_, keys), 0, len(self.classes_) - 1)
        known = self.classes_[pos] == keys
        n = len(keys)
        counts = np.bincount(pos[known], minlength=len(self.classes_))
        expected = self.class_share_ * n
        tail = binom.sf(counts - 1, n, np.clip(self.class_share_, 1e-9, 1.0))
        shifted = np.flatnonzero((tail < SHIFT_P / len(self.classes_)) & (counts >= SHIFT_LIFT * expected))
        return pos, known, counts, expected, shifted

    def excess_share(self, keys: np.ndarray) -> np.ndarray:
        """Per row, the share of its class's batch rows beyond the reference's rate when that class is
        significantly over-represented (``prior_shift``'s test), else 0: the prior that a row of the class is
        one of the rows moved into it."""
        pos, known, counts, expected, shifted = self._shifted_classes(keys)
        share = np.zeros(len(self.classes_))
        share[shifted] = 1.0 - expected[shifted] / counts[shifted]
        return np.where(known, share[pos], 0.0)

    def prior_shift(self, keys: np.ndarray, p: np.ndarray, already: np.ndarray) -> BatchFinding | None:
        """A class far more frequent in the batch than in the reference (a targeted flip moves many rows into
        it): its most doubted rows, as many as its excess count minus the rows other detectors already flag
        (``already``), are flagged ``label:prior_shift``. ``keys`` are the batch's labels as ``label_keys``."""
        pos, known, counts, expected, shifted = self._shifted_classes(keys)
        n = len(keys)
        if shifted.size == 0:
            return None
        fires = np.zeros(n, dtype=bool)
        for c in shifted:
            rows = np.flatnonzero(known & (pos == c))
            excess = int(round(counts[c] - expected[c])) - int(already[rows].sum())
            if excess <= 0:
                continue
            rows = rows[~already[rows]]
            top = rows[np.argsort(-p[rows], kind="stable")[:excess]]
            fires[top[p[top] >= 0.5]] = True
        score = np.where(fires, p, 0.0)
        return BatchFinding("label_shift", score, fires, "label:prior_shift")


def rank_by_class_excess(score: np.ndarray, flagged: np.ndarray, excess: np.ndarray, thr: float, *,
                         cut: float | None = None) -> np.ndarray:
    """Unflagged rows of an over-represented class move up the ranking: their p-value ``1 - score`` is weighted
    by ``1 - excess`` (the chance a row of that class is a clean one), capped below the score of every row
    flagged by its score (above ``cut``; without ``cut``, every flagged row). Which rows are flagged does not
    change; the score orders the rest for review."""
    if not excess.any():
        return score
    by_score = flagged & (score > cut) if cut is not None else flagged  # not rows a contract rule flagged
    cap = np.nextafter(min(thr, float(score[by_score].min()) if by_score.any() else thr), 0.0)
    lifted = np.minimum(1.0 - (1.0 - score) * (1.0 - excess), cap)
    return np.where(~flagged & (excess > 0), np.maximum(score, lifted), score)
