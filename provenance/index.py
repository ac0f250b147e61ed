"""The ledger's verifiable index on a store: update it with an append, rebuild it from the entries, look a digest up.

Every entry's subject digests are keys of the sparse Merkle map of ``provenance.vmap``; the map's root is signed in
every checkpoint beside the log's root, so a lookup by digest is proven complete against the signed checkpoint and
trusts no row of the database. An append first checks that the stored path of each key it touches leads to the
map root the latest checkpoint signed, so tampered map rows are never built upon and signed.

Example::

    >>> from provenance.ledger import open_ledger                             # doctest: +SKIP
    >>> open_ledger().history("sha256:" + "ab" * 32).map_proof.to_json()      # doctest: +SKIP
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from provenance import vmap
from provenance.backends import SqlStore
from provenance.entries import parse_entry, subject_digests
from provenance.errors import LedgerIntegrityError
from provenance.merkle import Frontier, leaf_hash

__all__ = ["map_key", "stored_root", "add_entry", "rebuild", "lookup", "note_upgrade"]


def map_key(digest: str) -> bytes:
    """The map key of a ``sha256:<hex>`` digest: its 32 raw bytes."""
    return bytes.fromhex(digest.removeprefix("sha256:"))


def stored_root(store: SqlStore) -> bytes:
    root_id = vmap.node_id(bytes(vmap.KEY_BYTES), 0)
    node = store.map_nodes([root_id]).get(root_id)
    return vmap.EMPTY if node is None else node.hash


def add_entry(store: SqlStore, digests: Iterable[str], index: int, leaf: bytes, *, signed_root: bytes) -> bytes:
    """Add entry ``index`` (leaf hash ``leaf``) under each of ``digests``; returns the new map root. Inside the
    append's write transaction; ``signed_root`` is the map root of the latest checkpoint."""
    up = vmap.Updater(store.map_nodes, store.map_refs, store.map_refs_many)
    stored = up.root()
    if stored != signed_root:
        raise LedgerIntegrityError(
            "ledger:bad_map", "the stored index does not match the map root of the latest signed checkpoint (map "
            "rows were changed): run `trainguard ledger verify`, then `trainguard ledger upgrade --rebuild-index`",
            index=index - 1, expected=signed_root.hex(), found=stored.hex())
    keys = [map_key(d) for d in dict.fromkeys(digests)]
    up.prefetch(keys)
    for key in keys:
        up.add(key, (index, leaf))  # checks the key's stored path against the current root first
    store.write_map(up.nodes, up.refs)
    return up.root()


def rebuild(store: SqlStore, *, tree_size: int, root_hash: str) -> tuple[bytes, int]:
    """Rebuild the whole index from the entries (inside a write transaction), after checking that they are the
    ``tree_size`` entries whose log root the latest checkpoint signed. Returns the map root and its key count."""
    values: dict[bytes, list[vmap.Ref]] = {}
    frontier = Frontier()
    for idx, body in store.iter_entries():
        if idx != frontier.size:
            raise LedgerIntegrityError("ledger:gap", "entry is missing", index=frontier.size,
                                       expected=f"index {frontier.size}", found=f"index {idx}")
        leaf = leaf_hash(body)
        frontier.push(leaf)
        for d in subject_digests(parse_entry(body, idx)):
            values.setdefault(map_key(d), []).append((idx, leaf))
    if frontier.size != tree_size or frontier.root().hex() != root_hash:
        raise LedgerIntegrityError(
            "ledger:root_mismatch", "the entries do not lead to the latest signed root, so no index is built over "
            "them: run `trainguard ledger verify` to find the bad entry", index=max(frontier.size - 1, 0),
            expected=f"{tree_size} entries with root {root_hash}",
            found=f"{frontier.size} entries with root {frontier.root().hex()}")
    root, nodes = vmap.build(values)
    store.clear_map()
    store.write_map(dict(nodes), values)
    return root, len(values)


def lookup(store: SqlStore, digest: str, *, map_root: bytes) -> tuple[vmap.MapProof, list[vmap.Ref]]:
    """The map proof of ``digest`` and the complete, proven list of (index, leaf hash) of the entries naming it."""
    key = map_key(digest)
    proof = vmap.prove(key, store.map_nodes, values=store.map_refs)
    return proof, vmap.verify(map_root, key, proof)


def note_upgrade(where: str, entries: int, keys: int) -> None:
    print(f"trainguard: upgraded ledger {where}: built its verifiable index over {entries} entries ({keys} digests) "
          "and signed a checkpoint with its root", file=sys.stderr)
