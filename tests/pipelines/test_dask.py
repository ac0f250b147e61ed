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


def test_dask_without_address_runs_on_a_temporary_local_cluster(data_samples: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """``--runner dask`` with no ``--dask-address`` (CLI and ``ingest``): a 2-process LocalCluster made for the run.

    The cluster is the one ``_runner("dask", None)`` asks for; it scores the partitions and is closed at the end.
    """
    import json

    import distributed

    from pipelines.cli.main import main

    made: list[dict] = []

    class Recorded(distributed.LocalCluster):  # type: ignore[misc]
        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)
            made.append({"kwargs": kwargs, "cluster": self})

        def __exit__(self, *exc: object) -> None:
            assert self.scheduler is not None  # LocalCluster's scheduler runs in this process
            made[-1]["prefixes"] = list(self.scheduler.task_prefixes)
            super().__exit__(*exc)

    monkeypatch.setattr(distributed, "LocalCluster", Recorded)
    cfg = tmp_path / "tg.toml"
    cfg.write_text("partition_rows = 50\n", encoding="utf-8")  # 235 rows -> 5 partitions over 2 workers
    batch = str(data_samples / "credit" / "batch_poisoned.parquet")
    reference = str(data_samples / "credit" / "reference.parquet")
    local = ingest(batch, source="credit", label_column="class", config_path=str(cfg), reference=reference,
                   ledger_url=f"sqlite:///{tmp_path / 'a.db'}", out_dir=str(tmp_path / "local"))
    assert made == []  # the local runner makes no cluster
    rc = main(["ingest", batch, "--source", "credit", "--label-column", "class", "--config", str(cfg),
               "--reference", reference, "--ledger", f"sqlite:///{tmp_path / 'b.db'}",
               "--out", str(tmp_path / "dask"), "--runner", "dask", "--json"])
    dask = json.loads(capsys.readouterr().out)
    assert rc == dask["exit_code"] == local["exit_code"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "local" / "scores.parquet"),
                                  pd.read_parquet(tmp_path / "dask" / "scores.parquet"))
    assert dask["verdict"] == local["verdict"]
    assert dask["counts"] == local["counts"] and dask["outputs"] == local["outputs"]
    assert [e["verdict"] for e in dask["ledger"]] == [e["verdict"] for e in local["ledger"]]
    assert {"approved", "quarantined"} & {e["verdict"] for e in local["ledger"]}
    (cluster,) = made
    assert cluster["kwargs"]["n_workers"] == 2 and cluster["kwargs"]["processes"] is True
    assert any("score-partition" in p or "score_partition" in p for p in cluster["prefixes"]), cluster["prefixes"]
    assert cluster["cluster"].status.name == "closed"  # the temporary cluster does not outlive the run
