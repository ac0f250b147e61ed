"""Streamed digests, directory digests and canonical JSON."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.errors import ProvenanceInputError
from provenance.hashing import canonical_json, dir_digest, file_digest, parse_digest, path_digest


def test_file_digest_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 20_000  # 5 MB: several read buffers
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    assert file_digest(p) == "sha256:" + hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_digest(empty) == "sha256:" + hashlib.sha256(b"").hexdigest()


def test_file_digest_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ProvenanceInputError, match="missing.csv") as err:
        file_digest(tmp_path / "missing.csv")
    assert err.value.code == "input:missing_file"
    with pytest.raises(ProvenanceInputError, match="directory"):
        file_digest(tmp_path)


def test_dir_digest_depends_on_names_and_bytes_not_creation_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d, order in ((a, ["x", "sub/y"]), (b, ["sub/y", "x"])):
        for name in order:
            (d / name).parent.mkdir(parents=True, exist_ok=True)
            (d / name).write_text(name)
    assert dir_digest(a) == dir_digest(b) == path_digest(a)
    (b / "x").write_text("changed")
    assert dir_digest(a) != dir_digest(b)
    (b / "x").write_text("x")
    (b / "x").rename(b / "z")
    assert dir_digest(a) != dir_digest(b)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": [1, {"d": 2, "c": "é"}], "a": None}) == '{"a":null,"b":[1,{"c":"é","d":2}]}'.encode()
    with pytest.raises(ProvenanceInputError):
        canonical_json({"x": float("nan")})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
    max_leaves=15,
)


@settings(max_examples=60, deadline=None)
@given(json_values)
def test_canonical_json_roundtrips_and_is_stable(value: object) -> None:
    data = canonical_json(value)
    assert canonical_json(json.loads(data.decode("utf-8"))) == data


def test_parse_digest() -> None:
    h = "ab" * 32
    assert parse_digest(h.upper()) == "sha256:" + h
    assert parse_digest("sha256:" + h) == "sha256:" + h
    for bad in ("sha256:abc", "md5:" + h, "", "sha256:" + "zz" * 32):
        with pytest.raises(ProvenanceInputError):
            parse_digest(bad)
