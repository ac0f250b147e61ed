"""Column types of a large CSV or JSON-lines file taken from all of it, not from its first block.

Arrow's streaming readers fix each column's type from the first block, so a valid file whose column is all
integers (or all empty) for the first block and has ``2.5`` (or text) later is refused half-way. When that
happens, ``reading.read_to_parquet`` asks here for types that hold every value (one more pass over the file)
and reads it again with them. A type only widens: null -> the first type seen, int64 -> float64; for CSV
anything else that does not fit -> string. A JSON value keeps its kind: Arrow's JSON reader parses a number
only into a numeric column and text only into a text one, so a JSON-lines column holding numbers and text (or
true/false and numbers, objects and numbers, ...) cannot be read, whole or streamed, and is refused naming the
column and the file's row (0-based, blank lines not counted) and line of the first value of the other kind.
Objects widen field by field, lists by their items.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from pipelines.errors import PipelineInputError

__all__ = ["csv_column_types", "json_schema"]


def _widen(current: pa.DataType | None, seen: pa.DataType) -> pa.DataType:
    """The narrowest of our types that holds values of both ``current`` and ``seen`` (CSV: text holds all)."""
    if current is None or pa.types.is_null(current):
        return seen
    if pa.types.is_null(seen) or current == seen:
        return current
    if pa.types.is_integer(current) and pa.types.is_floating(seen) or \
            pa.types.is_floating(current) and pa.types.is_integer(seen):
        return pa.float64()
    return pa.string()


def _json_kind(kind: pa.DataType) -> str:
    """The kind of JSON value behind an inferred type, in the words of an error message."""
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return "numbers"
    if pa.types.is_boolean(kind):
        return "true/false values"
    if pa.types.is_struct(kind):
        return "objects"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return "lists"
    return "text"  # strings, and timestamps Arrow infers from strings


def _json_widen(current: pa.DataType | None, seen: pa.DataType) -> pa.DataType | None:
    """``_widen`` for JSON lines: None when the values are of kinds no single column can hold."""
    if current is None or pa.types.is_null(current):
        return seen
    if pa.types.is_null(seen) or current == seen:
        return current
    kinds = _json_kind(current), _json_kind(seen)
    if kinds[0] != kinds[1]:
        return None
    if kinds[0] == "numbers":
        return pa.float64()
    if kinds[0] == "text":
        return pa.string()
    if kinds[0] == "lists":
        item = _json_widen(current.value_type, seen.value_type)
        return None if item is None else pa.list_(item)
    if kinds[0] == "objects":
        fields: dict[str, pa.DataType] = {f.name: f.type for f in current}
        for fld in seen:
            merged = _json_widen(fields.get(fld.name), fld.type)
            if merged is None:
                return None
            fields[fld.name] = merged
        return pa.struct(list(fields.items()))
    return None


_CSV_BOOL = pa.array(pacsv.ConvertOptions().true_values + pacsv.ConvertOptions().false_values)


def _fits(values: pa.Array, kind: pa.DataType) -> bool:
    """Whether every (text) value converts to ``kind`` as the CSV reader converts it."""
    if pa.types.is_boolean(kind):  # the reader takes only its own spellings ("tRuE" casts, but is refused)
        return bool(pc.all(pc.is_in(values, value_set=_CSV_BOOL)).as_py())
    try:
        pc.cast(values, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def csv_column_types(path: Path, parse: pacsv.ParseOptions, block_bytes: int,
                     first: pa.Schema) -> dict[str, pa.DataType]:
    """Per column, the first block's type (``first``) widened until every value of the file casts to it.

    The file is read as text (empty fields and the usual null markers as nulls), one block at a time.
    """
    names = list(first.names)
    reader = pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(block_size=block_bytes), parse_options=parse,
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                             strings_can_be_null=True),
    )
    types: dict[str, pa.DataType] = {n: first.field(n).type for n in names}
    for batch in reader:
        for name, column in zip(names, batch.columns, strict=True):
            values = column.drop_null()
            if len(values) == 0 or pa.types.is_string(types[name]):
                continue
            kind = types[name]
            ladder = [pa.int64(), pa.float64()] if pa.types.is_null(kind) else \
                [kind, pa.float64()] if pa.types.is_integer(kind) else [kind]
            types[name] = next((t for t in ladder if _fits(values, t)), pa.string())
    return types


_CHANGED = re.compile(r"Column\((/[^)]*)\) changed from (\w+) to (\w+) in row (\d+)")
_IN_ROW = re.compile(r" in row (\d+)$")
_ARROW_KINDS = {"number": "numbers", "string": "text", "boolean": "true/false values", "object": "objects",
                "array": "lists"}


def _line_of(block: bytes, first_line: int, row: int) -> int:
    """The file's line number of the ``row``-th (0-based) non-blank line of ``block`` (which starts at line
    ``first_line``); Arrow's JSON reader skips blank lines and does not count them as rows."""
    seen = -1
    for offset, text in enumerate(block.split(b"\n")):
        if text.strip():
            seen += 1
            if seen == row:
                return first_line + offset
    return first_line + block.count(b"\n")


def _mixed(name: str, column: str, kinds: tuple[str, str], where: str) -> PipelineInputError:
    what = f"mixes {kinds[0]} and {kinds[1]}" if kinds[0] != kinds[1] else \
        f"holds {kinds[0]} whose fields or items mix kinds of values"
    return PipelineInputError(
        "data:unreadable",
        f"{name} cannot be read as JSON: column {column!r} {what} ({where}); a JSON-lines column must hold one "
        "kind of value: quote the numbers to make the column text, or deliver the data as CSV or Parquet",
    )


def _read_block(block: bytes, name: str, first_row: int, first_line: int) -> pa.Table:
    """One block of whole lines as a table; an error names the file's row and line, not the block's."""
    try:
        return pajson.read_json(io.BytesIO(block), read_options=pajson.ReadOptions(block_size=len(block) + 1))
    except pa.ArrowInvalid as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        changed = _CHANGED.search(text)
        if changed:
            row = int(changed.group(4))
            kinds = (_ARROW_KINDS.get(changed.group(2), changed.group(2)),
                     _ARROW_KINDS.get(changed.group(3), changed.group(3)))
            column = changed.group(1).lstrip("/").replace("/", ".")
            where = f"the first of the {kinds[1]} is in row {first_row + row}, line {_line_of(block, first_line, row)}"
            raise _mixed(name, column, kinds, where) from None
        in_row = _IN_ROW.search(text)
        if in_row:
            row = int(in_row.group(1))
            text = text[: in_row.start()] + f" in row {first_row + row} (line {_line_of(block, first_line, row)})"
        raise PipelineInputError("data:unreadable", f"{name} cannot be read as JSON: {text}") from None


def _where(table: pa.Table, column: str, earlier: str, block: bytes, first_row: int, first_line: int) -> str:
    """Where the first value of a block's column that does not fit the earlier blocks' type (of kind
    ``earlier``) is."""
    kind = _json_kind(table.schema.field(column).type)
    if kind == earlier:  # objects or lists that differ inside: which value differs is not known, name the block
        lines = block.rstrip(b"\n").count(b"\n")
        return f"in rows {first_row} to {first_row + table.num_rows - 1}, lines {first_line} to {first_line + lines}"
    at = max(int(pc.index(table.column(column).is_valid(), True).as_py()), 0)
    return f"the first of the {kind} is in row {first_row + at}, line {_line_of(block, first_line, at)}"


def json_schema(path: Path, block_bytes: int, name: str) -> pa.Schema:
    """A schema for every line of a JSON-lines file: each block of whole lines is typed on its own, and the
    blocks' types are widened into one. Raises ``PipelineInputError`` naming the file's row and line of a line
    that is not JSON, or of the first value of another kind in a column (``name`` is the file in messages)."""
    fields: dict[str, pa.DataType] = {}
    first_row, first_line = 0, 1
    with open(path, "rb") as fh:
        while True:
            block = fh.read(block_bytes)
            if not block:
                break
            block += fh.readline()  # end on a line boundary
            if block.strip():
                table = _read_block(block, name, first_row, first_line)
                for fld in table.schema:
                    merged = _json_widen(fields.get(fld.name), fld.type)
                    if merged is None:
                        earlier = _json_kind(fields[fld.name])
                        raise _mixed(name, fld.name, (earlier, _json_kind(fld.type)),
                                     _where(table, fld.name, earlier, block, first_row, first_line))
                    fields[fld.name] = merged
                first_row += table.num_rows
            first_line += block.count(b"\n")
    return pa.schema(list(fields.items()))
