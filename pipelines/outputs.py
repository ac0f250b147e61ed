"""Writing a run's outputs atomically: staged in a hidden directory, then renamed into ``--out``.

Order of a publish: the old ``clean.parquet`` is removed first, every other output is renamed into place, and
``clean.parquet`` comes last and only for an approved batch. A crash at any point leaves either the previous
complete set minus ``clean.parquet`` or the new one, never a ``clean.parquet`` beside a summary that does not
describe it. Outputs are deterministic (no times, no run ids), so re-running the same input gives the same bytes.

Concurrent runs on one ``--out`` (POSIX ``flock``, Linux): a live run holds an exclusive lock on its staging
directory itself (no file is added inside it) from :func:`new_staging` until :func:`publish` or
:func:`release_staging`, or until its process dies, when the kernel drops the lock. :func:`cleanup_stale_staging`
removes only staging directories whose lock it can take at once, i.e. those of dead runs. Creating, sweeping and
publishing take turns on ``OUT/.trainguard.lock``, so a publish's renames are never interleaved with another's:
each leaves a complete set, and the last one to publish wins.

Example::

    >>> import tempfile, pathlib
    >>> from pipelines.outputs import atomic_write_bytes
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> atomic_write_bytes(p, b"hi").read_bytes()
    b'hi'
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines._relabel import Relabel

__all__ = ["ADDED_COLUMNS_KEY", "THRESHOLD_KEY", "OUTPUT_FILES", "atomic_write_bytes", "free_name", "label_array", "quarantine_columns", "write_outputs", "write_scores", "read_scores", "publish", "new_staging", "release_staging",
           "cleanup_stale_staging"]

OUTPUT_FILES = ("quarantine.parquet", "scores.parquet", "summary.json", "report.html", "clean.parquet")
_STAGING_PREFIX = ".staging-"
LOCK_NAME = ".trainguard.lock"
ADDED_COLUMNS_KEY = b"trainguard.columns"  # quarantine.parquet's metadata: JSON list of the columns it adds
THRESHOLD_KEY = b"trainguard.threshold"  # scores.parquet's metadata: how the batch's cut was set (JSON)

# absolute staging directory -> descriptor holding its flock, for every live staging of this process
_held: dict[str, int] = {}
_held_guard = threading.Lock()


def _forget_after_fork() -> None:
    """A forked child drops its copies of the parent's lock descriptors (the parent's locks stay held)."""
    global _held_guard
    for fd in _held.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()
    _held_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


@contextmanager
def _out_dir_lock(out_dir: Path) -> Iterator[None]:
    """Hold the exclusive ``OUT/.trainguard.lock`` (blocking): staging creation, sweeps and publishes take turns."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir / LOCK_NAME, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


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


def _reasons_array(reasons: pd.Series) -> pa.Array:
    """list<string> from a column of lists (None = []), built from offsets: no per-row list objects."""
    cells = reasons.to_numpy(dtype=object)
    lengths = np.fromiter((0 if r is None else len(r) for r in cells), dtype=np.int32, count=len(cells))
    offsets = np.zeros(len(cells) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = [str(code) for i in np.flatnonzero(lengths) for code in cells[i]]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.string()))


def _scores_table(scores: pd.DataFrame, label_type: pa.DataType | None = None) -> pa.Table:
    """scores.parquet with the docs/design.md types: row int64, score float64, flagged bool, reasons list<string>."""
    cols: dict[str, pa.Array] = {
        "row": pa.array(scores["row"].to_numpy(dtype=np.int64)),
        "score": pa.array(scores["score"].to_numpy(dtype=np.float64)),
        "flagged": pa.array(scores["flagged"].to_numpy(dtype=bool)),
        "reasons": _reasons_array(scores["reasons"]),
    }
    for c in sorted(c for c in scores.columns if c.startswith("score_")):
        cols[c] = pa.array(scores[c].to_numpy(dtype=np.float64))
    if "label_quality" in scores.columns:
        cols["label_quality"] = pa.array(scores["label_quality"].to_numpy(dtype=np.float64))
    if "suggested_label" in scores.columns:
        cols["suggested_label"] = label_array(scores["suggested_label"].to_numpy(dtype=object), label_type)
    table = pa.table(cols)
    if scores.attrs.get("threshold"):  # how the batch's cut was set (``RowScorer.finalize``)
        table = table.replace_schema_metadata({THRESHOLD_KEY: json.dumps(scores.attrs["threshold"],
                                                                         sort_keys=True).encode()})
    return table


def label_array(values: np.ndarray, label_type: pa.DataType | None) -> pa.Array:
    """Label values (None = null) as an Arrow array of the label column's type when it is known and the values
    convert to it, else of the type Arrow infers (string when all are null)."""
    arr = pa.array(values, from_pandas=True)
    target = label_type if label_type is not None else (pa.string() if arr.type == pa.null() else arr.type)
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return arr


def write_scores(scores: pd.DataFrame, path: Path, label_type: pa.DataType | None = None) -> Path:
    """Write a scores table as scores.parquet (docs/design.md types; the exact bytes ``write_outputs`` would write).
    ``label_type``: the label column's Arrow type, for ``suggested_label``."""
    _write_table(_scores_table(scores, label_type), path)
    return path


def read_scores(path: Path) -> pd.DataFrame:
    """A scores.parquet as a DataFrame, cheaply: ``reasons`` are lists for flagged rows, and every unflagged row
    shares one empty list (converting a million empty list cells would take seconds and hundreds of MB)."""
    table = pq.read_table(path)
    plain = [c for c in table.column_names if c not in ("reasons", "suggested_label")]
    frame = table.select(plain).to_pandas()
    if "suggested_label" in table.column_names:  # Python values (ints stay ints), None where there is none
        col = table.column("suggested_label")
        values = np.full(len(frame), None, dtype=object)
        some = np.flatnonzero(col.is_valid().to_numpy(zero_copy_only=False))
        values[some] = col.take(pa.array(some)).to_pylist()
        frame["suggested_label"] = values
    meta = (table.schema.metadata or {}).get(THRESHOLD_KEY)
    if meta:
        frame.attrs["threshold"] = json.loads(meta)
    flagged = np.flatnonzero(frame["flagged"].to_numpy(dtype=bool))
    none: list[str] = []
    column: list[list[str]] = [none] * len(frame)
    for i, codes in zip(flagged, table.column("reasons").take(pa.array(flagged)).to_pylist(), strict=True):
        column[int(i)] = list(codes or [])
    frame.insert(3, "reasons", column)
    return frame


def quarantine_columns(data_columns: Sequence[str]) -> tuple[str, str, str]:
    """Names of the columns quarantine.parquet adds after the data's own: ``row``, ``score`` and ``reasons``, or,
    where the data already has a column of that name (a credit ``score``, say), ``trainguard_<name>``
    (underscores prepended until unused).

    >>> quarantine_columns(["age", "score"])
    ('row', 'trainguard_score', 'reasons')
    """
    taken = list(data_columns)
    return free_name("row", taken), free_name("score", taken), free_name("reasons", taken)


def write_outputs(staging: Path, *, batch_path: Path, scores: pd.DataFrame, quarantined: np.ndarray,
                  approved: bool, scores_file: Path | None = None, relabel: Relabel | None = None) -> dict[str, Path]:
    """Write the Parquet outputs into ``staging``: clean (approved only), quarantine and scores.

    ``scores_file``: ``scores`` as already written by ``write_scores``; it is copied rather than encoded again.
    ``relabel``: rows (not quarantined) written to clean.parquet with a corrected label (``pipelines._relabel``).

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
                if relabel is not None:
                    group = _with_labels(group, offset - group.num_rows, relabel)
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
    row_col, score_col, reasons_col = quarantine_columns(q.column_names)
    q = q.append_column(row_col, pa.array(q_rows))
    q = q.append_column(score_col, pa.array(by_row["score"].reindex(q_rows).to_numpy(dtype=np.float64)))
    reasons = [list(r) if r is not None else [] for r in by_row["reasons"].reindex(q_rows)]
    q = q.append_column(reasons_col, pa.array(reasons, type=pa.list_(pa.string())))
    added = [row_col, score_col, reasons_col]
    for name in ("suggested_label", "label_quality"):  # what a reviewer relabelling by hand starts from
        if name in by_row.columns:
            values = by_row[name].reindex(q_rows).to_numpy(dtype=object if name == "suggested_label" else np.float64)
            label_type = relabel.values.type if relabel is not None else None
            column = label_array(values, label_type) if name == "suggested_label" else pa.array(values)
            added.append(free_name(name, q.column_names))
            q = q.append_column(added[-1], column)
    q = q.replace_schema_metadata({**(q.schema.metadata or {}), ADDED_COLUMNS_KEY: json.dumps(added).encode()})
    _write_table(q, staging / "quarantine.parquet")
    written["quarantine.parquet"] = staging / "quarantine.parquet"
    if scores_file is not None:
        shutil.copyfile(scores_file, staging / "scores.parquet")
    else:
        write_scores(scores, staging / "scores.parquet")
    written["scores.parquet"] = staging / "scores.parquet"
    return written


def free_name(base: str, taken: Sequence[str]) -> str:
    """``base``, or ``trainguard_<base>`` (underscores prepended until unused) where the data has a column of
    that name.

    >>> free_name("label_quality", ["label_quality"])
    'trainguard_label_quality'
    """
    if base not in taken:
        return base
    name = f"trainguard_{base}"
    while name in taken:
        name = "_" + name
    return name


def _with_labels(group: pa.Table, start: int, relabel: Relabel) -> pa.Table:
    """``group`` (source rows from ``start``) with the corrected labels of its relabelled rows."""
    lo, hi = np.searchsorted(relabel.rows, [start, start + group.num_rows])
    if lo == hi:
        return group
    at = group.schema.get_field_index(relabel.column)
    old = group.column(at).combine_chunks()
    new = relabel.values.slice(int(lo), int(hi - lo)).cast(old.type)
    take = np.arange(group.num_rows, dtype=np.int64)
    take[relabel.rows[lo:hi] - start] = group.num_rows + np.arange(hi - lo)
    column = pa.concat_arrays([old, new]).take(pa.array(take))
    return group.set_column(at, group.schema.field(at), column)


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    """Deterministic, strict JSON (sorted keys, indented; nan and inf as null, never a bare NaN) written
    atomically."""
    from pipelines._json import dumps

    return atomic_write_bytes(path, (dumps(doc, sort_keys=True, indent=2) + "\n").encode())


def publish(staging: Path, out_dir: Path) -> dict[str, Path]:
    """Move the staged outputs into ``out_dir`` (clean.parquet last), then remove and release the staging directory.

    The renames run under ``OUT/.trainguard.lock``: two runs publishing to one directory at once each leave a
    complete set, one after the other.
    """
    placed: dict[str, Path] = {}
    with _out_dir_lock(out_dir):
        (out_dir / "clean.parquet").unlink(missing_ok=True)
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
    release_staging(staging)
    return placed


def _forget_removed() -> None:
    """Close the locks of staging directories this process removed without :func:`release_staging`."""
    with _held_guard:
        gone = [p for p in _held if not os.path.isdir(p)]
        fds = [_held.pop(p) for p in gone]
    for fd in fds:
        os.close(fd)


def new_staging(out_dir: Path) -> Path:
    """A fresh hidden staging directory inside ``out_dir`` (same filesystem, so renames are atomic), locked.

    The lock is held until :func:`publish` or :func:`release_staging` (or this process's death), so a concurrent
    run's :func:`cleanup_stale_staging` leaves the directory alone.
    """
    _forget_removed()
    with _out_dir_lock(out_dir):
        path = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=out_dir))
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new directory: nobody else can hold it
        except BaseException:
            os.close(fd)
            shutil.rmtree(path, ignore_errors=True)
            raise
        with _held_guard:
            _held[os.path.abspath(path)] = fd
    return path


def release_staging(staging: Path) -> None:
    """Remove ``staging`` (if still there) and release its lock; idempotent. For the end of every run."""
    shutil.rmtree(staging, ignore_errors=True)
    with _held_guard:
        fd = _held.pop(os.path.abspath(staging), None)
    if fd is not None:
        os.close(fd)


def cleanup_stale_staging(out_dir: Path) -> None:
    """Remove staging directories left behind by crashed runs (their files were never approved).

    A directory is removed only when its lock can be taken without waiting: the staging of a live run, in this
    process or another, is kept.
    """
    if not out_dir.is_dir():
        return
    with _out_dir_lock(out_dir):
        for p in sorted(out_dir.glob(_STAGING_PREFIX + "*")):
            try:
                fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            except OSError:  # gone meanwhile, or not a directory
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # a live run's staging
                    continue
                shutil.rmtree(p, ignore_errors=True)
            finally:
                os.close(fd)
