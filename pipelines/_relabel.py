"""Label repair: the class-confusion table of a batch, and relabelling instead of dropping (``[policy] relabel``).

The scorer writes two columns when there is a label column (``checks.detectors.label``): ``label_quality``, the
trusted view's probability of the row's label, and ``suggested_label``, the class that view is confident of where
it differs from the given label (null elsewhere). From them:

- ``confusion``: how many rows of each given label the trusted view puts in another class, i.e. which labels were
  turned into which (confident learning's off-diagonal counts), with how many of them were flagged;
- ``plan_relabel``: the quarantined rows whose every reason is about the label (``LABEL_ONLY``) and that have a
  suggestion are released into clean.parquet with the suggested label; the rest stay quarantined. The summary and
  the ledger entry list every change (``from``, ``to``, ``rows``). The policy's share check counts them as flagged
  all the same: relabelling never turns a rejected batch into an approved one.

Example::

    >>> import numpy as np, pandas as pd, pyarrow as pa
    >>> scores = pd.DataFrame({"row": [0, 1, 2], "flagged": [False, True, True],
    ...                        "reasons": [[], ["label:inconsistent"], ["outlier:iforest"]],
    ...                        "suggested_label": [None, "cat", "cat"]})
    >>> plan = plan_relabel(scores, np.array([1, 2]), pa.array(["cat", "dog", "dog"]), "animal")
    >>> plan.rows.tolist(), plan.changes
    ([1], [{'from': 'dog', 'to': 'cat', 'rows': 1}])
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["LABEL_ONLY", "Relabel", "confusion", "plan_relabel", "suggestions"]

# reasons that say nothing but "this label looks wrong"; one of the first four must be among a row's reasons
LABEL_EVIDENCE = frozenset({"label:inconsistent", "label:knn_disagreement", "label:prior_shift",
                            "duplicate:conflicting_label"})
LABEL_ONLY = LABEL_EVIDENCE | {"duplicate:exact", "score:adaptive"}
MAX_CONFUSION_ROWS = 50  # pairs listed in summary.json (most frequent first)


@dataclass(frozen=True)
class Relabel:
    """Rows released with a corrected label: source rows (sorted), their new labels (typed as the column) and
    the changes by pair of labels, most frequent first."""

    column: str
    rows: np.ndarray
    values: pa.Array
    changes: list[dict[str, Any]]

    def record(self) -> dict[str, Any]:
        """What summary.json and the ledger entry say about it."""
        return {"column": self.column, "rows": int(len(self.rows)), "changes": self.changes}


def suggestions(scores: pd.DataFrame) -> np.ndarray:
    """Rows (positions) that carry a suggested label."""
    if "suggested_label" not in scores.columns:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(scores["suggested_label"].notna().to_numpy(dtype=bool))


def _text(value: Any) -> str:
    return "<NA>" if pd.isna(value) else str(value)


def confusion(scores: pd.DataFrame, labels: pa.Array) -> list[dict[str, Any]]:
    """Given label -> suggested label, with the number of rows and how many of them are flagged (most first).

    ``labels``: the batch's label column, one value per row of ``scores``."""
    rows = suggestions(scores)
    if len(rows) == 0:
        return []
    given = labels.take(pa.array(rows)).to_pylist()
    suggested = scores["suggested_label"].to_numpy(dtype=object)[rows]
    flagged = scores["flagged"].to_numpy(dtype=bool)[rows]
    total: Counter[tuple[str, str]] = Counter()
    hit: Counter[tuple[str, str]] = Counter()
    for g, s, f in zip(given, suggested, flagged, strict=True):
        pair = (_text(g), _text(s))
        total[pair] += 1
        hit[pair] += int(f)
    ordered = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CONFUSION_ROWS]
    return [{"given": g, "suggested": s, "rows": n, "flagged": hit[(g, s)]} for (g, s), n in ordered]


def plan_relabel(scores: pd.DataFrame, quarantined: np.ndarray, labels: pa.Array, column: str) -> Relabel | None:
    """The quarantined rows to release with their suggested label (None when there are none).

    A row qualifies when all its reasons are in ``LABEL_ONLY``, one of them is label evidence, and it has a
    suggestion that can be written as a value of the column's type (else it stays quarantined: fail closed)."""
    if "suggested_label" not in scores.columns or len(quarantined) == 0:
        return None
    position = pd.Index(scores["row"].to_numpy(dtype=np.int64))
    at = position.get_indexer(np.asarray(quarantined, dtype=np.int64))
    at = at[at >= 0]
    suggested = scores["suggested_label"].to_numpy(dtype=object)
    reasons = scores["reasons"].to_numpy(dtype=object)
    chosen = [int(i) for i in at if pd.notna(suggested[i]) and _label_only(reasons[i])]
    if not chosen:
        return None
    rows = scores["row"].to_numpy(dtype=np.int64)[chosen]
    try:
        values = pa.array([suggested[i] for i in chosen], from_pandas=True).cast(labels.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    order = np.argsort(rows, kind="stable")
    rows, values = rows[order], values.take(pa.array(order))
    given = labels.take(pa.array(rows)).to_pylist()
    changes = Counter((_text(g), _text(v)) for g, v in zip(given, values.to_pylist(), strict=True))
    listed = [{"from": g, "to": t, "rows": n} for (g, t), n in sorted(changes.items(), key=lambda kv: (-kv[1], kv[0]))]
    return Relabel(column=column, rows=rows, values=values, changes=listed)


def _label_only(codes: Any) -> bool:
    found = [str(c) for c in (codes if codes is not None else [])]
    return bool(found) and all(c in LABEL_ONLY for c in found) and any(c in LABEL_EVIDENCE for c in found)
