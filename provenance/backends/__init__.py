"""Ledger storage backends behind one interface: SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from provenance.backends._sql import SqlStore
from provenance.errors import ProvenanceConfigError

__all__ = ["open_store", "sqlite_path", "SqlStore"]


def sqlite_path(url: str) -> Path:
    """``sqlite:///rel/path.db`` -> ``rel/path.db``; ``sqlite:////abs/path.db`` -> ``/abs/path.db``."""
    rest = url[len("sqlite:///") :]
    if not url.startswith("sqlite:///") or not rest:
        raise ProvenanceConfigError("ledger:bad_url", f"bad SQLite ledger URL {url!r} (want sqlite:///path/ledger.db)")
    return Path(rest)


def open_store(url: str) -> SqlStore:
    """Open (creating tables when missing) the store named by a ledger URL."""
    if url.startswith("sqlite:"):
        from provenance.backends.sqlite import SqliteStore

        return SqliteStore(sqlite_path(url))
    if url.startswith(("postgresql://", "postgres://")):
        from provenance.backends.postgres import PostgresStore

        return PostgresStore(url)
    raise ProvenanceConfigError(
        "ledger:bad_url", f"unsupported ledger URL {url!r} (want sqlite:///path/ledger.db or postgresql://...)"
    )
