"""--runner dask: partitions scored through prefect-dask's DaskTaskRunner on a 2-process LocalCluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from pipelines.flows import ingest

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c.scheduler_address


def test_dask_scores_equal_local(cluster: str, data_samples: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "tg.toml"
    cfg.write_text("partition_rows = 50\n", encoding="utf-8")  # 235 rows -> 5 partitions over 2 workers
    common = {"source": "credit", "label_column": "class", "config_path": str(cfg),
              "reference": str(data_samples / "credit" / "reference.parquet")}
    batch = str(data_samples / "credit" / "batch_poisoned.parquet")
    local = ingest(batch, ledger_url=f"sqlite:///{tmp_path / 'a.db'}", out_dir=str(tmp_path / "local"), **common)
    dask = ingest(batch, ledger_url=f"sqlite:///{tmp_path / 'b.db'}", out_dir=str(tmp_path / "dask"),
                  runner="dask", dask_address=cluster, **common)
    a = pd.read_parquet(tmp_path / "local" / "scores.parquet")
    b = pd.read_parquet(tmp_path / "dask" / "scores.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert local["outputs"] == dask["outputs"]
    assert local["verdict"] == dask["verdict"]
    from distributed import Client

    with Client(cluster) as client:  # the partitions really ran on the cluster's workers
        prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert any("score-partition" in p or "score_partition" in p for p in prefixes), prefixes
