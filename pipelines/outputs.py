"""Writing a run's outputs atomically: staged in a hidden directory, then renamed into ``--out``.

Order of a publish: the old ``clean.parquet`` is removed first, every other output is renamed into place, and
``clean.parquet`` comes last and only for an approved batch. A crash at any point leaves either the previous
complete set minus ``clean.parquet`` or the new one, never a ``clean.parquet`` beside a summary that does not
describe it. Outputs are deterministic (no times, no run ids), so re-running the same input gives the same bytes.

Example::

    >>> import tempfile, pathlib
    >>> from pipelines.outputs import atomic_write_bytes
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> atomic_write_bytes(p, b"hi").read_bytes()
    b'hi'
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["OUTPUT_FILES", "atomic_write_bytes", "write_outputs", "publish", "cleanup_stale_staging"]

OUTPUT_FILES = ("quarantine.parquet", "scores.parquet", "summary.json", "report.html", "clean.parquet")
_STAGING_PREFIX = ".staging-"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_table(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", row_group_size=250_000)


def _scores_table(scores: pd.DataFrame) -> pa.Table:
    """scores.parquet with the DESIGN.md types: row int64, score float64, flagged bool, reasons list<string>."""
    cols: dict[str, pa.Array] = {
        "row": pa.array(scores["row"].to_numpy(dtype=np.int64)),
        "score": pa.array(scores["score"].to_numpy(dtype=np.float64)),
        "flagged": pa.array(scores["flagged"].to_numpy(dtype=bool)),
        "reasons": pa.array([list(r) if r is not None else [] for r in scores["reasons"]], type=pa.list_(pa.string())),
    }
    for c in sorted(c for c in scores.columns if c.startswith("score_")):
        cols[c] = pa.array(scores[c].to_numpy(dtype=np.float64))
    return pa.table(cols)


def write_outputs(staging: Path, *, batch_path: Path, scores: pd.DataFrame, quarantined: np.ndarray,
                  approved: bool) -> dict[str, Path]:
    """Write the Parquet outputs into ``staging``: clean (approved only), quarantine and scores.

    The batch is streamed one row group at a time, so memory holds one partition plus the quarantined rows.
    """
    staging.mkdir(parents=True, exist_ok=True)
    pf = pq.ParquetFile(batch_path)
    q_rows = np.sort(np.asarray(quarantined, dtype=np.int64))
    keep = np.ones(pf.metadata.num_rows, dtype=bool)
    keep[q_rows] = False
    written: dict[str, Path] = {}
    parts: list[pa.Table] = []
    writer = pq.ParquetWriter(staging / "clean.parquet", pf.schema_arrow, compression="zstd") if approved else None
    try:
        offset = 0
        for i in range(pf.metadata.num_row_groups):
            group = pf.read_row_group(i)
            mask = keep[offset:offset + group.num_rows]
            offset += group.num_rows
            if writer is not None:
                writer.write_table(group.filter(pa.array(mask)))
            if not mask.all():
                parts.append(group.filter(pa.array(~mask)))
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:
        written["clean.parquet"] = staging / "clean.parquet"
    q = pa.concat_tables(parts) if parts else pf.schema_arrow.empty_table()
    by_row = scores.set_index("row")
    q = q.append_column("row", pa.array(q_rows))
    q = q.append_column("score", pa.array(by_row["score"].reindex(q_rows).to_numpy(dtype=np.float64)))
    reasons = [list(r) if r is not None else [] for r in by_row["reasons"].reindex(q_rows)]
    q = q.append_column("reasons", pa.array(reasons, type=pa.list_(pa.string())))
    _write_table(q, staging / "quarantine.parquet")
    written["quarantine.parquet"] = staging / "quarantine.parquet"
    _write_table(_scores_table(scores), staging / "scores.parquet")
    written["scores.parquet"] = staging / "scores.parquet"
    return written


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    """Deterministic JSON (sorted keys, indented) written atomically."""
    return atomic_write_bytes(path, (json.dumps(doc, sort_keys=True, indent=2, default=str) + "\n").encode())


def publish(staging: Path, out_dir: Path) -> dict[str, Path]:
    """Move the staged outputs into ``out_dir`` (clean.parquet last) and remove the staging directory."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "clean.parquet").unlink(missing_ok=True)
    placed: dict[str, Path] = {}
    for name in OUTPUT_FILES:
        src = staging / name
        if name == "clean.parquet":
            continue
        if src.exists():
            os.replace(src, out_dir / name)
            placed[name] = out_dir / name
        else:
            (out_dir / name).unlink(missing_ok=True)
    if (staging / "clean.parquet").exists():
        os.replace(staging / "clean.parquet", out_dir / "clean.parquet")
        placed["clean.parquet"] = out_dir / "clean.parquet"
    shutil.rmtree(staging, ignore_errors=True)
    return placed


def new_staging(out_dir: Path) -> Path:
    """A fresh hidden staging directory inside ``out_dir`` (same filesystem, so renames are atomic)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=out_dir))


def cleanup_stale_staging(out_dir: Path) -> None:
    """Remove staging directories left behind by a crashed run (their files were never approved)."""
    if out_dir.is_dir():
        for p in out_dir.glob(_STAGING_PREFIX + "*"):
            shutil.rmtree(p, ignore_errors=True)
