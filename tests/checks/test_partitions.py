"""PartitionFiles: the flow's saved partition score tables read back lazily, in row order, failing closed."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import checks.partitions
from checks.errors import ChecksDataError
from checks.partitions import HiddenColumns, PartitionFiles
from checks.scoring import RowScorer


def _save(tmp_path: Path, frame: pd.DataFrame, name: str, *, index: bool | None = True) -> str:
    path = tmp_path / f"{name}.parquet"
    frame.to_parquet(path, index=index)
    return str(path)


def test_docstring_example_runs() -> None:
    assert doctest.testmod(checks.partitions).failed == 0


@pytest.mark.parametrize("index", [True, None])  # a stored index column, or a range in the pandas metadata
def test_pieces_come_back_in_row_order_whatever_the_file_order(tmp_path: Path, index: bool | None) -> None:
    frame = pd.DataFrame({"s": np.arange(10.0), "_g": np.arange(10, dtype=np.uint64) * 7,
                          "_f": pd.array(["a", None] * 5, dtype="str")})
    paths = [_save(tmp_path, frame.iloc[lo:lo + 3], f"p{lo}", index=index) for lo in (9, 3, 0, 6)]
    parts = PartitionFiles(paths)
    assert len(parts) == 10 and parts.columns == ["s", "_g", "_f"]
    for col in frame.columns:
        pd.testing.assert_series_equal(parts[col], frame[col], check_names=False)
    hidden = HiddenColumns(parts)
    assert sorted(hidden) == ["_f", "_g"] and hidden["_g"].dtype == np.uint64
    with pytest.raises(KeyError):
        parts["missing"]


@pytest.mark.parametrize("starts", [(0, 4), (0, 2), (1, 3)])  # a gap, an overlap, not starting at row 0
def test_gaps_and_overlaps_are_refused(tmp_path: Path, starts: tuple[int, int]) -> None:
    paths = [_save(tmp_path, pd.DataFrame({"s": [0.0, 1.0, 2.0]}, index=pd.RangeIndex(s, s + 3)), f"p{s}")
             for s in starts]
    with pytest.raises(ChecksDataError) as err:
        PartitionFiles(paths)
    assert err.value.code == "scoring:partition_mismatch"


def test_unordered_rows_inside_a_piece_are_refused(tmp_path: Path) -> None:
    path = _save(tmp_path, pd.DataFrame({"s": [0.0, 1.0]}, index=[1, 0]), "p")
    with pytest.raises(ChecksDataError, match="consecutive"):
        PartitionFiles([path])


def test_finalize_from_files_equals_finalize_from_the_frame(data_samples: Path, tmp_path: Path) -> None:
    credit = data_samples / "credit"
    batch = pd.read_parquet(credit / "batch_poisoned.parquet")
    scorer = RowScorer(label_column="class", random_state=0).fit(pd.read_parquet(credit / "reference.parquet"))
    pieces = [scorer.score_partition(batch.iloc[lo:lo + 60]) for lo in range(0, len(batch), 60)]
    paths = [_save(tmp_path, p, f"part{k}") for k, p in enumerate(pieces)]
    from_files = scorer.finalize(batch, PartitionFiles(paths[::-1]))
    from_frame = scorer.finalize(batch, pd.concat(pieces))
    pd.testing.assert_frame_equal(from_files, from_frame)
    assert from_files["flagged"].sum() > 10
