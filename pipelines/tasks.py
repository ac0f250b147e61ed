"""The Prefect tasks of the ingest flow. They pass paths and digests between each other, never DataFrames.

Each task reads its inputs from files in the run's work directory and writes its result there. I/O tasks retry
on transient errors (``OSError`` and the like) but never on trainguard's own errors, which are final (a pickle
stays a pickle on the second try).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import task

from pipelines import _preload, reading
from pipelines._memory import release_freed_memory
from pipelines.errors import PipelineConfigError, PipelineInputError
from reasons.errors import TrainguardError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["stage_input", "read_batch", "check_contract", "check_drift", "fit_scorer", "score_partition",
           "finalize_scores", "load_frame", "partition_count"]


def _retry_unless_ours(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient failures only; trainguard's errors (checks, pipelines, provenance: any
    ``TrainguardError``) are final, decided by class."""
    try:
        state.result()
    except (TrainguardError, ImportError):  # a missing package (an fsspec backend) stays missing on the second try
        return False
    except Exception:  # noqa: BLE001 - anything else (OSError and the like) may be transient
        return True
    return True




def load_frame(path: str | Path) -> pd.DataFrame:
    """A staged Parquet file as a DataFrame whose index is the 0-based source row."""
    df = pq.read_table(path).to_pandas()
    df.index = pd.RangeIndex(len(df))  # a pandas index stored in the file is not the row identity
    return df


def _sample_frame(path: str | Path, rows_of: Callable[[int, int | None], np.ndarray], seed: int) -> pd.DataFrame:
    """The staged file's rows at ``rows_of(total, seed)`` (sorted positions that ``checks`` draws, e.g.
    ``sources.shift_sample_rows``), read one row group at a time; the index is each row's 0-based position."""
    from pipelines._rows import read_rows

    pf = pq.ParquetFile(path)
    positions = rows_of(pf.metadata.num_rows, seed)
    df = read_rows(pf, positions).to_pandas()
    df.index = pd.Index(positions, dtype="int64")
    return df


def _columns(path: str | Path, names: list[str | None]) -> pd.DataFrame:
    """Only the named columns of a staged Parquet file (every row; no columns at all when none is named)."""
    wanted = [c for c in dict.fromkeys(names) if c is not None]
    pf = pq.ParquetFile(path)
    if wanted:
        df = pf.read(columns=wanted).to_pandas()
    else:
        df = pd.DataFrame(index=pd.RangeIndex(pf.metadata.num_rows))
    df.index = pd.RangeIndex(len(df))
    return df


def _schema_frame(path: str | Path) -> pd.DataFrame:
    """A zero-row frame with the staged file's columns and dtypes."""
    return pq.read_schema(path).empty_table().to_pandas()


def partition_count(batch_path: str) -> int:
    """Number of scoring partitions (= row groups of the staged batch)."""
    return int(pq.ParquetFile(batch_path).metadata.num_row_groups)


@task(name="stage-input", retries=2, retry_delay_seconds=0.5, retry_condition_fn=_retry_unless_ours, persist_result=False)
def stage_input(uri: str, work_dir: str, allowed_roots: tuple[str, ...], base_dir: str) -> dict[str, Any]:
    """Check the allowed roots, copy an fsspec URL to a local file, and digest the bytes (only of a regular file:
    a FIFO or a device would block or never end). The returned ``uri`` has any credentials redacted."""
    from provenance.hashing import file_digest

    reading.check_allowed(uri, allowed_roots, base=Path(base_dir))
    if reading.is_remote(uri):
        path = reading.stage_remote(uri, Path(work_dir) / "input")
    else:
        path = reading.local_path(uri)
        reading.require_regular_file(path, uri)
    return {"uri": reading.redact_uri(uri), "path": str(path), "digest": file_digest(path),
            "bytes": path.stat().st_size}


def stage_or_refuse(uri: str, work_dir: str, allowed_roots: tuple[str, ...], base_dir: str,
                    what: str = "") -> dict[str, Any]:
    """``stage_input`` with what is left after its retries said in one line: a full or read-only local disk is
    ``config:out_unwritable``, anything else (a refused connection, a denied permission) ``data:unreachable``."""
    import errno

    from pipelines._uris import scrub, shown

    try:
        return dict(stage_input(uri, work_dir, allowed_roots, base_dir))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise PipelineConfigError("config:out_unwritable", f"cannot stage {what}{shown(uri)} under "
                                      f"{shown(work_dir)}: {exc.strerror}") from exc
        why = scrub(f"{type(exc).__name__}: {exc}", uri)
        raise PipelineInputError("data:unreachable", f"cannot read {what}{shown(uri)}: {why}") from exc


def check_unchanged(path: str, digest: str, uri: str) -> None:
    """Fail closed when the source file's bytes are no longer the ones digested at the start of the run: the
    flow reads a local file several times (in place when it is Parquet), so a file replaced mid-run would
    put rows that were never checked into the outputs under the digest of other bytes."""
    from provenance.errors import ProvenanceInputError
    from provenance.hashing import file_digest

    try:
        now = file_digest(Path(path))
    except (ProvenanceInputError, OSError):
        raise PipelineInputError("data:changed_during_ingest",
                                 f"{uri} was removed or became unreadable while it was being ingested; nothing "
                                 "from this run is published: ingest it again") from None
    if now != digest:
        raise PipelineInputError("data:changed_during_ingest",
                                 f"{uri} changed while it was being ingested (expected {digest}, got {now}); "
                                 "nothing from this run is published: ingest it again")


@task(name="read", retries=2, retry_delay_seconds=0.5, retry_condition_fn=_retry_unless_ours, persist_result=False)
def read_batch(path: str, uri: str, dest: str, partition_rows: int, block_bytes: int) -> dict[str, Any]:
    """Sniff the format (refusing executables) and write the data as Parquet with one row group per partition."""
    fmt = reading.sniff_format(path, uri=uri)
    if fmt == "parquet":
        reused = reading.parquet_partitions_fit(Path(path), uri, partition_rows)
        if reused is not None:  # already Parquet with small enough row groups: partition it in place, no copy
            return {"path": str(path), "rows": reused[0], "columns": reused[1], "format": fmt}
    rows, columns = reading.read_to_parquet(Path(path), Path(dest), fmt=fmt, uri=uri,
                                            row_group_rows=partition_rows, block_bytes=block_bytes)
    return {"path": dest, "rows": rows, "columns": columns, "format": fmt}


@task(name="contract", persist_result=False)
def check_contract(batch_path: str, contract_text: str | None, reference_path: str | None,
                   label_column: str | None, work_dir: str, source_column: str | None = None) -> dict[str, Any]:
    """Validate the batch against the source's contract (inferring one when the source has none yet).

    The source column is not part of the contract: which sources send rows changes from batch to batch, and
    the source detector judges them (a new source name is not a broken contract).
    """
    _preload.wait()
    from checks.contract import Contract, infer_contract, read_chunks, validate_chunks

    def without_source(df: pd.DataFrame) -> pd.DataFrame:
        return df.drop(columns=[source_column]) if source_column is not None and source_column in df.columns else df

    if contract_text is not None:
        contract, origin = Contract.from_toml(contract_text), "state"
    elif reference_path is not None:
        contract = infer_contract(without_source(load_frame(reference_path)), label_column=label_column)
        origin = "reference"
    else:  # the source's first batch, with no reference: its contract is inferred from itself
        contract, origin = infer_contract(without_source(load_frame(batch_path)), label_column=label_column), "batch"
    # one row group at a time: memory holds one partition, not the batch
    result = validate_chunks(((offset, without_source(chunk)) for offset, chunk in read_chunks(batch_path)),
                             contract, columns=without_source(_schema_frame(batch_path)))
    work = Path(work_dir)
    (work / "contract.toml").write_text(contract.to_toml(), encoding="utf-8")
    failures = result.failures.copy()
    failures["row"] = failures["row"].astype("Int64")
    failures["value"] = failures["value"].map(lambda v: None if v is None or v is pd.NA else str(v))
    failures.to_parquet(work / "failures.parquet", index=False)
    reasons = result.row_reasons()
    pairs = [(int(r), str(code)) for r, codes in sorted(reasons.items()) for code in codes]
    pq.write_table(pa.table({"row": pa.array([p[0] for p in pairs], pa.int64()),
                             "reason": pa.array([p[1] for p in pairs], pa.string())}), work / "row_reasons.parquet")
    return {"digest": contract.digest(), "origin": origin, "toml": str(work / "contract.toml"),
            "failures": str(work / "failures.parquet"), "row_reasons": str(work / "row_reasons.parquet"),
            "success": bool(result.success)}


@task(name="drift", persist_result=False)
def check_drift(batch_path: str, reference_path: str, reference_digest: str, profile_path: str,
                work_dir: str, source_column: str | None = None) -> str:
    """Compare the batch with the reference profile (built once per reference digest and cached); the source
    column is not compared (its values are the batch's senders, not data)."""
    _preload.wait()
    from checks.drift import ReferenceProfile, compare, compare_columns

    prof = Path(profile_path)  # <profiles dir>/<hex of the digest>.json, the layout load_or_build keeps
    if prof.name != reference_digest.split(":")[-1] + ".json":
        raise ValueError(f"profile path {prof} is not named after the reference digest {reference_digest}")
    profile = ReferenceProfile.load_or_build(prof.parent, reference_digest, lambda: load_frame(reference_path))
    pf = pq.ParquetFile(batch_path)
    names = pf.schema_arrow.names
    if len(set(names)) == len(names):  # one column at a time: memory holds one column, not the batch
        result = compare_columns(
            lambda name: pf.read(columns=[name]).to_pandas().iloc[:, 0] if name in names else None, profile)
    else:
        result = compare(load_frame(batch_path), profile)
    out = Path(work_dir) / "drift.parquet"
    table = result.table
    if source_column is not None:
        table = table[table["column"] != source_column]
    table.to_parquet(out, index=False)
    return str(out)


@task(name="fit-scorer", persist_result=False)
def fit_scorer(batch_path: str, reference_path: str | None, params: dict[str, Any],
               work_dir: str) -> dict[str, Any]:
    """Fit the row scorer on the reference (or robustly on the batch itself) and save it in the work dir.

    Returns ``{"path": <pickled scorer>, "detectors": <its JSON-able description for the ledger>}``.
    """
    _preload.wait()
    from checks.detectors.density import pool_rows
    from checks.scoring import RowScorer
    from pipelines._record import describe_detectors

    reference = load_frame(reference_path) if reference_path else None
    if reference is not None:  # a column the batch lacks is the contract's finding (schema:missing_column, which
        # the policy rejects by default), not a reason to stop: the rows are scored on the columns both have
        present = set(pq.read_schema(batch_path).names)
        reference = reference.drop(columns=[c for c in reference.columns if c not in present])
    seed = int(params.get("random_state", 0))
    # with a reference the batch is checked for its columns, and a seeded sample of its rows is the density
    # detector's pool: the rows RowScorer.fit would draw from the whole batch, read a row group at a time
    batch = load_frame(batch_path) if reference is None else _sample_frame(batch_path, pool_rows, seed)
    scorer = RowScorer(**params).fit(reference, batch)
    out = Path(work_dir) / "scorer.pkl"
    # our own fitted object, written and read only inside this run's work dir; input data is never unpickled
    out.write_bytes(pickle.dumps(scorer, protocol=pickle.HIGHEST_PROTOCOL))
    return {"path": str(out), "detectors": describe_detectors(scorer)}


def _partition(batch_path: str, group: int) -> pd.DataFrame:
    pf = pq.ParquetFile(batch_path)
    start = sum(pf.metadata.row_group(i).num_rows for i in range(group))
    part = pf.read_row_group(group).to_pandas()
    part.index = pd.RangeIndex(start, start + len(part))
    return part


@task(name="score-partition", persist_result=False)
def score_partition(scorer_path: str, batch_path: str, group: int, work_dir: str) -> str:
    """Per-row detector scores of one partition (row group), written to the work dir."""
    scorer = pickle.loads(Path(scorer_path).read_bytes())  # noqa: S301 - our own artifact, see fit_scorer
    scores = scorer.score_partition(_partition(batch_path, group))
    out = Path(work_dir) / f"partition-{group:05d}.parquet"
    table = pa.Table.from_pandas(scores, preserve_index=True)  # what to_parquet(index=True) writes
    # dictionary pages only for text (a few distinct feature lists): building them for the float scores and
    # 64-bit hashes, nearly all distinct, took 60% of the write
    text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    pq.write_table(table, out, use_dictionary=text)
    return str(out)


@task(name="finalize-scores", persist_result=False)
def merge_row_reasons(contract_path: str | None, extra: dict[int, list[str]], work_dir: str) -> str:
    """The contract's row reasons plus ``extra`` ones (rows flagged by the anchor check), as one file."""
    rows: list[int] = []
    codes: list[str] = []
    if contract_path:
        rr = pq.read_table(contract_path).to_pydict()
        rows += [int(r) for r in rr["row"]]
        codes += [str(c) for c in rr["reason"]]
    for row, reasons in sorted(extra.items()):
        rows += [row] * len(reasons)
        codes += reasons
    out = Path(work_dir) / "row_reasons_all.parquet"
    pq.write_table(pa.table({"row": pa.array(rows, pa.int64()), "reason": pa.array(codes, pa.string())}), out)
    return str(out)


def finalize_scores(scorer_path: str, batch_path: str, partition_paths: list[str], row_reasons_path: str | None,
                    work_dir: str) -> str:
    """Batch-level detectors, combination, threshold and reasons: the scores.parquet table."""
    _preload.wait()
    from checks.partitions import PartitionFiles

    scorer = pickle.loads(Path(scorer_path).read_bytes())  # noqa: S301 - our own artifact, see fit_scorer
    parts = PartitionFiles(partition_paths)  # columns are read when finalize uses them, never all at once
    row_reasons: dict[int, list[str]] = {}
    if row_reasons_path:
        rr = pq.read_table(row_reasons_path).to_pydict()
        for r, code in zip(rr["row"], rr["reason"], strict=True):
            row_reasons.setdefault(int(r), []).append(str(code))
    sample = None
    if scorer.source_column is not None and "source" in scorer.detectors:
        from checks.detectors.sources import shift_sample_rows

        sample = _sample_frame(batch_path, shift_sample_rows, scorer.random_state)  # the source test's feature rows
    scores = scorer.finalize(_columns(batch_path, [scorer.label_column, scorer.source_column]), parts,
                             row_reasons=row_reasons or None, batch_sample=sample)
    release_freed_memory()
    from pipelines.outputs import write_scores

    label_type = None
    if scorer.label_column is not None:
        label_type = pq.read_schema(batch_path).field(scorer.label_column).type
    return str(write_scores(scores, Path(work_dir) / "scores.work.parquet", label_type))
