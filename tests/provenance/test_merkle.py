"""RFC 6962 Merkle hashing and proofs: every transparency-dev vector, and proofs against a naive MTH."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.merkle import (
    EMPTY_ROOT,
    build_nodes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "testvectors" / "merkle"


def _files(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).glob("*/*.json")) if VECTORS.is_dir() else []


def _vector_params(kind: str) -> list[object]:
    files = _files(kind)
    if files:
        return list(files)
    reason = f"../shared is absent ({VECTORS}): the RFC 6962 {kind} test vectors are not available here"
    return [pytest.param(VECTORS / kind, marks=pytest.mark.skip(reason=reason), id="no-vectors")]


def _b(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def _id(p: Path) -> str:
    return f"{p.parent.name}/{p.stem}"


@pytest.mark.parametrize("path", _vector_params("inclusion"), ids=_id)
def test_inclusion_vector(path: Path, shared_dir: Path) -> None:
    v = json.loads(path.read_text())
    ok = verify_inclusion(v["leafIdx"], v["treeSize"], _b(v["leafHash"]), [_b(p) for p in v["proof"] or []],
                          _b(v["root"]))
    assert ok is not v["wantErr"], v["desc"]


@pytest.mark.parametrize("path", _vector_params("consistency"), ids=_id)
def test_consistency_vector(path: Path, shared_dir: Path) -> None:
    v = json.loads(path.read_text())
    ok = verify_consistency(v["size1"], v["size2"], _b(v["root1"]), _b(v["root2"]), [_b(p) for p in v["proof"] or []])
    assert ok is not v["wantErr"], v["desc"]


def test_vectors_present_and_counted(shared_dir: Path) -> None:
    assert len(_files("inclusion")) > 50 and len(_files("consistency")) > 50
    assert any(json.loads(p.read_text())["wantErr"] for p in _files("inclusion"))


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 MTH, written recursively from the text."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=80), st.data())
def test_proofs_roundtrip(entries: list[bytes], data: st.DataObject) -> None:
    leaves = [leaf_hash(e) for e in entries]
    n = len(leaves)
    nodes = build_nodes(leaves)
    get = lambda ids: {i: nodes[i] for i in ids}  # noqa: E731
    root = root_from_leaves(leaves)
    assert root == _mth(leaves)
    i = data.draw(st.integers(0, n - 1))
    proof = inclusion_proof(i, n, get)
    assert verify_inclusion(i, n, leaves[i], proof, root)
    assert not verify_inclusion(i, n, leaf_hash(entries[i] + b"x"), proof, root)
    m = data.draw(st.integers(1, n))
    cproof = consistency_proof(m, n, get)
    assert verify_consistency(m, n, _mth(leaves[:m]), root, cproof)
    if cproof:
        bad = [bytes(32)] + cproof[1:]
        assert not verify_consistency(m, n, _mth(leaves[:m]), root, bad)


def test_empty_tree_and_bad_arguments() -> None:
    assert root_from_leaves([]) == EMPTY_ROOT
    with pytest.raises(ValueError):
        inclusion_proof(3, 3, lambda ids: {})
    with pytest.raises(ValueError):
        consistency_proof(0, 3, lambda ids: {})
    assert not verify_inclusion(0, 0, bytes(32), [], EMPTY_ROOT)
