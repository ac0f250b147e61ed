"""Duplicates: exact and near-duplicate groups within the batch and against the reference.

Exact groups share a hash of the preprocessed features; near-duplicate groups share a cell of a grid over the
robust-scaled features (two grids offset by half a cell, so close points on a cell border still meet).
A group fires when its labels conflict and when the batch holds far more copies of one point than the reference's
rate predicts (a flood). In a group whose copies carry different labels, the copies quarantined are those whose
label differs from the group's expected label: the majority of the group's reference rows when it has some, else
the trusted label model's view of the group (``trusted_view``: the class it prefers for the group's rows, else the
label it finds most plausible among those the group carries), else the group's strict batch majority. So the copy
whose label the trusted model agrees with goes through and every other copy is quarantined, whatever their order.
A conflict means something only where labels are locally consistent: on a grid whose reference groups disagree
with their own majority label for more than ``MAX_NATURAL_CONFLICT`` of their rows (noisy labels, or labels the
features do not determine), conflicting labels are ordinary and that grid's conflict rule stays silent.

The group ids are per-row values, computed partition by partition (``partition_ids``); the groups are formed
over the whole batch in ``duplicate_finding``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import poisson

from checks.detectors._batch import BatchFinding, label_keys

if TYPE_CHECKING:  # pragma: no cover
    from checks.scoring import RowScorer

__all__ = ["duplicate_finding", "group_ids", "partition_ids", "GRIDS", "count_in"]

STEP = 0.05  # near-duplicate cell width in robust units (IQR / 1.349)
COARSE = 0.25  # coarser cells, for floods only (jittered copies spread over several near cells)
FLOOD_P = 1e-6  # Poisson tail probability below which a group's batch count is a flood
FLOOD_MIN = 4  # a flood has at least this many copies in the batch
MAX_NATURAL_CONFLICT = 0.05  # reference rows disagreeing with their own group's majority label, above which
# a grid's conflicting-label rule is silent ...
MIN_CONFLICTING_ROWS = 5  # ... and at least this many such rows (one noisy pair is no evidence of noisy labels)
# (column of the partition table, kind, cell width or None for exact, grid offset in cells)
GRIDS = (
    ("_dup_exact", "exact", None, 0.0),
    ("_dup_near_0", "near", STEP, 0.0),
    ("_dup_near_1", "near", STEP, 0.5),
    ("_dup_coarse", "coarse", COARSE, 0.0),
)
_CHUNK = 32_768  # rows hashed at a time: the temporaries stay in cache


def group_ids(X: np.ndarray, step: float | None, offset: float = 0.0) -> np.ndarray:
    """uint64 id per row: a multiply-add hash of the row (exact when ``step`` is None, else of its grid cell)."""
    mult = np.asarray(np.random.default_rng(0x5EED).integers(1, 2**63, size=X.shape[1], dtype=np.uint64)) | np.uint64(1)
    h = np.zeros(X.shape[0], dtype=np.uint64)
    for lo in range(0, X.shape[0], _CHUNK):
        block = X[lo:lo + _CHUNK]
        if step is None:
            bits = np.ascontiguousarray(block + 0.0).view(np.uint64)  # + 0.0 turns -0.0 into 0.0
        else:
            bits = np.floor(block / step + offset).astype(np.int64).view(np.uint64)
        hb = np.zeros(block.shape[0], dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(X.shape[1]):
                col = bits[:, j] * mult[j]
                hb = (hb ^ col) * np.uint64(0x9E3779B97F4A7C15) + (col >> np.uint64(29))
        h[lo:lo + _CHUNK] = hb
    return h


def partition_ids(X: np.ndarray) -> dict[str, np.ndarray]:
    """The per-row group ids of one partition, one ``_dup_*`` column per grid."""
    return {col: group_ids(X, step, off) for col, _, step, off in GRIDS}


def count_in(ids: np.ndarray, among: np.ndarray) -> np.ndarray:
    """For each id in ``ids``, how often it occurs in ``among``."""
    uniq, cnt = np.unique(among, return_counts=True)
    if len(uniq) == 0:
        return np.zeros(len(ids), dtype=np.int64)
    pos = np.clip(np.searchsorted(uniq, ids), 0, len(uniq) - 1)
    return np.where(uniq[pos] == ids, cnt[pos], 0)


def _batch_and_ref_counts(ids: np.ndarray, ref_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(copies of each row's id in the batch, in the reference), from one sort of the batch's ids."""
    uniq, inv, cnt = np.unique(ids, return_inverse=True, return_counts=True)
    ref_cnt = count_in(uniq, ref_ids)  # searches the (small) reference once per distinct batch id
    inv = np.asarray(inv).reshape(-1)
    return cnt[inv], ref_cnt[inv]


def duplicate_finding(
    scorer: RowScorer, n: int, ids_by_grid: Mapping[str, np.ndarray], labels: np.ndarray | None,
    label_p: np.ndarray | None = None,
) -> BatchFinding:
    """Duplicate and flood findings from the batch's per-row group ids (``partition_ids``) and label keys.

    ``ids_by_grid`` is the partitions' hidden columns: the ``_dup_*`` ids and, when the label model wrote them, its
    per-row view (see ``trusted_view``); ``label_p`` is the calibrated label doubt, the fallback view."""
    n_ref = max(len(scorer.reference_X_), 1)
    fires = np.zeros(n, dtype=bool)
    score = np.zeros(n)
    reasons: dict[int, list[str]] = {}
    ref_labels = (
        None if scorer.reference_labels_ is None or not scorer.has_reference_
        else label_keys(scorer.reference_labels_)
    )

    preferred, doubt = trusted_view(scorer, ids_by_grid, label_p)

    def add(rows: np.ndarray, code: str, strength: np.ndarray | float) -> None:
        fires[rows] = True
        score[rows] = np.maximum(score[rows], strength)
        for i in rows:
            reasons.setdefault(int(i), []).append(code)

    for col, kind, _, _ in GRIDS:
        ids = ids_by_grid[col]
        ref_ids = scorer.reference_ids_[col]  # the fit rows: the reference, or the batch fitted on itself
        in_batch, in_ref = _batch_and_ref_counts(ids, ref_ids)
        dup = (in_batch > 1) | ((in_ref > 0) & scorer.has_reference_)
        if not dup.any():
            continue
        if kind == "exact":
            score[dup] = np.maximum(score[dup], 0.1)
            for i in np.flatnonzero(dup):
                reasons.setdefault(int(i), []).append("duplicate:exact")
        # flood: many more copies than the reference's rate of that point (or cell) predicts
        cand = np.flatnonzero(in_batch >= FLOOD_MIN)
        tail = np.ones(n)
        tail[cand] = poisson.sf(in_batch[cand] - 1, (in_ref[cand] + 0.5) * n / n_ref)
        flood = tail < FLOOD_P
        if flood.any() and labels is not None:
            # inside a flood group only the copies carrying the group's dominant label are the flood
            fl = pd.DataFrame({"id": ids[flood], "label": labels[flood]}).astype({"label": object})
            top = fl.groupby(["id", "label"]).size().reset_index().sort_values(0, ascending=False)
            dominant = top.drop_duplicates("id").set_index("id")["label"]
            flood[np.flatnonzero(flood)] = (fl["label"].to_numpy() == fl["id"].map(dominant).to_numpy())
        if flood.any():
            add(np.flatnonzero(flood), "duplicate:flood", np.clip(-np.log10(tail[flood] + 1e-300) / 30, 0, 1))
        if labels is None or kind == "coarse":
            continue
        if ref_labels is not None and natural_conflict(ref_ids, ref_labels) > MAX_NATURAL_CONFLICT:
            continue
        trusted_ids = ref_ids if scorer.has_reference_ else np.zeros(0, dtype=np.uint64)
        conflict = _conflicts(ids[dup], labels[dup], trusted_ids, ref_labels,
                              None if doubt is None else doubt[dup], None if preferred is None else preferred[dup])
        if conflict.any():
            add(np.flatnonzero(dup)[conflict], "duplicate:conflicting_label", 0.8)
    for key in list(reasons):
        reasons[key] = list(dict.fromkeys(reasons[key]))
        if not fires[key]:
            del reasons[key]
    return BatchFinding("duplicate", score, fires, "duplicate:conflicting_label", reasons)


def natural_conflict(ids: np.ndarray, labels: np.ndarray, min_conflicting: int = MIN_CONFLICTING_ROWS) -> float:
    """Among reference rows sharing a group with another reference row, the share whose label differs from the
    group's majority (0.0 when fewer than ``min_conflicting`` rows differ: too little to tell)."""
    frame = pd.DataFrame({"id": ids, "label": labels}).astype({"label": object})
    size = frame.groupby("id")["id"].transform("size")
    shared = frame[size.to_numpy() > 1]
    if shared.empty:
        return 0.0
    majority = shared.groupby(["id", "label"]).size().groupby(level="id").max()
    disagreeing = len(shared) - int(majority.sum())
    return 0.0 if disagreeing < min_conflicting else disagreeing / len(shared)


def trusted_view(
    scorer: RowScorer, cols: Mapping[str, np.ndarray], label_p: np.ndarray | None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(the label the trusted label model prefers for each row, None where it names none; each row's doubt of its
    own label, lower = more plausible), from the label model's hidden columns where it writes them.

    The preferred class is ``_label_pred`` (the model's most likely class, a code into ``label_model_.classes_``,
    for every row), else ``_label_suggested`` (that class only where it differs from the given label and the model
    is sure of it, -1 elsewhere). The doubt is ``1 - _label_quality`` (the trusted view's probability of the given
    label, the view that names the suggested class) where written, else the calibrated label p: among copies of one
    point the view's probability ranks their labels as its suggestions do, while the calibrated p sums two
    separately calibrated tails (model and neighbours) and can put a label the view rejects first."""
    model = getattr(scorer, "label_model_", None)
    if model is None:
        return None, label_p
    classes = np.asarray(model.classes_, dtype=object)
    preferred = None
    for name in ("_label_pred", "_label_suggested"):
        if name in cols:
            code = np.asarray(cols[name], dtype=np.int64)
            named = (code >= 0) & (code < len(classes))
            preferred = np.full(len(code), None, dtype=object)
            preferred[named] = classes[code[named]]
            break
    if "_label_quality" in cols:
        return preferred, 1.0 - np.asarray(cols["_label_quality"], dtype=np.float64)
    return preferred, label_p


def _strict_top(frame: pd.DataFrame, value: str) -> pd.Series:
    """Per group id, the label with the strictly highest ``value`` (NaN where two labels tie)."""
    ranked = frame.sort_values(["id", value], ascending=[True, False])
    first = ranked.groupby("id").head(1).set_index("id")
    second = ranked.groupby("id")[value].apply(lambda s: s.iloc[1] if len(s) > 1 else -np.inf)
    return first["label"].where(first[value] > second.reindex(first.index))


def _view_major(frame: pd.DataFrame) -> pd.Series:
    """Per group id, the class the trusted model prefers for most of the group's rows that it names one for."""
    named = frame.dropna(subset=["preferred"])
    if named.empty:
        return pd.Series(dtype=object)
    votes = named.groupby(["id", "preferred"]).size().rename("n").reset_index()
    return _strict_top(votes.rename(columns={"preferred": "label"}), "n")


def _conflicts(
    ids: np.ndarray, labels: np.ndarray, ref_ids: np.ndarray, ref_labels: np.ndarray | None,
    doubt: np.ndarray | None = None, preferred: np.ndarray | None = None,
) -> np.ndarray:
    """Rows of a group with several labels (or with reference rows) whose label differs from the group's expected
    label: its reference majority, else the class the trusted model prefers for the group (``preferred``, per
    row, None where unnamed), else the label it doubts least in the group (``doubt``), else the group's strict
    batch majority. Without an expected label (a tie) every row of a mixed group conflicts."""
    frame = pd.DataFrame({"id": ids, "label": labels})
    frame = frame.astype({"label": object})
    if ref_labels is not None and len(ref_ids):
        ref = pd.DataFrame({"id": ref_ids, "label": ref_labels})
        ref = ref[ref["id"].isin(set(ids.tolist()))]
    else:
        ref = pd.DataFrame({"id": np.zeros(0, dtype=np.uint64), "label": np.zeros(0, dtype=object)})
    ref_major = ref.groupby("id")["label"].agg(lambda s: s.value_counts().index[0]) if len(ref) else pd.Series()
    if doubt is not None:
        frame["doubt"] = doubt
        scores = frame.groupby(["id", "label"])["doubt"].mean().rename("n").reset_index()
        scores["n"] = -scores["n"]  # the least doubted label ranks first
    else:
        scores = frame.groupby(["id", "label"]).size().rename("n").reset_index()
    batch_major = _strict_top(scores, "n")
    groups = frame["id"].unique()
    major = ref_major.reindex(groups) if len(ref_major) else pd.Series(index=groups, dtype=object)
    if preferred is not None:
        frame["preferred"] = preferred
        major = major.combine_first(_view_major(frame).reindex(groups))
    major = major.combine_first(batch_major)
    expect = frame["id"].map(major)
    n_labels = frame.groupby("id")["label"].transform("nunique")
    has_ref = frame["id"].isin(ref_major.index) if len(ref_major) else pd.Series(False, index=frame.index)
    mixed = (n_labels > 1) | has_ref
    wrong = expect.isna() | (expect != frame["label"])
    return np.asarray((mixed & wrong).to_numpy(dtype=bool))
