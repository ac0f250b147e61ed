"""Metric helpers and the split of the evaluation harness (tiny synthetic data, no ../shared needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks import _eval_common as common
from benchmarks.eval_poisoning import split


def test_ranking_and_flags() -> None:
    truth = np.array([True, True, False, False, False])
    assert common.ranking(truth, np.array([0.9, 0.8, 0.1, 0.2, 0.3]))["roc_auc"] == 1.0
    assert common.ranking(truth, np.array([0.1, 0.2, 0.9, 0.8, 0.7]))["roc_auc"] == 0.0
    assert common.ranking(np.zeros(3, bool), np.arange(3.0)) == {"roc_auc": None, "ap": None}
    f = common.flags(truth, np.array([True, False, True, False, False]))
    assert (f["precision"], f["recall"], f["n_flagged"]) == (0.5, 0.5, 2)


def test_split_is_40_40_20_disjoint_and_seeded() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=500), "b": rng.integers(0, 3, 500)})
    y = pd.Series(rng.integers(0, 2, 500), name="class")
    parts = split(X, y)
    sizes = {k: len(v[0]) for k, v in parts.items()}
    assert sizes == {"reference": 200, "batch": 200, "test": 100}
    seen = pd.concat([v[0]["a"] for v in parts.values()])
    assert seen.is_unique and len(seen) == 500
    again = split(X, y)
    pd.testing.assert_frame_equal(parts["batch"][0], again["batch"][0])


def test_summary_goals_follow_the_numbers() -> None:
    block = {"roc_auc": 0.97, "ap": 0.9, "precision": 0.9, "recall": 0.8, "f1": 0.85,
             "model": {"accuracy": 0.898, "asr": 0.05}}
    doc = {"datasets": {"d": {"clean_accuracy": 0.9, "attacks": {"backdoor": {
        "poisoned": {"accuracy": 0.89, "asr": 0.9}, "clean_model_asr": 0.01,
        "trainguard": block, "iforest": {"error": "not run"}, "cleanlab": {"error": "not run"}}}}}}
    s = common.poisoning_summary(doc)["backdoor"]
    assert s["goals"] == {"roc_auc>=0.95": True, "f1>=0.8": True, "gated_within_0.5pt": True, "asr<=0.10": True}
    block["model"]["accuracy"] = 0.89
    assert common.poisoning_summary(doc)["backdoor"]["goals"]["gated_within_0.5pt"] is False
