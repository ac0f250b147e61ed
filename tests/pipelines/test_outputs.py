"""pipelines.outputs: staged writes, publish order, crash safety, deterministic bytes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines import outputs
from pipelines.reading import read_to_parquet


@pytest.fixture()
def batch(data_samples: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "batch.parquet"
    read_to_parquet(data_samples / "credit" / "batch_clean.csv", dest, fmt="csv", uri="batch_clean.csv",
                    row_group_rows=64)
    return dest


def _scores(n: int, flagged: list[int]) -> pd.DataFrame:
    f = np.zeros(n, dtype=bool)
    f[flagged] = True
    return pd.DataFrame({"row": np.arange(n), "score": np.where(f, 0.9, 0.1), "flagged": f,
                         "reasons": [["outlier:iforest"] if x else [] for x in f], "score_iforest": 0.5})


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_write_and_publish(batch: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    staging = outputs.new_staging(out)
    written = outputs.write_outputs(staging, batch_path=batch, scores=_scores(200, [3, 7]),
                                    quarantined=np.array([3, 7]), approved=True)
    assert set(written) == {"clean.parquet", "quarantine.parquet", "scores.parquet"}
    assert not (out / "clean.parquet").exists()  # nothing visible before publish
    placed = outputs.publish(staging, out)
    assert set(placed) == set(written)
    assert not staging.exists()
    clean = pq.read_table(out / "clean.parquet")
    quarantine = pq.read_table(out / "quarantine.parquet").to_pandas()
    assert clean.num_rows == 198
    assert quarantine["row"].tolist() == [3, 7]
    assert [list(r) for r in quarantine["reasons"]] == [["outlier:iforest"]] * 2
    scores = pq.read_table(out / "scores.parquet")
    assert str(scores.schema.field("reasons").type) == "list<element: string>"
    assert scores.schema.field("row").type == "int64"


def test_rejected_run_removes_a_stale_clean_parquet(batch: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    staging = outputs.new_staging(out)
    outputs.write_outputs(staging, batch_path=batch, scores=_scores(200, []), quarantined=np.array([], int),
                          approved=True)
    outputs.publish(staging, out)
    assert (out / "clean.parquet").exists()
    staging = outputs.new_staging(out)
    outputs.write_outputs(staging, batch_path=batch, scores=_scores(200, list(range(150))),
                          quarantined=np.arange(150), approved=False)
    outputs.publish(staging, out)
    assert not (out / "clean.parquet").exists()
    assert (out / "quarantine.parquet").exists()


# A run in another process: it stages outputs, prints its staging directory, then behaves as its argv says.
_RUN = """
import os, sys
from pathlib import Path
from pipelines import outputs

staging = outputs.new_staging(Path(sys.argv[1]))
(staging / "clean.parquet").write_bytes(b"staged, never approved")
print(staging, flush=True)
if sys.argv[2] == "live":  # still running until the test closes its stdin
    sys.stdin.read()
elif sys.argv[2] == "fork-then-crash" and os.fork() == 0:  # a helper it forked outlives it
    print("helper running", flush=True)  # after the fork handlers ran
    sys.stdin.read()
    os._exit(0)
os._exit(1)  # the run dies without publishing or releasing anything
"""


def _run_elsewhere(out: Path, how: str) -> tuple[subprocess.Popen[str], Path]:
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", _RUN, str(out), how], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        pytest.fail(f"the other run did not start: {proc.communicate(timeout=60)[1]}")
    staging = Path(line)
    assert staging.parent == out and (staging / "clean.parquet").exists()
    return proc, staging


def _end(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=60)


def test_crash_before_publish_leaves_no_clean_parquet(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc, staging = _run_elsewhere(out, "crash")
    assert proc.wait(timeout=60) == 1  # the process died here: its staged clean.parquet never reaches OUT
    _end(proc)
    assert not (out / "clean.parquet").exists()
    outputs.cleanup_stale_staging(out)  # and the next run sweeps it
    assert not staging.exists()


def test_live_staging_of_another_process_survives_cleanup(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc, staging = _run_elsewhere(out, "live")
    try:
        outputs.cleanup_stale_staging(out)
        assert (staging / "clean.parquet").read_bytes() == b"staged, never approved"
        assert proc.poll() is None
    finally:
        _end(proc)
    outputs.cleanup_stale_staging(out)  # its run is gone now: the staging is stale
    assert not staging.exists()


def test_staging_of_a_crashed_run_is_swept_while_a_helper_it_forked_lives(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc, staging = _run_elsewhere(out, "fork-then-crash")
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "helper running\n"
        assert proc.wait(timeout=60) == 1
        outputs.cleanup_stale_staging(out)
        assert not staging.exists()
    finally:
        _end(proc)  # the helper shares the pipes: closing stdin ends it too


def test_live_staging_in_this_process_survives_cleanup(tmp_path: Path) -> None:
    out = tmp_path / "out"
    live = outputs.new_staging(out)
    (out / ".staging-legacy").mkdir()  # left by a crashed run, unlocked
    outputs.cleanup_stale_staging(out)
    assert live.is_dir() and not (out / ".staging-legacy").exists()
    assert list(live.iterdir()) == []  # the lock adds no file to the staged outputs
    outputs.release_staging(live)
    outputs.release_staging(live)  # idempotent
    assert not live.exists()
    assert os.path.abspath(live) not in outputs._held  # its lock is released


def _stage_set(out: Path, batch: Path, *, approved: bool, flagged: list[int]) -> tuple[Path, dict]:
    """A staged set whose summary.json names the digest of each Parquet output, as a real run's does."""
    staging = outputs.new_staging(out)
    outputs.write_outputs(staging, batch_path=batch, scores=_scores(200, flagged),
                          quarantined=np.array(flagged, dtype=np.int64), approved=approved)
    summary = {"approved": approved, "outputs": {p.name: _sha(p) for p in sorted(staging.glob("*.parquet"))}}
    outputs.write_json(staging / "summary.json", summary)
    return staging, summary


def _published(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert {p.name: _sha(p) for p in sorted(out.glob("*.parquet"))} == summary["outputs"]
    return summary


def test_concurrent_publishes_leave_one_consistent_set(batch: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Run B publishes while run A is half-way through its renames: B waits, and B's whole set wins."""
    out = tmp_path / "out"
    a, _ = _stage_set(out, batch, approved=True, flagged=[3])
    b, b_summary = _stage_set(out, batch, approved=False, flagged=[1, 2, 5])
    midway, go = threading.Event(), threading.Event()
    real_replace = os.replace

    def replace(src: object, dst: object) -> None:
        real_replace(src, dst)  # type: ignore[arg-type]
        if threading.current_thread().name == "publish-a" and not midway.is_set():
            midway.set()  # A has placed its first file
            go.wait(30)

    monkeypatch.setattr(outputs.os, "replace", replace)
    ta = threading.Thread(target=outputs.publish, args=(a, out), name="publish-a")
    tb = threading.Thread(target=outputs.publish, args=(b, out), name="publish-b")
    ta.start()
    assert midway.wait(30)
    tb.start()
    tb.join(timeout=1.0)  # without the out-dir lock B's whole publish runs now, between A's renames
    b_waited = tb.is_alive()
    go.set()
    ta.join(timeout=30)
    tb.join(timeout=30)
    assert not ta.is_alive() and not tb.is_alive()
    assert _published(out) == b_summary
    assert not (out / "clean.parquet").exists()  # B was rejected: A's clean.parquet is not left beside it
    assert b_waited
    assert not a.exists() and not b.exists()


def test_outputs_are_byte_identical_across_runs(batch: Path, tmp_path: Path) -> None:
    digests = []
    for i in range(2):
        staging = outputs.new_staging(tmp_path / f"o{i}")
        outputs.write_outputs(staging, batch_path=batch, scores=_scores(200, [5]), quarantined=np.array([5]),
                              approved=True)
        outputs.publish(staging, tmp_path / f"o{i}")
        digests.append({n: _sha(tmp_path / f"o{i}" / n) for n in ("clean.parquet", "quarantine.parquet",
                                                                 "scores.parquet")})
    assert digests[0] == digests[1]


def test_atomic_write_bytes_replaces(tmp_path: Path) -> None:
    p = tmp_path / "a" / "f.json"
    outputs.atomic_write_bytes(p, b"1")
    outputs.atomic_write_bytes(p, b"2")
    assert p.read_bytes() == b"2"
    assert [x.name for x in p.parent.iterdir()] == ["f.json"]


def test_written_scores_are_read_back_and_copied_byte_for_byte(batch: Path, tmp_path: Path) -> None:
    scores = _scores(200, [3, 7, 150])
    scores.loc[7, "reasons"] = ["label:inconsistent", "duplicate:flood"]
    path = outputs.write_scores(scores, tmp_path / "scores.work.parquet")
    back = outputs.read_scores(path)
    pd.testing.assert_frame_equal(back, scores, check_dtype=False)
    assert back["reasons"].map(len).sum() == 4 and back.loc[7, "reasons"] == ["label:inconsistent", "duplicate:flood"]
    a, b = outputs.new_staging(tmp_path / "a"), outputs.new_staging(tmp_path / "b")
    common = {"batch_path": batch, "quarantined": np.array([3, 7, 150]), "approved": True}
    outputs.write_outputs(a, scores=scores, **common)
    outputs.write_outputs(b, scores=back, scores_file=path, **common)
    for name in ("scores.parquet", "quarantine.parquet", "clean.parquet"):
        assert _sha(a / name) == _sha(b / name), name
    outputs.release_staging(a)
    outputs.release_staging(b)


def test_quarantine_columns_never_collide_with_the_data() -> None:
    import doctest

    import pipelines.outputs
    from pipelines.outputs import quarantine_columns

    assert doctest.testmod(pipelines.outputs).failed == 0
    assert quarantine_columns(["a", "b"]) == ("row", "score", "reasons")
    names = quarantine_columns(["row", "trainguard_row", "reasons", "_trainguard_row"])
    assert names == ("__trainguard_row", "score", "trainguard_reasons")


def test_summary_json_is_strict_json(tmp_path: Path) -> None:
    """Found by review: summary.json held a bare NaN (drift of an all-null column), which JSON parsers refuse."""
    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    path = outputs.write_json(tmp_path / "summary.json", {
        "drift": [{"column": "age", "statistic": float("nan"), "threshold": np.float64("nan"), "drifted": True}],
        "checks": {"share": float("inf"), "rows": np.int64(5)}})
    doc = json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)
    assert doc == {"drift": [{"column": "age", "statistic": None, "threshold": None, "drifted": True}],
                   "checks": {"share": None, "rows": 5}}
    assert path.read_text(encoding="utf-8").startswith('{\n  "checks": {')  # still sorted and indented
