"""RFC 6962 / RFC 9162 Merkle tree hashing, proof construction and proof verification.

Nodes are addressed as perfect subtrees ``(level, index)``: the node covering leaves
``[index * 2**level, (index + 1) * 2**level)``. A store only ever keeps perfect subtrees (they never change once
complete), so appending and proving touch O(log n) nodes; the right border of a tree that is not a power of two
is folded on the fly from its perfect parts.

Example::

    >>> from provenance.merkle import build_nodes, inclusion_proof, leaf_hash, root_from_leaves, verify_inclusion
    >>> leaves = [leaf_hash(bytes([i])) for i in range(5)]
    >>> root = root_from_leaves(leaves)
    >>> nodes = build_nodes(leaves)
    >>> proof = inclusion_proof(3, 5, lambda ids: {i: nodes[i] for i in ids})  # get: node ids -> {id: hash}
    >>> verify_inclusion(3, 5, leaves[3], proof, root)
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "leaf_hash",
    "node_hash",
    "node_id",
    "EMPTY_ROOT",
    "root_from_leaves",
    "build_nodes",
    "subtree_ids",
    "inclusion_plan",
    "consistency_plan",
    "inclusion_proof",
    "consistency_proof",
    "fold",
    "verify_inclusion",
    "verify_consistency",
    "Frontier",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEVEL_SHIFT = 48  # node id = level << 48 | index; fits a signed 64-bit integer for any realistic tree

NodeGetter = Callable[[int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def node_id(level: int, index: int) -> int:
    """Integer key of the perfect subtree ``(level, index)``."""
    return (level << _LEVEL_SHIFT) | index


def _split(size: int) -> int:
    """Largest power of two strictly smaller than ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def subtree_ids(start: int, size: int) -> list[int]:
    """Perfect node ids (left to right) whose fold is MTH(D[start:start+size]); ``start`` is aligned."""
    ids = []
    pos = start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            ids.append(node_id(level, pos >> level))
            pos += 1 << level
    return ids


def fold(hashes: Sequence[bytes]) -> bytes:
    """Hash of a subtree from its perfect parts (left to right), folded right to left."""
    acc = hashes[-1]
    sha = hashlib.sha256
    for i in range(len(hashes) - 2, -1, -1):
        acc = sha(b"\x01" + hashes[i] + acc).digest()
    return acc


def inclusion_plan(index: int, size: int) -> list[list[int]]:
    """PATH(index, D[size]) of RFC 6962 2.1.1 as lists of perfect node ids, leaf side first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside tree of size {size}")
    plan: list[list[int]] = []
    start, n = 0, size
    while n > 1:
        k = _split(n)
        if index - start < k:
            plan.append(subtree_ids(start + k, n - k))
            n = k
        else:
            plan.append(subtree_ids(start, k))
            start, n = start + k, n - k
    plan.reverse()
    return plan


def consistency_plan(old: int, new: int) -> list[list[int]]:
    """PROOF(old, D[new]) of RFC 6962 2.1.2 as lists of perfect node ids."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    plan: list[list[int]] = []
    start, m, n, complete = 0, old, new, True
    while m != n:
        k = _split(n)
        if m <= k:
            plan.append(subtree_ids(start + k, n - k))
            n = k
        else:
            plan.append(subtree_ids(start, k))
            start, m, n, complete = start + k, m - k, n - k, False
    if not complete:
        plan.append(subtree_ids(start, n))
    plan.reverse()
    return plan


def _resolve(plan: list[list[int]], get: Callable[[list[int]], dict[int, bytes]]) -> list[bytes]:
    wanted = sorted({i for ids in plan for i in ids})
    nodes = get(wanted)
    return [fold([nodes[i] for i in ids]) for ids in plan]


def inclusion_proof(index: int, size: int, get: Callable[[list[int]], dict[int, bytes]]) -> list[bytes]:
    """Audit path of leaf ``index`` in the tree of ``size`` leaves; ``get`` fetches nodes by id in one call."""
    return _resolve(inclusion_plan(index, size), get)


def consistency_proof(old: int, new: int, get: Callable[[list[int]], dict[int, bytes]]) -> list[bytes]:
    """Consistency proof between tree sizes ``old`` and ``new``."""
    return _resolve(consistency_plan(old, new), get)


def root_from_leaves(leaves: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (the empty tree hashes to SHA-256 of nothing)."""
    if not leaves:
        return EMPTY_ROOT
    frontier = Frontier()
    for h in leaves:
        frontier.push(h)
    return frontier.root()


def build_nodes(leaves: Iterable[bytes]) -> dict[int, bytes]:
    """Every perfect subtree hash of the tree over ``leaves`` keyed by node id (bulk loading, tests)."""
    nodes: dict[int, bytes] = {}
    frontier = Frontier()
    for h in leaves:
        for nid, value in frontier.push(h):
            nodes[nid] = value
    return nodes


class Frontier:
    """The right border of a growing tree: the perfect subtrees of its size's binary decomposition."""

    __slots__ = ("size", "stack")

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[bytes] = []  # perfect subtree hashes, biggest (leftmost) first

    def push(self, leaf: bytes) -> list[tuple[int, bytes]]:
        """Add a leaf; return the perfect nodes it completed as ``(node id, hash)``, the leaf first."""
        index = self.size
        created = [(index, leaf)]  # node_id(0, index) == index
        h = leaf
        level = 0
        sha = hashlib.sha256
        while index & 1:
            h = sha(b"\x01" + self.stack.pop() + h).digest()
            level += 1
            index >>= 1
            created.append(((level << _LEVEL_SHIFT) | index, h))
        self.stack.append(h)
        self.size += 1
        return created

    def root(self) -> bytes:
        """Root hash of the tree so far."""
        return fold(self.stack) if self.stack else EMPTY_ROOT


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2: True when ``proof`` shows ``leaf`` at ``index`` in the tree of ``size`` with ``root``."""
    if not 0 <= index < size or len(leaf) != 32 or any(len(p) != 32 for p in proof):
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2: True when ``proof`` shows the tree of ``old`` leaves is a prefix of the one of ``new``."""
    if old < 1 or old > new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if not proof or any(len(p) != 32 for p in proof):
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root is the first node
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
