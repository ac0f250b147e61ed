"""Drift of a batch against the trusted reference, from a stored reference profile.

The reference is summarised once (:meth:`ReferenceProfile.from_frame`) and stored as JSON keyed by the
reference's digest, so later batches are compared without reading the reference again:

- numeric columns: a quantile sketch (``n_quantiles`` values of the reference ECDF) and decile bins.
  ``ks`` = sup |F_ref - F_batch| with F_ref read from the sketch (error <= 1/n_quantiles against the raw
  two-sample KS statistic); ``psi`` = sum((b - r) ln(b / r)) over the reference's decile bins (eps 1e-4).
- categorical columns (strings, booleans): the reference frequencies of up to ``max_categories`` values;
  ``js`` = Jensen-Shannon distance (base 2, in [0, 1]); values unseen in the reference form their own bucket.

Columns the batch has too little of are not tested: a numeric column with fewer than ``MIN_VALUES`` (20)
non-missing values, a categorical one with fewer than 20 rows, gets one row ``test = "too_few_values"``
(``statistic`` = the count, ``threshold`` = 20, ``drifted = False``). Below 20 values no test here means
anything: KS's alpha = 0.01 critical value is already 1.63 * sqrt(1/20) = 0.36, and PSI over the reference's
decile bins needs about two values per bin (with 2 values, 8 empty bins alone make PSI ~ 5.5 > 0.2). A numeric
column with enough rows but *no* value while the reference had values is still drifted. Durations are compared
as seconds; datetime columns are not profiled (a timestamp moves on with every batch, so its distribution always
"drifts"), nor are ``object`` columns (nested values).

Thresholds (``compare(..., thresholds=...)``): ``{"ks": "auto", "psi": "auto", "js": "auto", "columns": {name:
{...}}}``; a number fixes a threshold. ``"auto"`` is the alpha = 0.01 critical value of each statistic under "no
drift" for these sample sizes, never below the usual fixed rule, so small batches are not called drifted by
sampling noise alone (``n`` = reference values, ``m`` = batch values, ``B`` bins, ``K`` categories seen):

- ``ks``:  max(0.1, 1.63 * sqrt(1/n + 1/m)) (the two-sample KS critical value),
- ``psi``: max(0.2, chi2_{0.99}(B - 1) * (1/n + 1/m)) (PSI / (1/n + 1/m) is asymptotically chi-square with
  B - 1 degrees of freedom: Yurdakul, "Statistical properties of population stability index", 2018); PSI
  is computed only from 5 * B batch values on (Cochran's rule; below it, empty bins alone exceed 0.2 and KS
  is the numeric test),
- ``js``:  max(0.1, sqrt(chi2_{0.99}(K - 1) * (1/n + 1/m) / (8 ln 2))) (the JS divergence in bits is about
  the chi-square distance / (8 ln 2)).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from checks._frames import coerce_column, logical_type_of
from checks.errors import ChecksConfigError, ChecksDataError

__all__ = ["DEFAULT_THRESHOLDS", "MIN_VALUES", "DriftResult", "ReferenceProfile", "compare", "compare_columns", "frame_digest"]

DEFAULT_THRESHOLDS: dict[str, Any] = {"ks": "auto", "psi": "auto", "js": "auto"}
_FLOORS = {"ks": 0.1, "psi": 0.2, "js": 0.1}
_EPS = 1e-4
MIN_VALUES = 20
"""Fewest batch values a column is tested with (see the module doc)."""
_OTHER, _UNSEEN, _MISSING = "__other__", "__unseen__", "__missing__"
_FORMAT = 1


def frame_digest(frame: pd.DataFrame) -> str:
    """``sha256:<hex>`` of a frame's column names and row hashes (use the file digest when there is a file)."""
    h = hashlib.sha256(json.dumps([str(c) for c in frame.columns]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return "sha256:" + h.hexdigest()


def _numeric(series: pd.Series, ltype: str) -> np.ndarray:
    if ltype == "datetime":
        vals = coerce_column(series, "datetime").values
        out = np.full(len(vals), np.nan)
        ok = np.asarray(vals.notna(), dtype=bool)
        out[ok] = vals[ok].astype("int64").to_numpy() / 1e9
        return out
    return coerce_column(series, ltype).values.to_numpy(dtype="float64")


def _labels(series: pd.Series, ltype: str) -> pd.Series:
    vals = coerce_column(series, "boolean" if ltype == "boolean" else "string").values
    if pd.api.types.infer_dtype(vals, skipna=True) in ("string", "empty"):  # str(v) is v: no per-value call
        return vals.where(vals.notna(), _MISSING)
    return vals.map(lambda v: _MISSING if v is None else str(v))


@dataclass
class ReferenceProfile:
    """Stored statistics of a trusted reference, keyed by its digest.

    >>> import pandas as pd
    >>> p = ReferenceProfile.from_frame(pd.DataFrame({"x": range(100)}), digest="sha256:" + "0" * 64)
    >>> compare(pd.DataFrame({"x": range(50, 150)}), p).drifted_columns
    ['x']
    """

    digest: str
    rows: int
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, *, digest: str | None = None, n_quantiles: int = 1000, psi_bins: int = 10,
        max_categories: int = 1000,
    ) -> ReferenceProfile:
        """Summarise a reference frame (one pass per column)."""
        names = [str(c) for c in frame.columns]
        if len(frame) == 0 or not names:
            raise ChecksDataError("data:empty_reference", "the drift reference has no rows or no columns")
        if len(set(names)) != len(names):
            raise ChecksDataError("data:duplicate_column", f"the drift reference has duplicate columns {names}")
        prof = cls(digest=digest or frame_digest(frame), rows=int(len(frame)))
        for col, name in zip(frame.columns, names, strict=True):
            s = frame[col]
            ltype = logical_type_of(s)
            if ltype in ("object", "datetime"):
                continue  # nested or opaque values, or time itself: no distribution to compare
            if ltype in ("integer", "float", "datetime", "duration"):
                x = _numeric(s, ltype)
                fin = np.sort(x[np.isfinite(x)])
                entry: dict[str, Any] = {"kind": "numeric", "type": ltype, "n": int(fin.size),
                                         "null_fraction": float(np.isnan(x).mean())}
                if fin.size:
                    probs = (np.arange(n_quantiles) + 0.5) / n_quantiles
                    entry["quantiles"] = np.quantile(fin, probs, method="inverted_cdf").tolist()
                    edges = np.unique(np.quantile(fin, np.arange(1, psi_bins) / psi_bins))
                    entry["psi_edges"] = edges.tolist()
                    entry["psi_props"] = _bin_props(fin, edges).tolist()
                prof.columns[name] = entry
            else:
                lab = _labels(s, ltype)
                counts = lab.value_counts()
                top = counts.iloc[:max_categories]
                freqs = {str(k): int(v) / len(lab) for k, v in top.items()}
                rest = int(counts.iloc[max_categories:].sum())
                prof.columns[name] = {"kind": "categorical", "type": ltype, "n": int(len(lab)), "freqs": freqs,
                                      "other": rest / len(lab)}
        return prof

    def to_dict(self) -> dict[str, Any]:
        return {"format": _FORMAT, "digest": self.digest, "rows": self.rows, "columns": self.columns}

    def save(self, path: str | Path) -> Path:
        """Write JSON to ``path``; a directory gets ``<hex digest>.json`` inside it. Returns the file path."""
        p = Path(path)
        if p.is_dir():
            p = p / f"{self.digest.split(':')[-1]}.json"
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), allow_nan=True), encoding="utf-8")
        tmp.replace(p)
        return p

    @classmethod
    def load(cls, path: str | Path, *, digest: str | None = None) -> ReferenceProfile:
        """Read a stored profile (a file, or a directory plus ``digest``); checks the digest when given."""
        p = Path(path)
        if p.is_dir():
            if digest is None:
                raise ChecksConfigError("config:profile", f"{p}: a directory needs the reference digest to load from")
            p = p / f"{digest.split(':')[-1]}.json"
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            prof = cls(digest=str(doc["digest"]), rows=int(doc["rows"]), columns=dict(doc["columns"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ChecksDataError("data:profile_unreadable", f"{p}: not a readable reference profile ({exc})") from None
        if digest is not None and prof.digest != digest:
            raise ChecksDataError("data:profile_digest", f"{p}: profile is for {prof.digest}, not {digest}")
        return prof

    @classmethod
    def load_or_build(
        cls, directory: str | Path, digest: str, build: Callable[[], pd.DataFrame], **kwargs: Any
    ) -> ReferenceProfile:
        """The stored profile of ``digest`` in ``directory``; when absent, ``build()`` the frame once and store it."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if (d / f"{digest.split(':')[-1]}.json").is_file():
            return cls.load(d, digest=digest)
        prof = cls.from_frame(build(), digest=digest, **kwargs)
        prof.save(d)
        return prof


def _bin_props(x_sorted: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of the (sorted) values in each bin: at or below ``edges[0]``, in ``(edges[i-1], edges[i]]``, and
    above the last edge."""
    at_or_below = np.searchsorted(x_sorted, edges, side="right")
    counts = np.diff(np.concatenate([[0], at_or_below, [x_sorted.size]])).astype("float64")
    return counts / max(x_sorted.size, 1)


def ks_from_sketch(quantiles: np.ndarray, batch: np.ndarray, *, presorted: bool = False) -> float:
    """sup |F_ref - F_batch| with F_ref(t) = #(sketch <= t) / len(sketch); exact at every jump of either ECDF.

    Both ECDFs are right-continuous steps and F_ref is constant between the sketch's distinct values
    u_0 < ... < u_{K-1}, while F_batch only grows there: on each gap the sup is at its two ends, so it is
    enough to count the batch values at or below, and below, each u_k (one sort of the batch and 2K binary
    searches into it; the union of both samples is never built).

    >>> ks_from_sketch(np.array([0.0, 1.0, 2.0, 3.0]), np.array([2.0, 3.0]))
    0.5
    """
    u, per_value = np.unique(np.asarray(quantiles, dtype="float64"), return_counts=True)
    b = np.asarray(batch, dtype="float64").ravel()
    if b.size == 0 or u.size == 0:
        return math.nan
    f_ref = np.cumsum(per_value) / per_value.sum()  # F_ref(u_k)
    b = b if presorted else np.sort(b)
    at_or_below, below = np.searchsorted(b, u, side="right"), np.searchsorted(b, u, side="left")
    n = b.size
    gaps = [below[:1] / n,  # t < u_0: F_ref is 0
            np.abs(f_ref - at_or_below / n),  # at each u_k (t >= u_{K-1}: F_ref is 1)
            np.abs(f_ref[:-1] - below[1:] / n)]  # just before u_{k+1}
    return float(max(float(np.max(g)) for g in gaps if g.size))


def psi(ref_props: np.ndarray, bat_props: np.ndarray) -> float:
    r = np.clip(np.asarray(ref_props, dtype="float64"), _EPS, None)
    b = np.clip(np.asarray(bat_props, dtype="float64"), _EPS, None)
    return float(np.sum((b - r) * np.log(b / r)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return float(math.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


@dataclass
class DriftResult:
    """``table``: one row per (column, test) with ``column, test, statistic, threshold, drifted``."""

    table: pd.DataFrame

    @property
    def drifted_columns(self) -> list[str]:
        return sorted(set(self.table.loc[self.table["drifted"], "column"]))


def _thresholds(config: Mapping[str, Any] | None, column: str) -> dict[str, Any]:
    conf = dict(config or {})
    unknown = set(conf) - {"ks", "psi", "js", "columns"}
    if unknown:
        raise ChecksConfigError("config:drift_thresholds", f"unknown drift threshold key(s) {sorted(unknown)}")
    out = {**DEFAULT_THRESHOLDS, **{k: v for k, v in conf.items() if k != "columns"}}
    out.update((conf.get("columns") or {}).get(column, {}))
    for k, v in out.items():
        if k not in DEFAULT_THRESHOLDS or not (v == "auto" or isinstance(v, int | float) and v >= 0):
            raise ChecksConfigError("config:drift_thresholds", f"drift threshold {k}={v!r} for column {column!r} is invalid")
    return out


def _chi2_99(dof: int) -> float:
    """The 0.99 quantile of chi-square with ``dof`` degrees of freedom (0 for no freedom)."""
    if dof < 1:
        return 0.0
    from scipy.stats import chi2

    return float(chi2.ppf(0.99, dof))


def _auto(value: Any, test: str, critical: float) -> float:
    """The threshold of ``test``: the configured number, or for ``"auto"`` the larger of its floor and ``critical``."""
    return float(max(_FLOORS[test], critical)) if value == "auto" else float(value)


def compare(
    batch: pd.DataFrame, profile: ReferenceProfile, *, thresholds: Mapping[str, Any] | None = None
) -> DriftResult:
    """Compare every profiled column of ``batch`` with the reference profile."""
    names = [str(c) for c in batch.columns]
    first = {n: i for i, n in reversed(list(enumerate(names)))}
    return compare_columns(
        lambda name: batch.iloc[:, first[name]] if name in first else None, profile, thresholds=thresholds
    )


def compare_columns(
    column: Callable[[str], pd.Series | None], profile: ReferenceProfile, *,
    thresholds: Mapping[str, Any] | None = None,
) -> DriftResult:
    """``compare`` with the batch given one column at a time (``column(name)``, None when absent), so a large
    batch is compared in the memory of one column."""
    rows: list[tuple[str, str, float, float, bool]] = []
    for name, entry in profile.columns.items():
        th = _thresholds(thresholds, name)
        s = column(name)
        if s is None:
            rows.append((name, "missing", math.nan, math.nan, True))
            continue
        if entry["kind"] == "numeric":
            x = _numeric(s, entry["type"])
            x = np.sort(x[~np.isnan(x)])  # sorted once for the KS statistic and the PSI bins
            if x.size < MIN_VALUES and (x.size or len(s) < MIN_VALUES):
                rows.append((name, "too_few_values", float(x.size), float(MIN_VALUES), False))
                continue
            if x.size == 0 or "quantiles" not in entry:
                rows.append((name, "ks", math.nan, math.nan, x.size != 0 or "quantiles" in entry))
                continue
            ks = ks_from_sketch(np.asarray(entry["quantiles"]), x, presorted=True)
            inv = 1 / max(entry["n"], 1) + 1 / x.size
            ks_t = _auto(th["ks"], "ks", 1.63 * math.sqrt(inv))
            rows.append((name, "ks", ks, ks_t, ks > ks_t))
            bins = len(entry["psi_props"])
            if x.size >= 5 * bins:  # Cochran's rule: below 5 expected values a bin, PSI is empty-bin noise
                value = psi(np.asarray(entry["psi_props"]), _bin_props(x, np.asarray(entry["psi_edges"])))
                psi_t = _auto(th["psi"], "psi", _chi2_99(bins - 1) * inv)
                rows.append((name, "psi", value, psi_t, value > psi_t))
        else:
            if len(s) < MIN_VALUES:
                rows.append((name, "too_few_values", float(len(s)), float(MIN_VALUES), False))
                continue
            lab = _labels(s, entry["type"])
            counts = lab.value_counts()
            freqs: dict[str, float] = entry["freqs"]
            keys = list(freqs)
            ref = np.array([freqs[k] for k in keys] + [entry["other"], 0.0])
            known = counts.reindex(keys, fill_value=0).to_numpy(dtype="float64")
            extra = float(counts.sum() - known.sum())
            other = extra if entry["other"] > 0 else 0.0
            bat = np.concatenate([known, [other, extra - other]])
            value = js_distance(ref, bat) if bat.sum() > 0 else math.nan
            seen = int(np.count_nonzero((ref > 0) | (bat > 0)))
            inv = 1 / max(entry["n"], 1) + 1 / max(bat.sum(), 1)
            js_t = _auto(th["js"], "js", math.sqrt(_chi2_99(seen - 1) * inv / (8 * math.log(2))))
            rows.append((name, "js", value, js_t, not value <= js_t))
    table = pd.DataFrame(rows, columns=["column", "test", "statistic", "threshold", "drifted"])
    table["drifted"] = table["drifted"].astype(bool)
    return DriftResult(table)
