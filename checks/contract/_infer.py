"""Infer a contract from a trusted reference.

Numeric range rule (documented in the contract's ``[inferred]`` table)::

    spread = q(q_hi) - q(q_lo)            (falls back to max(|max|, |min|, 1) * 0.01 for a constant column)
    min    = q(q_lo) - tolerance * spread
    max    = q(q_hi) + tolerance * spread

with ``quantiles=(q_lo, q_hi)`` defaulting to ``(0.0, 1.0)`` (the reference's own min and max) and
``tolerance=0.25``; integer columns round ``min`` down and ``max`` up. With the default quantiles every
reference value lies inside its range, so a clean reference passes its own contract; new clean data may
exceed the reference's extremes by a quarter of its observed range. These are bounds for impossible values:
rows that are merely unusual are the outlier detectors' job, not the contract's. Raising ``q_lo``/
lowering ``q_hi`` trims the reference's own tails (they then fail), which is the user's explicit choice.
``duration`` columns get the same rule, in seconds.

What else is inferred, per logical type (``checks._frames``):

- ``datetime``: the type, ``nullable`` and only a *sanity* range: a reference's time span says nothing about the
  times of the next batch (time moves on), so a range from it would fail every row of every later batch. The
  bounds are the reference's first time minus ``max(10 x its span, 10 years)`` and its last time plus
  ``max(10 x its span, 50 years)``: epoch-zero defaults (1970-01-01) and far-future placeholders (2099) fail,
  next year's data does not. Set ``min``/``max`` (TOML date-times) by hand for a real bound.
- ``integer``: a small domain seen with enough support becomes ``allowed``; all-distinct values ``unique``.
- ``boolean``: ``allowed``. ``string``: ``allowed`` for few categories, else lengths, ``unique`` and a pattern.
- ``object`` (nested values: lists, structs, maps, JSON objects and arrays; bytes that are not UTF-8): ``nullable``
  only. A column whose reference values do not all fit the type read from them (an ``object`` column mixing
  numbers and text, say) is also ``object``, so a reference always passes its own contract. A label column
  must not be ``object``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from checks._frames import coerce_column, logical_type_of, read_frame
from checks.contract._model import ColumnSpec, Contract, Scalar
from checks.errors import ChecksConfigError, ChecksDataError

# candidate patterns, most specific first; a column gets the first one that every value matches
_PATTERNS: list[tuple[str, str]] = [
    ("uuid", r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
    ("email", r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"),
    ("iso_date", r"^\d{4}-\d{2}-\d{2}$"),
    ("digits", r"^\d+$"),
    ("hex", r"^[0-9a-fA-F]+$"),
    ("identifier", r"^[A-Za-z_][A-Za-z0-9_\-.]*$"),
]


def infer_contract(
    reference: pd.DataFrame | str | Path,
    *,
    label_column: str | None = None,
    tolerance: float = 0.25,
    quantiles: tuple[float, float] = (0.0, 1.0),
    max_categories: int = 50,
    source: str | None = None,
) -> Contract:
    """Infer a :class:`Contract` from a trusted reference (DataFrame, or a Parquet/CSV path).

    >>> import pandas as pd
    >>> c = infer_contract(pd.DataFrame({"age": [20, 30, 40, 50], "color": ["red", "blue", "red", "blue"]}))
    >>> c.columns["age"].type, c.columns["color"].allowed
    ('integer', ['blue', 'red'])
    """
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise ChecksConfigError("config:tolerance", f"tolerance must be a finite number >= 0, got {tolerance!r}")
    q_lo, q_hi = quantiles
    if not 0.0 <= q_lo < q_hi <= 1.0:
        raise ChecksConfigError("config:quantiles", f"quantiles must satisfy 0 <= lo < hi <= 1, got {quantiles!r}")
    name = "reference"
    if isinstance(reference, str | Path):
        name = str(reference)
        reference = read_frame(reference)
    names = [str(c) for c in reference.columns]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ChecksDataError("data:duplicate_column", f"{name}: duplicate column name(s) {dup}")
    if reference.shape[1] == 0 or len(reference) == 0:
        raise ChecksDataError("data:empty_reference", f"{name}: the reference has no rows or no columns")
    if label_column is not None and label_column not in names:
        raise ChecksConfigError("config:label_column", f"{name}: label column {label_column!r} is not a column")
    contract = Contract(
        source=source,
        label_column=label_column,
        inferred={"rows": int(len(reference)), "tolerance": float(tolerance), "quantiles": [float(q_lo), float(q_hi)],
                  "max_categories": int(max_categories)},
    )
    for col, key in zip(reference.columns, names, strict=True):
        spec = _infer_column(reference[col], tolerance=tolerance, quantiles=(q_lo, q_hi), max_categories=max_categories)
        if key == label_column and spec.type == "object":
            raise ChecksConfigError(
                "config:label_column", f"{name}: label column {key!r} holds nested or mixed values, not classes")
        if key == label_column:
            classes = _domain(coerce_column(reference[col], spec.type).values, limit=10_000)
            contract.classes = classes
            spec.allowed = None
        contract.columns[key] = spec
    return contract


def _domain(values: pd.Series, *, limit: int) -> list[Scalar] | None:
    uniq = pd.unique(values.dropna())
    if len(uniq) > limit:
        return None
    out: list[Scalar] = []
    for v in uniq:
        if isinstance(v, float | np.floating) and float(v).is_integer():
            out.append(int(v))
        elif isinstance(v, np.generic):
            out.append(v.item())
        else:
            out.append(v)
    return sorted(out, key=lambda x: (str(type(x)), x))


def _time_bound(t: pd.Timestamp, span: pd.Timedelta, least: pd.Timedelta, sign: int) -> Any:
    """``t`` moved by ``max(10 x span, least)`` (down for sign -1, up for +1), to the second; None when that
    leaves the representable times (the bound would exclude nothing)."""
    try:
        shifted = t + sign * max(10 * span, least)
        return (shifted.floor("s") if sign < 0 else shifted.ceil("s")).to_pydatetime()
    except (OverflowError, ValueError):  # OutOfBoundsDatetime / OutOfBoundsTimedelta are ValueErrors
        return None


def _infer_column(
    series: pd.Series, *, tolerance: float, quantiles: tuple[float, float], max_categories: int
) -> ColumnSpec:
    ltype = logical_type_of(series)
    co = coerce_column(series, ltype)
    if co.wrong_dtype or co.bad.any():  # the values do not all fit one type: opaque (see the module doc)
        ltype = "object"
        co = coerce_column(series, ltype)
    vals = co.values
    n = len(vals)
    spec = ColumnSpec(type=ltype, nullable=bool(vals.isna().any()))
    nonnull = vals.dropna()
    if len(nonnull) == 0 or ltype == "object":
        return spec  # nothing but presence for opaque values (see the module doc)
    if ltype == "datetime":  # a sanity range, not the reference's span (see the module doc)
        lo_t, hi_t = nonnull.min(), nonnull.max()
        spec.min = _time_bound(lo_t, hi_t - lo_t, pd.Timedelta(days=3653), -1)
        spec.max = _time_bound(hi_t, hi_t - lo_t, pd.Timedelta(days=18263), +1)
        return spec
    nunique = int(nonnull.nunique())
    if ltype in ("integer", "float", "duration"):
        x = nonnull.to_numpy(dtype="float64")
        x = x[np.isfinite(x)]
        if x.size:
            lo, hi = np.quantile(x, quantiles)
            spread = float(hi - lo)
            if spread <= 0:
                spread = max(abs(float(x.max())), abs(float(x.min())), 1.0) * 0.01
            vmin, vmax = float(lo) - tolerance * spread, float(hi) + tolerance * spread
            if ltype == "integer":
                spec.min, spec.max = int(math.floor(vmin)), int(math.ceil(vmax))
            else:
                spec.min, spec.max = vmin, vmax
        # a small integer domain seen with enough support is treated as categorical
        if ltype == "integer" and nunique <= min(max_categories, 20) and n >= 20 * nunique:
            spec.allowed = _domain(nonnull, limit=max_categories)
        if ltype == "integer" and nunique == n and n >= 20:
            spec.unique = True
        return spec
    if ltype == "boolean":
        spec.allowed = _domain(nonnull, limit=2)
        return spec
    # strings
    if nunique <= max_categories and n >= 2 * nunique:
        spec.allowed = _domain(nonnull, limit=max_categories)
        return spec
    lengths = nonnull.astype(str).str.len()
    lo_len, hi_len = int(lengths.min()), int(lengths.max())
    spec.min_length = max(lo_len - int(math.ceil(tolerance * lo_len)), 1 if lo_len >= 1 else 0)
    spec.max_length = hi_len + int(math.ceil(tolerance * hi_len))
    if nunique == n and n >= 20:
        spec.unique = True
    sample = nonnull.astype(str)
    for _, pattern in _PATTERNS:
        if bool(sample.str.contains(pattern, regex=True).all()):
            spec.pattern = pattern
            break
    assert spec.pattern is None or re.compile(spec.pattern)
    return spec
