"""pipelines.reading: magic-byte refusal, allowed roots, encodings, chunked reads equal whole reads, fsspec."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.errors import PipelineInputError
from pipelines.reading import check_allowed, read_to_parquet, sniff_format, stage_remote


def _read(path: Path, dest: Path, **kw: int) -> pd.DataFrame:
    fmt = sniff_format(path)
    read_to_parquet(path, dest, fmt=fmt, uri=str(path), row_group_rows=kw.get("rows", 64),
                    block_bytes=kw.get("block", 1 << 20))
    return pq.read_table(dest).to_pandas()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("malformed.csv", "data:malformed_csv"),
        ("latin1.csv", "data:encoding"),
        ("empty.csv", "data:empty_file"),
        ("header_only.csv", "data:no_rows"),
        ("pickle.csv", "data:executable_format"),
        ("pickle.parquet", "data:executable_format"),
        ("truncated.parquet", "data:unreadable"),
        ("does-not-exist.csv", "data:missing_file"),
    ],
)
def test_bad_inputs(data_samples: Path, tmp_path: Path, name: str, code: str) -> None:
    path = data_samples / "bad" / name
    with pytest.raises(PipelineInputError) as info:
        _read(path, tmp_path / "out.parquet")
    assert info.value.code == code
    assert name in info.value.message
    assert "\n" not in info.value.message
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("payload", [pickle.dumps({"a": 1}, protocol=p) for p in (0, 2, 3, 4, 5)])
def test_every_pickle_protocol_is_refused_without_unpickling(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(payload)
    with pytest.raises(PipelineInputError) as info:
        sniff_format(path)
    assert info.value.code == "data:executable_format"


@pytest.mark.parametrize("magic", [b"\x7fELF\x02\x01", b"PK\x03\x04zip", b"\x93NUMPY\x01\x00", b"#!/bin/sh\n"])
def test_executables_and_archives_are_refused(tmp_path: Path, magic: bytes) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(magic + b"\x00" * 64)
    with pytest.raises(PipelineInputError, match="refused"):
        sniff_format(path)


def test_formats_agree(data_samples: Path, tmp_path: Path) -> None:
    base = data_samples / "credit" / "batch_poisoned"
    csv = _read(base.with_suffix(".csv"), tmp_path / "a.parquet")
    par = _read(base.with_suffix(".parquet"), tmp_path / "b.parquet")
    jsl = _read(base.with_suffix(".jsonl"), tmp_path / "c.parquet")
    assert len(csv) == len(par) == len(jsl) == 235
    pd.testing.assert_frame_equal(csv, par, check_dtype=False)
    pd.testing.assert_frame_equal(csv[par.columns], jsl[par.columns], check_dtype=False)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 300), block=st.integers(512, 40_000))
def test_chunked_read_equals_whole_read(data_samples: Path, tmp_path: Path, rows: int, block: int) -> None:
    src = data_samples / "credit" / "reference.csv"
    whole = _read(src, tmp_path / "whole.parquet", rows=1_000_000, block=1 << 30)
    part = _read(src, tmp_path / "part.parquet", rows=rows, block=max(block, 1024))
    pd.testing.assert_frame_equal(whole, part, check_dtype=False)
    groups = pq.ParquetFile(tmp_path / "part.parquet").metadata.num_row_groups
    assert groups == -(-600 // rows)


def test_allowed_roots(tmp_path: Path) -> None:
    inside = tmp_path / "data"
    inside.mkdir()
    (inside / "a.csv").write_text("x\n1\n")
    check_allowed(str(inside / "a.csv"), ("data",), base=tmp_path)
    check_allowed(f"file://{inside / 'a.csv'}", (str(inside),))
    with pytest.raises(PipelineInputError) as info:
        check_allowed(str(inside / ".." / "secret.csv"), ("data",), base=tmp_path)
    assert info.value.code == "data:outside_allowed_roots"
    os.symlink("/etc/passwd", inside / "link.csv")
    with pytest.raises(PipelineInputError):
        check_allowed(str(inside / "link.csv"), ("data",), base=tmp_path)
    with pytest.raises(PipelineInputError):  # a sibling whose name only starts with the root's name
        check_allowed(str(tmp_path / "data2" / "a.csv"), ("data",), base=tmp_path)
    check_allowed("memory://bucket/landing/a.csv", ("memory://bucket/landing",))
    with pytest.raises(PipelineInputError):
        check_allowed("memory://bucket/other/a.csv", ("memory://bucket/landing",))


def test_stage_memory_url(data_samples: Path, tmp_path: Path) -> None:
    import fsspec

    blob = (data_samples / "credit" / "batch_clean.csv").read_bytes()
    with fsspec.open("memory://tg-test/batch.csv", "wb") as fh:
        fh.write(blob)
    local = stage_remote("memory://tg-test/batch.csv", tmp_path)
    assert local.read_bytes() == blob
    with pytest.raises(PipelineInputError) as info:
        stage_remote("memory://tg-test/missing.csv", tmp_path)
    assert info.value.code == "data:missing_file"


_LATE = 3000  # rows before the value that does not fit the first block's type (blocks here are 16 KiB)


def _read_in_blocks(path: Path, tmp_path: Path, fmt: str, block: int) -> tuple[int, pa.Table]:
    out = tmp_path / f"out-{block}.parquet"
    rows, _ = read_to_parquet(path, out, fmt=fmt, uri=str(path), row_group_rows=1000, block_bytes=block)
    return rows, pq.read_table(out)


@pytest.mark.parametrize(("tail", "quoted_newline", "x_type"), [
    ("2.5", False, "double"),        # integers, then a float
    ("abc", False, "string"),        # integers, then text
    ("4", True, "int64"),            # a quoted field spanning two lines, late in the file
])
def test_a_large_csv_whose_late_values_do_not_fit_the_first_block_is_read(
        tmp_path: Path, tail: str, quoted_newline: bool, x_type: str) -> None:
    """Streamed in 16 KiB blocks, the file gives the table a single read of the whole file gives."""
    lines = ["id,x,note"] + [f"{i},{i % 7}," for i in range(_LATE)]
    lines.append(f'{_LATE},{tail},"two\nlines"' if quoted_newline else f"{_LATE},{tail},late")
    path = tmp_path / "late.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert path.stat().st_size > 16 << 10
    rows, streamed = _read_in_blocks(path, tmp_path, "csv", 16 << 10)
    _, whole = _read_in_blocks(path, tmp_path, "csv", 64 << 20)
    assert rows == _LATE + 1 and str(streamed.schema.field("x").type) == x_type
    assert streamed.equals(whole)


def test_a_large_json_lines_file_whose_late_values_do_not_fit_is_read(tmp_path: Path) -> None:
    """Integers then a float, and nulls then text: streamed, the file gives what a whole read gives."""
    lines = [f'{{"id": {i}, "x": {i % 5}, "y": null}}' for i in range(_LATE)]
    lines.append(f'{{"id": {_LATE}, "x": 2.5, "y": "late"}}')
    path = tmp_path / "late.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows, streamed = _read_in_blocks(path, tmp_path, "json", 16 << 10)
    _, whole = _read_in_blocks(path, tmp_path, "json", 64 << 20)
    assert rows == _LATE + 1
    assert str(streamed.schema.field("x").type) == "double" and str(streamed.schema.field("y").type) == "string"
    assert streamed.equals(whole)


@pytest.mark.parametrize(("fmt", "lines", "code"), [
    ("csv", ["id,x"] + [f"{i},{i}" for i in range(_LATE)] + ["1,2,3,4"], "data:malformed_csv"),
    ("json", [f'{{"x": {i}}}' for i in range(_LATE)] + ['{"x": "text"}'], "data:unreadable"),  # number, then text
])
def test_a_large_file_with_a_malformed_late_row_is_still_refused(tmp_path: Path, fmt: str, lines: list[str],
                                                                 code: str) -> None:
    path = tmp_path / f"bad.{fmt}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(PipelineInputError) as err:
        _read_in_blocks(path, tmp_path, fmt, 8 << 10)
    assert err.value.code == code and str(path) in str(err.value)
    assert not list(tmp_path.glob("out-*"))


def test_a_large_csv_with_a_boolean_column_spelled_otherwise_later_is_read(tmp_path: Path) -> None:
    """``tRuE`` casts to a boolean but the CSV reader refuses it: the whole-file types make the column text,
    as a single read of the whole file does."""
    lines = ["flag,x"] + [f"{'true' if i % 2 else 'false'},{i}" for i in range(_LATE)] + ["tRuE,1"]
    path = tmp_path / "flags.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, streamed = _read_in_blocks(path, tmp_path, "csv", 8 << 10)
    _, whole = _read_in_blocks(path, tmp_path, "csv", 64 << 20)
    assert streamed.equals(whole) and str(streamed.schema.field("flag").type) == "string"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_column_named_twice_is_refused(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"dup.{fmt}"
    if fmt == "csv":
        path.write_text("a,b,a\n1,2,3\n", encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"]), path)
    with pytest.raises(PipelineInputError) as err:
        read_to_parquet(path, tmp_path / "out.parquet", fmt=fmt, uri=str(path), row_group_rows=10)
    assert err.value.code == "data:duplicate_column" and str(path) in str(err.value)
