"""The verifiable index: incremental updates equal a rebuild, and every proof equals a full scan."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance import vmap
from provenance.errors import LedgerIntegrityError


def _key(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest()


def _incremental(appends: list[list[bytes]]) -> tuple[dict[bytes, vmap.Node], dict[bytes, list[vmap.Ref]], bytes]:
    """Apply appends the way the ledger does: one Updater per append over a dict 'store'."""
    nodes: dict[bytes, vmap.Node] = {}
    values: dict[bytes, list[vmap.Ref]] = {}
    root = vmap.EMPTY
    for idx, keys in enumerate(appends):
        up = vmap.Updater(lambda ids: {i: nodes[i] for i in ids if i in nodes}, values.get)
        leaf = hashlib.sha256(b"entry %d" % idx).digest()
        for k in dict.fromkeys(keys):
            up.add(k, (idx, leaf))
        for nid, node in up.nodes.items():
            if node is None:
                nodes.pop(nid, None)
            else:
                nodes[nid] = node
        values.update({k: list(v) for k, v in up.refs.items()})
        root = up.root()
    return nodes, values, root


# keys that share long prefixes exercise the push-down of a lone key; random keys the usual shape
_near = st.integers(0, 255).map(lambda b: bytes(31) + bytes([b]))
_keys = st.one_of(st.integers(0, 40).map(_key), _near, st.binary(min_size=32, max_size=32))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_keys, min_size=1, max_size=4), min_size=0, max_size=30), st.lists(_keys, max_size=5))
def test_incremental_equals_rebuild_and_proofs_equal_a_scan(appends: list[list[bytes]], probes: list[bytes]) -> None:
    nodes, values, root = _incremental(appends)
    scan: dict[bytes, list[int]] = {}
    for idx, keys in enumerate(appends):
        for k in dict.fromkeys(keys):
            scan.setdefault(k, []).append(idx)
    full_root, full_nodes = vmap.build(values)
    assert root == full_root
    assert nodes == full_nodes  # the store holds exactly the canonical nodes, no stale ones
    for k in list(scan) + probes:
        proof = vmap.prove(k, lambda ids: {i: nodes[i] for i in ids if i in nodes}, values=values.get)
        assert proof == vmap.MapProof.from_json(proof.to_json())
        assert [i for i, _ in vmap.verify(root, k, proof)] == scan.get(k, [])


def test_empty_map() -> None:
    root, nodes = vmap.build({})
    assert root == vmap.EMPTY and nodes == {}
    proof = vmap.prove(_key(1), lambda ids: {}, values=lambda k: None)
    assert vmap.verify(root, _key(1), proof) == []


def _setup() -> tuple[bytes, dict[bytes, vmap.Node], dict[bytes, list[vmap.Ref]]]:
    values = {_key(i): [(i, bytes([i]) * 32)] for i in range(50)}
    values[_key(3)].append((60, bytes([60]) * 32))
    root, nodes = vmap.build(values)
    return root, nodes, values


def test_a_hidden_entry_does_not_verify() -> None:
    root, nodes, values = _setup()
    proof = vmap.prove(_key(3), lambda ids: {i: nodes[i] for i in ids if i in nodes}, values=values.get)
    assert [i for i, _ in vmap.verify(root, _key(3), proof)] == [3, 60]
    hidden = vmap.MapProof(proof.key, proof.siblings, proof.leaf_key, proof.leaf_refs[:1])
    with pytest.raises(LedgerIntegrityError) as err:
        vmap.verify(root, _key(3), hidden)
    assert err.value.code == "ledger:bad_map_proof"


def test_absence_claimed_for_a_present_key_does_not_verify() -> None:
    root, nodes, values = _setup()
    proof = vmap.prove(_key(3), lambda ids: {i: nodes[i] for i in ids if i in nodes}, values=values.get)
    for fake in (vmap.MapProof(proof.key, proof.siblings, None, ()),
                 vmap.MapProof(proof.key, proof.siblings[:-1], None, ()),
                 vmap.MapProof(proof.key, (), None, ())):
        with pytest.raises(LedgerIntegrityError):
            vmap.verify(root, _key(3), fake)
    other = vmap.prove(_key(4), lambda ids: {i: nodes[i] for i in ids if i in nodes}, values=values.get)
    with pytest.raises(LedgerIntegrityError):  # another key's proof, relabelled
        vmap.verify(root, _key(3), vmap.MapProof(_key(3), other.siblings, other.leaf_key, other.leaf_refs))


def test_dropped_store_node_fails_closed() -> None:
    root, nodes, values = _setup()
    victim = vmap.node_id(_key(3), 1)
    damaged = {k: v for k, v in nodes.items() if k != victim}
    proof = vmap.prove(_key(3), lambda ids: {i: damaged[i] for i in ids if i in damaged}, values=values.get)
    try:
        refs = vmap.verify(root, _key(3), proof)
    except LedgerIntegrityError:
        return
    assert [i for i, _ in refs] == [3, 60]  # a node off the path: the answer is still the true one


def test_malformed_proof_document() -> None:
    with pytest.raises(LedgerIntegrityError) as err:
        vmap.MapProof.from_json({"key": "zz", "siblings": [], "leaf": None})
    assert err.value.code == "ledger:bad_map_proof"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(0, 12), min_size=1, max_size=3), min_size=1, max_size=15), st.data())
def test_the_ledgers_index_answers_every_digest_as_a_full_scan_does(tmp_path_factory: pytest.TempPathFactory,
                                                                    appends: list[list[int]],
                                                                    data: st.DataObject) -> None:
    """Random append sequences through the real ledger (SQLite): the proven history of every digest, present or
    not, is exactly the entries a scan of the log finds naming it; verify rebuilds the same index root."""
    from provenance.entries import make_statement
    from provenance.ledger import open_ledger
    from provenance.signing import generate_private_key

    d = tmp_path_factory.mktemp("vmap-ledger")
    verdicts = ["approved", "rejected", "quarantined", "error"]
    with open_ledger(f"sqlite:///{d}/ledger.db", signing_key=generate_private_key()) as led:
        for i, subjects in enumerate(appends):
            led.append(make_statement(subjects=[(f"s{s}", "sha256:" + f"{s:064x}") for s in subjects],
                                      predicate={"verdict": data.draw(st.sampled_from(verdicts)),
                                                 "source": {"name": f"src{i % 3}"}}))
        for s in range(14):
            scan = [i for i, subjects in enumerate(appends) if s in subjects]
            assert [r.index for r in led.history("sha256:" + f"{s:064x}").records] == scan
        led.verify()


@given(st.binary(min_size=32, max_size=32), st.integers(0, 256), st.integers(1, 40))
def test_path_ids_are_the_node_ids_of_the_path_and_its_siblings(key: bytes, lo: int, n: int) -> None:
    path, sibs = vmap._ids(key, lo, lo + n)
    for i, d in enumerate(range(lo, min(lo + n, 257))):
        assert path[i] == vmap.node_id(key, d)
        if d:
            flipped = bytearray(key)
            flipped[(d - 1) >> 3] ^= 1 << (7 - ((d - 1) & 7))
            assert sibs[i] == vmap.node_id(bytes(flipped), d)
