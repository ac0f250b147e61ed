"""The decision: which rows are quarantined and whether the batch is approved or rejected.

Inputs are the tables the checks produce (row scores, contract failures, drift table); the output is a
``Decision`` whose reasons are stable codes with the numbers that triggered them. Example::

    >>> import pandas as pd
    >>> from pipelines.config import Policy
    >>> from pipelines.policy import decide
    >>> scores = pd.DataFrame({"row": [0, 1], "score": [0.1, 0.9], "flagged": [False, True],
    ...                        "reasons": [[], ["outlier:iforest"]]})
    >>> decide(scores, Policy(max_quarantined_share=0.6)).verdict
    'approved'
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from pipelines.config import Policy

__all__ = ["Decision", "decide", "release_relabelled", "failure_kind", "FAILURE_COLUMNS", "DRIFT_COLUMNS"]

FAILURE_COLUMNS = ["check", "column", "row", "value", "reason"]
DRIFT_COLUMNS = ["column", "test", "statistic", "threshold", "drifted"]


@dataclass(frozen=True)
class Decision:
    """Verdict, quarantined rows (0-based source rows) and the reasons, most important first; ``relabelled``:
    flagged rows released with a corrected label (``release_relabelled``), never among ``quarantined``."""

    verdict: str
    quarantined: np.ndarray
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, dict[str, object]] = field(default_factory=dict)
    relabelled: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def approved(self) -> bool:
        return self.verdict == "approved"


def decide(scores: pd.DataFrame, policy: Policy, *, failures: pd.DataFrame | None = None,
           drift: pd.DataFrame | None = None) -> Decision:
    """Apply ``policy`` to the row scores, contract failures and drift table of one batch."""
    rows = len(scores)
    failures = failures if failures is not None else pd.DataFrame(columns=FAILURE_COLUMNS)
    drift = drift if drift is not None else pd.DataFrame(columns=DRIFT_COLUMNS)
    flagged = scores["flagged"].to_numpy(dtype=bool)
    quarantined = scores["row"].to_numpy(dtype=np.int64)[flagged] if policy.quarantine_flagged \
        else np.empty(0, dtype=np.int64)
    reasons: list[str] = []
    checks: dict[str, dict[str, object]] = {}

    share = len(quarantined) / rows if rows else 1.0
    ok = share <= policy.max_quarantined_share
    checks["quarantine"] = {"passed": ok, "quarantined": int(len(quarantined)), "rows": rows,
                            "share": round(share, 6), "max_share": policy.max_quarantined_share}
    if not ok:
        reasons.append(f"policy:quarantined_share {share:.3f} > {policy.max_quarantined_share:.3f}")

    kind_of = failures["reason"].astype(str).map(failure_kind) if len(failures) else pd.Series([], dtype=str)
    batch_level = failures["row"].isna() if len(failures) else pd.Series([], dtype=bool)
    kinds = sorted(set(kind_of))
    blocking = sorted(set(kind_of[kind_of.isin(policy.reject_on_contract) | batch_level]))
    checks["contract"] = {"passed": not blocking, "failures": int(len(failures)),
                          "batch_failures": int(batch_level.sum()), "kinds": kinds, "blocking": blocking}
    for kind in blocking:
        cols = sorted({str(c) for c in failures.loc[kind_of == kind, "column"].dropna()})
        reasons.append(f"policy:contract {kind}" + (f" ({', '.join(cols[:5])})" if cols else ""))

    # the drift table may hold several tests per column; a column drifted when any of its tests did
    compared = int(drift["column"].nunique()) if len(drift) else 0
    drifted = int(drift.loc[drift["drifted"].astype(bool), "column"].nunique()) if compared else 0
    dshare = drifted / compared if compared else 0.0
    dok = dshare <= policy.max_drift_share
    checks["drift"] = {"passed": dok, "drifted": drifted, "compared": compared, "share": round(dshare, 6),
                       "max_share": policy.max_drift_share}
    if not dok:
        cols = sorted(set(drift.loc[drift["drifted"].astype(bool), "column"].astype(str)))
        reasons.append(f"policy:drift {drifted}/{compared} columns ({', '.join(cols[:5])})")

    if rows < policy.min_rows:
        reasons.append(f"policy:min_rows {rows} < {policy.min_rows}")
    if rows and len(quarantined) == rows:
        reasons.append("policy:no_clean_rows")
    verdict = "rejected" if reasons else "approved"
    if verdict == "approved" and len(quarantined):
        reasons.append(f"quarantined {len(quarantined)} of {rows} rows ({share:.1%}): {_top_reasons(scores)}")
    return Decision(verdict=verdict, quarantined=quarantined, reasons=reasons, checks=checks)


def release_relabelled(decision: Decision, rows: np.ndarray, scores: pd.DataFrame, changes: str) -> Decision:
    """An approved decision whose quarantined ``rows`` are released with corrected labels: they leave
    ``quarantined`` for ``relabelled``, and the reasons say so (``changes``: e.g. ``"3 -> 8 x4"``). The checks
    are unchanged: the share the policy compared still counts them as flagged."""
    if not decision.approved or len(rows) == 0:
        return decision
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    left = np.setdiff1d(decision.quarantined, rows)
    total = len(scores)
    reasons = [r for r in decision.reasons if not r.startswith("quarantined ")]
    if len(left):
        rest = scores.loc[scores["row"].isin(left)]
        reasons.append(f"quarantined {len(left)} of {total} rows ({len(left) / total:.1%}): {_top_reasons(rest)}")
    reasons.append(f"relabelled {len(rows)} of {total} rows ({len(rows) / total:.1%}): {changes}")
    return replace(decision, quarantined=left, relabelled=rows, reasons=reasons)


def failure_kind(reason: str) -> str:
    """The kind of a contract failure: its reason code without the column (``expect:in_range:age`` ->
    ``expect:in_range``)."""
    return ":".join(str(reason).split(":")[:2])


def _top_reasons(scores: pd.DataFrame, k: int = 3) -> str:
    flagged = scores.loc[scores["flagged"].astype(bool), "reasons"]
    counts: dict[str, int] = {}
    for rs in flagged:
        for r in list(rs) if rs is not None else []:
            counts[str(r)] = counts.get(str(r), 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return ", ".join(f"{r} x{n}" for r, n in top) or "flagged"
