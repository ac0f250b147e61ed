"""Label repair inputs: the trusted view's suggested label and label quality per row (``LabelModel.suggest``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from checks.detectors.label import LabelModel
from checks.scoring import RowScorer

CENTRES = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]])


def _blobs(n: int, seed: int, names: tuple[object, ...] = ("a", "b", "c", "d")) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = rng.integers(0, len(CENTRES), n)
    X = CENTRES[k] + rng.normal(scale=0.8, size=(n, 3))
    frame = pd.DataFrame(X, columns=["x", "y", "z"])
    frame["label"] = np.asarray(names, dtype=object)[k]
    return frame, k


@pytest.fixture(scope="module")
def flipped() -> dict[str, object]:
    ref, _ = _blobs(1_200, 0)
    batch, truth = _blobs(600, 1)
    rng = np.random.default_rng(2)
    flips = rng.choice(len(batch), 40, replace=False)
    names = np.array(["a", "b", "c", "d"], dtype=object)
    original = batch["label"].copy()
    batch.loc[flips, "label"] = names[(truth[flips] + rng.integers(1, 4, len(flips))) % 4]
    out = RowScorer(label_column="label").fit(ref).score(batch)
    return {"out": out, "flips": flips, "original": original, "batch": batch}


def test_suggestions_name_the_true_class_of_flipped_rows(flipped: dict[str, object]) -> None:
    out, flips, original = flipped["out"], flipped["flips"], flipped["original"]
    assert isinstance(out, pd.DataFrame) and isinstance(flips, np.ndarray) and isinstance(original, pd.Series)
    suggested = out["suggested_label"].to_numpy(dtype=object)
    on_flips = suggested[flips]
    assert sum(pd.notna(s) for s in on_flips) >= 0.8 * len(flips)
    named = [(s, t) for s, t in zip(on_flips, original.to_numpy()[flips], strict=True) if pd.notna(s)]
    assert sum(s == t for s, t in named) >= 0.95 * len(named)  # a suggestion is the row's true class
    clean = np.setdiff1d(np.arange(len(out)), flips)
    assert sum(pd.notna(s) for s in suggested[clean]) <= 0.02 * len(clean)  # rarely on a clean row
    assert all(isinstance(s, str) for s in suggested if pd.notna(s))  # the column's own type


def test_label_quality_ranks_flipped_rows_lowest(flipped: dict[str, object]) -> None:
    out, flips = flipped["out"], flipped["flips"]
    assert isinstance(out, pd.DataFrame)
    truth = np.zeros(len(out), dtype=bool)
    truth[flips] = True
    quality = out["label_quality"].to_numpy()
    assert ((quality >= 0) & (quality <= 1)).all()
    assert roc_auc_score(truth, -quality) > 0.97


def test_no_label_column_no_label_columns() -> None:
    ref, _ = _blobs(400, 0)
    out = RowScorer().fit(ref.drop(columns="label")).score(ref.drop(columns="label").head(50))
    assert "label_quality" not in out.columns and "suggested_label" not in out.columns


def test_label_values_keep_the_batchs_spelling() -> None:
    ref, k = _blobs(600, 0, names=(1.0, 2.0, 3.0, 4.0))  # the reference writes floats
    model = LabelModel().fit(ref[["x", "y", "z"]].to_numpy(), ref["label"])
    batch_labels = pd.Series([1, 2, 3], dtype="int64")  # the batch writes ints and has no class 4
    values = model.label_values(np.array([0, 3, -1, 1]), (batch_labels, ref["label"]))
    assert values.tolist() == [1, 4.0, None, 2]
    assert isinstance(values[0], int)  # numpy scalars become Python values


def test_unseen_label_has_quality_zero() -> None:
    ref, _ = _blobs(600, 0)
    model = LabelModel().fit(ref[["x", "y", "z"]].to_numpy(), ref["label"])
    X = np.array([[4.0, 0.0, 0.0]])
    codes = model._codes(np.array(["zz"], dtype=object))
    _, _, _, unseen, view = model._evidence(X, codes, None)
    suggested, quality = model.suggest(view, codes)
    assert unseen[0] and quality[0] == 0.0 and model.classes_[suggested[0]] == "b"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1), min_size=3, max_size=3), min_size=1, max_size=30),
       st.lists(st.integers(-1, 2), min_size=30, max_size=30), st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_suggest_never_names_the_given_label(rows: list[list[float]], codes: list[int], thr: list[float]) -> None:
    model = LabelModel()
    model.classes_ = np.array(["a", "b", "c"], dtype=object)
    model.class_threshold_ = np.asarray(thr)
    view = np.asarray(rows)
    given_codes = np.asarray(codes[: len(rows)])
    suggested, quality = model.suggest(view, given_codes)
    some = suggested >= 0
    assert not (suggested[some] == given_codes[some]).any()
    assert (view[np.flatnonzero(some), suggested[some]] >= model.class_threshold_[suggested[some]]).all()
    assert ((quality >= 0) & (quality <= 1)).all() and (quality[given_codes < 0] == 0).all()
