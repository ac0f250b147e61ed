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


def open_store(url: str, *, create: bool = True) -> SqlStore:
    """Open the store named by a ledger URL, creating its file and tables when missing if ``create``; without
    ``create`` a ledger that does not exist yet is ``ledger:not_found`` (a mistyped URL is not a new empty ledger)."""
    if url.startswith("sqlite:"):
        from provenance.backends.sqlite import SqliteStore

        return SqliteStore(sqlite_path(url), create=create)
    if url.startswith(("postgresql://", "postgres://")):
        from provenance.backends.postgres import PostgresStore

        return PostgresStore(url, create=create)
    raise ProvenanceConfigError(
        "ledger:bad_url", f"unsupported ledger URL {url!r} (want sqlite:///path/ledger.db or postgresql://...)"
    )
