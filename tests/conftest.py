"""Shared fixtures: named scenarios from data_samples/, ../shared datasets, and the PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (CI must not turn red by chance); HYPOTHESIS_PROFILE=explore
# draws new ones, to look for failures on purpose.
settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

ROOT = Path(__file__).resolve().parents[1]
DATA_SAMPLES = ROOT / "data_samples"
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _own_witness(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test (and every process it starts) keeps its ledger witness apart, never in the user's home."""
    d = tmp_path_factory.mktemp("witness")
    monkeypatch.setenv("TRAINGUARD_WITNESS", str(d))
    return d


@pytest.fixture(scope="session")
def data_samples() -> Path:
    """The project's own small sample datasets (see data_samples/README.md for the scenarios)."""
    return DATA_SAMPLES


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (real datasets, Merkle test vectors); tests that need it skip clearly when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared is absent ({SHARED}): real datasets and test vectors are not available here")
    return SHARED


def _postgres_url_or_skip() -> str:
    url = os.environ.get("TRAINGUARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    required = os.environ.get("TRAINGUARD_REQUIRE_POSTGRES") == "1"
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no server here"
        reason = f"PostgreSQL not reachable at {url} ({type(exc).__name__}: {exc}); set TRAINGUARD_TEST_POSTGRES_URL"
        if required:
            pytest.fail(f"TRAINGUARD_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a reachable PostgreSQL server; skips with the reason when absent, fails in CI (.ci/run)."""
    return _postgres_url_or_skip()


@pytest.fixture()
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh, empty schema on the test server for one test, dropped afterwards.

    Yields a ledger URL whose ``options`` select that schema, so tests never see each other's tables.
    """
    import uuid

    import psycopg

    schema = f"tg_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'create schema "{schema}"')
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')
