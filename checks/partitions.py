"""The partitions' score tables, saved as Parquet by a flow, read back one column at a time.

``RowScorer.finalize`` needs about 200 bytes a row of partition results (scores, group ids, value hashes, bins),
but never all of them at once. ``PartitionFiles`` stands in for the concatenated table and reads a column from
the files only when finalize asks for it, so at 1M rows the whole table (about 200 MB) is never in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from checks.errors import ChecksDataError

__all__ = ["PartitionFiles"]


class PartitionFiles:
    """Score tables of ``score_partition`` saved with their row index (``to_parquet(index=True)``), read lazily.

    Behaves as the concatenated table for what ``finalize`` uses: ``len``, ``columns`` and ``frame[name]``
    (a Series, read from the files each time it is asked for). The files must cover rows 0..n-1 without gaps
    or overlaps, in any order; otherwise ``ChecksDataError`` (``scoring:partition_mismatch``).

    >>> import tempfile, pandas as pd
    >>> d = tempfile.mkdtemp()
    >>> pd.DataFrame({"s": [0.5, 0.25]}, index=pd.RangeIndex(2, 4)).to_parquet(f"{d}/b.parquet", index=True)
    >>> pd.DataFrame({"s": [0.0, 1.0]}).to_parquet(f"{d}/a.parquet", index=True)
    >>> parts = PartitionFiles([f"{d}/b.parquet", f"{d}/a.parquet"])
    >>> len(parts), parts["s"].tolist()
    (4, [0.0, 1.0, 0.5, 0.25])
    """

    def __init__(self, paths: Sequence[str | Path]) -> None:
        spans = []
        for p in paths:
            index = _row_index(pq.ParquetFile(p))
            start = int(index[0]) if len(index) else 0
            if not np.array_equal(index, np.arange(start, start + len(index))):
                raise ChecksDataError("scoring:partition_mismatch",
                                      f"{p}: its rows are not one run of consecutive row numbers")
            spans.append((start, len(index), str(p)))
        spans.sort()
        expected = 0
        for start, rows, p in spans:
            if start != expected:
                raise ChecksDataError("scoring:partition_mismatch",
                                      f"{p}: expected its rows to start at {expected}, got {start}")
            expected += rows
        self._files = [pq.ParquetFile(p) for _, rows, p in spans if rows]
        self._rows = expected
        names = self._files[0].schema_arrow.names if self._files else []
        self._columns = [n for n in names if not n.startswith("__index_level")]

    def __len__(self) -> int:
        return self._rows

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def __getitem__(self, name: str) -> pd.Series:
        if name not in self._columns:
            raise KeyError(name)
        chunks = [c for f in self._files for c in f.read(columns=[name]).column(0).chunks]
        if not chunks:
            return pd.Series([], dtype=float, name=name)
        # one flat list of chunks: a chunked array of chunked arrays converts element by element (0.3 s a column)
        return pa.chunked_array(chunks).to_pandas().rename(name)


def _row_index(pf: pq.ParquetFile) -> np.ndarray:
    """The saved pandas row index of a partition file (a column, or a range in the pandas metadata)."""
    meta = pf.schema_arrow.pandas_metadata or {}
    spec = (meta.get("index_columns") or [None])[0]
    if isinstance(spec, str):
        return np.asarray(pf.read(columns=[spec]).column(0).to_numpy(), dtype=np.int64)
    if isinstance(spec, dict) and spec.get("kind") == "range":
        return np.arange(int(spec["start"]), int(spec["stop"]), int(spec["step"]), dtype=np.int64)
    raise ChecksDataError("scoring:partition_mismatch", "a partition file has no saved row index")


class HiddenColumns(Mapping[str, np.ndarray]):
    """The ``_`` columns of a partition table as arrays, each fetched when asked for (a view for a DataFrame, a
    read for ``PartitionFiles``); callers fetch a column once per use, not once per row."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self._names = [str(c) for c in table.columns if str(c).startswith("_")]

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        return np.asarray(self._table[name].to_numpy())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
