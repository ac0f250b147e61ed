"""trainguard serve against a REAL Prefect server: deployments are registered, a run writes a ledger entry."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipelines.config import load_config
from pipelines.errors import PipelineConfigError
from pipelines.serve import build_deployments

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: process exited with {proc.returncode}")
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _config(tmp_path: Path, source_lines: str) -> tuple[Path, Path]:
    """A trainguard.toml with a fresh SQLite ledger and one source ``credit`` (label ``class``); (config, ledger)."""
    ledger = tmp_path / "ledger.db"
    cfg = tmp_path / "trainguard.toml"
    cfg.write_text(f'ledger = "sqlite:///{ledger}"\nout_root = "{tmp_path / "out"}"\n'
                   f'[sources.credit]\nlabel_column = "class"\n{source_lines}\n', encoding="utf-8")
    return cfg, ledger


def _ledger_names(ledger: Path, env: dict[str, str], text: str) -> bool:
    """Whether ``trainguard ledger log --json`` of ``ledger`` mentions ``text``."""
    if not ledger.exists():
        return False
    out = subprocess.run([str(BIN / "trainguard"), "ledger", "log", "--ledger", f"sqlite:///{ledger}", "--json"],
                         capture_output=True, text=True, env=env)
    return out.returncode == 0 and text in out.stdout


@contextmanager
def _serving(cfg: Path, env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:  # type: ignore[type-arg]
    """``trainguard serve --config cfg`` running in its own session; stopped on exit."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(BIN / "trainguard"), "serve", "--config", str(cfg)], env=env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            _stop(proc)


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`prefect server start` on a free port with its own PREFECT_HOME; yields the env to talk to it."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_SERVER_UI_ENABLED="false",
               PREFECT_LOGGING_LEVEL="WARNING",
               PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5")  # schedule new runs within seconds
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: _healthy(url), 120, "the Prefect server", proc)
        yield dict(env, PREFECT_API_URL=url)
    finally:
        _stop(proc)
        log.close()


def test_build_deployments_per_source(tmp_path: Path) -> None:
    cfg_path = tmp_path / "tg.toml"
    (tmp_path / "landing").mkdir()
    cfg_path.write_text('[sources.a]\npath = "a.csv"\nschedule = "0 3 * * *"\n'
                        f'[sources.b]\nlanding_dir = "{tmp_path / "landing"}"\npoll_seconds = 15\n',
                        encoding="utf-8")
    deps = build_deployments(load_config(cfg_path))
    assert [(d.flow_name, d.name) for d in deps] == [("trainguard-ingest", "a"), ("trainguard-landing", "b-landing")]
    assert deps[0].schedules[0].schedule.cron == "0 3 * * *"
    assert deps[1].schedules[0].schedule.interval.total_seconds() == 15
    assert deps[0].parameters["uri"] == "a.csv"


def test_a_missing_landing_dir_is_refused_at_serve(tmp_path: Path) -> None:
    """Found by review: serve ran, and every poll failed with FileNotFoundError, unrecorded and unseen."""
    cfg_path = tmp_path / "tg.toml"
    cfg_path.write_text(f'[sources.b]\nlanding_dir = "{tmp_path / "nowhere"}"\n', encoding="utf-8")
    with pytest.raises(PipelineConfigError) as info:
        build_deployments(load_config(cfg_path))
    assert info.value.code == "config:bad_value" and "nowhere" in str(info.value)


def test_serve_without_a_reachable_prefect_api_is_a_config_error(tmp_path: Path) -> None:
    """Found by review: an unreachable PREFECT_API_URL was an internal error (exit 70)."""
    cfg_path = tmp_path / "tg.toml"
    cfg_path.write_text('[sources.a]\npath = "a.csv"\nschedule = "0 3 * * *"\n', encoding="utf-8")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PREFECT_API_URL=f"http://127.0.0.1:{port}/api", PREFECT_HOME=str(tmp_path / "prefect"))
    proc = subprocess.run([str(BIN / "trainguard"), "serve", "--config", str(cfg_path), "--ledger",
                           f"sqlite:///{tmp_path}/l.db"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"cannot reach the Prefect API at http://127.0.0.1:{port}/api" in proc.stderr
    assert "[config:prefect_unreachable]" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_serve_runs_a_deployment_that_writes_the_ledger(prefect_server: dict[str, str], tmp_path: Path,
                                                        data_samples: Path) -> None:
    cfg, ledger = _config(tmp_path, f'path = "{data_samples / "credit" / "batch_clean.csv"}"\nschedule = "0 0 1 1 *"')
    env = dict(prefect_server)
    with _serving(cfg, env, tmp_path / "serve.log") as serve:
        def registered() -> bool:
            out = subprocess.run([str(BIN / "prefect"), "deployment", "inspect", "trainguard-ingest/credit"],
                                 env=env, capture_output=True, text=True)
            return out.returncode == 0

        _wait(registered, 90, "the deployment to be registered", serve)
        run = subprocess.run([str(BIN / "prefect"), "deployment", "run", "trainguard-ingest/credit"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
        _wait(lambda: _ledger_names(ledger, env, '"credit"'), 150, "the triggered run's ledger entry", serve)
    log = subprocess.run([str(BIN / "trainguard"), "ledger", "log", "--ledger", f"sqlite:///{ledger}", "--json"],
                         capture_output=True, text=True, env=env, check=True)
    doc = json.loads(log.stdout)
    assert "approved" in json.dumps(doc)
    assert (tmp_path / "out" / "credit" / "clean.parquet").exists()


@pytest.mark.slow
def test_the_schedule_itself_starts_runs(prefect_server: dict[str, str], tmp_path: Path, data_samples: Path) -> None:
    """No manual trigger: the landing poll's interval schedule (5 s) makes the server schedule runs, and a file
    dropped into the landing directory gets its ledger entry. (With SQLAlchemy 2.1, Prefect 3.8's scheduler
    failed on every loop and no scheduled run ever started.)"""
    import shutil

    landing = tmp_path / "landing"
    landing.mkdir()
    cfg, ledger = _config(tmp_path, f'landing_dir = "{landing}"\npoll_seconds = 5')
    env = dict(prefect_server)
    with _serving(cfg, env, tmp_path / "serve.log") as serve:
        shutil.copy(data_samples / "credit" / "batch_clean.csv", landing / "batch_clean.csv")
        _wait(lambda: _ledger_names(ledger, env, "batch_clean.csv"), 180, "a scheduled landing poll's ledger entry",
              serve)
