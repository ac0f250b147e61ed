"""pipelines.policy: quarantine, rejection by share, drift and contract kinds."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from pipelines.config import Policy
from pipelines.policy import decide, failure_kind


def _scores(flags: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"row": np.arange(len(flags), dtype=np.int64), "score": [0.9 if f else 0.1 for f in flags],
                         "flagged": flags, "reasons": [["outlier:iforest"] if f else [] for f in flags]})


def _failures(rows: list[tuple[str, str | None, int | None, str]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["check", "column", "row", "reason"])
    df["value"] = None
    df["row"] = df["row"].astype("Int64")
    return df[["check", "column", "row", "value", "reason"]]


@given(flags=st.lists(st.booleans(), min_size=1, max_size=200), limit=st.floats(0, 1))
def test_rejected_iff_share_above_limit(flags: list[bool], limit: float) -> None:
    d = decide(_scores(flags), Policy(max_quarantined_share=limit))
    share = sum(flags) / len(flags)
    too_many = share > limit or all(flags)
    assert d.verdict == ("rejected" if too_many else "approved")
    assert sorted(d.quarantined.tolist()) == [i for i, f in enumerate(flags) if f]


def test_quarantine_can_be_switched_off() -> None:
    d = decide(_scores([True, False, False]), Policy(quarantine_flagged=False))
    assert d.approved and len(d.quarantined) == 0


def test_contract_kind_rejects_and_row_level_does_not() -> None:
    fails = _failures([("expect_column_values_to_not_be_null", "age", 1, "expect:not_null:age")])
    assert decide(_scores([False, True, False, False]), Policy(max_quarantined_share=0.5), failures=fails).approved
    d = decide(_scores([False, True, False, False]),
               Policy(max_quarantined_share=0.5, reject_on_contract=("expect:not_null",)), failures=fails)
    assert d.verdict == "rejected"
    assert d.reasons[0].startswith("policy:contract expect:not_null (age)")


def test_batch_level_failure_always_rejects() -> None:
    fails = _failures([("expect_table_columns_to_match_set", "income", None, "schema:missing_column:income")])
    d = decide(_scores([False, False]), Policy(reject_on_contract=()), failures=fails)
    assert d.verdict == "rejected"
    assert d.checks["contract"]["blocking"] == ["schema:missing_column"]


def test_drift_share() -> None:
    drift = pd.DataFrame({"column": ["a", "b", "c", "d"], "test": "ks", "statistic": 0.5, "threshold": 0.1,
                          "drifted": [True, True, True, False]})
    assert decide(_scores([False]), Policy(max_drift_share=0.5), drift=drift).verdict == "rejected"
    assert decide(_scores([False]), Policy(max_drift_share=0.75), drift=drift).verdict == "approved"


def test_failure_kind() -> None:
    assert failure_kind("expect:in_range:age") == "expect:in_range"
    assert failure_kind("schema:empty_batch") == "schema:empty_batch"
    assert failure_kind("expect:in_set:a:b") == "expect:in_set"
