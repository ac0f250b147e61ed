"""RowScorer's fit-input rules and its description for the ledger (kept apart to keep ``scoring`` short)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from checks.errors import ChecksConfigError

if TYPE_CHECKING:  # pragma: no cover
    from checks.scoring import RowScorer

__all__ = ["min_reference_rows", "require_class_labels", "describe_scorer"]


def min_reference_rows(fp_budget: float) -> int:
    """The fewest reference rows that can hold ``fp_budget``: 1 / fp_budget, and at least 50."""
    return max(50, math.ceil(1.0 / fp_budget))


def require_class_labels(y: pd.Series, name: str) -> None:
    """Refuse a continuous (regression) target as a label column: every value would be its own class."""
    if pd.api.types.is_bool_dtype(y.dtype) or not pd.api.types.is_numeric_dtype(y.dtype):
        return
    v = pd.to_numeric(y, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    v = v[np.isfinite(v)]
    distinct, counts = np.unique(v, return_counts=True)
    fractional = bool(np.any(distinct != np.round(distinct)))
    if len(distinct) > 20 and (fractional or float(np.median(counts)) < 5):
        what = "non-integer values" if fractional else "values, most of them seen fewer than 5 times"
        raise ChecksConfigError(
            "scoring:continuous_label",
            f"label column {name!r} holds {len(distinct)} distinct {what} (e.g. {distinct[1]:g}): it looks "
            "continuous; label checks are for class labels, so leave --label-column out for a regression target")


def describe_scorer(scorer: RowScorer) -> dict[str, Any]:
    """``RowScorer.describe``: parameters, fitted detectors with their parameters, library versions, threshold."""
    from importlib.metadata import PackageNotFoundError, version

    from checks.scoring import BATCH_DETECTORS

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    def params(obj: Any) -> dict[str, Any]:
        got = obj.get_params() if hasattr(obj, "get_params") else {}
        return {k: v if isinstance(v, bool | int | float | str | type(None)) else repr(v)
                for k, v in sorted(got.items())}

    out: dict[str, Any] = {
        "class": "checks.scoring.RowScorer",
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in scorer.get_params().items()},
        "versions": {n: ver(n) for n in ("trainguard", "pyod", "scikit-learn", "numpy", "pandas")},
    }
    if hasattr(scorer, "models_"):
        out["row_detectors"] = {d: {"class": type(m).__name__, "params": params(m)}
                                for d, m in scorer.models_.items()}
        out["batch_detectors"] = [d for d in scorer.detectors if d in BATCH_DETECTORS]
        out["label_model"] = None if scorer.label_model_ is None else {
            "class": type(scorer.label_model_).__name__, "params": params(scorer.label_model_)}
        dens = getattr(scorer, "density_", None)
        out["density"] = None if dens is None else {
            "class": type(dens).__name__, "params": params(dens), "active": bool(dens.active_),
            "pool": {"reference": int(getattr(dens, "n_ref_", 0)), "batch": int(getattr(dens, "n_batch_", 0))}}
        out["fitted_on"] = {"reference": bool(scorer.has_reference_), "rows": int(len(scorer.reference_X_)),
                            "features": list(scorer.preprocessor_.feature_names_)}
        out["threshold"] = float(scorer.threshold_)
    return out
