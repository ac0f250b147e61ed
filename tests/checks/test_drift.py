"""Drift: stored profile keyed by digest, KS from the sketch vs scipy, PSI, JS, thresholds, PMLB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from checks.drift import (
    MIN_VALUES,
    ReferenceProfile,
    _bin_props,
    compare,
    compare_columns,
    frame_digest,
    ks_from_sketch,
)
from checks.errors import ChecksConfigError, ChecksDataError


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"x": rng.normal(size=4000), "k": rng.integers(0, 5, 4000),
                         "c": rng.choice(["a", "b", "c"], 4000, p=[0.6, 0.3, 0.1])})


def test_no_drift_on_same_distribution_and_drift_on_shift(ref: pd.DataFrame) -> None:
    prof = ReferenceProfile.from_frame(ref)
    rng = np.random.default_rng(2)
    same = pd.DataFrame({"x": rng.normal(size=2000), "k": rng.integers(0, 5, 2000),
                         "c": rng.choice(["a", "b", "c"], 2000, p=[0.6, 0.3, 0.1])})
    res = compare(same, prof)
    assert list(res.table.columns) == ["column", "test", "statistic", "threshold", "drifted"]
    assert set(zip(res.table["column"], res.table["test"], strict=True)) == {
        ("x", "ks"), ("x", "psi"), ("k", "ks"), ("k", "psi"), ("c", "js")}
    assert res.drifted_columns == []
    moved = same.assign(x=same["x"] + 1.0, c=rng.choice(["a", "z"], 2000))
    assert compare(moved, prof).drifted_columns == ["c", "x"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), shift=st.floats(-2, 2), n=st.integers(5, 3000), discrete=st.booleans())
def test_ks_from_sketch_matches_scipy(seed: int, shift: float, n: int, discrete: bool) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=5000)
    b = rng.normal(shift, 1, size=n)
    if discrete:
        a, b = np.round(a * 2), np.round(b * 2)
    prof = ReferenceProfile.from_frame(pd.DataFrame({"v": a}), n_quantiles=1000)
    got = ks_from_sketch(np.asarray(prof.columns["v"]["quantiles"]), b)
    assert abs(got - ks_2samp(a, b).statistic) <= 1.5 / 1000 + 1e-12


def _ks_on_union(quantiles: np.ndarray, batch: np.ndarray) -> float:
    """The definition, evaluated at every point of the union of both samples (the first implementation)."""
    q, b = np.sort(quantiles), np.sort(batch)
    points = np.union1d(q, b)
    return float(np.max(np.abs(np.searchsorted(q, points, side="right") / q.size
                               - np.searchsorted(b, points, side="right") / b.size)))


_values = st.lists(st.integers(-6, 6).map(lambda v: v / 2) | st.floats(-1e6, 1e6) | st.sampled_from([np.inf, -np.inf]),
                   min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(sketch=_values, batch=_values)
def test_ks_from_sketch_equals_the_union_evaluation(sketch: list[float], batch: list[float]) -> None:
    """The sketch-only evaluation (two binary searches per distinct sketch value) is the sup over the union of
    both samples exactly, ties, repeated sketch values and infinities included; presorted gives the same."""
    q, b = np.sort(np.asarray(sketch)), np.asarray(batch)
    assert ks_from_sketch(q, b) == _ks_on_union(q, b)
    assert ks_from_sketch(q, np.sort(b), presorted=True) == _ks_on_union(q, b)


@settings(max_examples=200, deadline=None)
@given(values=_values, edges=st.lists(st.integers(-6, 6).map(lambda v: v / 2), min_size=1, max_size=9, unique=True))
def test_psi_bins_of_sorted_values_equal_per_value_binning(values: list[float], edges: list[float]) -> None:
    x, e = np.sort(np.asarray(values)), np.sort(np.asarray(edges))
    per_value = np.bincount(np.searchsorted(e, x, side="left"), minlength=e.size + 1) / x.size
    assert np.array_equal(_bin_props(x, e), per_value)


def test_profile_is_stored_by_digest_and_not_rebuilt(ref: pd.DataFrame, tmp_path: Path) -> None:
    digest = frame_digest(ref)
    calls: list[int] = []

    def build() -> pd.DataFrame:
        calls.append(1)
        return ref

    p1 = ReferenceProfile.load_or_build(tmp_path, digest, build)
    p2 = ReferenceProfile.load_or_build(tmp_path, digest, build)
    assert calls == [1] and p1 == p2 and (tmp_path / f"{digest[7:]}.json").is_file()
    assert ReferenceProfile.load(p1.save(tmp_path / "p.json")) == p1
    with pytest.raises(ChecksDataError) as info:
        ReferenceProfile.load(tmp_path / "p.json", digest="sha256:" + "0" * 64)
    assert info.value.code == "data:profile_digest"
    (tmp_path / "junk.json").write_text("{", encoding="utf-8")
    with pytest.raises(ChecksDataError):
        ReferenceProfile.load(tmp_path / "junk.json")


def test_thresholds_config(ref: pd.DataFrame) -> None:
    prof = ReferenceProfile.from_frame(ref)
    batch = ref.assign(x=ref["x"] + 0.3)
    assert "x" in compare(batch, prof).drifted_columns
    relaxed = compare(batch, prof, thresholds={"columns": {"x": {"ks": 0.5, "psi": 5}}})
    assert "x" not in relaxed.drifted_columns
    tab = relaxed.table.set_index(["column", "test"])
    assert tab.loc[("x", "ks"), "threshold"] == 0.5 and tab.loc[("c", "js"), "threshold"] == 0.1
    for bad in ({"kss": 1}, {"ks": -1}, {"columns": {"x": {"psi": "big"}}}):
        with pytest.raises(ChecksConfigError):
            compare(batch, prof, thresholds=bad)


def test_missing_empty_and_odd_dtypes(ref: pd.DataFrame) -> None:
    prof = ReferenceProfile.from_frame(ref)
    batch = ref.head(500).drop(columns=["k"]).astype({"x": pd.ArrowDtype(pa.float64()), "c": "str"})
    batch.loc[3, "x"] = np.inf
    res = compare(batch, prof)
    assert res.drifted_columns == ["k"] and res.table.loc[res.table["column"] == "k", "test"].item() == "missing"
    empty = compare(ref.head(0), prof)  # no rows: nothing to test, see test_tiny_batches_are_not_tested
    assert empty.drifted_columns == [] and set(empty.table["test"]) == {"too_few_values"}
    all_null = compare(ref.head(500).assign(x=np.nan), prof)  # enough rows, no value where the reference had values
    assert all_null.drifted_columns == ["x"]
    with pytest.raises(ChecksDataError):
        ReferenceProfile.from_frame(ref.head(0))


@pytest.mark.parametrize("name", ["adult", "letter", "nursery"])
def test_pmlb_halves_do_not_drift_but_a_shift_does(shared_dir: Path, name: str) -> None:
    df = pd.read_csv(shared_dir / "data" / "pmlb" / f"{name}.csv.gz", sep="\t")
    perm = np.random.default_rng(0).permutation(len(df))
    a, b = df.iloc[perm[::2]], df.iloc[perm[1::2]].reset_index(drop=True)
    prof = ReferenceProfile.from_frame(a)
    assert compare(b, prof).drifted_columns == []
    col = df.columns[0]
    shifted = b.assign(**{col: b[col] + (b[col].max() - b[col].min()) * 0.5})
    assert col in compare(shifted, prof).drifted_columns
    only_one_class = b[b["class"] == b["class"].iloc[0]]
    assert "class" in compare(only_one_class, prof).drifted_columns


def test_compare_columns_equals_compare_and_reads_one_column_at_a_time() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b", "c"], size=2000)})
    batch = pd.DataFrame({"x": rng.normal(0.5, size=1500), "c": rng.choice(["a", "b"], size=1500)})
    profile = ReferenceProfile.from_frame(ref, digest="sha256:" + "0" * 64)
    asked: list[str] = []

    def column(name: str) -> pd.Series | None:
        asked.append(name)
        return batch[name] if name in batch.columns else None

    pd.testing.assert_frame_equal(compare_columns(column, profile).table, compare(batch, profile).table)
    assert asked == ["x", "c"]
    missing = compare_columns(lambda name: None, profile).table
    assert missing["test"].tolist() == ["missing", "missing"] and missing["drifted"].all()


def test_tiny_batches_are_not_tested(ref: pd.DataFrame) -> None:
    prof = ReferenceProfile.from_frame(ref)
    two = ref.sample(2, random_state=0)  # a clean 2-row batch used to drift on every column
    res = compare(two, prof)
    assert res.drifted_columns == []
    assert res.table["test"].tolist() == ["too_few_values"] * 3
    assert res.table["statistic"].tolist() == [2.0] * 3 and (res.table["threshold"] == MIN_VALUES).all()
    sparse = ref.head(100).copy()
    sparse.loc[sparse.index[5:], "x"] = np.nan  # 100 rows, 5 values of x: x is not tested, k and c are
    tab = compare(sparse, prof).table
    assert tab.loc[tab["column"] == "x", "test"].tolist() == ["too_few_values"]
    assert set(tab.loc[tab["column"] != "x", "test"]) == {"ks", "psi", "js"}


@pytest.mark.parametrize("n", [MIN_VALUES, 30, 50, 80])
def test_small_clean_batches_rarely_drift_and_shifted_ones_do(ref: pd.DataFrame, n: int) -> None:
    """20 to 80 rows: the size-aware thresholds keep the false drift rate near alpha (was ~90% at 20-30 rows)."""
    prof = ReferenceProfile.from_frame(ref)
    rng = np.random.default_rng(n)
    false = true = 0
    for _ in range(100):
        batch = pd.DataFrame({"x": rng.normal(size=n), "k": rng.integers(0, 5, n),
                              "c": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])})
        false += len(compare(batch, prof).drifted_columns)
        moved = batch.assign(x=batch["x"] + 1.5, c=rng.choice(["a", "b", "c"], n, p=[0.1, 0.3, 0.6]))
        true += len(set(compare(moved, prof).drifted_columns) & {"x", "c"})
    assert false <= 0.1 * 300, f"{false} of 300 column tests drifted on clean data of {n} rows"
    assert true >= 0.9 * 200, f"only {true} of 200 shifted columns found at {n} rows"
