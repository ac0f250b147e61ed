"""The reference of an ingest run (internal to ``flows``): ``--reference``, else the source's recent approved data.

The newest approved set alone when it holds ``min_reference_rows(fp_budget)`` rows (read in place; the flow checks
its bytes again before it publishes). Else it and older approved sets of the source, newest first, joined into one
Parquet file in the run's work directory that holds exactly that many rows (the set that passes the need gives a
seeded sample of the rows still missing):

- every set joined is first copied into the work directory, hashed as it is copied, and only the copy is read, so
  the rows joined are the bytes that ``reference.parts`` names, whatever happens to the state directory meanwhile;
- columns are matched by name and put in the newest set's order; a column's type is its type in the newest set
  where it is not all-null (pyarrow's ``null`` type); numbers join numbers (every value is checked by the cast)
  and text joins text; the walk stops at a set whose columns or types differ (its message names them);
- the joined file is not kept: a re-run of an input judged against one rebuilds it from its ``parts`` and checks the
  recorded digest, and its drift profile is built in the work directory, so the state directory does not grow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import _preload
from pipelines._uris import redact_uri
from pipelines.errors import PipelineInputError

__all__ = ["resolve_reference", "merge_schema", "conform", "read_part", "copy_verified", "REFERENCE_MAX_ENTRIES"]

# At most REFERENCE_MAX_ENTRIES older approved entries are searched for a joined reference.
REFERENCE_MAX_ENTRIES = 1_000
_SEED = 0  # the seed of the sample drawn from the last set joined (fixed: a rebuild draws the same rows)


def resolve_reference(ctx: dict[str, Any], state: Any, reference: str | None, work: Path) -> dict[str, Any] | None:
    """The reference data: ``--reference``, else the source's recent approved data found through the ledger:
    the newest approved set alone when it holds the rows the scorer needs (``min_reference_rows(fp_budget)``),
    else it and older approved sets, newest first, joined into exactly that many rows (``_union_reference``).

    Returns ``{"uri", "path", "digest", "origin"}``; a joined reference adds ``"parts"`` (``[{"index", "digest",
    "rows"}]``, the approved sets in the file's order, oldest first) and ``"profile"`` (where its drift profile is
    built, in the work dir), and its ``uri`` is None (no file is kept). None when the source has no approved data.
    Re-running the input of the newest approved entry uses what that entry was judged against (idempotent). Too
    few approved rows is ``scoring:small_reference`` (exit 2).
    """
    from pipelines import tasks

    config = ctx["config"]
    if reference:
        # relative allowed_roots are taken from the working directory, as the flow does for the batch
        staged = tasks.stage_or_refuse(reference, str(work / "ref-input"), config.allowed_roots, os.getcwd(),
                                       what="the reference ")
        return {"uri": redact_uri(reference), "path": staged["path"], "digest": staged["digest"],
                "origin": "argument"}
    from provenance.ledger import open_ledger

    with open_ledger(ctx["ledger_url"]) as ledger:
        record = ledger.latest_approved(ctx["source"])
        if record is None:
            return None
        pred = record.statement["predicate"]
        if (pred.get("source") or {}).get("digest") == ctx["digest"]:
            ref = pred.get("reference")  # re-running an approved input: use what it was judged against (idempotent)
            if not ref or not ref.get("digest"):
                return None
            recorded = _recorded_reference(ctx, state, ledger, ref, record, work)
            return dict(recorded, anchor_record=ref.get("anchor"))  # judged against the same anchor window again
        data = pred.get("approved_data")
        if not data or not data.get("digest"):
            return None
        looked = (state.approved_path(data["digest"]), Path(str(data.get("uri") or "")))
        path = _verified(data["digest"], *looked)
        if path is None:
            raise _unavailable(ctx, data, record, *looked)
        _preload.wait()  # the scorer's module may be importing on the preload thread
        from checks.scoring import min_reference_rows

        need = min_reference_rows(config.fp_budget)
        if pq.ParquetFile(path).metadata.num_rows >= need:  # the newest approved set is enough: it alone, as ever
            return {"uri": data.get("uri"), "path": str(path), "digest": data["digest"], "origin": "ledger"}
        return _union_reference(ctx, state, work, ledger, record, need)


def _verified(digest: str, *candidates: Path) -> Path | None:
    """The first candidate that is a file holding exactly the bytes of ``digest`` (read in place later: the flow
    checks such a file again before it publishes)."""
    from provenance.hashing import file_digest

    for path in candidates:
        if path.is_file() and file_digest(path) == digest:
            return path
    return None


def _copy_hashed(src: Path, dest: Path) -> str | None:
    """Copy ``src`` to ``dest`` and return the digest of the bytes copied (None when ``src`` is not a regular file
    that can be read; a FIFO is never waited on)."""
    from provenance.errors import ProvenanceInputError
    from provenance.hashing import copy_with_digest

    try:
        return copy_with_digest(src, dest)
    except ProvenanceInputError:
        return None


def copy_verified(digest: str, dest: Path, *candidates: Path) -> Path | None:
    """``dest``, a private copy of the first candidate holding exactly the bytes of ``digest`` (hashed as copied,
    so what is read from ``dest`` afterwards is what the digest names), or None when no candidate holds them."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    for path in candidates:
        if path.is_file() and _copy_hashed(path, tmp) == digest:
            os.replace(tmp, dest)
            return dest
    tmp.unlink(missing_ok=True)
    return None


def _unavailable(ctx: dict[str, Any], data: dict[str, Any], record: Any, *looked: Path) -> PipelineInputError:
    """``reference:unavailable`` for approved data found nowhere with its bytes (naming the files that hold others)."""
    other = [str(p) for p in looked if p.is_file()]
    why = f" ({', '.join(other)} hold{'s' if len(other) == 1 else ''} other bytes)" if other else ""
    return PipelineInputError(
        "reference:unavailable",
        f"the approved reference {data['digest']} of source {ctx['source']!r} (ledger entry {record.index}) is "
        f"not in the state directory or at {data.get('uri')}{why}; pass --reference",
    )


def _part_copy(ctx: dict[str, Any], state: Any, data: dict[str, Any], record: Any, work: Path) -> Path:
    """A checked copy, in the work dir, of the approved data an entry names (from the state directory or its URI)."""
    digest = data["digest"]
    dest = work / "reference-parts" / (digest.removeprefix("sha256:") + ".parquet")
    looked = (state.approved_path(digest), Path(str(data.get("uri") or "")))
    found = copy_verified(digest, dest, *looked)
    if found is None:
        raise _unavailable(ctx, data, record, *looked)
    return found


def _older_approved(ledger: Any, source: str, below: int) -> Iterator[Any]:
    """The source's approved entries before entry ``below``, newest first, each inclusion-proved."""
    from provenance.errors import LedgerIntegrityError

    limit, last = 16, below
    while True:
        rows = ledger.log(source=source, verdict="approved", limit=limit)  # newest first; a page grows
        for idx, _ in (row for row in rows if row[0] < last):
            rec = ledger.record(idx)
            if rec.verdict != "approved" or rec.source != source:
                raise LedgerIntegrityError(
                    "ledger:bad_index", "the source index points at a different entry", index=idx,
                    expected=f"approved entry of {source}", found=f"{rec.verdict} entry of {rec.source}")
            last = idx
            yield rec
        if len(rows) < limit:
            return
        limit *= 4


def _candidates(ctx: dict[str, Any], ledger: Any, newest: Any) -> Iterator[tuple[Any, dict[str, Any]] | None]:
    """(entry, approved_data) of the sets a joined reference may take, newest first: the newest approved set, then
    older ones not taken yet (not a re-run's same data, not this very batch approved before); None once
    ``REFERENCE_MAX_ENTRIES`` older entries were searched."""
    pred = newest.statement["predicate"]
    yield newest, pred["approved_data"]
    seen = {pred["approved_data"]["digest"], (pred.get("source") or {}).get("digest"), ctx["digest"]}
    for n, rec in enumerate(_older_approved(ledger, ctx["source"], newest.index)):
        if n >= REFERENCE_MAX_ENTRIES:
            yield None
            return
        p = rec.statement["predicate"]
        data, src = p.get("approved_data") or {}, (p.get("source") or {}).get("digest")
        if not data.get("digest") or data["digest"] in seen or (src is not None and src in seen):
            continue
        seen.update((data["digest"], src))
        yield rec, data


def _union_reference(ctx: dict[str, Any], state: Any, work: Path, ledger: Any, newest: Any,
                     need: int) -> dict[str, Any]:
    """The newest approved set is too small: it and older approved sets of the source (newest first), exactly
    ``need`` rows, joined into one Parquet file in the work dir. A set with no rows adds nothing (not even its
    columns)."""
    tables: list[pa.Table] = []  # newest first, each conformed to the schema of the sets before it
    parts: list[dict[str, Any]] = []
    schema: pa.Schema | None = None
    total, stop = 0, "there is no older approved data"
    for item in _candidates(ctx, ledger, newest):
        if item is None:
            stop = f"the {REFERENCE_MAX_ENTRIES} approved entries before them hold no more"
            break
        rec, data = item
        path = _part_copy(ctx, state, data, rec, work)
        try:
            have = pq.read_schema(path)
            merged = have if schema is None else merge_schema(schema, have)
            table = conform(read_part(path, need - total), merged)
        except ValueError as exc:  # other columns: the contract changed there, so older data is not comparable
            stop = f"the approved data of ledger entry {rec.index} before them does not match ({exc})"
            break
        if table.num_rows:
            schema = merged
            tables.append(table)
            parts.append({"index": rec.index, "digest": data["digest"], "rows": table.num_rows})
            total += table.num_rows
        if total >= need:
            break
    if total < need:
        which = ", ".join(str(i) for i in sorted(p["index"] for p in parts))
        taken = f" (ledger entr{'ies' if len(parts) > 1 else 'y'} {which})" if parts else ""
        raise PipelineInputError(
            "scoring:small_reference",
            f"source {ctx['source']!r} has {total} approved rows to use as its reference{taken} and {stop}; at least "
            f"{need} are needed to hold a false-positive budget of {ctx['config'].fp_budget:g}: pass --reference "
            f"with a larger trusted file (at least {need} rows)",
        )
    return _written(joined(tables), work, list(reversed(parts)))  # file order: oldest first, as they came


def _written(table: pa.Table, work: Path, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Write a joined reference into the work dir, always with the same settings (not the config's
    ``partition_rows``), so the same parts give the same bytes."""
    from provenance.hashing import file_digest

    path = work / "reference-union.parquet"
    pq.write_table(table, path, compression="zstd", row_group_size=131_072)
    digest = file_digest(path)
    return {"uri": None, "path": str(path), "digest": digest, "origin": "ledger", "parts": parts,
            "profile": str(work / "profiles" / (digest.removeprefix("sha256:") + ".json"))}


def _recorded_reference(ctx: dict[str, Any], state: Any, ledger: Any, ref: dict[str, Any], record: Any,
                        work: Path) -> dict[str, Any]:
    """The reference an approved entry was judged against: its file, or rebuilt from the approved sets it joined
    (their digests, then the rebuilt file's digest, checked)."""
    digest, parts = ref["digest"], ref.get("parts") or []
    if not parts:
        found = _verified(digest, state.approved_path(digest), Path(str(ref.get("uri") or "")))
        if found is not None:
            return {"uri": ref.get("uri"), "path": str(found), "digest": digest, "origin": "ledger"}
    else:
        union = _rebuilt(state, ledger, parts, work)
        if union is not None and union["digest"] == digest:
            return dict(union, uri=ref.get("uri"))
    raise PipelineInputError(
        "reference:unavailable",
        f"the approved reference {digest} of source {ctx['source']!r} (ledger entry {record.index}) is not in "
        f"the state directory or at {ref.get('uri')}"
        + (", and its approved parts do not rebuild it" if parts else "") + "; pass --reference",
    )


def _rebuilt(state: Any, ledger: Any, parts: list[dict[str, Any]], work: Path) -> dict[str, Any] | None:
    """A joined reference rebuilt from its recorded parts (None when one is missing or they do not join)."""
    from provenance.errors import ProvenanceInputError

    tables = []
    for part in reversed(parts):  # newest first, as the walk took them
        digest = str(part["digest"])
        candidates = [state.approved_path(digest)]
        try:  # the approved data's URI that the part's entry names, as the walk may have found it there
            data = ledger.record(int(part["index"])).statement["predicate"].get("approved_data") or {}
            if data.get("digest") == digest and data.get("uri"):
                candidates.append(Path(str(data["uri"])))
        except ProvenanceInputError:
            pass
        path = copy_verified(digest, work / "reference-parts" / (digest.removeprefix("sha256:") + ".parquet"),
                              *candidates)
        if path is None:
            return None
        tables.append(read_part(path, int(part["rows"])))
    try:
        table = joined(tables)
    except ValueError:
        return None
    return _written(table, work, parts)


# --- joining approved sets ----------------------------------------------------------------------------------

def _fits(have: pa.DataType, want: pa.DataType) -> bool:
    """A column of type ``have`` may join one of type ``want``: the same type, text to text (``string`` /
    ``large_string``), or numbers to numbers (the cast then checks every value, so nothing is truncated)."""
    kinds = ((pa.types.is_integer, pa.types.is_floating), (pa.types.is_string, pa.types.is_large_string))
    return have == want or any(any(f(have) for f in kind) and any(f(want) for f in kind) for kind in kinds)


def _named(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def merge_schema(newer: pa.Schema, older: pa.Schema) -> pa.Schema:
    """The schema of a reference joining an older set (``older``) to the newer sets (``newer``): the newer columns
    in their order, matched by name; a column all-null so far (type ``null``) takes the older set's type. ValueError
    names the columns one has and the other lacks, or a column whose types do not join (``_fits``)."""
    names, have = newer.names, older.names
    positional = names == have  # the same names in the same order (repeated names are matched by position)
    if not positional:
        missing = [n for n in names if n not in have]
        extra = [n for n in have if n not in names]
        if missing or extra:
            why = [f"no column{'s' if len(missing) > 1 else ''} {_named(missing)}"] if missing else []
            why += [f"{'extra columns' if len(extra) > 1 else 'an extra column'} {_named(extra)}"] if extra else []
            raise ValueError(f"it has {' and '.join(why)}")
        if len(set(names)) < len(names) or len(set(have)) < len(have):
            raise ValueError(f"its columns repeat a name in another order ({_named(have)})")
    out = newer
    for i, field in enumerate(newer):
        got = older.field(i if positional else have.index(field.name)).type
        if pa.types.is_null(field.type):
            out = out.set(i, field.with_type(got))
        elif not (pa.types.is_null(got) or _fits(got, field.type)):
            raise ValueError(f"its column {field.name!r} is {got}, not {field.type}")
    return out


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns, order and types (every value checked by the cast; ValueError if one
    does not fit)."""
    if table.schema.names != schema.names:
        table = table.select(schema.names)
    try:
        return table.cast(schema, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise ValueError(f"its values do not fit the newer approved data's types ({exc})") from None


def joined(tables: list[pa.Table]) -> pa.Table:
    """Approved sets (newest first) as one table in file order (oldest first), with the schema ``merge_schema``
    gives them all: the build and a rebuild from the recorded parts give the same table."""
    schema = tables[0].schema
    for table in tables[1:]:
        schema = merge_schema(schema, table.schema)
    return pa.concat_tables([conform(t, schema) for t in reversed(tables)])


def read_part(path: str | Path, rows: int, seed: int = _SEED) -> pa.Table:
    """``rows`` rows of approved Parquet data: every row, or when ``rows`` is fewer, a uniform sample drawn with
    ``seed`` (in file order, read one row group at a time, so the same file and count give the same rows)."""
    import numpy as np

    from pipelines._rows import read_rows

    pf = pq.ParquetFile(path)
    total = pf.metadata.num_rows
    if rows >= total:
        return pf.read()
    picks = np.sort(np.random.default_rng(seed).choice(total, size=max(rows, 0), replace=False))
    return read_rows(pf, picks)
