"""Property tests: any numeric/categorical frame (NaN, inf, pandas/Arrow dtypes) gets one score row per input
row, scores in [0, 1], and the same scores again with the same seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks.scoring import RowScorer, min_reference_rows

floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=-5, max_value=5),
    st.sampled_from([0.0, 1.0, np.nan]),
)
cats = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "zz", ""]))


@st.composite
def frames(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_ref = draw(st.integers(2, 40))
    n_batch = draw(st.integers(1, 30))
    n_num = draw(st.integers(0, 3))
    n_cat = draw(st.integers(0 if n_num else 1, 2))
    label = draw(st.booleans())
    arrow = draw(st.booleans())

    def make(n: int) -> pd.DataFrame:
        cols: dict[str, object] = {}
        for j in range(n_num):
            vals = draw(st.lists(floats, min_size=n, max_size=n))
            cols[f"x{j}"] = pd.array(vals, dtype="float64[pyarrow]" if arrow else "float64")
        for j in range(n_cat):
            vals = draw(st.lists(cats, min_size=n, max_size=n))
            cols[f"c{j}"] = pd.array(vals, dtype="string[pyarrow]" if arrow else "str")
        if label:
            cols["y"] = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=n, max_size=n))
        return pd.DataFrame(cols)

    ref = make(n_ref)  # repeated up to the smallest reference that holds a 1% budget (a smaller one is refused)
    return pd.concat([ref] * -(-min_reference_rows(0.01) // n_ref), ignore_index=True), make(n_batch)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(frames(), st.booleans())
def test_any_frame_gets_bounded_deterministic_scores(data: tuple[pd.DataFrame, pd.DataFrame], with_ref: bool) -> None:
    ref, batch = data
    label = "y" if "y" in batch.columns else None
    detectors = ("iforest", "ecod", "hbos", "knn", "label", "duplicate", "cluster")

    def run() -> pd.DataFrame:
        scorer = RowScorer(label_column=label, detectors=detectors, random_state=5)
        return scorer.fit(ref if with_ref else None, batch).score(batch)

    out = run()
    assert len(out) == len(batch) and out["row"].tolist() == list(range(len(batch)))
    score_cols = [c for c in out.columns if c.startswith("score")]
    values = out[score_cols].to_numpy(dtype=np.float64)
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
    assert (out["reasons"].map(len)[out["flagged"]] > 0).all()
    pd.testing.assert_frame_equal(out, run())


def test_a_reference_too_small_for_the_budget_is_refused() -> None:
    """Found by review: a 1-5 row reference was accepted and flagged most of a clean batch."""
    from checks.errors import ChecksDataError

    ref = pd.DataFrame({"a": np.arange(60.0), "b": np.arange(60.0) % 7})
    with pytest.raises(ChecksDataError, match="at least 100 are needed") as err:
        RowScorer(fp_budget=0.01).fit(ref.head(99))
    assert err.value.code == "scoring:small_reference"
    RowScorer(fp_budget=0.02).fit(ref)  # 50 rows hold a 2% budget
