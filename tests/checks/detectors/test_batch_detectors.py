"""Batch-level detectors on small seeded data: label consistency, duplicates, backdoor triggers, sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from checks.detectors import LabelModel
from checks.detectors.sources import source_table
from checks.scoring import RowScorer


def _data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    frame["k"] = rng.integers(0, 6, size=n)  # a discrete feature
    frame["y"] = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return frame


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return _data(1500, 1)


def test_label_model_doubts_flipped_labels() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 2))
    y = pd.Series((X[:, 0] > 0).astype(int))
    model = LabelModel(random_state=0).fit(X, y)
    assert model.heldout_p_.shape == (600,) and ((model.heldout_p_ >= 0) & (model.heldout_p_ <= 1)).all()
    Xb = rng.normal(size=(200, 2))
    yb = (Xb[:, 0] > 0).astype(int)
    yb[:20] = 1 - yb[:20]
    p, _, _, unseen = model.components(Xb, pd.Series(yb))
    assert p[:20].mean() > 0.9 > p[20:].mean() and not unseen.any()
    p_new, *_ , unseen_new = model.components(Xb[:2], pd.Series([7, 1]))
    assert unseen_new.tolist() == [True, False] and p_new[0] == 1.0


def test_duplicates_flood_and_conflicting_labels(ref: pd.DataFrame) -> None:
    batch = _data(600, 2)
    seed_row = batch.iloc[[0]]
    flood = pd.concat([seed_row] * 30, ignore_index=True)
    flood["y"] = 1 - int(seed_row["y"].iloc[0])
    flood[["a", "b"]] += np.random.default_rng(3).normal(scale=0.002, size=(30, 2))  # near, not exact
    twin = ref.iloc[[5]].copy()
    twin["y"] = 1 - twin["y"]  # exact copy of a reference row with the other label
    full = pd.concat([batch, flood, twin], ignore_index=True)
    out = RowScorer(label_column="y", detectors=("ecod", "label", "duplicate")).fit(ref).score(full)
    assert out["flagged"][600:630].all()
    assert all("duplicate:flood" in r for r in out["reasons"][600:630])
    assert "duplicate:conflicting_label" in out["reasons"].iloc[630]
    assert not any("duplicate:flood" in r for r in out["reasons"][1:600])


def test_single_and_paired_triggers(ref: pd.DataFrame) -> None:
    batch = _data(800, 4)
    rng = np.random.default_rng(5)
    single = rng.choice(np.arange(800), 30, replace=False)
    batch.loc[single, "c"] = 0.123456  # one exact in-range value, never seen in the reference
    batch.loc[single, "y"] = 1
    rest = np.setdiff1d(np.arange(800), single)
    paired = rng.choice(rest, 30, replace=False)
    ref_k_mode = int(ref["k"].mode().iloc[0])
    batch.loc[paired, "k"] = ref_k_mode  # common value ...
    batch.loc[paired, "d"] = 2.2  # ... paired with a rare-but-seen region of d
    batch.loc[paired, "y"] = 0
    out = RowScorer(label_column="y", detectors=("ecod", "label", "cluster")).fit(ref).score(batch)
    reasons = out["reasons"]
    assert all("cluster:backdoor" in reasons[i] for i in single)
    assert np.mean(["cluster:backdoor" in reasons[i] for i in paired]) >= 0.9
    clean = np.setdiff1d(rest, paired)
    assert np.mean(["cluster:backdoor" in reasons[i] for i in clean]) <= 0.01


def test_source_table_singles_out_a_shifted_source() -> None:
    rng = np.random.default_rng(0)
    src = pd.Series(rng.choice(["s1", "s2", "s3"], size=900))
    score = rng.uniform(size=900)
    bad = (src == "s3").to_numpy()
    score[bad] = np.clip(score[bad] + 0.3, 0, 1)
    table = source_table(src, score, score > 0.99, None, 0.01).set_index("source")
    assert table.loc["s3", "p_score"] < 1e-6 and table.loc["s3", "auc_score"] > 0.6
    assert table.loc["s1", "p_score"] > 1e-3


def test_label_prior_shift_flags_the_excess_of_a_targeted_flip() -> None:
    """Overlapping classes: per-row label evidence is weak, but the batch's class shares move."""

    def noisy(n: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
        frame["y"] = (frame["a"] + 1.5 * rng.normal(size=n) > 0).astype(int)
        return frame

    scorer = RowScorer(label_column="y", detectors=("ecod", "label")).fit(noisy(2000, 1))
    batch = noisy(1500, 2)
    assert not any("label:prior_shift" in r for r in scorer.score(batch)["reasons"])
    ones = np.flatnonzero(batch["y"].to_numpy() == 1)
    flipped = np.random.default_rng(8).choice(ones, len(ones) // 3, replace=False)
    batch.loc[flipped, "y"] = 0
    out = scorer.score(batch)
    shift = np.flatnonzero([("label:prior_shift" in r) for r in out["reasons"]])
    # flipped rows are ~26% of class 0 here; the doubt ranking nearly doubles that among the flagged excess
    base_rate = len(flipped) / int((batch["y"] == 0).sum())
    assert len(shift) > 0.3 * len(flipped) and np.isin(shift, flipped).mean() > 1.5 * base_rate


@pytest.mark.parametrize("n_classes", [2, 3])
def test_binned_prediction_equals_predict_proba(n_classes: int) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from checks.detectors.label import _predict_proba_binned

    rng = np.random.default_rng(n_classes)
    X = rng.normal(size=(3000, 5))
    y = np.digitize(X[:, 0] + 0.3 * rng.normal(size=3000), [-0.5, 0.5][: n_classes - 1])
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
    unseen = np.vstack([rng.normal(scale=3.0, size=(2000, 5)), X[:50]])  # beyond every bin edge as well
    np.testing.assert_array_equal(_predict_proba_binned(model, unseen), model.predict_proba(unseen))


def test_a_source_that_shifts_in_range_features_is_compromised(ref: pd.DataFrame) -> None:
    """One source moves two features the label does not use (a discrete one by two steps, clipped to the
    reference's range; a normal one by one sd), labels intact: no row stands out (score, label and flag-rate tests
    all pass it), the source's feature distribution does. Random clean sources are left alone."""
    batch = _data(600, 7)
    rng = np.random.default_rng(3)
    src = np.asarray([f"s{i}" for i in rng.integers(1, 5, size=len(batch))], dtype=object)
    bad = np.zeros(len(batch), dtype=bool)
    bad[rng.choice(len(batch), 60, replace=False)] = True
    src[bad] = "s0"
    batch["k"] = np.where(bad, np.minimum(batch["k"] + 2, 5), batch["k"])
    batch["c"] = np.where(bad, batch["c"] + 1.0, batch["c"])
    scorer = RowScorer(label_column="y", source_column="source").fit(ref.assign(source="reference"))
    out = scorer.score(batch.assign(source=src))
    table = pd.DataFrame(out.attrs["sources"]).set_index("source")
    assert table["compromised"].to_dict() == {"s0": True, "s1": False, "s2": False, "s3": False, "s4": False}
    assert table.loc["s0", "p_score"] > 0.01 and table.loc["s0", "flag_rate"] < 0.1  # only the new test sees it
    assert table.loc["s0", "shift_feature"] in ("c", "k") and table.loc["s0", "shift"] >= 0.25
    assert out["flagged"][bad].all() and out["flagged"][~bad].mean() <= 0.05
    clean = scorer.score(_data(600, 7).assign(source=np.asarray([f"s{i}" for i in rng.integers(0, 5, size=600)])))
    assert not pd.DataFrame(clean.attrs["sources"])["compromised"].any()
