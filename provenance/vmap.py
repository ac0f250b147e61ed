"""The verifiable index: a sparse Merkle map from dataset digest to every ledger entry that names it.

Keys are the 32 raw bytes of a SHA-256 digest; a key's value is the complete list of ``(entry index, entry leaf
hash)`` of the entries naming it, oldest first. The map is the canonical compact sparse Merkle tree over 256-bit
keys, so its root depends only on the key-value set and anyone who replays the log gets the same root:

- ``hash(empty subtree) = 32 zero bytes``;
- ``hash(subtree holding exactly one key) = SHA-256(0x02 || key || for each entry: index as 8 bytes big-endian ||
  leaf hash)`` wherever that subtree sits (a lone key is not pushed down to depth 256);
- ``hash(any other subtree) = SHA-256(0x03 || hash(left child) || hash(right child))`` (bit 0 left, bit 1 right,
  most significant bit of the key first).

The prefixes 0x02 and 0x03 keep map hashes apart from the log's (0x00 leaves, 0x01 nodes). A proof for a key walks
from the root to the subtree that holds the key alone, holds another key alone, or is empty: it lists the sibling
hashes on the way (``None`` for an empty sibling) and that terminal, and so proves the key's complete entry list or
that no entry names it.

Example::

    >>> m = {bytes([1]) * 32: [(0, bytes(32))], bytes([200]) * 32: [(1, bytes(32)), (4, bytes(32))]}
    >>> root, nodes = build(m)
    >>> proof = prove(bytes([200]) * 32, lambda ids: {i: nodes[i] for i in ids if i in nodes}, values=m.get)
    >>> [index for index, _ in verify(root, bytes([200]) * 32, proof)]
    [1, 4]
    >>> verify(root, bytes([7]) * 32, prove(bytes([7]) * 32, lambda ids: {i: nodes[i] for i in ids if i in nodes},
    ...                                     values=m.get))
    []
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provenance.errors import LedgerIntegrityError

__all__ = [
    "EMPTY",
    "Ref",
    "MapProof",
    "Node",
    "leaf_hash",
    "inner_hash",
    "node_id",
    "pack_refs",
    "unpack_refs",
    "build",
    "prove",
    "verify",
    "Updater",
]

KEY_BYTES = 32
KEY_BITS = 256
EMPTY = b"\x00" * 32
Ref = tuple[int, bytes]  # (entry index, entry leaf hash)


@dataclass(frozen=True)
class Node:
    """A stored map node: its hash, and the key it holds when it is a lone key's subtree (else None)."""

    hash: bytes
    key: bytes | None


NodeGetter = Callable[[list[bytes]], Mapping[bytes, Node]]


def pack_refs(refs: Iterable[Ref]) -> bytes:
    return b"".join(idx.to_bytes(8, "big") + leaf for idx, leaf in refs)


def unpack_refs(blob: bytes) -> list[Ref]:
    if len(blob) % 40:
        raise LedgerIntegrityError("ledger:bad_map", "a stored map value is not a list of (index, hash) pairs",
                                   expected="a multiple of 40 bytes", found=f"{len(blob)} bytes")
    return [(int.from_bytes(blob[i:i + 8], "big"), blob[i + 8:i + 40]) for i in range(0, len(blob), 40)]


def leaf_hash(key: bytes, refs: Sequence[Ref]) -> bytes:
    """Hash of the subtree holding ``key`` alone with the entry list ``refs``."""
    return hashlib.sha256(b"\x02" + key + pack_refs(refs)).digest()


def inner_hash(left: bytes, right: bytes) -> bytes:
    if left == EMPTY and right == EMPTY:
        return EMPTY
    return hashlib.sha256(b"\x03" + left + right).digest()


def _bit(key: bytes, depth: int) -> int:
    """Bit ``depth`` of ``key`` (0 = most significant bit of the first byte)."""
    return (key[depth >> 3] >> (7 - (depth & 7))) & 1


def node_id(key: bytes, depth: int) -> bytes:
    """Storage id of the subtree at ``depth`` on ``key``'s path: 2-byte depth, then the first ``depth`` bits."""
    nbytes = (depth + 7) >> 3
    prefix = bytearray(key[:nbytes])
    if depth & 7:
        prefix[-1] &= (0xFF << (8 - (depth & 7))) & 0xFF
    return depth.to_bytes(2, "big") + bytes(prefix)


_ROOT_ID = (0).to_bytes(2, "big")


# --- building from the whole key set (upgrade, verify) --------------------------------------------------------
def build(values: Mapping[bytes, Sequence[Ref]], *, nodes: bool = True) -> tuple[bytes, dict[bytes, Node]]:
    """Root of the map holding ``values`` and (with ``nodes``) every node a store keeps: each subtree of two or more
    keys, and each lone key's subtree. Used to upgrade a ledger and by ``verify`` (``nodes=False``)."""
    keys = sorted(values)
    ints = [int.from_bytes(k, "big") for k in keys]
    out: dict[bytes, Node] = {}
    sha = hashlib.sha256

    def sub(lo: int, hi: int, depth: int) -> bytes:
        if hi - lo == 1:
            k = keys[lo]
            h = sha(b"\x02" + k + pack_refs(values[k])).digest()
            if nodes:
                out[node_id(k, depth)] = Node(h, k)
            return h
        shift = KEY_BITS - 1 - depth
        split = bisect_left(ints, ((ints[lo] >> (shift + 1)) << (shift + 1)) | (1 << shift), lo, hi)
        left = sub(lo, split, depth + 1) if split > lo else EMPTY
        right = sub(split, hi, depth + 1) if split < hi else EMPTY
        h = sha(b"\x03" + left + right).digest()
        if nodes:
            out[node_id(keys[lo], depth)] = Node(h, None)
        return h

    root = sub(0, len(keys), 0) if keys else EMPTY
    return root, out


# --- proofs ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MapProof:
    """Sibling hashes from the root down (None = empty) and the terminal: the lone key there with its entries, or
    None for an empty subtree. ``to_json``/``from_json`` give the proof document's ``map_proof`` member."""

    key: bytes
    siblings: tuple[bytes | None, ...]
    leaf_key: bytes | None
    leaf_refs: tuple[Ref, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key.hex(),
            "siblings": [None if s is None else s.hex() for s in self.siblings],
            "leaf": None if self.leaf_key is None else {
                "key": self.leaf_key.hex(), "entries": [[i, h.hex()] for i, h in self.leaf_refs]},
        }

    @classmethod
    def from_json(cls, doc: Any) -> MapProof:
        try:
            key = _hex32(doc["key"])
            siblings = tuple(None if s is None else _hex32(s) for s in doc["siblings"])
            leaf = doc["leaf"]
            if leaf is None:
                return cls(key, siblings, None, ())
            refs = tuple((_index(i), _hex32(h)) for i, h in leaf["entries"])
            return cls(key, siblings, _hex32(leaf["key"]), refs)
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerIntegrityError("ledger:bad_map_proof", "malformed map proof", expected="{key, siblings, "
                                       "leaf: null | {key, entries: [[index, hash]...]}}", found=str(exc)) from exc


def _hex32(text: Any) -> bytes:
    raw = bytes.fromhex(text) if isinstance(text, str) else b""
    if len(raw) != 32:
        raise ValueError(f"not 64 hex characters: {text!r:.80}")
    return raw


def _index(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"not an entry index: {value!r:.40}")
    return value


def _ids(key: bytes, lo: int, hi: int) -> tuple[list[bytes], list[bytes]]:
    """Ids of ``key``'s path nodes at depths ``lo..hi-1`` and of their siblings (None-free: depth 0 has no sibling,
    its slot holds the root's id again). Equal to ``node_id`` of the same subtrees, computed from one integer."""
    k = int.from_bytes(key, "big")
    path, sibs = [], []
    for d in range(lo, min(hi, KEY_BITS + 1)):
        depth = d.to_bytes(2, "big")
        nb = (d + 7) >> 3
        pad = (-d) & 7
        p = k >> (KEY_BITS - d)
        path.append(depth + (p << pad).to_bytes(nb, "big"))
        sibs.append(depth + ((p ^ 1 if d else 0) << pad).to_bytes(nb, "big"))
    return path, sibs


_CHUNK = 16  # depths fetched per query: a map of n keys is about log2(n) + 2 deep


def walk(key: bytes, get: NodeGetter) -> tuple[list[bytes | None], int, Node | None]:
    """Walk ``key``'s path in a store: (sibling hashes from depth 1 down, terminal depth, terminal node or None)."""
    siblings: list[bytes | None] = []
    found: dict[bytes, Node] = {}
    path: list[bytes] = []
    sibs: list[bytes] = []
    depth = 0
    while True:
        if depth + 1 >= len(path) and len(path) <= KEY_BITS:
            more_path, more_sibs = _ids(key, len(path), len(path) + _CHUNK)
            found.update(get(more_path + more_sibs[1 if not path else 0:]))
            path += more_path
            sibs += more_sibs
        node = found.get(path[depth])
        if node is None or node.key is not None:
            return siblings, depth, node
        if depth >= KEY_BITS:
            raise LedgerIntegrityError("ledger:bad_map", "a stored map node at full depth holds no key",
                                       expected="a lone key's subtree", found="an inner node")
        sib = found.get(sibs[depth + 1])
        siblings.append(None if sib is None else sib.hash)
        depth += 1


def fold_path(key: bytes, terminal: bytes, siblings: Sequence[bytes | None]) -> bytes:
    """The root over ``terminal`` (the hash at depth ``len(siblings)`` on ``key``'s path) and its siblings."""
    h = terminal
    k = int.from_bytes(key, "big")
    for d in range(len(siblings), 0, -1):
        sib = siblings[d - 1]
        s = EMPTY if sib is None else sib
        h = inner_hash(s, h) if (k >> (KEY_BITS - d)) & 1 else inner_hash(h, s)
    return h


def prove(key: bytes, get: NodeGetter, *, values: Callable[[bytes], Sequence[Ref] | None]) -> MapProof:
    """The proof for ``key``: ``get`` fetches stored nodes by id, ``values`` a lone key's entry list."""
    siblings, _depth, node = walk(key, get)
    if node is None:
        return MapProof(key, tuple(siblings), None, ())
    assert node.key is not None
    refs = values(node.key)
    if refs is None:
        raise LedgerIntegrityError("ledger:bad_map", "a map node names a key with no stored entry list",
                                   expected="the entry list of " + node.key.hex()[:16], found="nothing")
    return MapProof(key, tuple(siblings), node.key, tuple(refs))


def verify(root: bytes, key: bytes, proof: MapProof) -> list[Ref]:
    """The complete entry list of ``key`` ([] when no entry names it), or ``LedgerIntegrityError`` when ``proof``
    does not lead to ``root``."""
    depth = len(proof.siblings)
    if proof.key != key or depth > KEY_BITS:
        raise LedgerIntegrityError("ledger:bad_map_proof", "the map proof is for another key", expected=key.hex(),
                                   found=proof.key.hex())
    refs: list[Ref] = []
    if proof.leaf_key is None:
        h = EMPTY
    else:
        if any(_bit(proof.leaf_key, d) != _bit(key, d) for d in range(depth)):
            raise LedgerIntegrityError("ledger:bad_map_proof", "the map proof's terminal key is off the key's path",
                                       expected=key.hex(), found=proof.leaf_key.hex())
        if [i for i, _ in proof.leaf_refs] != sorted({i for i, _ in proof.leaf_refs}) or not proof.leaf_refs:
            raise LedgerIntegrityError("ledger:bad_map_proof", "the map proof's entry list is not strictly "
                                       "increasing", expected="entry indices oldest first",
                                       found=str([i for i, _ in proof.leaf_refs][:8]))
        h = leaf_hash(proof.leaf_key, proof.leaf_refs)
        if proof.leaf_key == key:
            refs = list(proof.leaf_refs)
    h = fold_path(key, h, proof.siblings)
    if h != root:
        raise LedgerIntegrityError("ledger:bad_map_proof", "the map proof does not lead to the signed map root",
                                   expected=root.hex(), found=h.hex())
    return refs


# --- incremental updates (append) -----------------------------------------------------------------------------
class Updater:
    """Adds entry references to a stored map inside one write transaction; ``changes()`` gives the rows to write.

    ``get`` reads stored nodes, ``values`` a key's stored entry list; both see the state before this append.
    """

    def __init__(self, get: NodeGetter, values: Callable[[bytes], Sequence[Ref] | None],
                 values_many: Callable[[Sequence[bytes]], Mapping[bytes, Sequence[Ref]]] | None = None) -> None:
        self._get = get
        self._values = values
        self._values_many = values_many
        self.nodes: dict[bytes, Node | None] = {}  # written (None: deleted) by this append
        self.refs: dict[bytes, list[Ref]] = {}
        self._cache: dict[bytes, Node | None] = {}

    def fetch(self, ids: list[bytes]) -> dict[bytes, Node]:
        """Nodes by id as they stand in this append (stored nodes are read once)."""
        want = [i for i in ids if i not in self.nodes and i not in self._cache]
        if want:
            stored = self._get(want)
            for i in want:
                self._cache[i] = stored.get(i)
        out: dict[bytes, Node] = {}
        for i in ids:
            node = self.nodes[i] if i in self.nodes else self._cache[i]
            if node is not None:
                out[i] = node
        return out

    def prefetch(self, keys: Sequence[bytes], depth: int = _CHUNK) -> None:
        """Read the top ``depth`` levels of the paths of ``keys`` (and their entry lists) in one query each, so the
        walks that follow mostly find their nodes here."""
        ids: list[bytes] = []
        for key in keys:
            path, sibs = _ids(key, 0, depth)
            ids += path + sibs[1:]
        self.fetch(list(dict.fromkeys(ids)))
        if self._values_many is not None:
            found = self._values_many([k for k in keys if k not in self.refs])
            for k in keys:
                if k not in self.refs:
                    self.refs[k] = list(found.get(k) or [])

    def current_refs(self, key: bytes) -> Sequence[Ref] | None:
        """``key``'s entry list as it stands in this append."""
        return self.refs[key] if key in self.refs else self._values(key)

    def _refs(self, key: bytes) -> list[Ref]:
        if key not in self.refs:
            self.refs[key] = list(self._values(key) or [])
        return self.refs[key]

    def add(self, key: bytes, ref: Ref) -> None:
        """Append ``ref`` to ``key``'s entry list and rehash its path. The path as read must lead to the current
        root first (``ledger:bad_map`` otherwise), so changed rows are never built upon."""
        siblings, depth, node = walk(key, self.fetch)
        refs = self._refs(key)
        if node is None:
            before = EMPTY
        elif node.key == key:
            before = leaf_hash(key, refs)
            if before != node.hash:
                raise LedgerIntegrityError("ledger:bad_map", "a stored entry list differs from its signed hash",
                                           expected=node.hash.hex(), found=before.hex())
        else:
            before = node.hash
        now = self.root()
        if fold_path(key, before, siblings) != now:
            raise LedgerIntegrityError("ledger:bad_map", "the stored index path of a key does not lead to the "
                                       "current map root (map rows were changed)", expected=now.hex(),
                                       found=fold_path(key, before, siblings).hex())
        refs.append(ref)
        h = leaf_hash(key, refs)
        if node is not None and node.key != key:  # another lone key here: both move down to where they part
            other = node.key
            assert other is not None
            part = depth
            while _bit(other, part) == _bit(key, part):
                part += 1
            self.nodes[node_id(key, depth)] = None
            self.nodes[node_id(other, part + 1)] = Node(node.hash, other)
            self.nodes[node_id(key, part + 1)] = Node(h, key)
            siblings = siblings + [None] * (part - depth) + [node.hash]
            depth = part + 1
        else:
            self.nodes[node_id(key, depth)] = Node(h, key)
        path, _ = _ids(key, 0, depth)
        for d in range(depth, 0, -1):
            sib = siblings[d - 1]
            s = EMPTY if sib is None else sib
            h = inner_hash(s, h) if _bit(key, d - 1) else inner_hash(h, s)
            self.nodes[path[d - 1]] = Node(h, None)

    def root(self) -> bytes:
        node = self.fetch([_ROOT_ID]).get(_ROOT_ID)
        return EMPTY if node is None else node.hash
