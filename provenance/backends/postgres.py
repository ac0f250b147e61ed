"""PostgreSQL backend (psycopg 3): appends serialized by a transaction-level advisory lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from provenance.backends._sql import SqlStore
from provenance.errors import LedgerIntegrityError, ProvenanceConfigError

__all__ = ["PostgresStore"]

_LOCK_KEY = 0x7472_6169_6E67  # "traing": one advisory lock per database (schema-qualified by search_path below)


class PostgresStore(SqlStore):
    """A ledger in the tables of the connection's current schema (``options=-csearch_path=...`` selects one)."""

    ph = "%s"
    blob = "bytea"
    digests_of_entry = "(select string_agg(digest, ',' order by digest) from subjects s where s.idx = e.idx)"

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            why = " ".join(str(exc).split())  # libpq's message spans lines (a hint on the next): one line here
            raise ProvenanceConfigError("ledger:unreachable", f"cannot connect to {_redact(url)}: {why}") from exc
        row = self.conn.execute("select current_schema()").fetchone()
        self.schema = str(row[0]) if row and row[0] else "public"
        if self.conn.execute("select to_regclass('checkpoints')").fetchone() in (None, (None,)):
            if not create:
                self.conn.close()
                raise ProvenanceConfigError(
                    "ledger:not_found", f"no ledger in {self.describe()}: check the ledger URL and schema; the first "
                    "`trainguard ingest` with it creates the ledger")
            with self.write():
                self.create_schema()

    def describe(self) -> str:
        return f"{_redact(self.url)} (schema {self.schema})"

    @contextmanager
    def write(self) -> Iterator[None]:
        try:
            with self.conn.transaction():
                self.conn.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_KEY >> 32, self.schema))
                yield
        except psycopg.OperationalError as exc:
            raise ProvenanceConfigError("ledger:unreachable", f"{_redact(self.url)}: {exc}") from exc
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction) as exc:
            raise _read_only(self.url, exc) from exc
        except psycopg.DatabaseError as exc:
            raise LedgerIntegrityError(
                "ledger:corrupt_store", f"PostgreSQL ledger {_redact(self.url)} failed",
                expected="a consistent ledger", found=str(exc).strip(),
            ) from exc

    def require_writable(self) -> None:
        """Raise ``ledger:read_only`` (exit 2) when this role cannot append (a read-only role or standby): the
        advisory lock alone would not show it."""
        with self.write():
            row = self.conn.execute(
                "select pg_is_in_recovery() or current_setting('transaction_read_only') = 'on' or not "
                "(has_table_privilege('entries', 'INSERT') and has_table_privilege('nodes', 'INSERT') and "
                "has_table_privilege('subjects', 'INSERT') and has_table_privilege('checkpoints', 'INSERT') and "
                "has_table_privilege('meta', 'INSERT,UPDATE') and "
                # a ledger made before the index has no map tables yet: its first append creates them
                "coalesce(has_table_privilege(to_regclass('map_nodes')::oid, 'INSERT,UPDATE,DELETE') and "
                "has_table_privilege(to_regclass('map_values')::oid, 'INSERT,UPDATE') and "
                "has_table_privilege(to_regclass('checkpoint_notes')::oid, 'INSERT,UPDATE'), "
                "has_schema_privilege(current_schema(), 'CREATE')))").fetchone()
        if row is not None and row[0]:
            raise _read_only(self.url, "the role may not insert into the ledger's tables (or the server is "
                                       "read-only)")

    @contextmanager
    def read(self) -> Iterator[None]:
        try:
            with self.conn.transaction():
                self.conn.execute("set transaction isolation level repeatable read")
                yield
        except psycopg.OperationalError as exc:
            raise ProvenanceConfigError("ledger:unreachable", f"{_redact(self.url)}: {exc}") from exc
        except psycopg.DatabaseError as exc:  # a dropped or altered table: a damaged ledger, not a bug
            raise LedgerIntegrityError(
                "ledger:corrupt_store", f"PostgreSQL ledger {_redact(self.url)} failed",
                expected="a consistent ledger", found=" ".join(str(exc).split()),
            ) from exc


def _read_only(url: str, why: object) -> ProvenanceConfigError:
    return ProvenanceConfigError("ledger:read_only", f"PostgreSQL ledger {_redact(url)} cannot be written: "
                                 f"{' '.join(str(why).split())} (grant the role INSERT on the ledger's tables)")


def _redact(url: str) -> str:
    """The URL without a password."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://?"
    return f"postgresql://{info.get('user', '')}@{info.get('host', '')}:{info.get('port', '')}/{info.get('dbname', '')}"
