"""Reading datasets safely: allowed roots, magic-byte sniffing, fsspec staging, chunked pyarrow reads.

Nothing here ever unpickles or executes input: a pickle, an executable or an archive offered as data is refused
by its first bytes (a protocol 0/1 pickle by parsing its opcodes with ``pickletools``, which executes nothing).
Only regular files are read (a FIFO or a device would block or never end). Every failure is a
``PipelineInputError`` with a reason code and one line naming the file (credentials in a URL redacted, control
characters escaped).

Example::

    >>> from pipelines.reading import sniff_format
    >>> sniff_format("data_samples/credit/batch_clean.parquet")
    'parquet'
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
import stat
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from pipelines._magic import refused_as
from pipelines._text_types import csv_column_types, json_schema
from pipelines._uris import redact_uri, remote_inside, shown
from pipelines.errors import PipelineInputError

__all__ = ["is_remote", "local_path", "redact_uri", "shown", "check_allowed", "require_regular_file",
           "stage_remote", "sniff_format", "read_to_parquet", "parquet_partitions_fit"]

_CSV_EXT = {".csv", ".tsv", ".txt"}
_JSON_EXT = {".jsonl", ".ndjson", ".json"}
_PARQUET_EXT = {".parquet", ".pq"}
_HEAD = 4096  # bytes sniffed at the start of a file


_LOCAL_SCHEMES = ("file", "local")  # read in place, like a plain path (fsspec's "local" is the local disk too)


def is_remote(uri: str) -> bool:
    """True for fsspec URLs other than ``file://`` and ``local://`` (they are staged to a local file first)."""
    scheme = urlparse(uri).scheme
    return len(scheme) > 1 and scheme.lower() not in _LOCAL_SCHEMES


def local_path(uri: str) -> Path:
    """The local path of a plain path, a ``file://`` URL (percent-decoded, as RFC 8089 has it) or a ``local://``
    URL (taken as written, as fsspec does)."""
    scheme = urlparse(uri).scheme.lower()
    if scheme == "file" and uri[5:7] == "//":
        return Path(unquote(urlparse(uri).path))
    if scheme == "local" and uri[6:8] == "//":
        return Path(uri[8:])
    return Path(uri)


def _norm_root(root: str, base: Path) -> str:
    if is_remote(root):
        return root
    p = local_path(root)
    if not p.is_absolute():
        p = base / p
    return os.path.realpath(p).rstrip(os.sep) + os.sep


def check_allowed(uri: str, allowed_roots: tuple[str, ...], *, base: Path | None = None) -> None:
    """Refuse ``uri`` unless it lies under one of ``allowed_roots`` (no roots configured = everything allowed).

    Local paths are compared after resolving symlinks and ``..``; relative roots are taken from ``base`` (default:
    the working directory; ``pipelines.config`` makes a config's relative roots absolute from there when it parses
    them, so they mean what the relative paths on the command line mean).
    """
    if not allowed_roots:
        return
    base = base or Path.cwd()
    roots = [_norm_root(r, base) for r in allowed_roots]
    if is_remote(uri):  # same scheme and host, normalised path below the root's (``..`` cannot climb out)
        inside = any(is_remote(r) and remote_inside(uri, r) for r in roots)
    else:  # symlinks and ``..`` resolved; compared on path-component boundaries
        target = os.path.realpath(local_path(uri)) + os.sep
        inside = any(not is_remote(r) and target.startswith(r) for r in roots)
    if not inside:
        raise PipelineInputError(
            "data:outside_allowed_roots",
            f"{shown(uri)} is outside the allowed roots ({', '.join(map(shown, allowed_roots))}) set in the config",
        )


def require_regular_file(path: Path, uri: str) -> os.stat_result:
    """The ``stat`` of ``path`` (symlinks followed); refuse anything that is not a regular file (a directory, a
    FIFO or a device would block or never end) before it is opened."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise PipelineInputError("data:missing_file", f"{shown(uri)} does not exist") from None
    except NotADirectoryError:
        raise PipelineInputError("data:missing_file", f"{shown(uri)} does not exist (a parent is a file)") from None
    if stat.S_ISDIR(st.st_mode):
        raise PipelineInputError("data:not_a_file", f"{shown(uri)} is a directory, not a data file")
    if not stat.S_ISREG(st.st_mode):
        raise PipelineInputError("data:not_a_file", f"{shown(uri)} is {_kind(st.st_mode)}, not a regular file; "
                                                    "refused without opening it")
    return st


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((what for test, what in kinds if test(mode)), "not a regular file")


# the package to install for an fsspec protocol whose filesystem is not importable (fsspec's own hint follows)
_BACKENDS = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "abfs": "adlfs", "az": "adlfs",
             "http": "aiohttp", "https": "aiohttp", "sftp": "paramiko", "ssh": "paramiko", "hf": "huggingface_hub"}


def _check_protocols(uri: str) -> None:
    """Refuse a URL whose fsspec protocol is unknown or whose filesystem package is not installed (final: a
    retry cannot install it)."""
    import fsspec

    for part in uri.split("::"):
        protocol = fsspec.core.split_protocol(part)[0] or "file"
        try:
            fsspec.get_filesystem_class(protocol)
        except ImportError as exc:
            hint = f"pip install {_BACKENDS[protocol]}" if protocol in _BACKENDS else "install its fsspec backend"
            raise PipelineInputError(
                "data:unsupported_url",
                f"{shown(uri)}: {protocol}:// URLs need a package that is not installed ({_first_line(exc)}); "
                f"{hint} in trainguard's environment, or copy the file to a local path",
            ) from None
        except ValueError:
            raise PipelineInputError(
                "data:unsupported_url",
                f"{shown(uri)}: the URL scheme {protocol!r} is not a known fsspec protocol; give a local path, a "
                "file:// URL or a URL of an installed fsspec filesystem (memory://, s3:// with s3fs, ...)",
            ) from None


def stage_remote(uri: str, dest_dir: Path) -> Path:
    """Copy an fsspec URL to a local file under ``dest_dir`` (streamed) and return its path."""
    import fsspec

    _check_protocols(uri)
    name = Path(urlparse(uri).path).name or "input"
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / name
    tmp = dest.with_name(dest.name + ".part")
    try:
        fs, fs_path = fsspec.core.url_to_fs(uri)
        kind = fs.info(fs_path).get("type")
        if kind != "file":  # a directory, or (local://, sftp://) a FIFO or device that would never end
            what = "a directory" if kind == "directory" else f"not a regular file (type {kind!r})"
            raise PipelineInputError("data:not_a_file", f"{shown(uri)} is {what}, not a data file")
        with fs.open(fs_path, "rb") as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)
    except FileNotFoundError:
        tmp.unlink(missing_ok=True)
        raise PipelineInputError("data:missing_file", f"{shown(uri)} does not exist") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dest)
    return dest


def sniff_format(path: str | Path, *, uri: str | None = None) -> str:
    """``csv``, ``json`` or ``parquet`` from the extension, checked against the file's first bytes."""
    p = Path(path)
    name = shown(uri or str(p))
    size = require_regular_file(p, uri or str(p)).st_size
    if size == 0:
        raise PipelineInputError("data:empty_file", f"{name} is empty (0 bytes)")
    with open(p, "rb") as fh:
        head = fh.read(_HEAD)
        fh.seek(max(0, size - 4))
        tail = fh.read(4)
    what = refused_as(head, complete=size <= len(head), rest=lambda: open(p, "rb"))
    if what is not None:
        raise PipelineInputError("data:executable_format", f"{name} is {what}, not data; refused without opening it")
    suffix = p.suffix.lower()
    if head.startswith(b"PAR1") or suffix in _PARQUET_EXT:
        if not (head.startswith(b"PAR1") and tail == b"PAR1"):
            raise PipelineInputError("data:unreadable", f"{name} is not a complete Parquet file")
        return "parquet"
    if b"\x00" in head:
        raise PipelineInputError("data:binary", f"{name} contains binary bytes; expected CSV or JSON lines text")
    if suffix in _JSON_EXT:
        return "json"
    if suffix in _CSV_EXT or suffix == "":
        return "csv"
    raise PipelineInputError(
        "data:unknown_format", f"{name} has extension {suffix!r}; expected .csv, .tsv, .parquet or .jsonl"
    )


def _check_utf8(path: Path, name: str) -> None:
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
                    "data:encoding", f"{name} is not UTF-8 (byte 0x{block[exc.start]:02x} on line {line})"
                ) from None
            line += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise PipelineInputError("data:encoding", f"{name} ends inside a UTF-8 character") from None


def _batches(path: Path, fmt: str, block_bytes: int, *, whole_file_types: bool = False,
             json_types: pa.Schema | None = None) -> tuple[pa.Schema, list[pa.RecordBatch] | None, object]:
    """(schema, all batches when read at once, or a reader to iterate).

    A file larger than one block is streamed, its types taken from the first block; with ``whole_file_types``
    the types come from a pass over the whole file (``_text_types``: ``json_types`` for JSON lines), and CSV
    fields may span lines.
    """
    size = path.stat().st_size
    big = size > block_bytes
    if fmt == "parquet":
        pf = pq.ParquetFile(path)
        return pf.schema_arrow, None, pf.iter_batches(batch_size=65_536)
    if fmt == "csv":
        delim = "\t" if path.suffix.lower() == ".tsv" else ","
        parse = pacsv.ParseOptions(delimiter=delim, newlines_in_values=whole_file_types)
        if not big:
            try:
                table = pacsv.read_csv(path, parse_options=parse)
            except pa.ArrowInvalid as exc:  # a header (or row) longer than pyarrow's 1 MB block: found by review
                if "Empty CSV file or block" not in str(exc) or size == 0:  # (a very wide file read as empty)
                    raise
                whole = pacsv.ReadOptions(block_size=min(size + 1, (1 << 31) - 1))
                table = pacsv.read_csv(path, read_options=whole, parse_options=parse)
            return table.schema, table.to_batches(), None
        read = pacsv.ReadOptions(block_size=block_bytes)
        convert = pacsv.ConvertOptions()
        if whole_file_types:
            first = pacsv.open_csv(path, read_options=read, parse_options=parse).schema
            convert = pacsv.ConvertOptions(column_types=csv_column_types(path, parse, block_bytes, first))
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        return reader.schema, None, reader
    if not big:  # in one block, so that a row an error names is the file's row
        one_block = pajson.ReadOptions(block_size=min(max(size + 1, 1 << 20), (1 << 31) - 1))
        table = pajson.read_json(path, read_options=one_block)
        return table.schema, table.to_batches(), None
    jparse = pajson.ParseOptions(explicit_schema=json_types) if whole_file_types and json_types is not None else None
    jreader = pajson.open_json(path, read_options=pajson.ReadOptions(block_size=block_bytes), parse_options=jparse)
    return jreader.schema, None, jreader


def read_to_parquet(path: Path, dest: Path, *, fmt: str, uri: str, row_group_rows: int,
                    block_bytes: int = 128 << 20) -> tuple[int, list[str]]:
    """Read ``path`` (CSV, JSON lines or Parquet) and write it to ``dest`` as Parquet, block by block.

    Returns (rows, column names). Memory is bounded by one block for large files; ``dest`` is written to a
    temporary name and renamed, so it is either complete or absent.
    """
    name = shown(uri)
    if fmt in ("csv", "json"):
        _check_utf8(path, name)
    # a valid large text file can fail only because a later block does not fit the first block's types: read it
    # once more with types taken from the whole file
    big = fmt in ("csv", "json") and path.stat().st_size > block_bytes
    try:
        return _to_parquet(path, dest, fmt=fmt, name=name, row_group_rows=row_group_rows, block_bytes=block_bytes,
                           quiet=big or fmt == "json")
    except _TypesDiffer:
        pass
    json_types = None
    if fmt == "json":
        # block by block, counting rows: names the file's row of a bad line, and refuses a column that mixes kinds
        # of values (numbers and text) that a JSON read cannot hold in one column, whole or streamed
        json_types = json_schema(path, block_bytes, name)
    return _to_parquet(path, dest, fmt=fmt, name=name, row_group_rows=row_group_rows, block_bytes=block_bytes,
                       whole_file_types=big, json_types=json_types, quiet=False)


class _TypesDiffer(Exception):
    """A read failed in a way a read with whole-file types may not (or, for JSON lines, whose row to name)."""


def _to_parquet(path: Path, dest: Path, *, fmt: str, name: str, row_group_rows: int, block_bytes: int,
                quiet: bool, whole_file_types: bool = False, json_types: pa.Schema | None = None,
                ) -> tuple[int, list[str]]:
    tmp = dest.with_name(dest.name + ".part")
    rows = 0
    try:
        schema, batches, reader = _batches(path, fmt, block_bytes, whole_file_types=whole_file_types,
                                           json_types=json_types)
        _refuse_binary(schema, name)
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
        reason = _first_line(exc)
        if fmt == "json" and path.stat().st_size > block_bytes:  # streamed: rows count from each block's start
            reason = re.sub(r" in row (\d+)$", rf" in row \1 of a {block_bytes}-byte block (not of the file)", reason)
        raise PipelineInputError(_code(fmt, exc), f"{name} cannot be read as {fmt.upper()}: {reason}") from None
    if rows == 0:
        tmp.unlink(missing_ok=True)
        raise PipelineInputError("data:no_rows", f"{name} has no data rows")
    os.replace(tmp, dest)
    return rows, list(schema.names)


def parquet_partitions_fit(path: Path, uri: str, max_rows: int) -> tuple[int, list[str]] | None:
    """(rows, columns) when a Parquet file can be scored as it is (every row group at most ``max_rows`` rows,
    text columns only), else None (it is rewritten by ``read_to_parquet``)."""
    name = shown(uri)
    try:
        pf = pq.ParquetFile(path)
        meta = pf.metadata
        schema = pf.schema_arrow
    except (pa.ArrowInvalid, OSError) as exc:
        raise PipelineInputError("data:unreadable", f"{name} cannot be read as PARQUET: {_first_line(exc)}") \
            from None
    _refuse_binary(schema, name)
    if meta.num_rows == 0:
        raise PipelineInputError("data:no_rows", f"{name} has no data rows")
    if any(meta.row_group(i).num_rows > max_rows for i in range(meta.num_row_groups)):
        return None
    if any(meta.row_group(i).num_rows == 0 for i in range(meta.num_row_groups)):
        return None
    return int(meta.num_rows), list(schema.names)


def _is_binary(kind: pa.DataType) -> bool:
    """Whether ``kind`` holds raw bytes anywhere (binary of any layout, also inside lists, structs, maps and
    dictionaries): bytes are not text, and the checks would fail on them later."""
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind) \
            or pa.types.is_binary_view(kind):
        return True
    if pa.types.is_dictionary(kind):
        return _is_binary(kind.value_type)
    return any(_is_binary(kind.field(i).type) for i in range(kind.num_fields))


def _refuse_binary(schema: pa.Schema, name: str) -> None:
    """Refuse binary (non-UTF-8) columns and a header that names one column twice."""
    seen: set[str] = set()
    for column in schema.names:
        if column in seen:
            raise PipelineInputError("data:duplicate_column", f"{name} has more than one column named {column!r}")
        seen.add(column)
    for fld in schema:
        if _is_binary(fld.type):
            raise PipelineInputError("data:encoding", f"{name}: column {fld.name!r} holds binary values "
                                                      f"({fld.type}), not UTF-8 text")


def _code(fmt: str, exc: Exception) -> str:
    text = str(exc)
    if "Empty CSV file" in text or "Empty file" in text:
        return "data:empty_file"
    return "data:malformed_csv" if fmt == "csv" else "data:unreadable"


def _first_line(exc: Exception) -> str:
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."
