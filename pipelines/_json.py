"""Strict JSON for every document trainguard writes (``--json`` output, summary.json): never a bare ``NaN``.

Python's ``json`` writes ``NaN``, ``Infinity`` and ``-Infinity`` by default, which are not JSON (RFC 8259) and break
strict parsers (JavaScript's ``JSON.parse``, ``jq``...). Here a non-finite float is ``null`` (a statistic that could
not be computed, e.g. drift of a column that is entirely null), NumPy scalars are their Python values, pandas'
missing values are ``null``, and the result is dumped with ``allow_nan=False``. Example::

    >>> from pipelines._json import dumps
    >>> dumps({"statistic": float("nan"), "n": 2}, sort_keys=True)
    '{"n": 2, "statistic": null}'
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["jsonable", "dumps"]


def jsonable(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (dicts, lists and tuples walked; tuples become lists)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _default(value: Any) -> Any:
    """Values ``json`` does not know: NumPy scalars and arrays as Python values, pandas' NA/NaT as null, sets as
    sorted lists, anything else as its text (as before)."""
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    tolist = getattr(value, "tolist", None)  # NumPy scalars and arrays (np.float32 is not a float)
    if callable(tolist):
        try:
            return jsonable(tolist())
        except (TypeError, ValueError):
            pass
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=str)
    return str(value)


def dumps(document: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``document`` (``json.dumps`` keyword arguments pass through)."""
    return json.dumps(jsonable(document), allow_nan=False, default=_default, **kwargs)
