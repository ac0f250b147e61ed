"""Column types of a large CSV or JSON-lines file taken from all of it, not from its first block.

Arrow's streaming readers fix each column's type from the first block, so a valid file whose column is all
integers (or all empty) for the first block and has ``2.5`` (or text) later is refused half-way. When that
happens, ``reading.read_to_parquet`` asks here for types that hold every value (one more pass over the file)
and reads it again with them. A type only widens: null -> the first type seen, int64 -> float64, anything else
that does not fit -> string.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

__all__ = ["csv_column_types", "json_schema"]


def _widen(current: pa.DataType | None, seen: pa.DataType) -> pa.DataType:
    """The narrowest of our types that holds values of both ``current`` and ``seen``."""
    if current is None or pa.types.is_null(current):
        return seen
    if pa.types.is_null(seen) or current == seen:
        return current
    if pa.types.is_integer(current) and pa.types.is_floating(seen) or \
            pa.types.is_floating(current) and pa.types.is_integer(seen):
        return pa.float64()
    return pa.string()


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


def json_schema(path: Path, block_bytes: int) -> pa.Schema:
    """A schema for every line of a JSON-lines file: each block of whole lines is typed on its own, and the
    blocks' types are widened into one."""
    fields: dict[str, pa.DataType | None] = {}
    with open(path, "rb") as fh:
        while True:
            block = fh.read(block_bytes)
            if not block:
                break
            block += fh.readline()  # end on a line boundary
            if not block.strip():
                continue
            schema = pajson.read_json(io.BytesIO(block)).schema
            for fld in schema:
                fields[fld.name] = _widen(fields.get(fld.name), fld.type)
    return pa.schema([(name, kind if kind is not None else pa.null()) for name, kind in fields.items()])
