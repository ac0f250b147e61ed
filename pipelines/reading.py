"""Reading datasets safely: allowed roots, magic-byte sniffing, fsspec staging, chunked pyarrow reads.

Nothing here ever unpickles or executes input: a pickle, an executable or an archive offered as data is refused
by its first bytes. Every failure is a ``PipelineInputError`` with a reason code and one sentence naming the file.

Example::

    >>> from pipelines.reading import sniff_format
    >>> sniff_format("data_samples/credit/batch_clean.parquet")
    'parquet'
"""

from __future__ import annotations

import codecs
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from pipelines._text_types import csv_column_types, json_schema
from pipelines.errors import PipelineInputError

__all__ = ["is_remote", "local_path", "check_allowed", "stage_remote", "sniff_format", "read_to_parquet",
           "parquet_partitions_fit"]

_CSV_EXT = {".csv", ".tsv", ".txt"}
_JSON_EXT = {".jsonl", ".ndjson", ".json"}
_PARQUET_EXT = {".parquet", ".pq"}
# (magic prefix, what it is). Pickles of protocol 2-5 start with PROTO (0x80) and the protocol number.
_REFUSED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x80\x02", "a Python pickle"), (b"\x80\x03", "a Python pickle"), (b"\x80\x04", "a Python pickle"),
    (b"\x80\x05", "a Python pickle"), (b"(dp0", "a Python pickle"), (b"(lp0", "a Python pickle"),
    (b"ccopy_reg", "a Python pickle"), (b"c__builtin__", "a Python pickle"), (b"cnumpy", "a Python pickle"),
    (b"\x93NUMPY", "a NumPy .npy file (may hold pickled objects)"),
    (b"PK\x03\x04", "a ZIP archive (e.g. .npz, PyTorch or joblib files may hold pickles)"),
    (b"\x7fELF", "an ELF executable"), (b"MZ", "a Windows executable"), (b"#!", "a script"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"), (b"\x89HDF", "an HDF5 file"),
    (b"\x1f\x8b", "a gzip-compressed file (decompress it first)"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file (decompress it first)"),
)


def is_remote(uri: str) -> bool:
    """True for fsspec URLs other than ``file://`` (they are staged to a local file first)."""
    scheme = urlparse(uri).scheme
    return len(scheme) > 1 and scheme != "file"


def local_path(uri: str) -> Path:
    """The local path of a plain path or a ``file://`` URL."""
    if uri.startswith("file://"):
        return Path(urlparse(uri).path)
    return Path(uri)


def _norm_root(root: str, base: Path) -> str:
    if is_remote(root):
        return root.rstrip("/") + "/"
    p = local_path(root)
    if not p.is_absolute():
        p = base / p
    return os.path.realpath(p).rstrip(os.sep) + os.sep


def check_allowed(uri: str, allowed_roots: tuple[str, ...], *, base: Path | None = None) -> None:
    """Refuse ``uri`` unless it lies under one of ``allowed_roots`` (no roots configured = everything allowed).

    Local paths are compared after resolving symlinks and ``..``; relative roots are taken from ``base``.
    """
    if not allowed_roots:
        return
    base = base or Path.cwd()
    roots = [_norm_root(r, base) for r in allowed_roots]
    if is_remote(uri):
        target = uri
    else:
        target = os.path.realpath(local_path(uri))
    if not any((target + ("" if is_remote(uri) else os.sep)).startswith(r) for r in roots):
        raise PipelineInputError(
            "data:outside_allowed_roots",
            f"{uri} is outside the allowed roots ({', '.join(allowed_roots)}) set in the config",
        )


def stage_remote(uri: str, dest_dir: Path) -> Path:
    """Copy an fsspec URL to a local file under ``dest_dir`` (streamed) and return its path."""
    import fsspec

    name = Path(urlparse(uri).path).name or "input"
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / name
    tmp = dest.with_name(dest.name + ".part")
    try:
        with fsspec.open(uri, "rb") as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)  # type: ignore[misc]
    except FileNotFoundError:
        tmp.unlink(missing_ok=True)
        raise PipelineInputError("data:missing_file", f"{uri} does not exist") from None
    os.replace(tmp, dest)
    return dest


def sniff_format(path: str | Path, *, uri: str | None = None) -> str:
    """``csv``, ``json`` or ``parquet`` from the extension, checked against the file's first bytes."""
    p = Path(path)
    shown = uri or str(p)
    if not p.exists():
        raise PipelineInputError("data:missing_file", f"{shown} does not exist")
    if p.is_dir():
        raise PipelineInputError("data:not_a_file", f"{shown} is a directory, not a data file")
    size = p.stat().st_size
    if size == 0:
        raise PipelineInputError("data:empty_file", f"{shown} is empty (0 bytes)")
    with open(p, "rb") as fh:
        head = fh.read(4096)
        fh.seek(max(0, size - 4))
        tail = fh.read(4)
    for magic, what in _REFUSED_MAGIC:
        if head.startswith(magic):
            raise PipelineInputError(
                "data:executable_format", f"{shown} is {what}, not data; refused without opening it"
            )
    suffix = p.suffix.lower()
    if head.startswith(b"PAR1") or suffix in _PARQUET_EXT:
        if not (head.startswith(b"PAR1") and tail == b"PAR1"):
            raise PipelineInputError("data:unreadable", f"{shown} is not a complete Parquet file")
        return "parquet"
    if b"\x00" in head:
        raise PipelineInputError("data:binary", f"{shown} contains binary bytes; expected CSV or JSON lines text")
    if suffix in _JSON_EXT:
        return "json"
    if suffix in _CSV_EXT or suffix == "":
        return "csv"
    raise PipelineInputError(
        "data:unknown_format", f"{shown} has extension {suffix!r}; expected .csv, .tsv, .parquet or .jsonl"
    )


def _check_utf8(path: Path, shown: str) -> None:
    """Stream the file through a strict UTF-8 decoder; name the first line that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    line = 1
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                line += block[: exc.start].count(b"\n")
                raise PipelineInputError(
                    "data:encoding", f"{shown} is not UTF-8 (byte 0x{block[exc.start]:02x} on line {line})"
                ) from None
            line += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise PipelineInputError("data:encoding", f"{shown} ends inside a UTF-8 character") from None


def _batches(path: Path, fmt: str, shown: str, block_bytes: int, *, whole_file_types: bool = False,
             ) -> tuple[pa.Schema, list[pa.RecordBatch] | None, object]:
    """(schema, all batches when read at once, or a reader to iterate).

    A file larger than one block is streamed, its types taken from the first block; with ``whole_file_types``
    the types come from a pass over the whole file (``_text_types``), and CSV fields may span lines.
    """
    big = path.stat().st_size > block_bytes
    if fmt == "parquet":
        pf = pq.ParquetFile(path)
        return pf.schema_arrow, None, pf.iter_batches(batch_size=65_536)
    if fmt == "csv":
        delim = "\t" if path.suffix.lower() == ".tsv" else ","
        parse = pacsv.ParseOptions(delimiter=delim, newlines_in_values=whole_file_types)
        if not big:
            table = pacsv.read_csv(path, parse_options=parse)
            return table.schema, table.to_batches(), None
        read = pacsv.ReadOptions(block_size=block_bytes)
        convert = pacsv.ConvertOptions()
        if whole_file_types:
            first = pacsv.open_csv(path, read_options=read, parse_options=parse).schema
            convert = pacsv.ConvertOptions(column_types=csv_column_types(path, parse, block_bytes, first))
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        return reader.schema, None, reader
    if not big:
        table = pajson.read_json(path)
        return table.schema, table.to_batches(), None
    jparse = pajson.ParseOptions(explicit_schema=json_schema(path, block_bytes)) if whole_file_types else None
    jreader = pajson.open_json(path, read_options=pajson.ReadOptions(block_size=block_bytes), parse_options=jparse)
    return jreader.schema, None, jreader


def read_to_parquet(path: Path, dest: Path, *, fmt: str, uri: str, row_group_rows: int,
                    block_bytes: int = 128 << 20) -> tuple[int, list[str]]:
    """Read ``path`` (CSV, JSON lines or Parquet) and write it to ``dest`` as Parquet, block by block.

    Returns (rows, column names). Memory is bounded by one block for large files; ``dest`` is written to a
    temporary name and renamed, so it is either complete or absent.
    """
    if fmt in ("csv", "json"):
        _check_utf8(path, uri)
    # a valid large text file can fail only because a later block does not fit the first block's types: read it
    # once more with types taken from the whole file
    retry = fmt in ("csv", "json") and path.stat().st_size > block_bytes
    try:
        return _to_parquet(path, dest, fmt=fmt, uri=uri, row_group_rows=row_group_rows, block_bytes=block_bytes,
                           whole_file_types=False, quiet=retry)
    except _TypesDiffer:
        return _to_parquet(path, dest, fmt=fmt, uri=uri, row_group_rows=row_group_rows, block_bytes=block_bytes,
                           whole_file_types=True, quiet=False)


class _TypesDiffer(Exception):
    """A streamed read failed in a way a read with whole-file types may not."""


def _to_parquet(path: Path, dest: Path, *, fmt: str, uri: str, row_group_rows: int, block_bytes: int,
                whole_file_types: bool, quiet: bool) -> tuple[int, list[str]]:
    tmp = dest.with_name(dest.name + ".part")
    rows = 0
    try:
        schema, batches, reader = _batches(path, fmt, uri, block_bytes, whole_file_types=whole_file_types)
        _refuse_binary(schema, uri)
        with pq.ParquetWriter(tmp, schema) as writer:
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            for batch in batches if batches is not None else reader:  # type: ignore[union-attr, attr-defined]
                pending.append(batch)
                pending_rows += batch.num_rows
                while pending_rows >= row_group_rows:
                    table = pa.Table.from_batches(pending, schema=schema)
                    writer.write_table(table.slice(0, row_group_rows), row_group_size=row_group_rows)
                    rest = table.slice(row_group_rows)
                    pending, pending_rows = rest.to_batches(), rest.num_rows
                rows += batch.num_rows
            if pending_rows:
                writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=row_group_rows)
    except PipelineInputError:
        tmp.unlink(missing_ok=True)
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        if quiet and isinstance(exc, pa.ArrowInvalid):
            raise _TypesDiffer from None
        raise PipelineInputError(_code(fmt, exc), f"{uri} cannot be read as {fmt.upper()}: {_first_line(exc)}") \
            from None
    if rows == 0:
        tmp.unlink(missing_ok=True)
        raise PipelineInputError("data:no_rows", f"{uri} has no data rows")
    os.replace(tmp, dest)
    return rows, list(schema.names)


def parquet_partitions_fit(path: Path, uri: str, max_rows: int) -> tuple[int, list[str]] | None:
    """(rows, columns) when a Parquet file can be scored as it is (every row group at most ``max_rows`` rows,
    text columns only), else None (it is rewritten by ``read_to_parquet``)."""
    try:
        pf = pq.ParquetFile(path)
        meta = pf.metadata
        schema = pf.schema_arrow
    except (pa.ArrowInvalid, OSError) as exc:
        raise PipelineInputError("data:unreadable", f"{uri} cannot be read as PARQUET: {_first_line(exc)}") from None
    _refuse_binary(schema, uri)
    if meta.num_rows == 0:
        raise PipelineInputError("data:no_rows", f"{uri} has no data rows")
    if any(meta.row_group(i).num_rows > max_rows for i in range(meta.num_row_groups)):
        return None
    if any(meta.row_group(i).num_rows == 0 for i in range(meta.num_row_groups)):
        return None
    return int(meta.num_rows), list(schema.names)


def _refuse_binary(schema: pa.Schema, uri: str) -> None:
    """Refuse binary (non-UTF-8) columns and a header that names one column twice."""
    seen: set[str] = set()
    for name in schema.names:
        if name in seen:
            raise PipelineInputError("data:duplicate_column", f"{uri} has more than one column named {name!r}")
        seen.add(name)
    for fld in schema:
        if pa.types.is_binary(fld.type) or pa.types.is_large_binary(fld.type):
            raise PipelineInputError("data:encoding", f"{uri}: column {fld.name!r} is not valid UTF-8 text")


def _code(fmt: str, exc: Exception) -> str:
    text = str(exc)
    if "Empty CSV file" in text or "Empty file" in text:
        return "data:empty_file"
    return "data:malformed_csv" if fmt == "csv" else "data:unreadable"


def _first_line(exc: Exception) -> str:
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."
