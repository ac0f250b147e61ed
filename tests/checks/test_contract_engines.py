"""The vectorised path equals Great Expectations, and contracts work on real data (PMLB, data_samples/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from checks._frames import read_frame
from checks.contract import Contract, infer_contract, validate

PMLB = ["adult", "credit-g", "nursery", "letter", "pendigits", "spambase", "optdigits", "krkopt"]


def _split(shared: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(shared / "data" / "pmlb" / f"{name}.csv.gz", sep="\t")
    if len(df) > 12_000:  # keep the test budget: a seeded 12k-row sample of the big ones
        df = df.sample(12_000, random_state=0)
    perm = np.random.default_rng(0).permutation(len(df))
    half = len(df) // 2
    return df.iloc[perm[:half]].reset_index(drop=True), df.iloc[perm[half:]].reset_index(drop=True)


def _corrupt(batch: pd.DataFrame, contract: Contract, seed: int) -> tuple[pd.DataFrame, dict[int, str]]:
    """Corrupt 12 rows in known ways; returns the frame and row -> expected reason."""
    rng = np.random.default_rng(seed)
    bad = batch.copy()
    for col in bad.columns:
        bad[col] = bad[col].astype("float64") if col != contract.label_column else bad[col].astype(object)
    rows = rng.choice(len(bad), 12, replace=False)
    cols = [c for c in contract.columns if c != contract.label_column]
    truth: dict[int, str] = {}
    for i, row in enumerate(rows):
        col = cols[int(rng.integers(len(cols)))]
        spec = contract.columns[col]
        kind = i % 4
        if kind == 0:
            bad.loc[row, col] = np.nan
            truth[int(row)] = f"expect:not_null:{col}"
        elif kind == 1:
            bad.loc[row, col] = float(spec.max) + 1e6  # type: ignore[arg-type]
            truth[int(row)] = f"expect:in_range:{col}"
        elif kind == 2:
            bad.loc[row, col] = -np.inf
            truth[int(row)] = f"expect:in_range:{col}"
        else:
            bad.loc[row, contract.label_column] = "not-a-class"
            truth[int(row)] = f"expect:type:{contract.label_column}"
    return bad, truth


@pytest.mark.parametrize("name", PMLB)
def test_pmlb_split_passes_and_corruption_is_found(shared_dir: Path, name: str) -> None:
    ref, other = _split(shared_dir, name)
    contract = infer_contract(ref, label_column="class")
    assert validate(ref, contract).success, "the reference passes its own contract"
    clean = validate(other, contract)
    false_rows = len(clean.row_reasons())
    assert false_rows <= 0.01 * len(other), f"{name}: {false_rows} false failures on the clean half"
    bad, truth = _corrupt(other, contract, seed=len(name))
    auto = validate(bad, contract, engine="auto")
    gx = validate(bad, contract, engine="gx")
    pd.testing.assert_frame_equal(auto.failures, gx.failures)  # the fast path equals GX on real data
    reasons = auto.row_reasons()
    for row, reason in truth.items():
        assert reason in reasons.get(row, []), f"{name}: row {row} should fail {reason}"
    assert set(reasons) - set(truth) <= set(clean.row_reasons())


def test_data_samples_credit(data_samples: Path) -> None:
    credit = data_samples / "credit"
    if not (credit / "reference.parquet").is_file():
        pytest.skip("data_samples/credit is not generated yet")
    contract = infer_contract(read_frame(credit / "reference.parquet"), label_column="class", source="credit")
    assert contract.columns["purpose"].allowed and contract.classes == [0, 1]
    assert validate(read_frame(credit / "batch_clean.csv"), contract).success
    poisoned = read_frame(credit / "batch_poisoned.parquet")
    truth = pd.read_csv(credit / "batch_poisoned.truth.csv", keep_default_na=False)
    auto, gx = validate(poisoned, contract), validate(poisoned, contract, engine="gx")
    pd.testing.assert_frame_equal(auto.failures, gx.failures)
    flagged = auto.row_reasons()
    contract_kinds = truth[truth["kind"].isin(["null", "out_of_range", "unseen_category"])]
    assert len(contract_kinds) == 6
    for row, kind in zip(contract_kinds["row"], contract_kinds["kind"], strict=True):
        assert row in flagged, f"row {row} ({kind}) should fail the contract"
    clean_rows = set(truth.loc[~truth["is_poison"].astype(str).str.lower().eq("true"), "row"])
    assert len(set(flagged) & clean_rows) <= 1
    multi = validate(read_frame(credit / "batch_multisource.csv"), contract)
    assert multi.batch_failures["reason"].tolist() == ["schema:extra_column:source"]
