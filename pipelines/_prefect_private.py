"""The one place trainguard uses Prefect's private API: how Prefect launches its temporary API server.

Why private: Prefect starts a temporary server (``SubprocessASGIServer``) the first time a flow needs an API and
none is configured, importing its whole server application in the calling process first. ``_api_server``
launches the same server earlier, so it needs what no public API offers: the uvicorn command of
``SubprocessASGIServer._run_uvicorn_command`` and its private environment flags ``PREFECT__SERVER_EPHEMERAL`` /
``PREFECT__SERVER_FINAL``, which ``prefect.server.api.server.create_app`` reads; and, before it stops the server,
the drain of Prefect's log and event workers (``APILogWorker``, ``EventsWorker``, as ``prefect_test_harness``
does). Settings themselves are read through the public ``prefect.settings``.

Fallback: when Prefect's internals differ from the version pinned in ``constraints.txt``, a server launched with
this command does not come up (or answers no ``/health``) and ``TemporaryAPIServer.serving`` falls back to
Prefect's own temporary server. ``tests/pipelines/
test_prefect_private.py`` pins the version and checks the command and environment equal Prefect's own.
"""

from __future__ import annotations

import inspect
import sys

__all__ = ["SERVER_ENV", "app_dir", "drain_workers", "server_command"]

# the environment Prefect's SubprocessASGIServer adds for its temporary server (no UI; create_app's private flags)
SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}


def app_dir() -> str:
    """The ``--app-dir`` of Prefect's command: the directory holding the imported ``prefect`` package."""
    import prefect

    return str(prefect.__module_path__.parent)


def server_command(app_dir: str, port: int) -> list[str]:
    """Prefect's command for its temporary API server on ``port`` (``app_dir``: the directory holding the
    ``prefect`` package, see ``app_dir()``)."""
    return [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory",
            "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "error", "--lifespan", "on"]


def drain_workers() -> None:
    """Send Prefect's queued flow-run logs and events now (as ``prefect_test_harness`` does before it stops)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        for worker in (APILogWorker, EventsWorker):
            try:
                result = worker.drain_all()
            except RuntimeError:  # never started
                continue
            if inspect.isawaitable(result):
                await result

    run_coro_as_sync(drain())
