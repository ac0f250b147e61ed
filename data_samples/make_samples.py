"""Regenerate data_samples/ from the PMLB credit-g dataset (seeded, deterministic).

Run from the project root: ``.venv/bin/python data_samples/make_samples.py [PATH_TO_credit-g.csv.gz]``.
The default input is ``../shared/data/pmlb/credit-g.csv.gz`` (MIT, EpistasisLab/pmlb @ 16cf58a).
See data_samples/README.md for what each file is.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261123
HERE = Path(__file__).resolve().parent
DEFAULT_INPUT = HERE.parent.parent / "shared" / "data" / "pmlb" / "credit-g.csv.gz"
LABEL = "class"
# PMLB stores categories as integer codes; these three become string categories so that the contract has
# categorical sets to check (an "unseen category" is then a visible string, not a plausible integer).
CATEGORICAL = ["checking_status", "purpose", "housing"]


def _load(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t")
    for col in CATEGORICAL:
        df[col] = col + "_" + df[col].astype(int).astype(str)
    return df


def _write(df: pd.DataFrame, stem: Path, formats: tuple[str, ...] = ("csv",)) -> None:
    if "csv" in formats:
        df.to_csv(stem.with_suffix(".csv"), index=False)
    if "parquet" in formats:
        df.to_parquet(stem.with_suffix(".parquet"), index=False)
    if "jsonl" in formats:
        df.to_json(stem.with_suffix(".jsonl"), orient="records", lines=True)


def _poison(base: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the poisoned batch (shuffled) and its ground truth (row, is_poison, kind)."""
    base = base.copy().astype({"age": "float64", "duration": "float64", "credit_amount": "float64"})
    kinds = pd.Series("clean", index=base.index, dtype=object)
    # 1. label flips on 10 existing rows
    flip = rng.choice(base.index, size=10, replace=False)
    base.loc[flip, LABEL] = 1 - base.loc[flip, LABEL]
    kinds.loc[flip] = "label_flip"
    pieces: list[pd.DataFrame] = [base]
    labels: list[str] = list(kinds)
    # 2. backdoor: 10 "bad credit" rows stamped with a rare trigger and relabelled "good"
    bad = base[(base[LABEL] == 0) & (kinds == "clean")]
    bd = bad.sample(n=10, random_state=int(rng.integers(1 << 31))).copy()
    bd["installment_commitment"] = 1.0
    bd["num_dependents"] = 2.0
    bd["own_telephone"] = 1
    bd["credit_amount"] = 4444.0
    bd[LABEL] = 1
    pieces.append(bd)
    labels += ["backdoor"] * len(bd)
    # 3. near-duplicate flood: 3 rows copied 5 times each with +-1% noise and the opposite label
    src = base[kinds == "clean"].sample(n=3, random_state=int(rng.integers(1 << 31)))
    dup = src.loc[src.index.repeat(5)].copy()
    dup["credit_amount"] = (dup["credit_amount"] * rng.uniform(0.99, 1.01, len(dup))).round(0)
    dup[LABEL] = 1 - dup[LABEL]
    pieces.append(dup)
    labels += ["near_duplicate_flip"] * len(dup)
    # 4. out-of-distribution: in-range values in combinations never seen together
    ood = base.sample(n=4, random_state=int(rng.integers(1 << 31))).copy()
    ood["age"] = [19.0, 74.0, 20.0, 75.0]
    ood["duration"] = [72.0, 4.0, 72.0, 60.0]
    ood["credit_amount"] = [18000.0, 17500.0, 15945.0, 18424.0]
    ood["existing_credits"] = 4.0
    ood["installment_commitment"] = 4.0
    ood["num_dependents"] = 2.0
    pieces.append(ood)
    labels += ["ood"] * len(ood)
    # 5. contract violations: nulls, out-of-range values, unseen categories
    bad_rows = base.sample(n=6, random_state=int(rng.integers(1 << 31))).copy()
    bad_rows.iloc[0, bad_rows.columns.get_loc("age")] = np.nan
    bad_rows.iloc[1, bad_rows.columns.get_loc("credit_amount")] = np.nan
    bad_rows.iloc[2, bad_rows.columns.get_loc("age")] = -3.0
    bad_rows.iloc[3, bad_rows.columns.get_loc("duration")] = 999.0
    bad_rows["purpose"] = bad_rows["purpose"].astype(object)
    bad_rows.iloc[4, bad_rows.columns.get_loc("purpose")] = "purpose_99"
    bad_rows.iloc[5, bad_rows.columns.get_loc("housing")] = "housing_7"
    pieces.append(bad_rows)
    labels += ["null", "null", "out_of_range", "out_of_range", "unseen_category", "unseen_category"]

    batch = pd.concat(pieces, ignore_index=True)
    truth = pd.DataFrame({"kind": labels})
    order = rng.permutation(len(batch))
    batch = batch.iloc[order].reset_index(drop=True)
    truth = truth.iloc[order].reset_index(drop=True)
    truth.insert(0, "row", np.arange(len(truth), dtype=np.int64))
    truth.insert(1, "is_poison", truth["kind"] != "clean")
    return batch, truth


def _multisource(base: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three vendors; vendor_c is compromised: half of its labels are flipped."""
    df = base.copy().reset_index(drop=True)
    df["source"] = rng.choice(["vendor_a", "vendor_b", "vendor_c"], size=len(df))
    c_rows = np.flatnonzero(df["source"].to_numpy() == "vendor_c")
    flip = rng.choice(c_rows, size=len(c_rows) // 2, replace=False)
    df.loc[flip, LABEL] = 1 - df.loc[flip, LABEL]
    kind = np.where(np.isin(np.arange(len(df)), flip), "label_flip", "clean")
    truth = pd.DataFrame({"row": np.arange(len(df), dtype=np.int64), "is_poison": kind != "clean",
                          "kind": kind, "source": df["source"]})
    return df, truth


def _bad_inputs(clean: pd.DataFrame, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    header = ",".join(clean.columns)
    good_line = ",".join(str(v) for v in clean.iloc[0].tolist())
    # ragged rows: a line with extra fields
    (out / "malformed.csv").write_text(f"{header}\n{good_line}\n{good_line},1,2,3\n{good_line}\n", encoding="utf-8")
    # Latin-1 bytes (0xfc = u-umlaut) where UTF-8 is required
    latin = good_line.replace("purpose_", "zweck_f\u00fcr_", 1)
    (out / "latin1.csv").write_bytes(f"{header}\n{latin}\n{good_line}\n".encode("latin-1"))
    (out / "empty.csv").write_bytes(b"")
    (out / "header_only.csv").write_text(header + "\n", encoding="utf-8")
    # a pickle (harmless payload; trainguard must refuse it by its magic bytes, never unpickle it)
    payload = pickle.dumps({"note": "a pickle is code, not data"}, protocol=4)
    (out / "pickle.csv").write_bytes(payload)
    (out / "pickle.parquet").write_bytes(payload)
    # a Parquet file cut in half
    full = out / "_full.parquet"
    clean.head(50).to_parquet(full, index=False)
    blob = full.read_bytes()
    (out / "truncated.parquet").write_bytes(blob[: len(blob) // 2])
    full.unlink()


def main(argv: list[str]) -> None:
    src = Path(argv[1]) if len(argv) > 1 else DEFAULT_INPUT
    rng = np.random.default_rng(SEED)
    df = _load(src)
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    reference, clean, poison_base = df.iloc[:600], df.iloc[600:800], df.iloc[800:]
    out = HERE / "credit"
    out.mkdir(parents=True, exist_ok=True)
    _write(reference, out / "reference", ("csv", "parquet"))
    _write(clean, out / "batch_clean", ("csv", "parquet", "jsonl"))
    poisoned, truth = _poison(poison_base.reset_index(drop=True), rng)
    _write(poisoned, out / "batch_poisoned", ("csv", "parquet", "jsonl"))
    truth.to_csv(out / "batch_poisoned.truth.csv", index=False)
    multi, mtruth = _multisource(clean, rng)
    _write(multi, out / "batch_multisource", ("csv", "parquet"))
    mtruth.to_csv(out / "batch_multisource.truth.csv", index=False)
    _bad_inputs(clean, HERE / "bad")
    summary = {"seed": SEED, "reference_rows": len(reference), "clean_rows": len(clean),
               "poisoned_rows": len(poisoned), "poison_rows": int(truth["is_poison"].sum()),
               "poison_kinds": truth["kind"].value_counts().to_dict(),
               "multisource_rows": len(multi), "multisource_poison_rows": int(mtruth["is_poison"].sum())}
    print(json.dumps(summary, indent=2, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)
