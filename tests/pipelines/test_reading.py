"""pipelines.reading: magic-byte refusal, allowed roots, encodings, chunked reads equal whole reads, fsspec."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pandas as pd
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
