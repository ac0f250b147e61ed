"""The storage every backend shares: five tables and the queries on them; dialects differ only in details.

Tables: ``entries`` (index, canonical bytes, and the source/verdict/time copied out for lookups), ``nodes`` (every
perfect Merkle subtree hash, leaves included, keyed by ``level << 48 | index``), ``subjects`` (digest -> entry
index, the lookup index beside the tree), ``checkpoints`` (one signed checkpoint per tree size) and ``meta``.
Lookup columns are conveniences only: every answer is re-checked against the entry bytes and a signed root.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from provenance.errors import LedgerIntegrityError
from provenance.vmap import Node, Ref, pack_refs, unpack_refs

__all__ = ["SqlStore", "EntryRow"]

EntryRow = tuple[int, bytes, str | None, str | None, str | None]  # idx, body, source, verdict, time

def _int(value: Any, where: str) -> int:
    """A stored integer, or ``ledger:corrupt_store``: a row written around trainguard may hold any SQL type."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise LedgerIntegrityError("ledger:corrupt_store", f"{where} holds a value that is not an integer",
                               expected="an integer", found=f"{type(value).__name__} {value!r:.60}")


def _bytes(value: Any, where: str) -> bytes:
    """Stored bytes (a blob / bytea), or ``ledger:corrupt_store``."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise LedgerIntegrityError("ledger:corrupt_store", f"{where} holds a value that is not bytes",
                               expected="bytes", found=f"{type(value).__name__} {value!r:.60}")


# The verifiable index (provenance.vmap): its stored nodes, each key's entry list, and the C2SP form of each checkpoint.
_MAP_SCHEMA = [
    "create table if not exists map_nodes (id {blob} primary key, hash {blob} not null, leaf_key {blob}){clustered}",
    "create table if not exists map_values (key {blob} primary key, refs {blob} not null){clustered}",
    "create table if not exists checkpoint_notes (tree_size bigint primary key, note text not null)",
]

_SCHEMA = [
    "create table if not exists meta (key text primary key, value text not null)",
    "create table if not exists entries (idx bigint primary key, body {blob} not null,"
    " source text, verdict text, time text)",
    "create index if not exists entries_source on entries (source, verdict, idx)",
    "create table if not exists nodes (id bigint primary key, hash {blob} not null)",
    "create table if not exists subjects (digest text not null, idx bigint not null, primary key (digest, idx))",
    "create index if not exists subjects_by_entry on subjects (idx)",  # verify reads the index entry by entry
    "create table if not exists checkpoints (tree_size bigint primary key, body {blob} not null)",
    *_MAP_SCHEMA,
]


class SqlStore:
    """Base class; subclasses set ``ph``, ``blob`` and implement connection, locking and snapshots."""

    ph = "?"
    blob = "blob"
    clustered = ""  # a table stored in its primary key's order (SQLite: without rowid), so a row is one write
    conn: Any

    # --- implemented by dialects -------------------------------------------------------------------------
    def write(self) -> AbstractContextManager[None]:  # pragma: no cover - abstract
        """A transaction holding the ledger's exclusive append lock (serialized across processes)."""
        raise NotImplementedError

    def read(self) -> AbstractContextManager[None]:  # pragma: no cover - abstract
        """A read transaction seeing one consistent snapshot."""
        raise NotImplementedError

    def require_writable(self) -> None:
        """Raise ``ledger:read_only`` (exit 2) when this connection cannot append: take the write lock, write
        nothing."""
        with self.write():
            pass

    def close(self) -> None:
        self.conn.close()

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- shared queries ----------------------------------------------------------------------------------
    def _q(self, sql: str) -> str:
        return sql.replace("?", self.ph)

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(self._q(sql), params).fetchall())

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self.conn.execute(self._q(sql), params).fetchone()
        return tuple(row) if row is not None else None

    def create_schema(self) -> None:
        for stmt in _SCHEMA:
            self.conn.execute(stmt.format(blob=self.blob, clustered=self.clustered))

    def create_map_schema(self) -> None:
        """Add the verifiable index's tables to a ledger made before they existed (inside a write transaction)."""
        for stmt in _MAP_SCHEMA:
            self.conn.execute(stmt.format(blob=self.blob, clustered=self.clustered))

    def get_meta(self, key: str) -> str | None:
        row = self._one("select value from meta where key = ?", (key,))
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(self._q("insert into meta (key, value) values (?, ?)"), (key, value))

    def size(self) -> int:
        row = self._one("select max(idx) from entries")
        return 0 if row is None or row[0] is None else _int(row[0], "entries.idx") + 1

    def count(self) -> int:
        row = self._one("select count(*) from entries")
        return _int(row[0], "count(*)") if row else 0

    def nodes(self, ids: Sequence[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            marks = ",".join("?" * len(chunk))
            for nid, h in self._all(f"select id, hash from nodes where id in ({marks})", chunk):
                out[_int(nid, "nodes.id")] = _bytes(h, f"nodes.hash of node {nid}")
        return out

    def all_nodes(self) -> dict[int, bytes]:
        return {_int(nid, "nodes.id"): _bytes(h, f"nodes.hash of node {nid}")
                for nid, h in self._all("select id, hash from nodes")}

    def entry(self, idx: int) -> bytes | None:
        row = self._one("select body from entries where idx = ?", (idx,))
        return None if row is None else _bytes(row[0], f"entries.body of entry {idx}")

    def entry_columns(self, idx: int) -> tuple[Any, ...] | None:
        """The lookup columns (source, verdict, time) stored beside entry ``idx``."""
        return self._one("select source, verdict, time from entries where idx = ?", (idx,))

    def iter_entries(self, start: int = 0, batch: int = 5000) -> Iterator[tuple[int, bytes]]:
        """Entries in index order, read in pages by key (constant memory)."""
        nxt = start
        while True:
            rows = self._all("select idx, body from entries where idx >= ? order by idx limit ?", (nxt, batch))
            for idx, body in rows:
                yield _int(idx, "entries.idx"), _bytes(body, f"entries.body of entry {idx}")
            if len(rows) < batch:
                return
            nxt = _int(rows[-1][0], "entries.idx") + 1

    def checkpoint_bodies(self) -> Iterator[tuple[int, bytes]]:
        for size, body in self._all("select tree_size, body from checkpoints order by tree_size"):
            yield _int(size, "checkpoints.tree_size"), _bytes(body, f"checkpoints.body of tree size {size}")

    def latest_checkpoint(self) -> bytes | None:
        row = self._one("select body from checkpoints order by tree_size desc limit 1")
        return None if row is None else _bytes(row[0], "checkpoints.body of the latest checkpoint")

    def indices_for(self, digest: str) -> list[int]:
        return [_int(r[0], "subjects.idx")
                for r in self._all("select idx from subjects where digest = ? order by idx", (digest,))]

    # the subject digests of one entry, sorted and joined by "," (per-dialect aggregate over the subjects index)
    digests_of_entry = ("(select group_concat(digest, ',') from (select digest from subjects s where s.idx = e.idx"
                        " order by digest))")

    def index_rows(self, lo: int, hi: int) -> dict[int, tuple[Any, ...]]:
        """The index columns of entries ``lo..hi`` (inclusive): (source, verdict, time, sorted subject digests
        joined by ","), and rows for ``subjects`` pointing into that range at an index with no entry."""
        rows: dict[int, tuple[Any, ...]] = {
            _int(idx, "entries.idx"): (source, verdict, time, digests or "")
            for idx, source, verdict, time, digests in self._all(
                f"select e.idx, e.source, e.verdict, e.time, {self.digests_of_entry} from entries e"
                " where e.idx >= ? and e.idx <= ?", (lo, hi))
        }
        for (idx,) in self._all("select distinct idx from subjects where idx >= ? and idx <= ? and idx not in"
                                " (select idx from entries where idx >= ? and idx <= ?)", (lo, hi, lo, hi)):
            rows[_int(idx, "subjects.idx")] = (None, None, None, "?")
        return rows

    def latest_index(self, source: str, verdict: str, *, oldest: bool = False) -> int | None:
        row = self._one(
            f"select {'min' if oldest else 'max'}(idx) from entries where source = ? and verdict = ?", (source, verdict)
        )
        return None if row is None or row[0] is None else _int(row[0], "entries.idx")

    def filtered(
        self, *, source: str | None, verdict: str | None, since: str | None, until: str | None, limit: int | None
    ) -> list[EntryRow]:
        where, params = [], []
        for col, op, value in (("source", "=", source), ("verdict", "=", verdict), ("time", ">=", since),
                               ("time", "<=", until)):
            if value is not None:
                where.append(f"{col} {op} ?")
                params.append(value)
        sql = "select idx, body, source, verdict, time from entries"
        if where:
            sql += " where " + " and ".join(where)
        sql += " order by idx desc"
        if limit is not None:
            sql += f" limit {int(limit)}"
        return [(_int(r[0], "entries.idx"), _bytes(r[1], f"entries.body of entry {r[0]}"), r[2], r[3], r[4])
                for r in self._all(sql, params)]

    def insert(
        self,
        entries: Sequence[EntryRow],
        nodes: Sequence[tuple[int, bytes]],
        subjects: Sequence[tuple[str, int]],
        checkpoints: Sequence[tuple[int, bytes]],
    ) -> None:
        """Insert rows inside the current write transaction."""
        cur = self.conn.cursor()
        if entries:
            cur.executemany(
                self._q("insert into entries (idx, body, source, verdict, time) values (?, ?, ?, ?, ?)"), entries
            )
        if nodes:
            cur.executemany(self._q("insert into nodes (id, hash) values (?, ?)"), nodes)
        if subjects:
            cur.executemany(self._q("insert into subjects (digest, idx) values (?, ?)"), subjects)
        if checkpoints:
            cur.executemany(self._q("insert into checkpoints (tree_size, body) values (?, ?)"), checkpoints)

    # --- the verifiable index ------------------------------------------------------------------------------
    def map_nodes(self, ids: Sequence[bytes]) -> dict[bytes, Node]:
        out: dict[bytes, Node] = {}
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            marks = ",".join("?" * len(chunk))
            for nid, h, key in self._all(f"select id, hash, leaf_key from map_nodes where id in ({marks})", chunk):
                node_key = None if key is None else _bytes(key, "map_nodes.leaf_key")
                out[_bytes(nid, "map_nodes.id")] = Node(_bytes(h, "map_nodes.hash"), node_key)
        return out

    def map_refs(self, key: bytes) -> list[Ref] | None:
        row = self._one("select refs from map_values where key = ?", (key,))
        return None if row is None else unpack_refs(_bytes(row[0], "map_values.refs"))

    def map_refs_many(self, keys: Sequence[bytes]) -> dict[bytes, list[Ref]]:
        out: dict[bytes, list[Ref]] = {}
        if keys:
            marks = ",".join("?" * len(keys))
            for key, refs in self._all(f"select key, refs from map_values where key in ({marks})", list(keys)):
                out[_bytes(key, "map_values.key")] = unpack_refs(_bytes(refs, "map_values.refs"))
        return out

    def write_map(self, nodes: dict[bytes, Node | None], refs: dict[bytes, list[Ref]]) -> None:
        """Write an append's map changes inside the current write transaction (None deletes a node)."""
        cur = self.conn.cursor()
        gone = [(nid,) for nid, node in nodes.items() if node is None]
        if gone:
            cur.executemany(self._q("delete from map_nodes where id = ?"), gone)
        rows = [(nid, node.hash, node.key) for nid, node in nodes.items() if node is not None]
        if rows:
            cur.executemany(self._q("insert into map_nodes (id, hash, leaf_key) values (?, ?, ?) on conflict (id) do"
                                    " update set hash = excluded.hash, leaf_key = excluded.leaf_key"), rows)
        if refs:
            cur.executemany(self._q("insert into map_values (key, refs) values (?, ?) on conflict (key) do update"
                                    " set refs = excluded.refs"), [(k, pack_refs(v)) for k, v in refs.items()])

    def clear_map(self) -> None:
        self.conn.execute("delete from map_nodes")
        self.conn.execute("delete from map_values")

    def replace_checkpoint(self, tree_size: int, body: bytes) -> None:
        self.conn.execute(self._q("update checkpoints set body = ? where tree_size = ?"), (body, tree_size))

    def put_note(self, tree_size: int, note: str) -> None:
        self.conn.execute(self._q("insert into checkpoint_notes (tree_size, note) values (?, ?) on conflict"
                                  " (tree_size) do update set note = excluded.note"), (tree_size, note))

    def note(self, tree_size: int) -> str | None:
        row = self._one("select note from checkpoint_notes where tree_size = ?", (tree_size,))
        return None if row is None else str(row[0])
