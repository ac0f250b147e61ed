"""Seeded, stratified splits of the PMLB datasets in ../shared/data/pmlb for the detector tests (tab-separated,
label column ``class``); the tests that use them take the ``shared_dir`` fixture, which skips without ../shared."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

DATASETS = ("adult", "credit-g", "krkopt", "letter", "nursery", "optdigits", "pendigits", "spambase")
LABEL = "class"


def _stratified(df: pd.DataFrame, size: float | int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    try:
        a, b = train_test_split(df, train_size=size, random_state=seed, stratify=df[LABEL])
    except ValueError:  # a class too small to stratify
        a, b = train_test_split(df, train_size=size, random_state=seed)
    return a.reset_index(drop=True), b.reset_index(drop=True)


def halves(shared_dir: Path, name: str, seed: int, max_rows: int = 4_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, batch): a seeded stratified sample of at most ``max_rows`` rows, split 50/50 (stratified)."""
    df = pd.read_csv(shared_dir / "data" / "pmlb" / f"{name}.csv.gz", sep="\t")
    if len(df) > max_rows:
        df, _ = _stratified(df, max_rows, seed)
    return _stratified(df, 0.5, seed + 1)
