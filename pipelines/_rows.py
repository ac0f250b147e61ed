"""Chosen rows of a Parquet file, read one row group at a time (shared by ``tasks`` and ``_reference``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import numpy as np

__all__ = ["read_rows"]


def read_rows(path: str | Path | pq.ParquetFile, positions: np.ndarray) -> pa.Table:
    """The rows at ``positions`` (sorted, distinct, 0-based in the file) in file order: every row group holding
    one is read and only those rows are kept; every row when ``positions`` names them all."""
    import numpy as np

    pf = path if isinstance(path, pq.ParquetFile) else pq.ParquetFile(path)
    total = pf.metadata.num_rows
    if len(positions) >= total:
        return pf.read()
    pieces, start = [], 0
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        lo, hi = np.searchsorted(positions, [start, start + n])
        if hi > lo:
            pieces.append(pf.read_row_group(g).take(pa.array(positions[lo:hi] - start)))
        start += n
    return pa.concat_tables(pieces) if pieces else pf.schema_arrow.empty_table()
