"""Too-typical rows: a variance-collapsed slab with wrong labels caught, clean and drifted batches left alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from checks.detectors.typical import REASON, TypicalRows
from checks.scoring import RowScorer


def _frame(X: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])]).assign(y=y)


def _labels(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # a learnable but noisy label (10% noise): some trusted rows are doubted too, as in real data
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return np.where(rng.uniform(size=len(y)) < 0.1, 1 - y, y)


def _data(seed: int, n: int = 2000, d: int = 8) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Xr, Xb = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    return _frame(Xr, _labels(Xr, rng)), Xb, _labels(Xb, rng)


def _slab(Xb: np.ndarray, yb: np.ndarray, seed: int, share: float = 0.08) -> tuple[pd.DataFrame, np.ndarray]:
    """``share`` of the rows shrunk halfway to the column medians, with the other label."""
    rng = np.random.default_rng(seed + 100)
    hit = np.sort(rng.choice(len(Xb), round(share * len(Xb)), replace=False))
    X, y = Xb.copy(), yb.copy()
    med = np.median(Xb, axis=0)
    X[hit] = med + 0.5 * (X[hit] - med)
    y[hit] = 1 - y[hit]
    truth = np.zeros(len(X), dtype=bool)
    truth[hit] = True
    return _frame(X, y), truth


def _typical(out: pd.DataFrame) -> np.ndarray:
    return out["reasons"].map(lambda r: REASON in r).to_numpy()


@pytest.mark.parametrize("seed", [0, 1])
def test_a_variance_collapsed_slab_with_wrong_labels_is_flagged(seed: int) -> None:
    ref, Xb, yb = _data(seed)
    batch, truth = _slab(Xb, yb, seed)
    scorer = RowScorer(label_column="y", random_state=0).fit(ref, batch)
    out = scorer.score(batch)
    alone = RowScorer(label_column="y", random_state=0,
                      detectors=[d for d in scorer.detectors if d != "typical"]).fit(ref, batch).score(batch)
    typical = _typical(out)
    assert typical[truth].mean() > 0.3 and not typical[~truth & ~out["flagged"].to_numpy()].any()
    assert out["score_typical"].to_numpy()[truth].mean() > out["score_typical"].to_numpy()[~truth].mean()
    # the slab ranks higher and more of it is flagged than without the detector
    auc, auc_alone = roc_auc_score(truth, out["score"]), roc_auc_score(truth, alone["score"])
    assert auc > auc_alone + 0.01
    assert out["flagged"].to_numpy()[truth].mean() > alone["flagged"].to_numpy()[truth].mean()
    flagged = out["flagged"].to_numpy()
    # the widened (expected-F1) cut of a contaminated batch takes some central rows with noisy labels along
    assert flagged[~truth].mean() < 0.08 and truth[flagged].mean() > 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_clean_batch_does_not_switch_it_on(seed: int) -> None:
    ref, Xb, yb = _data(seed)
    batch = _frame(Xb, yb)
    scorer = RowScorer(label_column="y", random_state=0).fit(ref, batch)
    out = scorer.score(batch)
    assert not _typical(out).any() and (out["score_typical"] == 0.0).all()
    assert out["flagged"].mean() < 0.03


@pytest.mark.parametrize("shrink", [0.5, 0.8])
def test_a_batch_concentrated_as_a_whole_is_drift_not_poison(shrink: float) -> None:
    ref, Xb, yb = _data(3)
    scorer = RowScorer(label_column="y", random_state=0).fit(ref, _frame(Xb, yb))
    # every row closer to the centre (a narrower sub-population): the central excess is the whole batch
    out = scorer.score(_frame(shrink * Xb, yb))
    assert _typical(out).mean() <= 0.01


def test_a_shifted_batch_does_not_fire() -> None:
    ref, Xb, yb = _data(4)
    batch = _frame(Xb + 0.7, yb)
    out = RowScorer(label_column="y", random_state=0).fit(ref, batch).score(batch)
    assert not _typical(out).any()


def test_random_label_flips_away_from_the_centre_do_not_switch_it_on() -> None:
    ref, Xb, yb = _data(5)
    rng = np.random.default_rng(5)
    flip = rng.choice(len(yb), 160, replace=False)
    y = yb.copy()
    y[flip] = 1 - y[flip]
    batch = _frame(Xb, y)
    out = RowScorer(label_column="y", random_state=0).fit(ref, batch).score(batch)
    assert not _typical(out).any()


def test_without_labels_only_a_strong_excess_counts_and_without_reference_it_is_off() -> None:
    ref, Xb, yb = _data(6, n=3000)
    batch, truth = _slab(Xb, yb, 6, share=0.1)
    ref, batch = ref.drop(columns="y"), batch.drop(columns="y")
    out = RowScorer(random_state=0).fit(ref, batch).score(batch)
    typical = _typical(out)
    assert typical.any() and truth[typical].mean() > 0.5
    clean = _frame(Xb, yb).drop(columns="y")
    assert not _typical(RowScorer(random_state=0).fit(ref, clean).score(clean)).any()
    selfit = RowScorer(random_state=0).fit(None, batch)
    assert selfit.typical_ is None and not _typical(selfit.score(batch)).any()


def test_partitioned_scores_equal_whole_batch_scores() -> None:
    ref, Xb, yb = _data(7)
    batch, _ = _slab(Xb, yb, 7)
    scorer = RowScorer(label_column="y", random_state=0).fit(ref, batch)
    whole = scorer.finalize(batch, scorer.score_partition(batch))
    parts = pd.concat([scorer.score_partition(batch.iloc[i : i + 500]) for i in range(0, len(batch), 500)])
    split = scorer.finalize(batch, parts)
    np.testing.assert_allclose(whole["score_typical"], split["score_typical"])
    assert whole["reasons"].tolist() == split["reasons"].tolist()


def test_the_test_itself_needs_an_excess_and_refuses_an_implausible_one() -> None:
    rng = np.random.default_rng(8)
    det = TypicalRows().fit(rng.uniform(size=5000), rng.uniform(size=5000))
    assert not det.test(rng.uniform(size=5000), rng.uniform(size=5000))["on"]
    central = np.r_[rng.uniform(size=4600), rng.uniform(0, 0.05, size=400)]
    doubt = np.r_[rng.uniform(size=4600), rng.uniform(0.8, 1.0, size=400)]
    assert det.test(central, doubt)["on"]
    squeezed = rng.uniform(0, 0.3, size=5000)  # the whole batch central: > max_share in excess
    res = det.test(squeezed, rng.uniform(size=5000))
    assert res["excess_share"] > det.max_share and not res["on"]
