"""Fixtures of the pipelines tests: one Prefect test harness per session, with its own PREFECT_HOME.

Prefect reads PREFECT_HOME when it is first imported, so it is set here, at collection, before any test module
imports Prefect. Prefect's own logs are kept at CRITICAL, as the CLI does, so stderr shows what a user would see.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_HOME = tempfile.mkdtemp(prefix="tg-prefect-home-")
os.environ.setdefault("PREFECT_HOME", _HOME)
os.environ["PREFECT_LOGGING_LEVEL"] = "CRITICAL"  # task failures of bad inputs are expected here
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_UI_ENABLED", "false")
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("TRAINGUARD_LEDGER", None)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API (SQLite) for every flow run of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture()
def ledger_url(tmp_path: Path) -> str:
    """A fresh SQLite ledger (its signing key is created beside it on first append)."""
    return f"sqlite:///{tmp_path / 'ledger' / 'ledger.db'}"
