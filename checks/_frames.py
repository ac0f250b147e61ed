"""Frame helpers shared by contracts and drift: reading files, naming columns, coercing a column to a type.

Every column is brought to one of seven logical types before it is checked, so Great Expectations and the
vectorised path see the same plain NumPy-backed values whatever the source dtype was (pandas 3 ``str``,
``pd.ArrowDtype``, nullable ``Int64``, ``object`` with mixed values, what ``pyarrow`` gives for Parquet):

- ``integer`` / ``float`` -> ``float64`` (missing = NaN; empty strings are missing; ``+-inf`` kept; Parquet
  ``decimal128`` values, held by pandas as ``Decimal`` objects, are numbers: ``float`` when their scale is > 0),
- ``boolean`` -> ``object`` of ``True``/``False``/``None``,
- ``string`` -> ``object`` of ``str``/``None`` (UTF-8 ``bytes`` decoded),
- ``datetime`` -> ``datetime64[ns, UTC]`` (also Parquet ``date32``, held as ``datetime.date`` objects: midnight UTC),
- ``duration`` -> ``float64`` seconds (``timedelta64``, Arrow ``duration``, ``timedelta`` objects, and text
  ``pd.to_timedelta`` reads with a unit, such as ``"1 days 00:00:05"``; a bare number has no unit and is bad),
- ``object`` -> the values as they are (``None`` when missing): nested values (Parquet list, struct and map,
  JSON-lines objects and arrays) and bytes that are not UTF-8. They are opaque: only presence and not-null are
  checked, never a type, range or set.

A value that cannot be brought to the type is *bad*: it becomes missing and is reported by the caller.
``wrong_dtype`` is decided from the dtype alone (never from the values, so chunking cannot change it): a
numeric or datetime dtype where text is expected, a datetime dtype where numbers are expected, and so on.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from checks.errors import ChecksDataError

__all__ = ["LOGICAL_TYPES", "Coerced", "coerce_column", "logical_type_of", "read_frame", "iter_chunks", "column_names"]

LOGICAL_TYPES = ("integer", "float", "boolean", "string", "datetime", "duration", "object")
_NESTED = (list, tuple, dict, set, frozenset, np.ndarray)
_TRUE = {"true", "t", "yes", "y"}
_FALSE = {"false", "f", "no", "n"}


@dataclass
class Coerced:
    """A column brought to its logical type: ``values``, ``bad`` rows, and ``wrong_dtype`` when no value fits."""

    values: pd.Series
    bad: np.ndarray
    wrong_dtype: bool = False


def column_names(frame: pd.DataFrame) -> list[str]:
    """Column labels as strings (non-string labels such as ints are stringified)."""
    return [str(c) for c in frame.columns]


def _kind(dtype: object) -> str:
    """One of ``num``, ``bool``, ``str``, ``dt``, ``td``, ``nest``, ``obj`` for any pandas/NumPy/Arrow dtype."""
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        t = dtype.pyarrow_dtype
        if pa.types.is_boolean(t):
            return "bool"
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            return "num"
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return "str"
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            return "dt"
        if pa.types.is_duration(t):
            return "td"
        if pa.types.is_nested(t):
            return "nest"
        return "obj"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "num"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "dt"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "td"
    if isinstance(dtype, pd.StringDtype):
        return "str"
    return "obj"


def logical_type_of(series: pd.Series) -> str:
    """The logical type a trusted reference column has (used by inference)."""
    kind = _kind(series.dtype)
    if kind == "bool":
        return "boolean"
    if kind == "num":
        dtype = series.dtype
        if isinstance(dtype, pd.ArrowDtype) and getattr(dtype.pyarrow_dtype, "scale", 0) > 0:
            return "float"  # decimal128(p, s > 0)
        vals = series.to_numpy(dtype="float64", na_value=np.nan)
        finite = vals[np.isfinite(vals)]
        integral = pd.api.types.is_integer_dtype(series.dtype) or bool(np.all(finite == np.floor(finite)))
        return "integer" if integral and finite.size else "float"
    if kind == "dt":
        return "datetime"
    if kind == "td":
        return "duration"
    if kind == "nest":
        return "object"
    if kind == "str":
        return "string"
    nonnull = series.dropna()
    if len(nonnull) == 0:
        return "string"
    return _object_type(nonnull.head(1000).to_numpy(dtype=object))


def _object_type(sample: np.ndarray) -> str:
    """The logical type of the non-missing values of an ``object`` column (a sample of them)."""
    types = {type(v) for v in sample}
    if any(issubclass(t, _NESTED) for t in types):
        return "object"
    if types <= {bool, np.bool_}:
        return "boolean"
    if all(issubclass(t, _dt.date | np.datetime64) for t in types):  # datetime, Timestamp and date
        return "datetime"
    if all(issubclass(t, _dt.timedelta | np.timedelta64) for t in types):  # also pd.Timedelta
        return "duration"
    if all(issubclass(t, int | float | np.number | decimal.Decimal) and t not in (bool, np.bool_) for t in types):
        if any(isinstance(v, decimal.Decimal) and _decimal_scale(v) > 0 for v in sample):
            return "float"
        return logical_type_of(pd.to_numeric(pd.Series(sample, dtype=object), errors="coerce"))
    if all(issubclass(t, bytes | bytearray) for t in types) and any(_to_str(v)[1] for v in sample):
        return "object"  # binary data, not text
    return "string"


def _decimal_scale(v: decimal.Decimal) -> int:
    exp = v.as_tuple().exponent
    return -exp if isinstance(exp, int) else 0


def _to_str(value: object) -> tuple[object, bool]:
    """(normalised value, bad) for one object cell of a string column."""
    if isinstance(value, str):
        return value, False
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8"), False
        except UnicodeDecodeError:
            return None, True
    return None, True


def coerce_column(series: pd.Series, ltype: str) -> Coerced:
    """Bring ``series`` to ``ltype`` (see module doc); positions are preserved, the index is kept."""
    kind = _kind(series.dtype)
    idx = series.index
    missing = np.asarray(series.isna(), dtype=bool)
    if ltype == "object":
        return Coerced(pd.Series(series.to_numpy(dtype=object, na_value=None), index=idx, dtype=object),
                       np.zeros(len(series), bool))
    if ltype in ("integer", "float"):
        return _coerce_numeric(series, kind, missing, ltype)
    if ltype == "boolean":
        return _coerce_bool(series, kind, missing)
    if ltype == "duration":
        return _coerce_duration(series, kind, missing)
    if ltype == "datetime":
        if kind in ("num", "bool", "td", "nest"):
            nat = pd.Series(pd.NaT, index=idx, dtype="datetime64[ns, UTC]")
            return Coerced(nat, np.zeros(len(series), bool), True)
        try:
            vals = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
        except (TypeError, ValueError, OverflowError):
            vals = pd.Series(pd.NaT, index=idx, dtype="datetime64[ns, UTC]")
        vals = vals.astype("datetime64[ns, UTC]")
        bad = ~missing & np.asarray(vals.isna(), dtype=bool)
        return Coerced(vals, bad)
    # string
    if kind in ("num", "bool", "dt", "td", "nest"):
        return Coerced(pd.Series([None] * len(series), index=idx, dtype=object), np.zeros(len(series), bool), True)
    if kind == "str":
        arr = series.to_numpy(dtype=object, na_value=None)
        return Coerced(pd.Series(arr, index=idx, dtype=object), np.zeros(len(series), bool))
    raw = series.to_numpy(dtype=object)
    out = np.empty(len(raw), dtype=object)
    bad = np.zeros(len(raw), dtype=bool)
    for i, v in enumerate(raw):
        if missing[i]:
            out[i] = None
            continue
        out[i], bad[i] = _to_str(v)
    return Coerced(pd.Series(out, index=idx, dtype=object), bad)


def _coerce_duration(series: pd.Series, kind: str, missing: np.ndarray) -> Coerced:
    """Durations as float64 seconds; numbers have no unit, so a numeric dtype is the wrong dtype."""
    idx = series.index
    if kind in ("num", "bool", "dt", "nest"):
        return Coerced(pd.Series(np.full(len(series), np.nan), index=idx), np.zeros(len(series), bool), True)
    if kind == "td":
        secs = series.dt.total_seconds().to_numpy(dtype="float64", na_value=np.nan)
        return Coerced(pd.Series(secs, index=idx, dtype="float64"), np.zeros(len(series), bool))
    raw = series.to_numpy(dtype=object, na_value=None)
    out = np.full(len(raw), np.nan)
    bad = np.zeros(len(raw), dtype=bool)
    for i, v in enumerate(raw):
        if missing[i] or v is None or isinstance(v, str) and not v.strip():
            continue  # empty text is missing, as for numbers
        secs = _to_seconds(v)
        if secs is None or math.isnan(secs):
            bad[i] = True
        else:
            out[i] = secs
    return Coerced(pd.Series(out, index=idx, dtype="float64"), bad)


def _to_seconds(v: object) -> float | None:
    """Seconds of one duration value, or None when it is not a duration (a bare number has no unit)."""
    try:
        if isinstance(v, str):
            text = v.strip()
            try:
                float(text)
                return None
            except ValueError:
                return float(pd.Timedelta(text).total_seconds())
        if isinstance(v, _dt.timedelta | np.timedelta64):
            return float(pd.Timedelta(v).total_seconds())
    except (ValueError, OverflowError):
        return None
    return None


def _coerce_numeric(series: pd.Series, kind: str, missing: np.ndarray, ltype: str) -> Coerced:
    idx = series.index
    if kind in ("num", "bool"):
        vals = series.to_numpy(dtype="float64", na_value=np.nan)
        bad = np.zeros(len(vals), dtype=bool)
    elif kind in ("dt", "td", "nest"):
        nan = np.full(len(series), np.nan)
        return Coerced(pd.Series(nan, index=idx), np.zeros(len(series), bool), True)
    else:
        obj = series.to_numpy(dtype=object, na_value=None)
        empty = np.fromiter((isinstance(v, str) and not v.strip() for v in obj), dtype=bool, count=len(obj))
        missing = missing | empty
        obj = obj.copy()
        obj[missing] = None
        # booleans and bytes are not numbers here; strings that parse and Decimals are
        isnum = np.fromiter(
            (v is None or (isinstance(v, int | float | str | np.number | decimal.Decimal)
                           and not isinstance(v, bool | np.bool_))
             for v in obj), dtype=bool, count=len(obj))
        obj[~isnum] = None
        vals = pd.to_numeric(pd.Series(obj, dtype=object), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        bad = ~missing & np.isnan(vals)
        # the strings "nan"/"NaN" parse to NaN: count them as missing, not as a type error
        strnan = np.fromiter((isinstance(v, str) and v.strip().lower() == "nan" for v in obj), dtype=bool, count=len(obj))
        bad &= ~strnan
    vals = vals + 0.0  # -0.0 -> 0.0
    if ltype == "integer":
        finite = np.isfinite(vals)
        frac = np.zeros(len(vals), dtype=bool)
        frac[finite] = vals[finite] != np.floor(vals[finite])
        bad = bad | frac
        vals = np.where(frac, np.nan, vals)
    vals[bad] = np.nan
    return Coerced(pd.Series(vals, index=idx, dtype="float64"), bad)


def _coerce_bool(series: pd.Series, kind: str, missing: np.ndarray) -> Coerced:
    idx = series.index
    raw = series.to_numpy(dtype=object, na_value=None)
    out = np.empty(len(raw), dtype=object)
    bad = np.zeros(len(raw), dtype=bool)
    for i, v in enumerate(raw):
        if missing[i] or v is None:
            out[i] = None
        elif isinstance(v, bool | np.bool_):
            out[i] = bool(v)
        elif isinstance(v, int | float | np.number) and v in (0, 1):
            out[i] = bool(v)
        elif isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
            out[i] = v.strip().lower() in _TRUE
        else:
            out[i], bad[i] = None, True
    return Coerced(pd.Series(out, index=idx, dtype=object), bad)


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a Parquet, CSV or TSV (optionally ``.gz``) file, failing with a ``ChecksDataError`` naming the file.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.csv"); _ = open(p, "w").write("x,y\\n1,a\\n")
    >>> read_frame(p).shape
    (1, 2)
    """
    p = _existing_file(path)
    name = p.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(p)
        else:
            frame = pd.read_csv(p, sep=_csv_sep(p), encoding="utf-8", encoding_errors="strict")
    except UnicodeDecodeError as exc:
        raise ChecksDataError("data:encoding", f"{p}: bytes at offset {exc.start} are not valid UTF-8") from None
    except pd.errors.EmptyDataError:
        raise ChecksDataError("data:empty_file", f"{p}: the file has no header and no rows") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise ChecksDataError("data:unreadable", f"{p}: cannot be read ({type(exc).__name__}: {exc})") from None
    if frame.shape[1] == 0:
        raise ChecksDataError("data:empty_file", f"{p}: the file has no columns")
    return frame


def iter_chunks(path: str | Path, *, chunk_rows: int = 100_000) -> Iterator[tuple[int, pd.DataFrame]]:
    """``(offset, chunk)`` pairs of a Parquet/CSV/TSV file in bounded memory, for ``validate_chunks``.

    Parquet is read one row group at a time (``iter_batches`` pre-buffers and grew by ~30 MB per 100k rows in
    ``benchmarks/bench_contract.py``); CSV through ``read_csv(chunksize=...)``. Errors as :func:`read_frame`.
    """
    p = _existing_file(path)
    name = p.name.lower()
    offset = 0
    try:
        if name.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(p)
            for i in range(pf.num_row_groups):
                group = pf.read_row_group(i).to_pandas()
                for start in range(0, len(group), chunk_rows):
                    part = group.iloc[start:start + chunk_rows]
                    yield offset, part
                    offset += len(part)
            return
        with pd.read_csv(p, sep=_csv_sep(p), encoding="utf-8", encoding_errors="strict", chunksize=chunk_rows) as reader:
            for part in reader:
                yield offset, part
                offset += len(part)
    except UnicodeDecodeError as exc:
        raise ChecksDataError(
            "data:encoding", f"{p}: bytes near row {offset} (offset {exc.start} in a block) are not valid UTF-8"
        ) from None
    except pd.errors.EmptyDataError:
        raise ChecksDataError("data:empty_file", f"{p}: the file has no header and no rows") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise ChecksDataError("data:unreadable", f"{p}: cannot be read near row {offset} ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # pyarrow raises its own ArrowInvalid for broken Parquet
        if type(exc).__module__.startswith("pyarrow"):
            raise ChecksDataError("data:unreadable", f"{p}: cannot be read ({type(exc).__name__}: {exc})") from None
        raise


def _existing_file(path: str | Path) -> Path:
    """``path`` as a Path, or a ``ChecksDataError`` when it is missing or has no bytes."""
    p = Path(path)
    if not p.is_file():
        raise ChecksDataError("data:not_found", f"{p}: no such file")
    if p.stat().st_size == 0:
        raise ChecksDataError("data:empty_file", f"{p}: the file is empty (0 bytes)")
    return p


def _csv_sep(p: Path) -> str:
    """Tab for .tsv/.tab files and for gzipped CSVs whose header has more tabs than commas, else comma."""
    name = p.name.lower()
    return "\t" if name.endswith((".tsv", ".tsv.gz", ".tab")) or ".csv.gz" in name and _looks_tab(p) else ","


def _looks_tab(p: Path) -> bool:
    import gzip

    with gzip.open(p, "rt", encoding="utf-8", errors="replace") as fh:
        head = fh.readline()
    return head.count("\t") > head.count(",")
