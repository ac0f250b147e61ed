"""Contract inference, the TOML file, the GX suite, and every failure kind of issue 4."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from checks._frames import read_frame
from checks.contract import FAILURE_COLUMNS, ColumnSpec, Contract, infer_contract, validate, validate_chunks
from checks.errors import ChecksConfigError, ChecksDataError


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame({
        "age": rng.integers(18, 90, n),
        "income": rng.normal(50_000, 10_000, n),
        "color": rng.choice(["red", "green", "blue"], n),
        "email": [f"user{i}@example.com" for i in range(n)],
        "id": np.arange(n),
        "class": rng.integers(0, 2, n),
    })


@pytest.fixture(scope="module")
def contract(ref: pd.DataFrame) -> Contract:
    return infer_contract(ref, label_column="class")


def _reasons(df: pd.DataFrame, contract: Contract, **kw: object) -> list[tuple[object, str]]:
    f = validate(df, contract, **kw).failures  # type: ignore[arg-type]
    return [(None if pd.isna(r) else int(r), str(x)) for r, x in zip(f["row"], f["reason"], strict=True)]


def test_inference(contract: Contract, ref: pd.DataFrame) -> None:
    c = contract.columns
    assert c["age"].type == "integer" and not c["age"].nullable
    assert c["age"].min is not None and c["age"].min <= 18 and c["age"].max is not None and c["age"].max >= 89
    assert c["income"].type == "float" and c["income"].allowed is None
    assert c["color"].allowed == ["blue", "green", "red"]
    assert c["email"].pattern is not None and "@" in c["email"].pattern and c["email"].unique
    assert c["id"].unique
    assert contract.label_column == "class" and contract.classes == [0, 1]
    assert validate(ref, contract).success, "a clean reference passes its own contract"


def test_toml_round_trip_and_digest(contract: Contract) -> None:
    text = contract.to_toml()
    assert "[columns.\"age\"]" in text and "\n[[expectations]]" not in text
    back = Contract.from_toml(text)
    assert back == contract and back.digest() == contract.digest()
    assert contract.digest().startswith("sha256:") and len(contract.digest()) == 71


def test_contract_file(contract: Contract, tmp_path: Path) -> None:
    path = str(tmp_path / "credit.toml")
    contract.to_file(path)
    assert Contract.from_file(path) == contract
    with pytest.raises(ChecksConfigError) as info:
        Contract.from_file(str(tmp_path / "absent.toml"))
    assert info.value.code == "config:contract_unreadable" and "absent.toml" in info.value.message


def test_user_expectations_any_gx_name(ref: pd.DataFrame, contract: Contract) -> None:
    text = contract.to_toml() + (
        '\n[[expectations]]\ntype = "expect_column_values_to_match_regex"\ncolumn = "email"\nregex = "example"\n'
        '\n[[expectations]]\ntype = "ExpectColumnMeanToBeBetween"\ncolumn = "age"\nmin_value = 0.0\nmax_value = 30.0\n'
    )
    c = Contract.from_toml(text)
    assert [e["type"] for e in c.expectations] == [
        "expect_column_values_to_match_regex", "expect_column_mean_to_be_between"]  # class name -> snake_case
    batch = ref.head(50).copy()
    batch.loc[7, "email"] = "x@other.org"
    f = validate(batch, c).failures
    row = f[f["reason"] == "expect:match_regex:email"]
    assert row["row"].tolist() == [7] and row["value"].tolist() == ["x@other.org"]
    mean = f[f["reason"] == "expect:mean_to_be_between:age"]
    assert len(mean) == 1 and mean["row"].isna().all()  # aggregate: batch level, observed mean as value
    # the same through chunks: aggregate still computed on the whole batch
    f2 = validate(batch, c, chunk_rows=7).failures
    pd.testing.assert_frame_equal(f, f2)
    suite = c.to_expectation_suite()
    assert Contract.from_expectation_suite(suite) == c


def test_suite_is_gx_and_round_trips(contract: Contract) -> None:
    import great_expectations as gx

    suite = contract.to_expectation_suite()
    assert isinstance(suite, gx.ExpectationSuite)
    types = {e.expectation_type for e in suite.expectations}
    assert {"expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
            "expect_table_columns_to_match_set", "expect_column_values_to_be_unique"} <= types
    assert all(isinstance(e, gx.expectations.Expectation) for e in suite.expectations)
    assert Contract.from_expectation_suite(suite) == contract


@pytest.mark.parametrize("text,code", [
    ("columns = 3", "config:contract_key"),
    ("[columns.a]\ntype = 'number'", "config:contract_type"),
    ("[columns.a]\ntype = 'integer'\nmin = 5\nmax = 1", "config:contract_range"),
    ("[[expectations]]\ntype = 'expect_no_such_thing'", "config:contract_expectation"),
    ("[[expectations]]\ntype = 'expect_column_values_to_match_regex'\nregexx = 'a'", "config:contract_expectation"),
    ("[columns.a\n", "config:contract_toml"),
    ("[columns.a]\npattern = '('", "config:contract_pattern"),
])
def test_bad_contract_files(text: str, code: str) -> None:
    with pytest.raises(ChecksConfigError) as info:
        Contract.from_toml(text, path="c.toml")
    assert info.value.code == code and "c.toml" in info.value.message


def test_nan_inf_and_range(contract: Contract, ref: pd.DataFrame) -> None:
    b = ref.head(6).copy()
    b["income"] = b["income"].astype("float64")
    b.loc[1, "income"] = np.inf
    b.loc[2, "income"] = -np.inf
    b.loc[3, "income"] = np.nan
    b.loc[4, "age"] = 500
    assert _reasons(b, contract) == [
        (1, "expect:in_range:income"), (2, "expect:in_range:income"), (3, "expect:not_null:income"),
        (4, "expect:in_range:age"),
    ]


def test_empty_strings_and_unseen_category(contract: Contract, ref: pd.DataFrame) -> None:
    b = ref.head(4).copy()
    b.loc[0, "color"] = ""
    b.loc[1, "color"] = "purple"
    b.loc[2, "email"] = ""
    b["income"] = b["income"].astype(object)
    b.loc[3, "income"] = ""  # an empty string in a numeric column is missing
    assert _reasons(b, contract) == [
        (0, "expect:in_set:color"), (1, "expect:in_set:color"), (2, "expect:length:email"),
        (2, "expect:pattern:email"), (3, "expect:not_null:income"),
    ]


def test_mixed_types_in_a_column(contract: Contract, ref: pd.DataFrame) -> None:
    b = ref.head(5).copy()
    b["age"] = b["age"].astype(object)
    b.loc[1, "age"] = "forty"
    b.loc[2, "age"] = "41"      # a number written as text is still a number
    b.loc[3, "age"] = 41.5      # not an integer
    b["color"] = b["color"].astype(object)
    b.loc[4, "color"] = 7
    got = _reasons(b, contract)
    assert (1, "expect:type:age") in got and (3, "expect:type:age") in got and (4, "expect:type:color") in got
    assert all(r != 2 for r, _ in got)
    f = validate(b, contract).failures
    assert f.loc[(f["row"] == 1) & (f["reason"] == "expect:type:age"), "value"].item() == "forty"


def test_whole_column_of_wrong_dtype_is_batch_level(contract: Contract, ref: pd.DataFrame) -> None:
    b = ref.head(3).copy()
    b["color"] = [1, 2, 3]
    b["age"] = pd.to_datetime(["2020-01-01"] * 3)
    res = validate(b, contract)
    assert set(res.batch_failures["reason"]) == {"schema:type:color", "schema:type:age"}
    assert not res.success and res.row_reasons() == {}


def test_missing_extra_and_duplicate_columns(contract: Contract, ref: pd.DataFrame) -> None:
    b = ref.head(3).drop(columns=["income"]).assign(foo=1)
    b = pd.concat([b, b[["age"]]], axis=1)
    res = validate(b, contract)
    assert set(res.batch_failures["reason"]) == {
        "schema:missing_column:income", "schema:extra_column:foo", "schema:duplicate_column:age"}
    assert res.batch_failures["row"].isna().all()
    c = Contract.from_toml(contract.to_toml().replace("allow_extra_columns = false", "allow_extra_columns = true"))
    assert "schema:extra_column:foo" not in set(validate(b, c).failures["reason"])


def test_non_utf8_bytes(contract: Contract, ref: pd.DataFrame, tmp_path: pytest.TempPathFactory) -> None:
    b = ref.head(3).copy()
    b["color"] = [b"red", b"\xff\xfe", "blue"]
    assert _reasons(b, contract) == [(1, "expect:type:color")]
    p = tmp_path / "latin1.csv"  # type: ignore[operator]
    p.write_bytes("color\nr\xfcd\n".encode("latin-1"))
    with pytest.raises(ChecksDataError) as info:
        read_frame(p)
    assert info.value.code == "data:encoding" and "latin1.csv" in info.value.message


def test_empty_file_and_empty_frame(contract: Contract, tmp_path: pytest.TempPathFactory) -> None:
    p = tmp_path / "empty.csv"  # type: ignore[operator]
    p.write_bytes(b"")
    with pytest.raises(ChecksDataError) as info:
        read_frame(p)
    assert info.value.code == "data:empty_file"
    with pytest.raises(ChecksDataError) as info2:
        infer_contract(pd.DataFrame({"a": []}))
    assert info2.value.code == "data:empty_reference"
    res = validate(pd.DataFrame({c: [] for c in contract.columns}), contract)
    assert list(res.failures["reason"]) == ["schema:empty_batch"] and not res.success
    assert validate_chunks(iter([]), contract).failures["reason"].tolist() == ["schema:empty_batch"]


def test_pandas3_string_and_arrow_dtypes(contract: Contract, ref: pd.DataFrame) -> None:
    b = ref.head(5).copy()
    b.loc[2, "color"] = "purple"
    b.loc[3, "age"] = 500
    plain = validate(b, contract).failures
    arrow = b.copy()
    for col in ["age", "id", "class"]:
        arrow[col] = arrow[col].astype(pd.ArrowDtype(pa.int64()))
    arrow["income"] = arrow["income"].astype(pd.ArrowDtype(pa.float64()))
    for col in ["color", "email"]:
        arrow[col] = arrow[col].astype(pd.ArrowDtype(pa.string()))
    strs = b.copy()
    for col in ["color", "email"]:
        strs[col] = strs[col].astype("str")
    nullable = b.astype({"age": "Int64", "color": "string"})
    for frame in (arrow, strs, nullable):
        pd.testing.assert_frame_equal(validate(frame, contract).failures, plain)
        pd.testing.assert_frame_equal(validate(frame, contract, engine="gx").failures, plain)
    assert plain["reason"].tolist() == ["expect:in_set:color", "expect:in_range:age"]


def test_failures_table_shape_and_row_reasons(contract: Contract, ref: pd.DataFrame) -> None:
    b = ref.head(5).copy()
    b.loc[2, "age"] = 500
    b.loc[2, "color"] = "x"
    b.loc[0, "id"] = 3  # duplicates row 3's id: both rows fail uniqueness
    res = validate(b, contract)
    assert list(res.failures.columns) == FAILURE_COLUMNS
    assert str(res.failures["row"].dtype) == "Int64"
    assert res.row_reasons() == {
        0: ["expect:unique:id"], 2: ["expect:in_range:age", "expect:in_set:color"], 3: ["expect:unique:id"]}


def test_chunks_and_offsets_give_source_rows(contract: Contract, ref: pd.DataFrame) -> None:
    b = ref.copy()
    b.loc[[5, 123, 399], "age"] = 1000
    b.loc[250, "id"] = 7  # unique across chunks
    whole = validate(b, contract, chunk_rows=10_000).failures
    for size in (1, 37, 128):
        pd.testing.assert_frame_equal(validate(b, contract, chunk_rows=size).failures, whole)
    offset = 1_000_000
    chunks = ((offset + s, b.iloc[s:s + 100]) for s in range(0, len(b), 100))
    shifted = validate_chunks(chunks, contract).failures
    assert (shifted["row"] - offset).tolist() == whole["row"].tolist()
    assert sorted(set(whole["row"].tolist())) == [5, 7, 123, 250, 399]


def test_gx_is_silent(contract: Contract, ref: pd.DataFrame, capfd: pytest.CaptureFixture[str]) -> None:
    validate(ref.head(20), contract, engine="gx")
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_bad_engine_and_label_column(contract: Contract, ref: pd.DataFrame) -> None:
    with pytest.raises(ChecksConfigError):
        validate(ref, contract, engine="fastest")
    with pytest.raises(ChecksConfigError):
        infer_contract(ref, label_column="nope")
    with pytest.raises(ChecksDataError):
        infer_contract(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    assert Contract(columns={"a": ColumnSpec()}).to_toml().count("[columns.") == 1


def test_every_raised_code_is_catalogued() -> None:
    import re
    from pathlib import Path

    from checks.errors import CONTRACT_ERROR_CODES

    root = Path(__file__).resolve().parents[2] / "checks"
    files = [*sorted((root / "contract").glob("*.py")), root / "drift.py", root / "_frames.py"]
    raised = {m for f in files for m in re.findall(r'Checks\w+Error\(\s*"((?:data|config):\w+)"', f.read_text())}
    assert raised and raised <= set(CONTRACT_ERROR_CODES)


def test_datetime_and_boolean_columns() -> None:
    ref = pd.DataFrame({"d": pd.date_range("2020-01-01", periods=50, freq="D"), "b": [True, False] * 25})
    c = infer_contract(ref)
    assert c.columns["d"].type == "datetime" and c.columns["b"].allowed == [False, True]
    assert c.columns["d"].min.year == 2009 and c.columns["d"].max.year == 2070  # a sanity range only
    assert Contract.from_toml(c.to_toml()) == c and validate(ref, c).success
    c = Contract.from_toml(c.to_toml().replace("max = 2070-02-19T00:00:00+00:00", "max = 2025-01-01T00:00:00Z"))
    bat = pd.DataFrame({"d": ["2020-02-01", "2030-01-01", "not a date", None], "b": [True, "yes", 3, None]})
    got = _reasons(bat, c)
    assert got == [(1, "expect:in_range:d"), (2, "expect:type:b"), (2, "expect:type:d"),
                   (3, "expect:not_null:b"), (3, "expect:not_null:d")]
    pd.testing.assert_frame_equal(validate(bat, c, engine="gx").failures, validate(bat, c).failures)


def test_table_level_user_expectation_sees_the_whole_batch(contract: Contract, ref: pd.DataFrame) -> None:
    c = Contract.from_toml(contract.to_toml() + (
        '\n[[expectations]]\ntype = "expect_table_row_count_to_be_between"\nmin_value = 1\nmax_value = 10\n'))
    for size in (7, 1000):
        f = validate(ref.head(50), c, chunk_rows=size).failures
        assert f["reason"].tolist() == ["expect:row_count_to_be_between:*"] and f["value"].tolist() == ["50"]


def test_docstring_examples_run() -> None:
    import doctest

    import checks._frames
    import checks.contract
    import checks.contract._infer
    import checks.contract._model
    import checks.contract._validate
    import checks.drift

    for mod in (checks.contract, checks.contract._infer, checks.contract._model, checks.contract._validate,
                checks.drift, checks._frames):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, mod.__name__


def test_read_chunks_from_files(contract: Contract, ref: pd.DataFrame, tmp_path: Path) -> None:
    from checks.contract import read_chunks

    b = ref.copy()
    b.loc[[3, 250], "age"] = 1000
    whole = validate(b, contract).failures
    b.to_parquet(tmp_path / "b.parquet", row_group_size=90)
    b.to_csv(tmp_path / "b.csv", index=False)
    for name in ("b.parquet", "b.csv"):
        got = validate_chunks(read_chunks(tmp_path / name, chunk_rows=64), contract).failures
        pd.testing.assert_frame_equal(got, whole)
    (tmp_path / "bad.csv").write_bytes(b"age,color\n" + b"1,red\n" * 5 + b"2,r\xfcd\n")
    with pytest.raises(ChecksDataError) as info:
        list(read_chunks(tmp_path / "bad.csv", chunk_rows=2))
    assert info.value.code == "data:encoding"
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ChecksDataError):
        list(read_chunks(tmp_path / "broken.parquet"))
