"""The multi-batch campaign evaluation: the campaign builders on synthetic data (fast), and a small run
of the real flow on a PMLB dataset whose report must be complete and whose counts add up (not the goals)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from benchmarks import eval_campaign as ec

ROOT = Path(__file__).resolve().parents[2]


def _data(n: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 100, n), "c": rng.integers(0, 6, n),
                      "d": rng.normal(5, 2, n).round()})
    y = pd.Series((X["a"] + rng.normal(0, 0.5, n) > 0).astype(int) + (X["c"] > 3), name=ec.LABEL)
    return X, y


def _parts(batches: int = 4) -> tuple[list[tuple[pd.DataFrame, pd.Series]], tuple[pd.DataFrame, pd.Series]]:
    X, y = _data()
    return ec.split_batches(X, y, batches, 300, 400, 0)


def test_split_is_disjoint_seeded_and_sized() -> None:
    X, y = _data()
    parts, (Xt, yt) = ec.split_batches(X, y, 4, 300, 400, 0)
    assert [len(p[0]) for p in parts] == [300] * 5 and len(Xt) == 400
    seen = pd.concat([p[0]["a"] for p in parts] + [Xt["a"]])
    assert seen.is_unique
    again, _ = ec.split_batches(X, y, 4, 300, 400, 0)
    pd.testing.assert_frame_equal(parts[2][0], again[2][0])
    assert ec.sizes(10992, 8, 2000, 5000) == (1099, 1099)  # a small dataset gets smaller batches


@pytest.mark.parametrize("name", list(ec.BUILDERS))
def test_campaigns_poison_each_later_batch_at_the_rate(name: str) -> None:
    parts, test = _parts()
    camp = ec.BUILDERS[name](parts, test, 0.02, [0, 1, 2])
    assert len(camp.batches) == 5 and not camp.batches[0].poison.any()
    pd.testing.assert_frame_equal(camp.batches[0].X, parts[0][0])
    for k, b in enumerate(camp.batches[1:], start=1):
        assert int(b.poison.sum()) == 6  # 2% of 300
        assert list(b.X.columns) == list(parts[k][0].columns)
        assert (b.X.dtypes == parts[k][0].dtypes).all()
        clean = ~b.poison  # rows that are not poison are untouched
        pd.testing.assert_frame_equal(b.X[clean], parts[k][0][clean])
        assert (b.y[clean] == parts[k][1][clean]).all()
        assert (b.y[b.poison] == camp.probe.target).all() if camp.probe is not None else True
    assert camp.probe is not None and len(camp.probe.X) > 0


def test_backdoor_reuses_one_trigger() -> None:
    parts, test = _parts()
    camp = ec.backdoor_campaign(parts, test, 0.02, [0, 0, 0])
    trig = camp.info["trigger"]
    for b in camp.batches[1:]:
        for col, val in trig["features"].items():
            assert (b.X.loc[b.poison, col] == val).all()
        assert (b.y[b.poison] == trig["target"]).all()
    for col, val in trig["features"].items():
        assert (camp.probe is not None) and (camp.probe.X[col] == val).all()


def test_region_flips_stay_in_the_band() -> None:
    parts, test = _parts()
    camp = ec.region_flip_campaign(parts, test, 0.02, [0, 0, 1])
    region = camp.info["region"]
    assert 0.05 <= region["share"] <= 0.2
    for k, b in enumerate(camp.batches[1:], start=1):
        v = b.X[region["feature"]]
        assert v[b.poison].between(region["lo"], region["hi"]).all()
        assert (parts[k][1][b.poison] != region["target"]).all()  # a flip: the label was another class
        pd.testing.assert_frame_equal(b.X, parts[k][0])  # features untouched


def test_slow_shift_grows_and_stays_in_range() -> None:
    parts, test = _parts()
    camp = ec.slow_shift_campaign(parts, test, 0.02, [0, 0, 2])
    info = camp.info
    lo, hi = info["range"]
    moved = []
    for k, b in enumerate(camp.batches[1:], start=1):
        assert b.info["shift_std"] == pytest.approx(k * ec.SHIFT_STEP * info["direction"])
        after = b.X.loc[b.poison, info["feature"]].to_numpy(dtype=float)
        before = parts[k][0].loc[b.poison, info["feature"]].to_numpy(dtype=float)
        assert ((after >= lo) & (after <= hi)).all()
        moved.append(float(np.mean(np.abs(after - before))))
    assert moved[-1] >= moved[0]


def test_control_drifts_every_row_and_keeps_whole_numbers() -> None:
    parts, _ = _parts()
    camp = ec.control_campaign(parts, [0, 0, 3])
    feat, sd = camp.info["feature"], camp.info["std"]
    assert camp.probe is None
    for k, b in enumerate(camp.batches[1:], start=1):
        assert not b.poison.any()
        delta = b.X[feat].to_numpy(dtype=float) - parts[k][0][feat].to_numpy(dtype=float)
        assert abs(delta.mean() - k * ec.DRIFT_STEP * sd) < 0.5  # stochastic rounding keeps the mean
        if ec._integral(parts[k][0][feat]):
            assert (b.X[feat] == b.X[feat].round()).all()


def _check_mode(block: dict[str, Any], mode: str, later: int) -> None:
    t, records = block["totals"], block["batches"]
    assert t["batches"] == (1 if mode == "single_batch" else later)
    ks = [r["batch"] for r in records]
    assert ks == (list(range(later + 1)) if mode == "sequential" else [1] if mode == "single_batch"
                  else list(range(1, later + 1)))
    for r in records:
        assert r["verdict"] in ("approved", "rejected", "error")
        assert r["poison"] == r["poison_quarantined"] + r["poison_admitted"] + r["poison_refused_with_batch"]
        assert r["clean_rows"] + r["poison"] == r["rows"]
        assert r["clean_quarantined"] + r["poison_quarantined"] == r["quarantined"] <= r["rows"]
        if r["verdict"] != "approved":
            assert r["poison_admitted"] == 0 and r["clean_admitted"] == 0
        else:
            assert r["clean_admitted"] == r["clean_rows"] - r["clean_quarantined"]
    later_recs = [r for r in records if r["batch"] != 0]
    assert t["injected"] == sum(r["poison"] for r in later_recs)
    assert 0 <= t["admitted"] == sum(t["admitted_per_batch"]) <= t["injected"]
    assert t["clean_quarantined"] <= t["clean_rows"]
    assert t["batches_rejected"] == len(t["rejected"]) <= t["batches"]
    if t["injected"]:
        assert t["admitted_share"] == pytest.approx(t["admitted"] / t["injected"])
    m = block["model"]
    assert 0.0 <= m["accuracy"] <= 1.0 and m["train_rows"] > 0


@pytest.mark.slow
def test_small_campaign_through_the_real_flow(shared_dir: Path, tmp_path: Path) -> None:
    """A quick run with 2 later batches (about 25 flow runs: a minute or two): the report is complete and its
    counts add up."""
    out = tmp_path / "campaign_test.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "TRAINGUARD_LEDGER")}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.eval_campaign", "--quick", "--batches", "2",
                           "--batch-size", "300", "--out", str(out), "--work", str(tmp_path / "work")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| dataset | campaign |" in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["kind"] == "campaign" and doc["run"] == "quick"
    assert doc["settings"]["batches"] == 2 and doc["settings"]["rate"] == 0.02
    assert list(doc["datasets"]) == ec.QUICK_DATASETS
    d = doc["datasets"][ec.QUICK_DATASETS[0]]
    assert set(d["campaigns"]) == {*ec.CAMPAIGNS, ec.CONTROL}
    for name, c in d["campaigns"].items():
        modes = ("sequential", "vs_trusted") if name == ec.CONTROL else ec.MODES
        for mode in modes:
            _check_mode(c[mode], mode, 2)
        seq = c["sequential"]["batches"]
        assert seq[0]["reference"] is None and seq[0]["poison"] == 0  # the trusted first batch, no reference
        approved_before = [r["batch"] for r in seq if r["verdict"] == "approved"]
        for r in seq[1:]:  # the default: the newest approved batch is the reference
            assert r["reference"] == f"batch {max(b for b in approved_before if b < r['batch'])}"
        for mode in modes[1:]:
            assert all(r["reference"] == "argument" for r in c[mode]["batches"])
        if name == ec.CONTROL:
            assert c["sequential"]["totals"]["injected"] == 0
        else:
            assert c["sequential"]["totals"]["injected"] == 2 * round(0.02 * d["batch_rows"])
            single = c["single_batch"]["totals"]
            assert single["injected"] == c["sequential"]["totals"]["injected"]
            assert 0.0 <= c["ungated_model"]["asr"] <= 1.0 and 0.0 <= c["clean_model_asr"] <= 1.0
    rows = {(r["dataset"], r["campaign"]) for r in doc["summary"]}
    assert rows == {(ec.QUICK_DATASETS[0], c) for c in (*ec.CAMPAIGNS, ec.CONTROL)}
