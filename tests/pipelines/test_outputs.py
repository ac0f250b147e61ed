"""pipelines.outputs: staged writes, publish order, crash safety, deterministic bytes."""

from __future__ import annotations

import hashlib
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


def test_crash_before_publish_leaves_no_clean_parquet(batch: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    staging = outputs.new_staging(out)
    outputs.write_outputs(staging, batch_path=batch, scores=_scores(200, []), quarantined=np.array([], int),
                          approved=True)
    # the process dies here: the staged clean.parquet never reaches OUT and is swept by the next run
    assert not (out / "clean.parquet").exists()
    outputs.cleanup_stale_staging(out)
    assert not staging.exists()


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
