"""RowScorer on the project's data_samples scenarios: the scores.parquet contract, each poison kind, sources."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from checks.errors import ChecksConfigError, ChecksDataError
from checks.scoring import RowScorer


@pytest.fixture(scope="module")
def credit(data_samples: Path) -> dict[str, pd.DataFrame]:
    d = data_samples / "credit"
    if not (d / "reference.parquet").exists():
        pytest.skip("data_samples/credit is absent; run data_samples/make_samples.py")
    return {
        name: pd.read_parquet(d / f"{name}.parquet") if not name.endswith("truth") else pd.read_csv(d / f"{name.split('.')[0]}.truth.csv", keep_default_na=False)
        for name in ("reference", "batch_clean", "batch_poisoned", "batch_multisource",
                     "batch_poisoned.truth", "batch_multisource.truth")
    }


@pytest.fixture(scope="module")
def scorer(credit: dict[str, pd.DataFrame]) -> RowScorer:
    return RowScorer(label_column="class", random_state=0).fit(credit["reference"])


def _check_contract(out: pd.DataFrame, n: int) -> None:
    assert list(out.columns[:4]) == ["row", "score", "flagged", "reasons"]
    rest = [c for c in out.columns[4:] if c not in ("label_quality", "suggested_label")]
    assert all(c.startswith("score_") for c in rest) and rest
    if "label_quality" in out.columns:  # with a label column: the trusted view of each row's label
        assert list(out.columns[-2:]) == ["label_quality", "suggested_label"]
        assert out["label_quality"].between(0.0, 1.0).all()
    assert out["row"].dtype == np.int64 and out["row"].tolist() == list(range(n))
    assert out["score"].dtype == np.float64 and out["flagged"].dtype == bool
    for col in [c for c in out.columns if c.startswith("score") and c != "suggested_label"]:
        assert out[col].between(0.0, 1.0).all(), col
    assert all(isinstance(r, list) and all(isinstance(c, str) for c in r) for r in out["reasons"])
    assert (out["reasons"].map(len)[out["flagged"]] > 0).all(), "every flagged row says why"


def test_poisoned_batch_each_kind(scorer: RowScorer, credit: dict[str, pd.DataFrame]) -> None:
    batch, truth = credit["batch_poisoned"], credit["batch_poisoned.truth"]
    out = scorer.score(batch)
    _check_contract(out, len(batch))
    kinds = truth["kind"].astype(str).to_numpy()
    flag = out["flagged"].to_numpy()
    rate = {k: float(flag[kinds == k].mean()) for k in np.unique(kinds)}
    assert rate["backdoor"] == 1.0 and rate["near_duplicate_flip"] == 1.0 and rate["ood"] == 1.0
    assert rate["clean"] <= 0.03
    assert roc_auc_score(truth["is_poison"], out["score"]) > 0.75
    reasons = out["reasons"]
    assert all("cluster:backdoor" in reasons[i] for i in np.flatnonzero(kinds == "backdoor"))
    assert all("duplicate:flood" in reasons[i] for i in np.flatnonzero(kinds == "near_duplicate_flip"))
    ood = [r for i, r in enumerate(reasons) if kinds[i] == "ood"]
    assert all(any(c.startswith("outlier:ecod:feature=") for c in r) for r in ood)


def test_clean_batch_stays_within_budget(scorer: RowScorer, credit: dict[str, pd.DataFrame]) -> None:
    out = scorer.score(credit["batch_clean"])
    _check_contract(out, len(out))
    assert out["flagged"].mean() <= 0.03


def test_compromised_source_is_flagged_whole(credit: dict[str, pd.DataFrame]) -> None:
    batch, truth = credit["batch_multisource"], credit["batch_multisource.truth"]
    out = RowScorer(label_column="class", source_column="source").fit(credit["reference"]).score(batch)
    _check_contract(out, len(batch))
    bad = truth["source"].to_numpy() == "vendor_c"
    assert out["flagged"][bad].all()
    assert all("source:compromised:vendor_c" in r for r in out["reasons"][bad])
    assert out["flagged"][~bad].mean() <= 0.05
    table = pd.DataFrame(out.attrs["sources"]).set_index("source")
    assert table["compromised"].to_dict() == {"vendor_a": False, "vendor_b": False, "vendor_c": True}


def test_row_reasons_force_flags(scorer: RowScorer, credit: dict[str, pd.DataFrame]) -> None:
    batch = credit["batch_clean"]
    out = scorer.score(batch, row_reasons={3: ["expect:not_null:age"], 7: []})
    assert out.loc[3, "flagged"] and "expect:not_null:age" in out.loc[3, "reasons"]
    assert out.loc[7, "reasons"] == [] or out.loc[7, "flagged"]


def test_partitions_equal_whole_and_pickle(scorer: RowScorer, credit: dict[str, pd.DataFrame]) -> None:
    batch = credit["batch_poisoned"]
    clone = pickle.loads(pickle.dumps(scorer))
    parts = pd.concat([clone.score_partition(batch.iloc[lo : lo + 80]) for lo in range(0, len(batch), 80)])
    pd.testing.assert_frame_equal(parts, scorer.score_partition(batch))
    assert parts.index.equals(batch.index)
    whole = scorer.score(batch)
    pd.testing.assert_frame_equal(scorer.finalize(batch, parts), whole)
    # finalize needs only the label column: the feature work happened in the partitions
    pd.testing.assert_frame_equal(scorer.finalize(batch[["class"]], parts), whole)
    hidden = [c for c in parts.columns if c.startswith("_")]
    assert {"_label_p", "_dup_exact", "_outlier_features"} <= set(hidden)
    with pytest.raises(ChecksDataError, match="_cell|_dup|_label|_outlier|_vh") as err:
        scorer.finalize(batch, parts.drop(columns=hidden[:1]))
    assert err.value.code == "scoring:partition_mismatch"


def test_threaded_partitions_equal_one_partition(
    scorer: RowScorer, credit: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    import checks.scoring

    batch = credit["batch_poisoned"]
    single = scorer.finalize(batch, scorer.score_partition(batch))
    monkeypatch.setattr(checks.scoring, "PARTITION_ROWS", 50)  # 235 rows -> 5 partitions over 2 threads
    pd.testing.assert_frame_equal(scorer.score(batch, n_jobs=2), single)


def test_no_reference_fits_on_the_batch(credit: dict[str, pd.DataFrame]) -> None:
    batch, truth = credit["batch_poisoned"], credit["batch_poisoned.truth"]
    out = RowScorer(label_column="class").fit(None, batch).score(batch)
    _check_contract(out, len(batch))
    kinds = truth["kind"].astype(str).to_numpy()
    ood = kinds == "ood"
    # no trusted rows: the FP budget applies to the batch itself, and the OOD rows rank above the clean ones
    assert roc_auc_score(ood[(kinds == "clean") | ood], out["score"][(kinds == "clean") | ood]) > 0.95
    assert out["flagged"][ood].any() and out["flagged"].mean() < 0.08


def test_deterministic_and_seed_sensitive(credit: dict[str, pd.DataFrame]) -> None:
    ref, batch = credit["reference"], credit["batch_poisoned"]
    a = RowScorer(detectors=("iforest", "ecod"), random_state=1).fit(ref).score(batch)
    b = RowScorer(detectors=("iforest", "ecod"), random_state=1).fit(ref).score(batch)
    pd.testing.assert_frame_equal(a, b)
    c = RowScorer(detectors=("iforest", "ecod"), random_state=2).fit(ref).score(batch)
    assert not np.array_equal(a["score_iforest"], c["score_iforest"])


def test_fp_budget_sets_the_threshold(credit: dict[str, pd.DataFrame]) -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(rng.normal(size=(4000, 5)), columns=list("abcde"))
    clean = pd.DataFrame(rng.normal(size=(20000, 5)), columns=list("abcde"))
    for budget in (0.01, 0.05):
        out = RowScorer(fp_budget=budget, detectors=("iforest", "ecod", "hbos", "knn")).fit(ref).score(clean)
        assert abs(out["flagged"].mean() - budget) < budget * 0.5, (budget, out["flagged"].mean())


def test_errors_are_reason_coded(credit: dict[str, pd.DataFrame]) -> None:
    ref = credit["reference"]
    with pytest.raises(ChecksConfigError) as e1:
        RowScorer(detectors=("nope",)).fit(ref)
    assert e1.value.code == "scoring:unknown_detector"
    with pytest.raises(ChecksConfigError):
        RowScorer(fp_budget=0.0).fit(ref)
    with pytest.raises(ChecksDataError) as e2:
        RowScorer().fit(None, None)
    assert e2.value.code == "scoring:nothing_to_fit"
    scorer = RowScorer(detectors=("ecod",)).fit(ref)
    with pytest.raises(ChecksDataError) as e3:
        scorer.score(ref.drop(columns=["age"]))
    assert e3.value.code == "scoring:missing_column" and "age" in e3.value.message
    with pytest.raises(ChecksDataError):
        scorer.finalize(ref, scorer.score_partition(ref.iloc[:5]))


@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.booleans(), st.sampled_from([0.0, 0.0, 0.3, 0.6])),
                min_size=1, max_size=80))
def test_class_excess_reorders_only_unflagged_rows_and_keeps_them_below_flagged(
        rows: list[tuple[float, bool, float]]) -> None:
    from checks.detectors.label import rank_by_class_excess

    thr = 0.99
    score = np.array([s if not f else max(s, 0.995) for s, f, _ in rows])
    flagged = np.array([f for _, f, _ in rows])
    excess = np.array([e for _, _, e in rows])
    out = rank_by_class_excess(score, flagged, excess, thr)
    # with cut, rows flagged by something other than their score (a contract rule: any score) set no cap
    ruled = flagged & (np.arange(len(score)) % 3 == 0)
    mixed = np.where(ruled, score / 10, score)
    out_cut = rank_by_class_excess(mixed, flagged, excess, thr, cut=thr)
    by_score = flagged & (mixed > thr)
    lifted_cut = out_cut > mixed
    assert not (lifted_cut & flagged).any() and (out_cut[lifted_cut] < thr).all()
    if by_score.any():
        assert (out_cut[lifted_cut] < mixed[by_score].min()).all()
    assert np.array_equal(out[flagged], score[flagged])
    assert np.array_equal(out[excess == 0], score[excess == 0])
    assert (out >= score).all()
    lifted = out > score  # only unflagged rows of an inflated class move, and never past a flagged row or thr
    assert not (lifted & (flagged | (excess == 0))).any()
    assert (out[lifted] < thr).all()
    if flagged.any():
        assert (out[lifted] < out[flagged].min()).all()


def test_rows_of_an_inflated_class_rank_higher_without_changing_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """A targeted flip moves a third of class 0 into class 1: the class's excess lifts its unflagged rows'
    ranking (ROC-AUC of the poison up), and exactly the same rows are flagged as without the lift."""
    import checks.scoring as scoring

    rng = np.random.default_rng(0)

    def make(n: int) -> pd.DataFrame:
        y = rng.integers(0, 3, size=n)
        X = rng.normal(size=(n, 4)) + y[:, None] * 0.6
        return pd.DataFrame(X, columns=list("abcd")).assign(y=y)

    ref, batch = make(3000), make(3000)
    moved = np.flatnonzero(batch["y"].to_numpy() == 0)[:330]
    batch.loc[moved, "y"] = 1
    truth = np.zeros(len(batch), dtype=bool)
    truth[moved] = True
    scorer = RowScorer(label_column="y", random_state=0).fit(ref)
    lifted = scorer.score(batch)
    monkeypatch.setattr(scoring, "rank_by_class_excess", lambda score, *_, **__: score)
    plain = scorer.score(batch)
    assert lifted["flagged"].equals(plain["flagged"])
    assert any("label:prior_shift" in r for r in lifted["reasons"])
    auc_lifted, auc_plain = roc_auc_score(truth, lifted["score"]), roc_auc_score(truth, plain["score"])
    assert auc_lifted > auc_plain + 0.02, (auc_lifted, auc_plain)
