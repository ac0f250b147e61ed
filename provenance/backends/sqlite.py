"""SQLite backend: WAL journal, ``synchronous=FULL`` (every commit is durable), appends under ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provenance.backends._sql import SqlStore
from provenance.errors import LedgerIntegrityError, ProvenanceConfigError

__all__ = ["SqliteStore"]


class SqliteStore(SqlStore):
    """A ledger in one SQLite file; many processes may append at once (they queue on the write lock)."""

    ph = "?"
    blob = "blob"
    clustered = " without rowid"

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        if not create and not path.is_file():
            raise ProvenanceConfigError(
                "ledger:not_found", f"no ledger at {path} (sqlite:///{path}): check the ledger URL; the first "
                "`trainguard ingest` with it creates the ledger")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(path), timeout=120, isolation_level=None, check_same_thread=False)
            self.conn.execute("pragma busy_timeout = 120000")
            _set_wal(self.conn)
            self.conn.execute("pragma synchronous = full")
            if self.conn.execute("select 1 from sqlite_master where name = 'checkpoints'").fetchone() is None:
                if not create:
                    self.conn.close()
                    raise ProvenanceConfigError(
                        "ledger:not_found", f"{path} is not a trainguard ledger (it has no ledger tables)")
                with self.write():
                    self.create_schema()
        except sqlite3.DatabaseError as exc:
            raise _integrity(exc, path) from exc
        except OSError as exc:
            raise ProvenanceConfigError("ledger:unreachable", f"cannot open SQLite ledger {path}: {exc}") from exc

    def describe(self) -> str:
        return f"sqlite:///{self.path}"

    @contextmanager
    def write(self) -> Iterator[None]:
        try:
            self.conn.execute("begin immediate")
            try:
                yield
            except BaseException:
                self.conn.execute("rollback")
                raise
            self.conn.execute("commit")
        except sqlite3.DatabaseError as exc:
            raise _integrity(exc, self.path) from exc

    def require_writable(self) -> None:
        """Write a row and roll it back: the write lock alone is granted to a read-only connection."""
        try:
            self.conn.execute("begin immediate")
            try:
                self.conn.execute("insert or replace into meta (key, value) values ('write_probe', '')")
            finally:
                self.conn.execute("rollback")
        except sqlite3.DatabaseError as exc:
            raise _integrity(exc, self.path) from exc

    @contextmanager
    def read(self) -> Iterator[None]:
        try:
            self.conn.execute("begin")
            try:
                yield
            finally:
                self.conn.execute("commit")
        except sqlite3.DatabaseError as exc:
            raise _integrity(exc, self.path) from exc


def _set_wal(conn: sqlite3.Connection, wait_s: float = 60.0) -> None:
    """Switch to WAL. The switch needs the file to itself and SQLite does not wait for it (the busy timeout
    does not apply), so processes creating one ledger at once would fail "database is locked": retry instead."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("pragma journal_mode = wal")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _integrity(exc: sqlite3.DatabaseError, path: Path) -> Exception:
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return ProvenanceConfigError("ledger:busy", f"SQLite ledger {path} stayed locked: {exc}")
    if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc):  # permissions, not tampering
        return ProvenanceConfigError("ledger:read_only", f"SQLite ledger {path} cannot be written: {exc} (check the "
                                     "permissions of the file, its -wal and -shm files and its directory)")
    if isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc):
        return ProvenanceConfigError("ledger:unreachable", f"cannot open SQLite ledger {path}: {exc}")
    return LedgerIntegrityError(
        "ledger:corrupt_store", f"SQLite ledger {path} is damaged", expected="a readable database", found=str(exc)
    )
