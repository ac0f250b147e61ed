"""Preprocessing learned on the trusted reference: a tabular frame -> a finite float matrix.

Numeric columns are robust-scaled ((x - median) / IQR-scale), missing values become the median plus a missing
indicator, and +-inf are clipped to a large finite value. Categorical columns (object, string, category, Arrow
strings) are frequency-encoded with the reference's frequencies; unseen values get frequency 0 (rarer than any
seen value). A column of at most ``MAX_CODED`` reference values also gets a ``<column>:code`` feature, its value's
rank by reference frequency (ties by value) scaled into [0, 1] (unseen values and missing just beyond), so two
values equally common stay two values for the label model, the neighbour searches and the duplicate grids, while
a changed category moves a row at most one robust unit. The encoder is fitted once and then applied
chunk by chunk, so it is picklable and pure. Column names are used as strings (``0`` and ``"0"`` are one name).
Datetime columns are not features: a timestamp moves on with every batch, and every later row would look like
an outlier (the contract still checks their type and missing values).
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from checks.errors import ChecksDataError

__all__ = ["TabularPreprocessor"]

_CLIP = 1.0e4  # scaled values beyond this many robust units are clipped (keeps distances finite)
MAX_CODED = 20  # categorical columns with at most this many reference values get a rank-code feature (its
# steps, 1 / (values - 1), stay wider than the near-duplicate grid's 0.05 cells)


def _is_numeric(series: pd.Series) -> bool:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return True
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return True
    if pd.api.types.is_object_dtype(dtype):  # a Parquet decimal column: decimal.Decimal objects (found by review:
        # scored as a category of thousands of values, a clean batch of the same distribution was rejected)
        values = series.dropna()
        return len(values) > 0 and all(isinstance(v, decimal.Decimal) for v in values.iloc[:1000])
    return bool(pd.api.types.is_numeric_dtype(dtype))


def _as_float(series: pd.Series) -> np.ndarray:
    """Column values as float64 with NaN for missing, whatever the pandas/Arrow dtype."""
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        nat = series.isna().to_numpy()
        ints = series.to_numpy().astype("datetime64[ns]" if pd.api.types.is_datetime64_any_dtype(dtype) else "timedelta64[ns]")
        out = ints.astype(np.int64).astype(np.float64)
        out[nat] = np.nan
        return out
    try:
        return np.asarray(series.to_numpy(dtype="float64", na_value=np.nan), dtype=np.float64)
    except (TypeError, ValueError):
        return np.asarray(pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan))


def _is_time(series: pd.Series) -> bool:
    """A datetime column, also one of ``datetime.date`` objects (how pandas holds a Parquet ``date32``)."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return True
    if not pd.api.types.is_object_dtype(series.dtype):
        return False
    from checks._frames import logical_type_of

    return logical_type_of(series) == "datetime"


def _str_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with string column names (a frame read from numpy may name them 0, 1, ...)."""
    if all(isinstance(c, str) for c in frame.columns):
        return frame
    return frame.set_axis([str(c) for c in frame.columns], axis=1)


def _as_keys(series: pd.Series) -> pd.Series:
    """Categorical values as strings (missing stays missing), so 1 and "1" of two files compare equal."""
    out = series.astype("object")
    mask = out.isna()
    out = out.astype(str)
    out[mask] = np.nan
    return out


@dataclass
class TabularPreprocessor:
    """Learns column encodings on a reference frame; ``transform`` maps any frame with those columns to floats.

    >>> import pandas as pd
    >>> pre = TabularPreprocessor().fit(pd.DataFrame({"a": [1.0, 2.0, None], "b": ["x", "y", "x"]}))
    >>> pre.transform(pd.DataFrame({"a": [2.0], "b": ["z"]})).shape
    (1, 5)
    >>> pre.feature_names_
    ['a', 'b', 'b:code', 'a:missing', '_unexpected_missing']
    """

    exclude: tuple[str, ...] = ()
    numeric_: list[str] = field(default_factory=list)
    categorical_: list[str] = field(default_factory=list)
    medians_: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scales_: np.ndarray = field(default_factory=lambda: np.ones(0))
    indicator_: list[str] = field(default_factory=list)
    categories_: dict[str, pd.Index] = field(default_factory=dict)
    frequencies_: dict[str, np.ndarray] = field(default_factory=dict)
    coded_: list[str] = field(default_factory=list)
    feature_names_: list[str] = field(default_factory=list)
    feature_columns_: list[str | None] = field(default_factory=list)

    def fit(self, frame: pd.DataFrame) -> TabularPreprocessor:
        frame = _str_columns(frame)
        exclude = {str(c) for c in self.exclude}
        columns = [c for c in frame.columns if c not in exclude and not _is_time(frame[c])]
        if not columns:
            raise ChecksDataError("scoring:no_features", "the data has no feature columns to score")
        if len(frame) == 0:
            raise ChecksDataError("scoring:empty_reference", "the reference (or batch) to fit on has no rows")
        self.numeric_ = [str(c) for c in columns if _is_numeric(frame[c])]
        self.categorical_ = [str(c) for c in columns if not _is_numeric(frame[c])]
        medians, scales, indicator = [], [], []
        for col in self.numeric_:
            x = _as_float(frame[col])
            finite = x[np.isfinite(x)]
            if finite.size == 0:
                med, scale = 0.0, 1.0
            else:
                med = float(np.median(finite))
                q75, q25 = np.percentile(finite, [75, 25])
                scale = float(q75 - q25) / 1.349
                if not scale > 0:
                    scale = float(np.std(finite))
                if not scale > 0:
                    scale = max(abs(med) * 1e-3, 1e-9)
            medians.append(med)
            scales.append(scale)
            if np.isnan(x).any():
                indicator.append(col)
        self.medians_ = np.asarray(medians, dtype=np.float64)
        self.scales_ = np.asarray(scales, dtype=np.float64)
        self.indicator_ = indicator
        for col in self.categorical_:
            counts = _as_keys(frame[col]).value_counts(dropna=True)
            counts = counts.iloc[np.lexsort((counts.index.astype(str), -counts.to_numpy()))]  # ties: by value
            self.categories_[col] = pd.Index(counts.index.astype(str))
            freq = counts.to_numpy(dtype=np.float64) / float(len(frame))
            missing_freq = float(frame[col].isna().mean())
            # last two slots: unseen value (0), missing (its reference frequency)
            self.frequencies_[col] = np.concatenate([freq, [0.0, missing_freq]])
        self.coded_ = [c for c in self.categorical_ if len(self.categories_[c]) <= MAX_CODED]
        self.feature_columns_ = [*self.numeric_, *self.categorical_, *self.coded_, *self.indicator_, None]
        self.feature_names_ = (
            list(self.numeric_) + list(self.categorical_) + [f"{c}:code" for c in self.coded_]
            + [f"{c}:missing" for c in self.indicator_] + ["_unexpected_missing"]
        )
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """A float64 matrix (rows x ``feature_names_``), finite everywhere."""
        frame = _str_columns(frame)
        absent = [c for c in self.numeric_ + self.categorical_ if c not in frame.columns]
        if absent:
            raise ChecksDataError(
                "scoring:missing_column",
                f"the batch lacks column {absent[0]!r} that the reference has; rows cannot be scored",
            )
        n = len(frame)
        out = np.empty((n, len(self.feature_names_)), dtype=np.float64)
        unexpected = np.zeros(n, dtype=np.float64)
        indicator_set = set(self.indicator_)
        ind_pos = {c: i for i, c in enumerate(self.indicator_)}
        code_pos = {c: len(self.numeric_) + len(self.categorical_) + i for i, c in enumerate(self.coded_)}
        base_ind = len(self.numeric_) + len(self.categorical_) + len(self.coded_)
        for j, col in enumerate(self.numeric_):
            x = _as_float(frame[col])
            nan = np.isnan(x)
            with np.errstate(over="ignore", invalid="ignore"):  # overflow to +-inf is clipped just below
                z = (x - self.medians_[j]) / self.scales_[j]
            z[nan] = 0.0
            np.clip(z, -_CLIP, _CLIP, out=z)  # +-inf -> +-clip
            out[:, j] = z
            if col in indicator_set:
                out[:, base_ind + ind_pos[col]] = nan
            else:
                unexpected += nan
        for k, col in enumerate(self.categorical_):
            series = frame[col]
            if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(series.dtype):
                codes = self.categories_[col].get_indexer(series)  # string dtypes: no per-value conversion
            else:
                codes = self.categories_[col].get_indexer(_as_keys(series).to_numpy(dtype=object))
            freq = self.frequencies_[col]
            codes = np.where(codes < 0, len(freq) - 2, codes)
            codes = np.where(series.isna().to_numpy(), len(freq) - 1, codes)
            out[:, len(self.numeric_) + k] = freq[codes]
            if col in code_pos:  # rank by reference frequency; unseen values and missing follow the seen ones
                out[:, code_pos[col]] = codes / max(len(freq) - 3, 1)
        out[:, -1] = unexpected
        return out
