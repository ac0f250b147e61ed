"""Label repair end to end: the confusion table, ``--relabel`` writing corrected labels, the ledger and the gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import outputs
from pipelines._relabel import confusion, plan_relabel
from pipelines.cli.main import main
from pipelines.config import Policy
from pipelines.flows import ingest
from pipelines.policy import decide, release_relabelled
from provenance.errors import NotApprovedError
from provenance.gate import require_approved
from provenance.ledger import open_ledger

CENTRES = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]])
NAMES = np.array(["ant", "bee", "cat", "dog"], dtype=object)


def _scores(reasons: list[list[str]], suggested: list[Any]) -> pd.DataFrame:
    return pd.DataFrame({"row": np.arange(len(reasons)), "score": [0.99 if r else 0.1 for r in reasons],
                         "flagged": [bool(r) for r in reasons], "reasons": reasons,
                         "suggested_label": pd.Series(suggested, dtype=object)})


def test_only_rows_doubted_for_their_label_alone_are_relabelled() -> None:
    reasons = [[], ["label:inconsistent"], ["label:knn_disagreement", "score:adaptive"], ["outlier:iforest"],
               ["label:inconsistent", "cluster:backdoor"], ["duplicate:exact"], ["label:prior_shift"],
               ["label:unseen", "label:inconsistent"], ["duplicate:conflicting_label", "duplicate:exact"]]
    suggested = [None, 2, 3, 4, 5, 6, None, 8, 9]
    labels = pa.array([0, 0, 0, 0, 0, 0, 0, 0, 0], pa.int32())
    plan = plan_relabel(_scores(reasons, suggested), np.arange(1, 9), labels, "y")
    assert plan is not None
    assert plan.rows.tolist() == [1, 2, 8]  # not: outliers, backdoors, exact copies alone, unseen labels, no suggestion
    assert plan.values.type == pa.int32() and plan.values.to_pylist() == [2, 3, 9]
    assert plan.record() == {"column": "y", "rows": 3, "changes": [
        {"from": "0", "to": "2", "rows": 1}, {"from": "0", "to": "3", "rows": 1}, {"from": "0", "to": "9", "rows": 1}]}
    assert plan_relabel(_scores(reasons, suggested), np.array([0, 3]), labels, "y") is None


def test_a_suggestion_the_column_cannot_hold_stays_quarantined() -> None:
    plan = plan_relabel(_scores([["label:inconsistent"]], ["not a number"]), np.array([0]), pa.array([1]), "y")
    assert plan is None  # fail closed: the row is not released with a label of another type


def test_confusion_counts_given_to_suggested() -> None:
    scores = _scores([[], ["label:inconsistent"], [], ["label:inconsistent"]], ["b", "b", None, "a"])
    table = confusion(scores, pa.array(["a", "a", "a", "b"]))
    assert table == [{"given": "a", "suggested": "b", "rows": 2, "flagged": 1},
                     {"given": "b", "suggested": "a", "rows": 1, "flagged": 1}]


def test_release_relabelled_moves_rows_out_of_quarantine() -> None:
    scores = _scores([[], ["label:inconsistent"], ["outlier:iforest"], ["label:inconsistent"]], [None, 1, None, 0])
    decision = decide(scores, Policy(max_quarantined_share=0.9))
    after = release_relabelled(decision, np.array([3, 1]), scores, "0 -> 1 x1")
    assert after.quarantined.tolist() == [2] and after.relabelled.tolist() == [1, 3]
    assert after.checks == decision.checks  # the policy's share still counted them
    assert after.reasons[-2:] == ["quarantined 1 of 4 rows (25.0%): outlier:iforest x1",
                                  "relabelled 2 of 4 rows (50.0%): 0 -> 1 x1"]
    rejected = decide(scores, Policy(max_quarantined_share=0.1))
    assert release_relabelled(rejected, np.array([1]), scores, "x") is rejected  # never turns a refusal around


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), group=st.integers(1, 17), data=st.data())
def test_clean_parquet_carries_the_corrected_labels(tmp_path_factory: pytest.TempPathFactory, n: int, group: int,
                                                    data: st.DataObject) -> None:
    tmp = tmp_path_factory.mktemp("relabel")
    labels = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    batch = tmp / "batch.parquet"
    pq.write_table(pa.table({"x": pa.array(np.arange(n, dtype=np.float64)), "y": pa.array(labels, pa.int16())}),
                   batch, row_group_size=group)
    rows = sorted(data.draw(st.sets(st.integers(0, n - 1), max_size=n)))
    quarantined = [r for r in rows if r % 2]  # odd rows quarantined, even ones relabelled to label + 10
    fixed = [r for r in rows if not r % 2]
    reasons = [["label:inconsistent"] if r in rows else [] for r in range(n)]
    suggested = [labels[r] + 10 if r in fixed else None for r in range(n)]
    scores = _scores(reasons, suggested)
    plan = plan_relabel(scores, np.array(fixed, dtype=np.int64), pa.array(labels, pa.int16()), "y")
    staging = tmp / "staging"
    outputs.write_outputs(staging, batch_path=batch, scores=scores, quarantined=np.array(quarantined, dtype=np.int64),
                          approved=True, relabel=plan)
    clean = pq.read_table(staging / "clean.parquet")
    kept = [r for r in range(n) if r not in quarantined]
    assert clean.column("x").to_pylist() == [float(r) for r in kept]
    assert clean.column("y").to_pylist() == [labels[r] + 10 if r in fixed else labels[r] for r in kept]
    assert clean.schema.field("y").type == pa.int16()  # the column keeps its type
    q = pq.read_table(staging / "quarantine.parquet")
    assert q.column("row").to_pylist() == quarantined
    assert json.loads(q.schema.metadata[outputs.ADDED_COLUMNS_KEY]) == ["row", "score", "reasons", "suggested_label"]


def _write_split(root: Path, *, flips: int) -> dict[str, Any]:
    rng = np.random.default_rng(7)

    def blobs(n: int) -> tuple[pd.DataFrame, np.ndarray]:
        k = rng.integers(0, 4, n)
        frame = pd.DataFrame(CENTRES[k] + rng.normal(scale=0.7, size=(n, 3)), columns=["x", "y", "z"])
        frame["animal"] = NAMES[k]
        return frame, k

    ref, _ = blobs(1_500)
    batch, truth = blobs(800)
    at = rng.choice(len(batch), flips, replace=False)
    batch.loc[at, "animal"] = NAMES[(truth[at] + rng.integers(1, 4, flips)) % 4]
    ref.to_csv(root / "reference.csv", index=False)
    batch.to_csv(root / "batch.csv", index=False)
    return {"truth": NAMES[truth], "flipped": at, "batch": root / "batch.csv", "reference": root / "reference.csv"}


@pytest.mark.usefixtures("prefect_harness")
def test_relabel_run_releases_corrected_rows_and_records_them(tmp_path: Path, ledger_url: str) -> None:
    split = _write_split(tmp_path, flips=40)
    result = ingest(str(split["batch"]), source="zoo", reference=str(split["reference"]), label_column="animal",
                    ledger_url=ledger_url, out_dir=str(tmp_path / "out"), relabel=True)
    out = tmp_path / "out"
    assert result["verdict"] == "approved"
    counts = result["counts"]
    assert counts["relabelled"] >= 30 and counts["clean"] == 800 - counts["quarantined"]
    q_rows = set(pq.read_table(out / "quarantine.parquet").column("row").to_pylist())
    kept = np.array([r for r in range(800) if r not in q_rows])
    clean = pq.read_table(out / "clean.parquet").column("animal").to_numpy(zero_copy_only=False)
    given_labels = pd.read_csv(split["batch"])["animal"].to_numpy()[kept]
    changed = clean != given_labels
    assert changed.sum() == counts["relabelled"]
    assert (clean[changed] == split["truth"][kept][changed]).mean() >= 0.9  # corrected to the true class
    wrong_before = (given_labels != split["truth"][kept]).sum()
    assert (clean != split["truth"][kept]).sum() <= 0.25 * wrong_before
    labels = result["labels"]
    assert labels["relabelled"]["rows"] == counts["relabelled"] and labels["relabel"] is True
    assert sum(c["rows"] for c in labels["relabelled"]["changes"]) == counts["relabelled"]
    assert any(r.startswith(f"relabelled {counts['relabelled']} of 800 rows") for r in result["reasons"])
    with open_ledger(ledger_url) as ledger:
        predicates = [ledger.record(i).statement["predicate"] for i in range(ledger.size())]
    assert [p["verdict"] for p in predicates] == ["approved", "quarantined"]  # the raw file is not approved
    assert predicates[0]["labels"]["relabelled"] == labels["relabelled"]
    assert predicates[0]["counts"]["relabelled"] == counts["relabelled"]
    with open_ledger(ledger_url) as ledger:
        require_approved(out / "clean.parquet", ledger=ledger)
        with pytest.raises(NotApprovedError):
            require_approved(split["batch"], ledger=ledger)
    report = (out / "report.html").read_text()
    assert "Relabelled" in report and "class-confusion" not in report  # the section speaks plainly
    assert f"{counts['relabelled']} relabelled" in report


@pytest.mark.usefixtures("prefect_harness")
def test_without_relabel_rows_are_dropped_and_the_confusion_is_reported(tmp_path: Path, ledger_url: str) -> None:
    split = _write_split(tmp_path, flips=40)
    result = ingest(str(split["batch"]), source="zoo", reference=str(split["reference"]), label_column="animal",
                    ledger_url=ledger_url, out_dir=str(tmp_path / "out"))
    assert result["counts"]["relabelled"] == 0 and result["labels"]["relabelled"] is None
    confusion_rows = result["labels"]["confusion"]
    assert sum(c["rows"] for c in confusion_rows) == result["labels"]["suggested"] >= 30
    truth, flipped = split["truth"], split["flipped"]
    given_labels = pd.read_csv(split["batch"])["animal"].to_numpy()
    expected = pd.Series(list(zip(given_labels[flipped], truth[flipped], strict=True))).value_counts()
    top = confusion_rows[0]
    assert expected.get((top["given"], top["suggested"]), 0) >= top["rows"] - 2  # the table names real flips
    q = pq.read_table(tmp_path / "out" / "quarantine.parquet")
    assert {"suggested_label", "label_quality"} <= set(q.column_names)
    assert q.schema.field("suggested_label").type == pa.string()
    report = (tmp_path / "out" / "report.html").read_text()
    assert "Labels of <code>animal</code>" in report and "--relabel" in report
    threshold = result["threshold"]  # how the cut was set, and how predictable the trusted labels are
    assert threshold["mode"] in ("budget", "widened", "narrowed") and 0.9 < threshold["label_accuracy_heldout"] <= 1
    assert "label doubts are calibrated" in report and f"score &gt; {threshold['cut']:.6g}" in report
    scores = pq.read_table(tmp_path / "out" / "scores.parquet")
    assert scores.schema.field("label_quality").type == pa.float64()


@pytest.mark.usefixtures("prefect_harness")
def test_relabel_without_a_label_column_is_a_usage_error(tmp_path: Path, ledger_url: str, data_samples: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ingest", str(data_samples / "credit" / "batch_clean.csv"), "--relabel", "--ledger", ledger_url,
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "[usage:relabel_without_label]" in err and "Traceback" not in err
    assert len(err.strip().splitlines()[-1]) < 200
