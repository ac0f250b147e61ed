"""Column types beyond plain numbers and text: Parquet decimals, durations, dates, nested values; a batch always
passes the contract inferred from it; datetime columns get only a wide sanity range."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks._frames import logical_type_of
from checks.contract import Contract, infer_contract, validate
from checks.errors import ChecksConfigError


def _both(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The failures of the default engine, after checking that the all-GX engine gives the same table."""
    auto, gx = validate(frame, contract), validate(frame, contract, engine="gx")
    pd.testing.assert_frame_equal(auto.failures, gx.failures)
    return auto.failures


def _parquet(tmp_path: Path, table: pa.Table, name: str) -> pd.DataFrame:
    """The frame pandas reads back from a Parquet file (what the pipeline's readers give)."""
    pq.write_table(table, tmp_path / name)
    return pd.read_parquet(tmp_path / name)


def _exotic(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "dec": pa.array([decimal.Decimal(f"{x:.2f}") for x in rng.normal(size=n) * 100], pa.decimal128(10, 2)),
        "dur": pa.array((rng.integers(0, 1000, n) * 1_000_000).astype("int64"), pa.duration("us")),
        "day": pa.array(pd.date_range("2024-01-01", periods=n, freq="D").date),
        "y": pa.array(rng.integers(0, 2, n)),
    })


def test_decimal_duration_and_date_parquet_columns_pass_their_own_contract(tmp_path: Path) -> None:
    ref = _parquet(tmp_path, _exotic(400, 0), "ref.parquet")
    assert ref["dec"].dtype == object and ref["day"].dtype == object  # Decimal and datetime.date objects
    c = infer_contract(ref, label_column="y")
    assert {k: s.type for k, s in c.columns.items()} == {
        "dec": "float", "dur": "duration", "day": "datetime", "y": "integer"}
    assert Contract.from_toml(c.to_toml()) == c
    assert c.columns["dur"].min is not None and c.columns["dur"].max is not None  # seconds, like numbers
    assert _both(ref, c).empty
    assert _both(_parquet(tmp_path, _exotic(200, 1), "bat.parquet"), c).empty


def test_duration_range_and_types_are_checked(tmp_path: Path) -> None:
    c = infer_contract(_parquet(tmp_path, _exotic(400, 0), "ref.parquet"))
    bat = _parquet(tmp_path, _exotic(6, 1), "bat.parquet")
    bat["dur"] = bat["dur"].astype(object)
    bat.loc[1, "dur"] = pd.Timedelta(days=30)       # far above the reference's longest duration
    bat.loc[2, "dur"] = "0 days 00:00:05"           # text with a unit reads as a duration
    bat.loc[3, "dur"] = "5"                         # a bare number has no unit
    bat["dec"] = bat["dec"].astype(object)
    bat.loc[4, "dec"] = decimal.Decimal("1e9")
    f = _both(bat, c)
    assert sorted(zip(f["row"].tolist(), f["reason"].tolist(), strict=True)) == [
        (1, "expect:in_range:dur"), (3, "expect:type:dur"), (4, "expect:in_range:dec")]
    assert set(validate(bat.assign(dur=np.arange(6.0)), c).batch_failures["reason"]) == {"schema:type:dur"}


@pytest.mark.parametrize("column", ["lst", "st", "mp"])
def test_parquet_list_struct_and_map_columns_are_opaque(tmp_path: Path, column: str) -> None:
    n = 60
    table = pa.table({
        "a": pa.array(np.arange(n, dtype="float64")),
        "lst": pa.array([[i, i + 1] for i in range(n)], pa.list_(pa.int64())),
        "st": pa.array([{"x": i, "y": "s"} for i in range(n)], pa.struct([("x", pa.int64()), ("y", pa.string())])),
        "mp": pa.array([[("k", i)] for i in range(n)], pa.map_(pa.string(), pa.int64())),
    }).select(["a", column])
    ref = _parquet(tmp_path, table, "ref.parquet")
    c = infer_contract(ref)
    spec = c.columns[column]
    assert spec.type == "object" and not spec.nullable and spec.allowed is None and not spec.unique
    assert Contract.from_toml(c.to_toml()) == c and _both(ref, c).empty
    arrow = table.to_pandas(types_mapper=pd.ArrowDtype)  # the same values as Arrow-backed columns
    assert logical_type_of(arrow[column]) == "object" and _both(arrow, c).empty
    bat = ref.head(4).copy()
    bat.loc[2, column] = None
    assert _both(bat, c)["reason"].tolist() == [f"expect:not_null:{column}"]


def test_json_lines_objects_and_arrays_are_opaque(tmp_path: Path) -> None:
    path = tmp_path / "nested.jsonl"
    rows = [{"b": i % 5, "obj": {"x": i, "y": "s"}, "arr": [i, 1], "o": None if i < 40 else {"x": 1}}
            for i in range(60)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    frame = pajson.read_json(path).to_pandas()
    c = infer_contract(frame)
    assert [c.columns[k].type for k in ("obj", "arr", "o")] == ["object"] * 3 and c.columns["o"].nullable
    assert _both(frame, c).empty


def test_object_columns_refuse_value_rules_and_cannot_be_the_label() -> None:
    with pytest.raises(ChecksConfigError) as info:
        Contract.from_toml('[columns."tags"]\ntype = "object"\nallowed = ["a"]\n')
    assert info.value.code == "config:contract_key" and "tags" in info.value.message
    frame = pd.DataFrame({"x": [1.0, 2.0], "tags": [["a"], ["b", "c"]]})
    with pytest.raises(ChecksConfigError) as info:
        infer_contract(frame, label_column="tags")
    assert info.value.code == "config:label_column"


def test_mixed_object_column_is_opaque_so_the_reference_passes() -> None:
    ref = pd.DataFrame({"m": pd.Series([1, "two", 3.5, b"\xff\xfe", None] * 8, dtype=object)})
    c = infer_contract(ref)
    assert c.columns["m"].type == "object" and _both(ref, c).empty


@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Berlin", "America/New_York"])
def test_datetime_columns_get_only_a_sanity_range(tz: str | None) -> None:
    ref = pd.DataFrame({"t": pd.date_range("2024-03-01", periods=400, freq="h", tz=tz), "x": np.arange(400)})
    c = infer_contract(ref)
    assert c.columns["t"].type == "datetime" and c.columns["t"].min.year == 2014 and c.columns["t"].max.year == 2074
    later = pd.DataFrame({"t": pd.date_range("2026-06-30", periods=50, freq="h", tz=tz), "x": np.arange(50)})
    assert _both(later, c).empty, "a later batch is not out of range because time moved on"
    # found by review: with no range at all, epoch-zero defaults and far-future placeholders passed every check
    odd = later.copy()
    odd.loc[1, "t"] = pd.Timestamp("1970-01-01", tz=tz)
    odd.loc[2, "t"] = pd.Timestamp("2099-12-31", tz=tz)
    assert _both(odd, c)["reason"].tolist() == ["expect:in_range:t", "expect:in_range:t"]
    later.loc[3, "t"] = None
    assert _both(later, c)["reason"].tolist() == ["expect:not_null:t"]
    text = later.assign(t=later["t"].astype(str).where(later["t"].notna(), None))  # as CSV text, with offsets
    text.loc[5, "t"] = "not a time"
    assert _both(text, c)["reason"].tolist() == ["expect:not_null:t", "expect:type:t"]


# -- property: a batch passes the contract inferred from it, whatever its column types --------------------------
_KINDS = ["int", "float", "bool", "str", "category", "datetime", "datetime_tz", "date", "duration", "decimal",
          "list", "struct", "nullable_int", "arrow_str"]


@st.composite
def _column(draw: st.DrawFn, kind: str, n: int) -> pd.Series:
    nulls = draw(st.lists(st.booleans(), min_size=n, max_size=n)) if draw(st.booleans()) else [False] * n
    if kind in ("int", "nullable_int"):
        vals: list = draw(st.lists(st.integers(-10**9, 10**9), min_size=n, max_size=n))
    elif kind == "float":
        vals = draw(st.lists(st.floats(-1e12, 1e12, allow_nan=False), min_size=n, max_size=n))
    elif kind == "bool":
        vals = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    elif kind in ("str", "category", "arrow_str"):
        vals = draw(st.lists(st.text(max_size=6), min_size=n, max_size=n))
    elif kind in ("datetime", "datetime_tz", "date"):
        vals = draw(st.lists(st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(2200, 1, 1)), min_size=n, max_size=n))
    elif kind == "duration":
        vals = draw(st.lists(st.integers(-10**12, 10**12), min_size=n, max_size=n))
    elif kind == "decimal":
        vals = draw(st.lists(st.decimals(-10**6, 10**6, places=draw(st.integers(0, 3)), allow_nan=False),
                             min_size=n, max_size=n))
    elif kind == "list":
        vals = draw(st.lists(st.lists(st.integers(0, 9), max_size=3), min_size=n, max_size=n))
    else:
        vals = draw(st.lists(st.fixed_dictionaries({"x": st.integers(0, 9)}), min_size=n, max_size=n))
    vals = [None if null else v for v, null in zip(vals, nulls, strict=True)]
    if kind == "int" and not any(nulls):
        return pd.Series(vals, dtype="int64")
    if kind == "float":
        return pd.Series(vals, dtype="float64")
    if kind == "nullable_int":
        return pd.Series(vals, dtype="Int64")
    if kind == "category":
        return pd.Series(vals, dtype="category")
    if kind == "arrow_str":
        return pd.Series(vals, dtype=pd.ArrowDtype(pa.string()))
    if kind in ("datetime", "datetime_tz"):
        s = pd.Series(pd.to_datetime(vals))
        return s.dt.tz_localize("UTC").dt.tz_convert("Asia/Kolkata") if kind == "datetime_tz" else s
    if kind == "date":
        return pd.Series([None if v is None else v.date() for v in vals], dtype=object)
    if kind == "duration":
        return pd.Series(pd.to_timedelta(vals, unit="us"))
    return pd.Series(vals, dtype=object)  # int with nulls, bool, decimal, list, struct: object columns


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), n=st.integers(1, 30), kinds=st.lists(st.sampled_from(_KINDS), min_size=1, max_size=5),
       engine=st.sampled_from(["auto", "auto", "gx"]))
def test_a_batch_passes_the_contract_inferred_from_it(data: st.DataObject, n: int, kinds: list[str],
                                                      engine: str) -> None:
    frame = pd.DataFrame({f"{k}{i}": data.draw(_column(k, n)) for i, k in enumerate(kinds)})
    contract = infer_contract(frame)
    res = validate(frame, contract, engine=engine, chunk_rows=data.draw(st.integers(1, 40)))
    assert res.success, res.failures.to_dict("records")
    assert validate(frame, Contract.from_toml(contract.to_toml()), engine=engine).success
