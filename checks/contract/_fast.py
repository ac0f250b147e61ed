"""Vectorised evaluation of the built-in contract rules, written to match GX 1.x's pandas metrics exactly.

GX (``great_expectations/expectations/metrics/column_map_metrics``) evaluates, on the non-null values only:
not_null ``~isnull()``; between ``min <= x <= max``; in_set ``isin(value_set)``; lengths
``astype(str).str.len()`` between; regex ``astype(str).str.contains(regex)``. The same expressions are used
here; ``tests/checks/test_contract_engines.py`` checks that both paths give identical failure tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from checks.contract._suite import Rule


def failing_mask(rule: Rule, values: pd.Series) -> np.ndarray:
    """Boolean mask of the rows of ``values`` (a coerced column) that violate ``rule``."""
    isnull = np.asarray(values.isna(), dtype=bool)
    if rule.kind == "not_null":
        return isnull
    notnull = ~isnull
    kw = rule.kwargs
    if rule.kind == "in_range":
        ok = np.ones(len(values), dtype=bool)
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            if kw.get("min_value") is not None:
                ok &= np.asarray(values >= pd.Timestamp(kw["min_value"]), dtype=bool)
            if kw.get("max_value") is not None:
                ok &= np.asarray(values <= pd.Timestamp(kw["max_value"]), dtype=bool)
            return notnull & ~ok
        x = values.to_numpy(dtype="float64", na_value=np.nan) if values.dtype != object else values.to_numpy()
        with np.errstate(invalid="ignore"):
            if kw.get("min_value") is not None:
                ok &= x >= kw["min_value"]
            if kw.get("max_value") is not None:
                ok &= x <= kw["max_value"]
        return notnull & ~ok
    if rule.kind in ("in_set", "label_class"):
        return notnull & ~np.asarray(values.isin(kw["value_set"]), dtype=bool)
    if rule.kind == "length":
        sub = values[notnull]
        lengths = sub.astype(str).str.len().to_numpy()
        ok = np.ones(len(sub), dtype=bool)
        if kw.get("min_value") is not None:
            ok &= lengths >= kw["min_value"]
        if kw.get("max_value") is not None:
            ok &= lengths <= kw["max_value"]
        out = np.zeros(len(values), dtype=bool)
        out[np.flatnonzero(notnull)[~ok]] = True
        return out
    if rule.kind == "pattern":
        sub = values[notnull]
        ok = np.asarray(sub.astype(str).str.contains(kw["regex"], regex=True), dtype=bool)
        out = np.zeros(len(values), dtype=bool)
        out[np.flatnonzero(notnull)[~ok]] = True
        return out
    raise ValueError(f"no vectorised path for rule kind {rule.kind!r}")


FAST_KINDS = frozenset({"not_null", "in_range", "in_set", "label_class", "length", "pattern"})
