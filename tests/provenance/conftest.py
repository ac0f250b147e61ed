"""Fixtures of the provenance tests: one ledger suite, parametrized over SQLite and PostgreSQL."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from provenance.entries import make_statement
from provenance.ledger import Ledger, open_ledger
from provenance.signing import generate_private_key, write_private_key


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRAINGUARD_LEDGER", "TRAINGUARD_SIGNING_KEY", "TRAINGUARD_TRUSTED_KEYS",
                 "TRAINGUARD_APPROVER_KEYS", "TRAINGUARD_HOME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    return str(request.getfixturevalue("postgres_schema"))


@pytest.fixture()
def key_path(tmp_path: Path) -> Path:
    """A signing key file (0600) for the ledger under test."""
    return write_private_key(generate_private_key(), tmp_path / "signing.key")


@pytest.fixture()
def ledger(ledger_url: str, key_path: Path) -> Iterator[Ledger]:
    led = open_ledger(ledger_url, signing_key=str(key_path))
    yield led
    led.close()


def digest(i: int) -> str:
    return "sha256:" + f"{i:064x}"


def statement(i: int, *, verdict: str = "approved", source: str = "vendor-a", **extra: Any) -> dict[str, Any]:
    """A small ingestion entry naming ``digest(i)``."""
    return make_statement(
        subjects=[(f"batch-{i}.csv", digest(i))],
        predicate={"verdict": verdict, "source": {"name": source, "uri": f"file:///data/batch-{i}.csv"},
                   "counts": {"rows": 100 + i, "flagged": i % 7}, "reasons": [] if verdict == "approved" else
                   ["outlier:iforest"], **extra},
    )


def fill(led: Ledger, n: int, **kw: Any) -> None:
    for i in range(n):
        led.append(statement(i, **kw))


def raw_sql(led: Ledger) -> Callable[..., Any]:
    """Execute SQL directly on the ledger's tables (the attacker with write access); ``?`` placeholders."""
    store = led.store

    def run(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = store.conn.execute(sql.replace("?", store.ph), params)
        try:
            return list(cur.fetchall())
        except Exception:  # noqa: BLE001 - statements without a result set
            return []

    return run


@contextmanager
def unblocked(fifo: Path, after: float = 5.0) -> Iterator[None]:
    """Guard against a regression that opens ``fifo`` for reading (it would block forever): after ``after`` seconds
    a writer opens and closes it, so the reader gets EOF and the test fails instead of hanging the suite."""
    stop = threading.Event()

    def writer() -> None:
        if stop.wait(after):
            return
        while not stop.is_set():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # ENXIO until a reader has it open
            except OSError:
                stop.wait(0.05)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
