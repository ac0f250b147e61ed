"""RowScorer on inputs a review found mishandled: each test fails on the code before its fix."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from checks.errors import ChecksConfigError, ChecksDataError
from checks.scoring import RowScorer


def _pets(n: int, seed: int) -> pd.DataFrame:
    """The label is a function of a category whose two values are equally common in the reference."""
    rng = np.random.default_rng(seed)
    kind = np.array(["cat", "dog"] * (n // 2))
    rng.shuffle(kind)
    return pd.DataFrame({"weight": rng.normal(10, 2, n).round(2), "age": rng.integers(1, 15, n), "kind": kind,
                         "label": np.where(kind == "cat", "feline", "canine")})


def test_equally_common_categories_stay_distinct_so_their_label_flips_are_caught() -> None:
    """Frequency encoding alone gave "cat" and "dog" one value: 0 of 20 flipped labels were flagged."""
    batch = _pets(500, 1)
    flip = np.arange(0, 500, 25)
    batch.loc[flip, "label"] = np.where(batch.loc[flip, "label"] == "feline", "canine", "feline")
    out = RowScorer(label_column="label").fit(_pets(1000, 0)).score(batch)
    assert out.loc[flip, "flagged"].all()
    assert out["flagged"].sum() <= len(flip) + 10  # and few clean rows besides


def test_a_clean_batch_with_an_easy_label_keeps_to_the_budget() -> None:
    """Fold models and the full model differ in the last digits of near-certainty: 53 of 300 clean rows were
    flagged ``label:inconsistent`` / ``cluster:dense_label_group``."""
    def make(n: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        d = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(list("xyz"), n)})
        return d.assign(y=(d["a"] > 0).astype(int))

    out = RowScorer(label_column="y").fit(make(500, 0)).score(make(300, 1))
    assert out["flagged"].sum() <= 9  # 1% budget plus room for the other detectors


def test_a_batch_of_one_repeated_row_scored_on_itself_is_not_all_outliers() -> None:
    """One rounding step above every (equal) held-out score used to read as 'beyond the reference': 100% flagged."""
    rng = np.random.default_rng(1)
    row = pd.DataFrame({"a": rng.normal(size=1), "b": rng.normal(size=1), "c": ["x"]})
    batch = pd.concat([row] * 200, ignore_index=True)
    out = RowScorer().fit(None, batch).score(batch)
    assert not out["reasons"].map(lambda r: any(c.startswith("outlier:") for c in r)).any()


def test_a_continuous_label_is_refused_with_its_column_named() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=300)})
    ref["y"] = 2 * ref["x"] + rng.normal(size=300)
    with pytest.raises(ChecksConfigError, match="label column 'y' holds 300 distinct non-integer") as err:
        RowScorer(label_column="y").fit(ref)
    assert err.value.code == "scoring:continuous_label" and err.value.exit_code == 2
    ints = ref.assign(y=np.arange(300) % 40)  # many integer classes are still classes
    RowScorer(label_column="y").fit(ints)


def test_integer_column_names_and_a_reference_without_the_label_column() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)))  # columns 0, 1, 2: KeyError '0' before
    out = RowScorer().fit(frame).score(frame)
    assert len(out) == 200
    with pytest.raises(ChecksDataError, match="reference has no label column 'y'"):
        RowScorer(label_column="y").fit(frame.set_axis(["a", "b", "c"], axis=1),
                                        frame.set_axis(["a", "b", "y"], axis=1))


def test_outlier_reasons_name_real_columns() -> None:
    """A column named ``x:missing`` was reported as ``feature=x``, a column that does not exist."""
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x:missing": rng.normal(size=400), "b": rng.normal(size=400)})
    batch = ref.head(50).copy()
    batch.loc[0, "x:missing"] = 40.0
    out = RowScorer().fit(ref).score(batch)
    features = [c.split("feature=")[1] for c in out.loc[0, "reasons"] if "feature=" in c]
    assert features and set(features) <= {"x:missing", "b"}


def test_describe_names_detectors_parameters_and_versions() -> None:
    """The ledger recorded ``{"class": "RowScorer", "params": {}}``: DESIGN.md asks for names, versions and
    parameters."""
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(size=200), "y": rng.integers(0, 2, 200)})
    doc = RowScorer(label_column="y", fp_budget=0.02).fit(ref).describe()
    json.dumps(doc)  # JSON-able
    assert doc["params"]["fp_budget"] == 0.02 and doc["params"]["label_column"] == "y"
    assert set(doc["row_detectors"]) == {"iforest", "ecod", "hbos", "knn"}
    assert doc["row_detectors"]["iforest"]["params"]["n_estimators"] == 100
    assert doc["label_model"]["class"] == "LabelModel" and doc["versions"]["pyod"]
    assert doc["threshold"] == pytest.approx(0.98)


def test_a_later_timestamp_column_is_not_an_outlier_feature() -> None:
    """A batch of the same data two years later was quarantined as ``outlier:ecod:feature=t``."""
    rng = np.random.default_rng(0)

    def make(n: int, start: str) -> pd.DataFrame:
        t = pd.date_range(start, periods=n, freq="h", tz="Europe/Berlin")
        return pd.DataFrame({"t": t, "a": rng.normal(size=n), "b": rng.normal(size=n)})

    out = RowScorer().fit(make(500, "2024-01-01")).score(make(300, "2026-01-01"))
    assert out["flagged"].sum() <= 6
    assert "t" not in RowScorer().fit(make(200, "2024-01-01")).preprocessor_.feature_names_


def test_all_null_timestamp_and_duration_columns_score() -> None:
    """An all-null Parquet timestamp column crashed the fit (TypeError in the datetime conversion)."""
    ref = pd.DataFrame({"a": np.arange(200.0), "t": pd.Series([pd.NaT] * 200, dtype="datetime64[ns]"),
                        "d": pd.Series([pd.NaT] * 200, dtype="timedelta64[ns]")})
    out = RowScorer().fit(ref).score(ref.head(20))
    assert len(out) == 20


def test_conflicting_labels_of_near_neighbours_are_ordinary_where_the_reference_has_them() -> None:
    """Random labels: near-duplicate cells disagree in the reference too, so a batch row disagreeing with its
    cell is no evidence (12 of 300 clean rows were flagged ``duplicate:conflicting_label``)."""
    from checks.detectors.duplicates import natural_conflict

    def make(n: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(list("xyz"), n),
                             "y": rng.integers(0, 2, n)})

    out = RowScorer(label_column="y").fit(make(2000, 0)).score(make(300, 1))
    assert not out["reasons"].map(lambda r: "duplicate:conflicting_label" in r).any()
    assert out["flagged"].sum() <= 6
    ids, labels = np.array([1, 1, 1, 2, 2, 3], dtype=np.uint64), np.array([0, 0, 1, 1, 1, 0])
    assert natural_conflict(ids, labels, min_conflicting=1) == pytest.approx(0.2)
    assert natural_conflict(ids, labels) == 0.0  # one noisy pair is not noisy labels (found by review)


def test_date_objects_are_not_features_and_integer_regression_targets_are_refused() -> None:
    """Found by a second review: Parquet date32 columns (``datetime.date`` objects in pandas) stayed features and
    quarantined ~23% of a clean batch; a price rounded to whole dollars passed as a class label."""
    import datetime as dt

    rng = np.random.default_rng(0)
    days = [dt.date(2024, 5, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 30, 400)]
    ref = pd.DataFrame({"a": rng.normal(size=400), "day": days})
    later = ref.assign(day=[d + dt.timedelta(days=60) for d in days])
    scorer = RowScorer().fit(ref)
    assert "day" not in scorer.preprocessor_.feature_names_
    assert scorer.score(later)["flagged"].sum() <= 8
    prices = pd.DataFrame({"x": rng.normal(size=400), "price": rng.integers(100, 5000, 400)})
    with pytest.raises(ChecksConfigError, match="seen fewer than 5 times"):
        RowScorer(label_column="price").fit(prices)


def test_a_decimal_column_is_scored_as_the_numbers_it_holds() -> None:
    """Found by review: a Parquet decimal column (pandas: decimal.Decimal objects) was a category of thousands
    of values, so a clean batch from the reference's distribution was mostly flagged (and rejected)."""
    import decimal

    rng = np.random.default_rng(3)

    def frame(n: int) -> pd.DataFrame:
        x = rng.normal(50, 10, size=n).round(2)
        return pd.DataFrame({"a": rng.normal(size=n), "dec": x})

    ref, batch = frame(2000), frame(500)
    as_decimal = [df.assign(dec=[decimal.Decimal(f"{v:.2f}") for v in df["dec"]]) for df in (ref, batch)]
    floats = RowScorer(random_state=0).fit(ref).score(batch)
    decimals = RowScorer(random_state=0).fit(as_decimal[0]).score(as_decimal[1])
    assert decimals["flagged"].mean() < 0.05
    np.testing.assert_allclose(decimals["score"].to_numpy(), floats["score"].to_numpy())
