"""The CLI's early-started Prefect API server: real uvicorn subprocesses, a real flow run, no leftovers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines import _api_server
from pipelines._api_server import TemporaryAPIServer


def _server_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(home), PREFECT_UI_ENABLED="0", PREFECT__SERVER_EPHEMERAL="1",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="CRITICAL")
    return env


def _servers_of(home: Path) -> list[int]:
    """Pids of live uvicorn processes whose environment names this PREFECT_HOME."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"uvicorn" in (proc / "cmdline").read_bytes() and \
                    f"PREFECT_HOME={home}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _gone(home: Path, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while _servers_of(home) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _servers_of(home)


@pytest.mark.usefixtures("prefect_harness")
def test_not_started_when_an_api_is_configured() -> None:
    """The test harness sets an API URL: Prefect would use it, and so does the CLI."""
    assert TemporaryAPIServer.start_if_needed() is None


def test_flows_run_against_the_early_server(tmp_path: Path) -> None:
    from prefect import flow
    from prefect.settings import PREFECT_API_URL

    server = TemporaryAPIServer(_server_env(tmp_path / "prefect"))
    server._launch()
    try:
        with server.serving():
            assert PREFECT_API_URL.value() == server.api_url

            @flow(name="tg-early-server-probe")
            def probe() -> int:
                return 7

            assert probe() == 7
        request = urllib.request.Request(f"{server.api_url}/flow_runs/filter", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our local server
            runs = json.load(response)
        assert [r["state_type"] for r in runs] == ["COMPLETED"]
    finally:
        server.stop()
    assert server.process is None and _gone(tmp_path / "prefect")


def test_port_taken_in_between_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn exits with 3 when its port was taken after it was chosen; the server is launched again."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([taken.getsockname()[1]])
    real = _api_server._free_port
    monkeypatch.setattr(_api_server, "_free_port", lambda: next(ports, None) or real())
    server = TemporaryAPIServer(_server_env(tmp_path / "prefect"))
    try:
        server._launch()
        assert server.port == taken.getsockname()[1]
        assert server.wait_ready(120)
        assert server.port != taken.getsockname()[1]
    finally:
        server.stop()
        taken.close()


def test_a_server_that_does_not_come_up_falls_back_to_prefect(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    env = _server_env(tmp_path / "prefect")
    env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = "postgresql+asyncpg://nobody@127.0.0.1:1/none"  # cannot start
    server = TemporaryAPIServer(env)
    server._launch()
    before = PREFECT_API_URL.value()
    with server.serving():
        assert PREFECT_API_URL.value() == before  # Prefect's own path, unchanged
    assert server.process is None


def _cli(args: list[str], home: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(home)
    trainguard = str(Path(sys.executable).parent / "trainguard")
    return subprocess.Popen([trainguard, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cli_ingest_without_an_api_leaves_no_server(data_samples: Path, tmp_path: Path) -> None:
    home = tmp_path / "prefect"
    proc = _cli(["ingest", str(data_samples / "credit" / "batch_clean.csv"), "--label-column", "class",
                 "--ledger", f"sqlite:///{tmp_path / 'l.db'}", "--out", str(tmp_path / "out"), "--json"], home)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert json.loads(out)["verdict"] == "approved"
    assert _gone(home)


def test_a_killed_cli_takes_its_server_with_it(data_samples: Path, tmp_path: Path) -> None:
    """SIGKILL runs no cleanup: the kernel's parent-death signal still stops the server."""
    home = tmp_path / "prefect"
    proc = _cli(["ingest", str(data_samples / "credit" / "batch_clean.csv"), "--ledger",
                 f"sqlite:///{tmp_path / 'l.db'}", "--out", str(tmp_path / "out")], home)
    deadline = time.monotonic() + 120
    while not _servers_of(home) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert _servers_of(home), "the CLI did not start its API server"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert _gone(home)


_EARLY = """
import sys
from pipelines._api_server import TemporaryAPIServer
TemporaryAPIServer.launch_early()
server = TemporaryAPIServer._current
print("launched" if server is not None and server.process is not None else "not launched")
print("prefect imported" if "prefect" in sys.modules else "prefect not imported")
sys.stdout.flush()
adopted = TemporaryAPIServer.start_if_needed()
print("adopted" if adopted is not None and adopted is server else "not adopted")
if adopted is not None:
    print("ready" if adopted.wait_ready(120) else "not ready")
    adopted.stop()
else:
    print("stopped" if server is not None and server.process is None else "still running")
"""


def _early(tmp_path: Path, home: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_LOGGING_LEVEL="CRITICAL", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run([sys.executable, "-c", _EARLY], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_the_server_is_launched_before_prefect_is_imported_and_adopted(tmp_path: Path) -> None:
    home = tmp_path / "prefect"
    assert _early(tmp_path, home) == ["launched", "prefect not imported", "adopted", "ready"]
    assert _gone(home)


def test_an_early_server_is_stopped_when_prefects_settings_name_an_api(tmp_path: Path) -> None:
    """No PREFECT_API_URL in the environment, but a prefect.toml in the working directory names an API: Prefect
    would use it, so the server launched before the settings were read is stopped, and none is left."""
    home = tmp_path / "prefect"
    (tmp_path / "prefect.toml").write_text('[api]\nurl = "http://127.0.0.1:9/api"\n', encoding="utf-8")
    assert _early(tmp_path, home) == ["launched", "prefect not imported", "not adopted", "stopped"]
    assert _gone(home)
