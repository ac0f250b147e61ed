"""Row suspicion scores: feature-space outliers, label consistency, duplicates, backdoor clusters, sources.

``RowScorer`` fits on the trusted reference (or robustly on the batch when there is none), scores partitions
with the per-row detectors (``score_partition``, pure and picklable for Dask) and then runs the batch-level
detectors, combines everything into one score in [0, 1] and flags rows above a threshold set by a
false-positive budget on held-out trusted rows (``finalize``). The output is the ``scores.parquet`` table of
docs/design.md: ``row, score, flagged, reasons, score_<detector>...``.

Reason codes: ``outlier:<iforest|ecod|hbos|knn>``, ``outlier:ecod:feature=<column>`` (most deviant features),
``label:inconsistent``, ``label:knn_disagreement``, ``label:unseen``, ``label:prior_shift``, ``duplicate:exact``,
``duplicate:conflicting_label``, ``duplicate:flood``, ``cluster:backdoor`` (+ ``cluster:backdoor:feature=<c>`` or
``:features=<a>,<b>``), ``cluster:dense_label_group``, ``cluster:density_excess`` (rows with doubted labels in a
region where the batch is far denser than the reference, ``checks.detectors.density``; needs batch rows at
``fit``), ``outlier:too_typical`` (central rows with doubted labels, when the batch holds significantly more of
them than the reference, ``checks.detectors.typical``), ``source:compromised:<name>``, ``score:combined`` (no
single detector crossed the threshold), ``score:adaptive`` (below the budget's threshold but above the cut widened
for a significantly contaminated batch, see ``checks._adaptive``), plus the ``expect:...`` codes passed in ``row_reasons``. With a source
column, ``result.attrs["sources"]`` holds the per-source table (rows, flag rate, tests, ``compromised``).
Unflagged rows share one empty ``reasons`` list object (do not mutate it in place).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from checks._adaptive import choose_cut
from checks._outliers import _EPS, _combine, outlier_features, outlier_reasons
from checks._preprocess import TabularPreprocessor
from checks._scorer_meta import describe_scorer, min_reference_rows, require_class_labels
from checks.detectors._base import EmpiricalCalibrator, OutlierDetector
from checks.detectors._batch import BatchFinding, label_keys, run_batch_detectors
from checks.detectors.clusters import fit_encoders
from checks.detectors.clusters import partition_columns as cluster_columns
from checks.detectors.density import density_columns, density_on, fit_density
from checks.detectors.duplicates import group_ids, partition_ids
from checks.detectors.ecod import FastECOD
from checks.detectors.hbos import FastHBOS
from checks.detectors.iforest import FastIForest
from checks.detectors.knn import KNNDetector
from checks.detectors.label import LabelModel, rank_by_class_excess
from checks.detectors.sources import source_finding
from checks.detectors.typical import fit_typical, typical_result
from checks.errors import ChecksConfigError, ChecksDataError
from checks.partitions import HiddenColumns, PartitionFiles

__all__ = ["RowScorer", "ROW_DETECTORS", "BATCH_DETECTORS", "min_reference_rows"]

ROW_DETECTORS = ("iforest", "ecod", "hbos", "knn")
BATCH_DETECTORS = ("label", "duplicate", "cluster", "source", "density", "typical")
PARTITION_ROWS = 131_072  # rows per partition when ``score`` splits a batch over threads
MAX_RULE_SHARE = 0.25  # duplicate/cluster rules that fire on more of the batch than this do not lift scores


def _make_detector(name: str, random_state: int) -> OutlierDetector:
    if name == "iforest":
        return FastIForest(random_state=random_state)
    if name == "ecod":
        return FastECOD(random_state=random_state)
    if name == "hbos":
        return FastHBOS(random_state=random_state)
    if name == "knn":
        return KNNDetector(random_state=random_state)
    raise ChecksConfigError("scoring:unknown_detector", f"unknown detector {name!r}; known: {ROW_DETECTORS}")


class RowScorer:
    """Scores every row of a batch for suspicion against a trusted reference.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> ref = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    >>> batch = pd.DataFrame({"a": [0.1, 9.0], "b": [0.0, -9.0]})
    >>> out = RowScorer().fit(ref).score(batch)
    >>> out["flagged"].tolist()
    [False, True]
    """

    def __init__(
        self, *, label_column: str | None = None, source_column: str | None = None, fp_budget: float = 0.01,
        random_state: int = 0, detectors: Sequence[str] = ROW_DETECTORS + BATCH_DETECTORS,
        max_fit_rows: int = 50_000, self_fit_trim: float = 0.1, top_features: int = 2, adaptive: bool = True,
        narrow: bool = False,
    ) -> None:
        self.label_column = label_column
        self.source_column = source_column
        self.fp_budget = fp_budget
        self.random_state = random_state
        self.detectors = tuple(detectors)
        self.max_fit_rows = max_fit_rows
        self.self_fit_trim = self_fit_trim
        self.top_features = top_features
        self.adaptive = adaptive
        self.narrow = narrow  # off by default: it let more of a slow campaign through (benchmarks/README.md)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (the scikit-learn estimator contract)."""
        return {k: getattr(self, k) for k in ("label_column", "source_column", "fp_budget", "random_state",
                                              "detectors", "max_fit_rows", "self_fit_trim", "top_features",
                                              "adaptive", "narrow")}

    def describe(self) -> dict[str, Any]:
        """What the ledger records about the scoring: parameters, each fitted detector's class and parameters,
        the versions of the libraries whose code scored, and the threshold (JSON-able)."""
        return describe_scorer(self)

    # ------------------------------------------------------------------ fit
    def fit(self, reference: pd.DataFrame | None, batch: pd.DataFrame | None = None) -> RowScorer:
        """Fit preprocessing, detectors and calibration on the reference (or robustly on ``batch``). With a
        reference, a seeded sample of ``batch`` is the density detector's comparison pool (without batch rows
        that detector is inactive)."""
        if not 0.0 < self.fp_budget < 0.5:
            raise ChecksConfigError("scoring:bad_fp_budget", f"fp_budget must be in (0, 0.5), got {self.fp_budget}")
        unknown = [d for d in self.detectors if d not in ROW_DETECTORS + BATCH_DETECTORS]
        if unknown:
            raise ChecksConfigError("scoring:unknown_detector", f"unknown detector {unknown[0]!r}")
        self.row_detectors_ = [d for d in self.detectors if d in ROW_DETECTORS]
        has_ref = reference is not None and len(reference) > 0
        if not has_ref and (batch is None or len(batch) == 0):
            raise ChecksDataError("scoring:nothing_to_fit", "neither a reference nor a batch with rows was given")
        base = reference if has_ref else batch
        assert base is not None
        for col in (self.label_column, self.source_column):
            if col is not None and batch is not None and col not in batch.columns:
                raise ChecksDataError("scoring:missing_column", f"the batch has no column {col!r}")
        if has_ref:
            assert reference is not None
            if self.label_column is not None and self.label_column not in reference.columns:
                raise ChecksDataError("scoring:missing_column",
                                      f"the reference has no label column {self.label_column!r}")
            need = min_reference_rows(self.fp_budget)
            if len(reference) < need:
                raise ChecksDataError(
                    "scoring:small_reference",
                    f"the reference has {len(reference)} rows; at least {need} are needed to hold a false-positive "
                    f"budget of {self.fp_budget:g} (give a larger trusted reference)")
        if self.label_column is not None and self.label_column in base.columns:
            require_class_labels(base[self.label_column], self.label_column)
        exclude = tuple(c for c in (self.label_column, self.source_column) if c is not None)
        self.has_reference_ = bool(has_ref)
        rng = np.random.default_rng(self.random_state)
        if len(base) > self.max_fit_rows:
            base = base.iloc[np.sort(rng.choice(len(base), self.max_fit_rows, replace=False))]
        self.preprocessor_ = TabularPreprocessor(exclude=exclude).fit(base)
        X = self.preprocessor_.transform(base)
        X_out = X[:0]
        if not has_ref and self.self_fit_trim > 0 and len(X) >= 20 and self.row_detectors_:
            # robust self-fit: fit on the batch, drop its most outlying rows, refit on the rest
            first = self._crossfit(X, rng)
            ranks = np.column_stack([EmpiricalCalibrator().fit(first[d]).transform(first[d]) for d in first])
            combined = _combine(ranks)
            keep = combined <= np.quantile(combined, 1.0 - self.self_fit_trim)
            X, X_out = X[keep], X[~keep]
            base = base.iloc[np.flatnonzero(keep)]
        heldout = self._crossfit(X, rng)
        self.models_ = {d: _make_detector(d, self.random_state).fit(X) for d in self.row_detectors_}
        if len(X_out):
            # the trimmed rows were held out of every fit: their scores complete the batch's own distribution,
            # so about fp_budget of a batch like this one is flagged (not the trimmed share)
            heldout = {d: np.concatenate([heldout[d], self.models_[d].score_samples(X_out)]) for d in heldout}
        self.calibrators_ = {d: EmpiricalCalibrator().fit(heldout[d]) for d in self.row_detectors_}
        families: dict[str, np.ndarray] = {}
        if self.row_detectors_:
            p = np.column_stack([self.calibrators_[d].transform(heldout[d]) for d in self.row_detectors_])
            comb = _combine(p)
            self.outlier_calibrator_ = EmpiricalCalibrator().fit(comb)
            families["outlier"] = self.outlier_calibrator_.transform(comb)
        self.label_model_: LabelModel | None = None
        if self.label_column is not None and "label" in self.detectors and has_ref:
            knn = self.models_.get("knn")
            shared = knn.sample_index_ if isinstance(knn, KNNDetector) else None  # one neighbour search for both
            self.label_model_ = LabelModel(random_state=self.random_state).fit(
                X, base[self.label_column], neighbor_rows=shared)
            families = {k: v[self.label_model_.fit_index_] for k, v in families.items()}  # same rows
            families["label"] = self.label_model_.heldout_p_
        self.reference_X_ = X
        self.reference_labels_ = None if self.label_column is None else base[self.label_column].reset_index(drop=True)
        self.reference_frame_ = base.reset_index(drop=True)
        self.reference_ids_ = partition_ids(X) if "duplicate" in self.detectors else {}
        self.cluster_encoders_ = fit_encoders(self) if self._clusters_on() else []
        self.density_ = fit_density(self, X, batch)
        if not families:
            raise ChecksConfigError("scoring:no_detectors", "no detector is enabled that can score these rows")
        self.final_calibrator_ = EmpiricalCalibrator().fit(self._merge_families(families))
        self.typical_ = fit_typical(self, heldout, families)  # its family joins only batches its test picks out
        self.threshold_ = 1.0 - self.fp_budget
        return self

    def _crossfit(self, X: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Held-out raw scores of every row of X: two folds, each scored by detectors fitted on the other."""
        order = rng.permutation(len(X))
        folds = [order[: len(X) // 2], order[len(X) // 2 :]]
        out = {d: np.empty(len(X)) for d in self.row_detectors_}
        for k in (0, 1):
            fit_idx, score_idx = folds[1 - k], folds[k]
            if len(fit_idx) == 0 or len(score_idx) == 0:
                continue
            for d in self.row_detectors_:
                out[d][score_idx] = _make_detector(d, self.random_state).fit(X[fit_idx]).score_samples(X[score_idx])
        return out

    # ---------------------------------------------------------------- score
    def score_partition(self, part: pd.DataFrame) -> pd.DataFrame:
        """Per-row detector scores (``score_<name>`` in [0, 1]) of one partition, same index as ``part``.

        Hidden columns (names starting with ``_``) carry the per-row inputs of the batch-level detectors (group
        ids, label evidence, value hashes, the most deviant features of outliers), so ``finalize`` never needs
        the batch's feature matrix: all per-row work happens here, partition by partition.
        """
        X = self.preprocessor_.transform(part)
        knn, neighbors = self.models_.get("knn"), None
        raw: dict[str, np.ndarray] = {}
        if isinstance(knn, KNNDetector) and self.label_model_ is not None:  # fitted on the same reference rows
            dist, neighbors = knn.neighbors(X, max(knn.k_, self.label_model_.k_))
            raw["knn"] = knn.score_from_neighbors(dist)
        cols: dict[str, Any] = {
            f"score_{d}": self.calibrators_[d].transform(raw[d] if d in raw else self.models_[d].score_samples(X))
            for d in self.row_detectors_
        }
        if "duplicate" in self.detectors:
            cols.update(partition_ids(X))
        elif self._clusters_on():
            cols["_dup_exact"] = group_ids(X, None)
        if self.label_model_ is not None:
            assert self.label_column is not None
            cols.update(self.label_model_.partition_columns(X, part[self.label_column], neighbors))
        if self._clusters_on():
            cols.update(cluster_columns(self, X))
        cols.update(density_columns(self, X, cols))
        if self.row_detectors_:
            cols["_outlier_features"] = pd.array(outlier_features(self, X, cols), dtype="str")
        return pd.DataFrame(cols, index=part.index)

    def _clusters_on(self) -> bool:
        return "cluster" in self.detectors and self.label_column is not None and self.has_reference_

    def finalize(
        self, batch: pd.DataFrame, partition_scores: pd.DataFrame | PartitionFiles, *,
        row_reasons: Mapping[int, Sequence[str]] | None = None, batch_sample: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Batch-level detectors, combination, threshold and reasons: the ``scores.parquet`` table.

        ``partition_scores`` is ``score_partition``'s output for all rows in order, or ``PartitionFiles`` over
        its saved pieces (read a column at a time). With a source column, the source test compares features of
        a sample of rows: ``batch`` holds every column, or ``batch_sample`` holds the rows at
        ``sample_index(len(batch), sources.MAX_SHIFT_ROWS, random_state)``."""
        n = len(batch)
        if len(partition_scores) != n:
            raise ChecksDataError(
                "scoring:partition_mismatch",
                f"partition scores have {len(partition_scores)} rows but the batch has {n}",
            )
        thr = self.threshold_
        out: dict[str, Any] = {"row": np.arange(n, dtype=np.int64)}
        families: dict[str, np.ndarray] = {}
        p_rows = None
        if self.row_detectors_:
            p_rows = np.column_stack(
                [partition_scores[f"score_{d}"].to_numpy(dtype=np.float64) for d in self.row_detectors_]
            )
            outlier = self.outlier_calibrator_.transform(_combine(p_rows))
            families["outlier"] = outlier
        findings: list[BatchFinding] = []
        cols = self._hidden_columns(partition_scores)
        labels = None if self.label_column is None else label_keys(batch[self.label_column])
        label_p = None
        if self.label_model_ is not None and labels is not None:
            label_f = self.label_model_.finding(self, cols)
            findings.append(label_f)
            families["label"] = label_f.score
            label_p = label_f.score
        findings += run_batch_detectors(self, n, cols, labels, label_p)
        class_shifted = False  # some class significantly over-represented (then its rows rank higher, below)
        if self.label_model_ is not None and label_p is not None and labels is not None:
            already = np.zeros(n, dtype=bool)
            for f in findings:
                already |= f.fires & ((label_p > thr) if f.calibrated else True)
            shift = self.label_model_.prior_shift(labels, label_p, already)
            class_shifted = shift is not None
            if shift is None:  # the column is always there, so every run of a config has the same schema
                shift = BatchFinding("label_shift", np.zeros(n), np.zeros(n, dtype=bool), "label:prior_shift")
            findings.append(shift)
        typical = typical_result(self, n, p_rows, label_p)
        findings.append(typical.finding)
        if typical.family is not None:  # beyond its own tail only: it never lowers another family's rows
            families["typical"] = typical.family
        score = self.final_calibrator_.transform(self._merge_families(families))
        score = self._raise_fired(score, findings)
        source_table = None
        if self.source_column is not None and "source" in self.detectors:
            src, source_table = source_finding(self, batch, score, score > thr, label_p, batch_sample)
            findings.append(src)
            score = self._raise_fired(score, [src])
        flagged = score > thr
        reasons: defaultdict[int, list[str]] = defaultdict(list)
        cut, mode = thr, "budget"
        if self.adaptive:  # a significantly contaminated batch: the cut moves to the expected-F1 optimum
            p_values = 1.0 - np.clip(score, 0.0, 1.0)
            p_cut, mode = choose_cut(p_values, self.fp_budget, narrow=self.narrow)
            cut = 1.0 - p_cut
            if mode == "widened":
                self._widened_reasons(np.flatnonzero((score > cut) & ~flagged), families, cols, p_rows, reasons)
                flagged |= score > cut
            elif mode == "narrowed":  # poison concentrated at the smallest p-values (rules still flag their rows)
                flagged &= p_values < p_cut  # as the budget's own cut: rows at the cut's p-value are out
        if p_rows is not None:
            outlier_reasons(self, cols["_outlier_features"], p_rows, outlier, flagged, reasons)
        for f in findings:
            if f.name in ("duplicate", "cluster") and f.fires.mean() > MAX_RULE_SHARE:
                continue
            for i in np.flatnonzero(f.fires & flagged if f.calibrated else f.fires):
                reasons[int(i)].extend(f.reasons.get(int(i), [f.default_reason]))
                flagged[i] = True
        for key, codes in (row_reasons or {}).items():
            if 0 <= int(key) < n and codes:
                reasons[int(key)].extend(str(c) for c in codes)
                flagged[int(key)] = True
        for i in np.flatnonzero(flagged):
            if not reasons[int(i)]:
                reasons[int(i)].append("score:combined")
            reasons[int(i)] = list(dict.fromkeys(reasons[int(i)]))
        if class_shifted:
            assert self.label_model_ is not None and labels is not None
            score = rank_by_class_excess(score, flagged, self.label_model_.excess_share(labels), thr, cut=cut)
        out["score"] = np.clip(score, 0.0, 1.0).astype(np.float64)
        out["flagged"] = flagged
        none: list[str] = []  # one shared (empty) list for all unflagged rows: 1M fresh lists cost ~0.5 s
        column = [none] * n
        for key, codes in reasons.items():
            if codes:
                column[key] = codes
        out["reasons"] = column
        for d in self.row_detectors_:
            out[f"score_{d}"] = partition_scores[f"score_{d}"].to_numpy(dtype=np.float64)
        for f in findings:
            out[f"score_{f.name}"] = np.clip(f.score, 0.0, 1.0)
        if self.label_model_ is not None and labels is not None:
            assert self.label_column is not None and self.reference_labels_ is not None
            out["label_quality"] = np.asarray(cols["_label_quality"], dtype=np.float64)
            quality = out["label_quality"]
            credible = self.label_model_.credible(np.asarray(cols["_label_suggested"]), quality, labels,
                                                  self.fp_budget)
            out["suggested_label"] = self.label_model_.label_values(
                credible, (batch[self.label_column], self.reference_labels_))
        table = pd.DataFrame(out, copy=False)  # the columns are fresh arrays: no second copy of ~100 bytes a row
        table.attrs["threshold"] = self._threshold_record(mode, cut)
        if source_table is not None:
            table.attrs["sources"] = source_table.to_dict(orient="records")
        return table

    def _threshold_record(self, mode: str, cut: float) -> dict[str, Any]:
        """How this batch's cut was set (``scores.parquet``'s metadata, the summary and the report): the budget's
        score threshold, the cut used and why, and, with a label column, how predictable the trusted labels are
        (the label doubts are calibrated against that, so noisy labels need more doubt to be flagged)."""
        record: dict[str, Any] = {"fp_budget": self.fp_budget, "budget_threshold": round(self.threshold_, 6),
                                  "cut": round(float(cut), 6), "mode": mode}
        if self.label_model_ is not None:
            record["label_accuracy_heldout"] = round(float(self.label_model_.heldout_accuracy_), 4)
        return record

    def _widened_reasons(
        self, rows: np.ndarray, families: Mapping[str, np.ndarray], cols: Mapping[str, np.ndarray],
        p_rows: np.ndarray | None, reasons: defaultdict[int, list[str]],
    ) -> None:
        """Rows flagged by the widened cut: ``score:adaptive`` plus the family that drives their score."""
        label_p, outlier_p = families.get("label"), families.get("outlier")
        conf, knn = (cols["_label_conf"], cols["_label_knn"]) if label_p is not None and len(rows) else (None, None)
        for i in rows:
            codes = ["score:adaptive"]
            if label_p is not None and (outlier_p is None or label_p[i] >= outlier_p[i]):
                assert conf is not None and knn is not None
                codes.append("label:inconsistent" if conf[i] >= knn[i] else "label:knn_disagreement")
            elif p_rows is not None:
                codes.append(f"outlier:{self.row_detectors_[int(np.argmax(p_rows[i]))]}")
            reasons[int(i)].extend(codes)

    def _raise_fired(self, score: np.ndarray, findings: Sequence[BatchFinding]) -> np.ndarray:
        """Rule-based detectors that fire lift a row's score above the threshold (by their strength)."""
        thr = self.threshold_
        for f in findings:
            if f.name in ("duplicate", "cluster") and f.fires.mean() > MAX_RULE_SHARE:
                continue  # a rule firing on most of the batch describes the data (e.g. records that repeat), not poison
            if not f.calibrated:
                lifted = thr + (1.0 - thr) * (0.5 + 0.5 * np.clip(f.score, 0.0, 1.0))
                score = np.where(f.fires, np.maximum(score, lifted), score)
        return score

    def _merge_families(self, families: Mapping[str, np.ndarray]) -> np.ndarray:
        """One evidence value per row from the calibrated families (label and outlier p-values).

        The primary family (label consistency when there is a label column, else the outlier ensemble) counts
        in full as -log(1 - p); another family takes over only where it is beyond its own FP-budget tail, so
        a family that carries no signal for an attack does not blur the ranking of the one that does.
        """
        primary = "label" if "label" in families else next(iter(families))
        tau = -np.log(self.fp_budget)
        evidence = -np.log(np.clip(1.0 - families[primary], _EPS, 1.0))
        for name, p in families.items():
            if name != primary:
                other = -np.log(np.clip(1.0 - p, _EPS, 1.0))
                evidence = np.maximum(evidence, np.where(other > tau, other, 0.0))
        return np.asarray(evidence)

    def _hidden_columns(self, partition_scores: pd.DataFrame | PartitionFiles) -> HiddenColumns:
        """The partitions' hidden per-row columns, fetched on use; fail closed when they are not this scorer's."""
        cols = HiddenColumns(partition_scores)
        need = set(self.reference_ids_) | ({"_outlier_features"} if self.row_detectors_ else set())
        if self.label_model_ is not None:
            need |= {"_label_p", "_label_conf", "_label_knn", "_label_unseen", "_label_suggested", "_label_quality",
                     "_label_pred"}
        if self._clusters_on():
            need |= {"_dup_exact", "_cell"} | {f"_vh_{j}" for j in range(len(self.cluster_encoders_))}
        if density_on(self):
            need.add("_density")
        missing = sorted(need - set(cols))
        if missing:
            raise ChecksDataError(
                "scoring:partition_mismatch",
                f"the partition scores lack {missing[0]!r}: they were not made by this scorer's score_partition",
            )
        return cols

    def score(
        self, batch: pd.DataFrame, *, row_reasons: Mapping[int, Sequence[str]] | None = None,
        n_jobs: int | None = None,
    ) -> pd.DataFrame:
        """``finalize(batch, score_partition(batch), row_reasons=...)``, the partitions (of ``PARTITION_ROWS``)
        scored by ``n_jobs`` threads (default: one per core, at most 4), each with single-threaded BLAS/OpenMP."""
        n = len(batch)
        jobs = min(n_jobs or os.cpu_count() or 1, 4)
        if n <= PARTITION_ROWS or jobs <= 1:
            return self.finalize(batch, self.score_partition(batch), row_reasons=row_reasons)
        chunks = (batch.iloc[lo:lo + PARTITION_ROWS] for lo in range(0, n, PARTITION_ROWS))
        with threadpool_limits(limits=1), ThreadPoolExecutor(jobs) as pool:
            parts = pd.concat(list(pool.map(self.score_partition, chunks)))
        return self.finalize(batch, parts, row_reasons=row_reasons)
