"""``pipelines._prefect_private``: pinned to the Prefect version of constraints.txt, and the same command and
environment as Prefect's own temporary server (a new Prefect version must be checked here before the pin moves)."""

from __future__ import annotations

import inspect
import os
from typing import Any

import prefect
import pytest

from pipelines import _prefect_private
from tests._pins import pinned


def test_installed_prefect_is_the_pinned_one() -> None:
    assert prefect.__version__ == pinned("prefect")


def test_command_and_environment_equal_prefects_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Prefect's ``SubprocessASGIServer`` would launch (captured, not run) is what ``_api_server`` launches."""
    from prefect.server.api import server as prefect_server
    from prefect.settings import get_current_settings

    seen: dict[str, Any] = {}

    def fake_popen(*args: Any, **kwargs: Any) -> None:
        seen["args"] = kwargs.get("args", args[0] if args else None)
        seen["env"] = kwargs["env"]

    monkeypatch.setattr(prefect_server.subprocess, "Popen", fake_popen)
    instance = prefect_server.SubprocessASGIServer.__new__(prefect_server.SubprocessASGIServer)
    instance.port = 4242
    prefect_server.SubprocessASGIServer._run_uvicorn_command(instance)
    assert seen["args"] == _prefect_private.server_command(_prefect_private.app_dir(), 4242)
    expected = {**os.environ, **_prefect_private.SERVER_ENV,
                **get_current_settings().to_environment_variables(exclude_unset=True)}
    assert seen["env"] == expected


def test_the_private_flags_are_the_ones_create_app_reads() -> None:
    from prefect.server.api.server import create_app

    source = inspect.getsource(create_app)
    for flag in ("PREFECT__SERVER_EPHEMERAL", "PREFECT__SERVER_FINAL"):
        assert flag in _prefect_private.SERVER_ENV and flag in source


def test_the_workers_drained_have_drain_all() -> None:
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    assert callable(APILogWorker.drain_all) and callable(EventsWorker.drain_all)
    _prefect_private.drain_workers()  # never started: nothing to send, returns
