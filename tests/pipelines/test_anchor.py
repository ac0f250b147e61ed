"""A rolling reference is checked against the source's anchor (its first approved data) before it is used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.flows import ingest

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    x = rng.normal(size=(n, 5))
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    df["label"] = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    return df


def test_rows_slipped_into_approved_data_are_left_out_of_the_next_reference(tmp_path: Path, ledger_url: str) -> None:
    rng = np.random.default_rng(7)
    first, second, third = _frame(rng, 2000), _frame(rng, 1000), _frame(rng, 1000)
    flipped = rng.choice(len(second), 40, replace=False)
    second.loc[flipped, "label"] = np.where(second.loc[flipped, "label"] == "yes", "no", "yes")
    paths = []
    for name, df in (("first", first), ("second", second), ("third", third)):
        paths.append(tmp_path / f"{name}.csv")
        df.to_csv(paths[-1], index=False)
    lax = tmp_path / "lax.toml"  # the second batch's flips are approved as they are: they slipped through
    lax.write_text("[policy]\nquarantine_flagged = false\n", encoding="utf-8")
    a = ingest(str(paths[0]), source="s", label_column="label", ledger_url=ledger_url, out_dir=str(tmp_path / "a"))
    b = ingest(str(paths[1]), source="s", label_column="label", ledger_url=ledger_url, out_dir=str(tmp_path / "b"),
               config_path=str(lax))
    assert a["verdict"] == b["verdict"] == "approved" and "anchor" not in (b["reference"] or {})  # b's is the anchor
    c = ingest(str(paths[2]), source="s", label_column="label", ledger_url=ledger_url, out_dir=str(tmp_path / "c"))
    anchor = c["reference"]["anchor"]
    assert anchor["index"] == a["ledger"][0]["index"] and anchor["digest"] == a["outputs"]["clean.parquet"]
    assert 30 <= anchor["dropped"] <= 60, anchor  # most of the 40 flips, few honest rows
    assert anchor["rows"] == 1000 - anchor["dropped"]
    off = tmp_path / "off.toml"
    off.write_text("[scoring]\nanchor = false\n", encoding="utf-8")
    fourth = tmp_path / "fourth.csv"
    _frame(rng, 1000).to_csv(fourth, index=False)
    d = ingest(str(fourth), source="s", label_column="label", ledger_url=ledger_url, out_dir=str(tmp_path / "d"),
               config_path=str(off))
    assert d["reference"]["origin"] == "ledger" and "anchor" not in d["reference"]  # switched off
