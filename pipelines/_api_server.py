"""Prefect's temporary API server, started at the very beginning of a CLI run (internal to the CLI).

With no Prefect API configured, Prefect starts a temporary server the first time a flow needs it: it imports its
whole server application in the calling process (about 4 s here) and only then launches the same application in
a subprocess and waits for it. ``trainguard ingest`` instead launches that subprocess first thing, before Prefect
is imported, with the command and environment Prefect uses, lets it boot (and migrate a fresh database) on the
other core while Prefect and the checks are imported, and runs the flow against it through ``PREFECT_API_URL``.
Whenever this cannot be done (an API is configured, ephemeral mode is off, the server does not come up) the flow
falls back to Prefect's own path, which only costs the time this saves.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipelines._prefect_private import SERVER_ENV, app_dir, drain_workers, server_command

__all__ = ["TemporaryAPIServer"]

_PORT_IN_USE = 3  # uvicorn's exit code when it cannot bind (or its start-up failed)


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the server when this process dies (a kill must not orphan it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls into it
    except OSError:
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec


def _taken(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TemporaryAPIServer:
    """One Prefect API server subprocess for this process's flows.

    >>> server = TemporaryAPIServer.start_if_needed()  # doctest: +SKIP
    >>> with server.serving() if server else contextlib.nullcontext():  # doctest: +SKIP
    ...     run_the_flow()
    """

    _current: TemporaryAPIServer | None = None

    def __init__(self, env: dict[str, str], app_dir: str | None = None) -> None:
        self._env = env
        self._app_dir = app_dir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def launch_early(cls) -> None:
        """Launch the server before Prefect is even imported (the import takes a second that the server's own
        boot can overlap) unless the environment names an API; ``start_if_needed`` then adopts it, or stops it
        when Prefect's settings (a profile, a ``prefect.toml``) say no temporary server is wanted. The server
        loads the same settings sources itself."""
        if os.environ.get("PREFECT_API_URL") or cls._current is not None:
            return
        spec = importlib.util.find_spec("prefect")  # where it is, without running it
        if spec is None or spec.origin is None:
            return
        env = {**os.environ, **SERVER_ENV}
        server = cls._current = cls(env, app_dir=str(Path(spec.origin).parent.parent))
        server._launch()
        atexit.register(server.stop)

    @classmethod
    def start_if_needed(cls) -> TemporaryAPIServer | None:
        """Launch the server when Prefect would start a temporary one (once per process; it stops at exit or
        with this process); None when Prefect would not."""
        if os.environ.get("PREFECT_API_URL"):
            return None
        from prefect.settings import get_current_settings

        settings = get_current_settings()
        current = cls._current
        if settings.api.url or not settings.server.ephemeral.enabled:
            if current is not None:  # launched early, before the settings could say it is not wanted
                current.stop()
                cls._current = None
            return None
        if current is not None and current.process is not None and current.process.poll() is None:
            return current  # a second ingest in this process (the demo) reuses the running server
        env = {**os.environ, **SERVER_ENV, **settings.to_environment_variables(exclude_unset=True)}
        server = cls._current = cls(env)
        server._launch()
        atexit.register(server.stop)
        return server

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _launch(self) -> None:
        if self._app_dir is None:
            self._app_dir = app_dir()
        self.port = _free_port()
        self.process = subprocess.Popen(  # noqa: S603 - Prefect's own command for its temporary server
            server_command(self._app_dir, self.port),
            env=self._env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent(),  # noqa: PLW1509
        )

    def wait_ready(self, timeout: float) -> bool:
        """Poll ``/health`` until it answers 200; False when the server died or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        retries = 3
        while time.monotonic() < deadline and self.process is not None:
            code = self.process.poll()
            if code == _PORT_IN_USE and retries > 0 and _taken(self.port):  # taken since it was chosen
                retries -= 1
                self._launch()
                continue
            if code is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        return False

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Run the enclosed flows against this server, or, when it did not come up, Prefect's own."""
        from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        ready = self.wait_ready(float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()))
        if not ready:
            self.stop()
            yield
            return
        from prefect.settings import temporary_settings

        updates: dict[Any, Any] = {PREFECT_API_URL: self.api_url}
        with temporary_settings(updates=updates):
            try:
                yield
            finally:
                drain_workers()  # while the server is up: Prefect's log and event workers keep a queue
                # per API URL and drain it at exit, which hangs on a server that has stopped

    def stop(self) -> None:
        """Terminate the server (idempotent)."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
