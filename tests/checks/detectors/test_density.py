"""Local density excess: dense poison caught, clean and drifted batches left alone, partitions consistent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from checks.detectors.density import DensityExcess
from checks.scoring import RowScorer


def _frame(X: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])]).assign(y=y)


def _labels(X: np.ndarray) -> np.ndarray:
    return (X[:, 0] + X[:, 1] > 0).astype(int)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_clean_batch_of_the_reference_distribution_hardly_fires(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, batch = rng.normal(size=(3000, 6)), rng.normal(size=(3000, 6))
    det = DensityExcess(random_state=seed).fit(ref, batch)
    fires = det.finding(len(batch), {"_density": det.excess(batch)}).fires
    assert fires.mean() <= 0.002


def test_a_squeezed_slab_is_in_excess() -> None:
    rng = np.random.default_rng(3)
    ref, batch = rng.normal(size=(2000, 10)), rng.normal(size=(2000, 10))
    slab = rng.choice(2000, 160, replace=False)
    batch[slab] *= 0.5  # every feature's deviation from the median halved: inside the range, denser
    det = DensityExcess().fit(ref, batch)
    e = det.excess(batch)
    clean = np.setdiff1d(np.arange(2000), slab)
    # a slab is dense but spread: its rows rank far above the clean ones, a few fire on their own
    assert roc_auc_score(np.isin(np.arange(2000), slab), e) > 0.65
    assert e[slab].mean() > 5 * e[clean].mean()
    assert (e[clean] >= det.min_excess).mean() < 0.005


def test_a_global_drift_does_not_flag_the_batch() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(2000, 5))
    for shift in (0.5, 3.0):  # a mild drift and one that moves the whole batch away from the reference
        batch = rng.normal(size=(2000, 5)) + shift
        det = DensityExcess().fit(ref, batch)
        fires = det.finding(len(batch), {"_density": det.excess(batch)}).fires
        assert fires.mean() <= det.max_share
        assert fires.mean() < 0.05


def test_collision_points_are_flagged_by_the_scorer_and_partitions_agree() -> None:
    rng = np.random.default_rng(5)
    Xr, Xb = rng.normal(size=(1500, 6)), rng.normal(size=(1500, 6))
    ref, batch = _frame(Xr, _labels(Xr)), _frame(Xb, _labels(Xb))
    # clean-label collision: 60 rows of class 1 moved 80% of the way towards one class-0 base row
    pool = np.flatnonzero(batch["y"].to_numpy() == 1)
    hit = np.sort(rng.choice(pool, 60, replace=False))
    base = Xr[np.flatnonzero(_labels(Xr) == 0)[0]]
    feats = [f"f{j}" for j in range(6)]
    batch.loc[hit, feats] = Xb[hit] + 0.8 * (base - Xb[hit])
    scorer = RowScorer(label_column="y", random_state=0).fit(ref, batch)
    out = scorer.score(batch)
    caught = out["reasons"].map(lambda r: "cluster:density_excess" in r).to_numpy()
    # (> 0.7: the pool keeps one row per coarse near-duplicate cell, and a few collision rows share one)
    assert caught[hit].mean() > 0.7 and out["flagged"].to_numpy()[hit].all()
    clean = np.setdiff1d(np.arange(len(batch)), hit)
    assert caught[clean].mean() < 0.01
    whole = scorer.score_partition(batch)
    parts = pd.concat([scorer.score_partition(batch.iloc[lo : lo + 200]) for lo in range(0, len(batch), 200)])
    pd.testing.assert_frame_equal(parts, whole)
    # fitted on the reference alone (no batch rows to compare with), the detector is inactive
    alone = RowScorer(label_column="y", random_state=0).fit(ref).score(batch)
    assert not alone["reasons"].map(lambda r: "cluster:density_excess" in r).any()
    assert (alone["score_density"] == 0.0).all()


def test_a_clean_batch_keeps_the_budget_with_the_density_detector() -> None:
    rng = np.random.default_rng(6)
    Xr, Xb = rng.normal(size=(2000, 6)), rng.normal(size=(2000, 6))
    ref, batch = _frame(Xr, _labels(Xr)), _frame(Xb, _labels(Xb))
    out = RowScorer(label_column="y", random_state=0).fit(ref, batch).score(batch)
    assert out["flagged"].mean() <= 0.02
    assert out["reasons"].map(lambda r: "cluster:density_excess" in r).mean() <= 0.002


def test_the_table_is_the_beta_bound_and_the_prefilter_keeps_a_clusters_firing_rows() -> None:
    from scipy.stats import beta

    rng = np.random.default_rng(7)
    ref = rng.normal(size=(1500, 5))
    batch = np.vstack([rng.normal(size=(1400, 5)), 0.2 * rng.normal(size=(100, 5)) + 0.8])
    det = DensityExcess().fit(ref, batch)
    k, b = det.k_, np.arange(det.k_ + 1)
    lower = np.where(b > 0, beta.ppf(det.alpha, np.maximum(b, 1), k - b + 1), 0.0)
    for self_hit in (0, 1):
        ratio = (det.n_batch_ - self_hit) / det.n_ref_
        want = np.clip(1.0 - ratio / np.maximum(lower / (1.0 - lower), 1e-12), 0.0, 1.0)
        np.testing.assert_allclose(det.table_[self_hit], want)
    exact, fast = det._exact(batch)[0], det.excess(batch)
    fired = exact >= det.min_excess
    assert fired[1400:].mean() > 0.8
    np.testing.assert_array_equal(fast[fired], exact[fired])  # here the prefilter skips no row that fires
    assert ((fast > 0) <= (exact > 0)).all()


def test_label_doubt_gates_the_rows() -> None:
    rng = np.random.default_rng(8)
    ref = rng.normal(size=(1500, 5))
    batch = np.vstack([rng.normal(size=(1400, 5)), 0.2 * rng.normal(size=(100, 5)) + 0.8])
    det = DensityExcess().fit(ref, batch)
    doubt = np.full(len(batch), 0.9)
    doubt[1450:] = 0.1  # the model trusts these rows' labels: packed, but not poison-like
    e = det.excess(batch, doubt)
    assert (e[1400:1450] >= det.min_excess).mean() > 0.8
    assert (e[1450:] == 0.0).all()


def test_a_flood_of_copies_fires_neither_itself_nor_its_clean_neighbours() -> None:
    rng = np.random.default_rng(9)
    Xr, Xb = rng.normal(size=(1500, 6)), rng.normal(size=(1500, 6))
    seed = Xb[0]
    Xb[1:81] = seed + 1e-4 * rng.normal(size=(80, 6))  # 80 near-copies of one row (the duplicate detector's case)
    det = DensityExcess().fit(Xr, Xb)
    assert not (det.excess(Xb) >= det.min_excess).any()


def test_a_dense_group_with_labels_the_reference_agrees_with_is_left_alone() -> None:
    rng = np.random.default_rng(10)
    Xr, Xb = rng.normal(size=(1500, 6)), rng.normal(size=(1500, 6))
    Xb[:80] = 0.15 * rng.normal(size=(80, 6)) + np.array([1.5, 1.5, 0, 0, 0, 0])  # over-sampled, clearly class 1
    ref, batch = _frame(Xr, _labels(Xr)), _frame(Xb, _labels(Xb))
    out = RowScorer(label_column="y", random_state=0).fit(ref, batch).score(batch)
    assert not out["reasons"].map(lambda r: "cluster:density_excess" in r).any()


def test_a_scorer_with_a_density_pool_pickles_and_scores_the_same() -> None:
    import pickle

    rng = np.random.default_rng(11)
    Xr, Xb = rng.normal(size=(1200, 5)), rng.normal(size=(1200, 5))
    ref, batch = _frame(Xr, _labels(Xr)), _frame(Xb, _labels(Xb))
    hit = np.flatnonzero(batch["y"].to_numpy() == 1)[:50]
    base = Xr[np.flatnonzero(_labels(Xr) == 0)[0]]
    batch.loc[hit, [f"f{j}" for j in range(5)]] = Xb[hit] + 0.8 * (base - Xb[hit])
    scorer = RowScorer(label_column="y", random_state=0).fit(ref, batch)
    assert scorer.describe()["density"]["active"]
    copy = pickle.loads(pickle.dumps(scorer, protocol=pickle.HIGHEST_PROTOCOL))
    pd.testing.assert_frame_equal(copy.score_partition(batch.iloc[600:]), scorer.score_partition(batch.iloc[600:]))
    assert copy.score_partition(batch)["_density"].to_numpy()[hit].max() >= scorer.density_.min_excess
