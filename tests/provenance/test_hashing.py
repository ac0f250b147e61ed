"""Streamed digests, directory digests and canonical JSON."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.errors import ProvenanceInputError
from provenance.hashing import canonical_json, dir_digest, file_digest, parse_digest, path_digest
from tests.provenance.conftest import unblocked


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


def test_dir_digest_format_is_unchanged(tmp_path: Path) -> None:
    """Directories approved before the symlink checks keep their digest: sorted "<rel>\\0<file digest>\\n" lines."""
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.csv").write_text("b")
    (tmp_path / "d" / "sub" / "a.csv").write_text("a")
    files = {"b.csv": b"b", "sub/a.csv": b"a"}
    lines = sorted(f"{rel}\0sha256:{hashlib.sha256(data).hexdigest()}\n" for rel, data in files.items())
    assert dir_digest(tmp_path / "d") == "sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest()


def _dataset(tmp_path: Path) -> Path:
    d = tmp_path / "dset"
    d.mkdir()
    (d / "part-0.csv").write_text("x,y\n1,0\n")
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "part-1.csv").write_text("x,y\n9,1\n")
    return d


def test_dir_digest_refuses_a_symlinked_subdirectory(tmp_path: Path) -> None:
    """Found by review (F1): os.walk does not follow symlinked directories, so a linked-in subdirectory of new data
    left the digest unchanged while pandas/pyarrow read it. Such a directory is now refused, naming the link."""
    d = _dataset(tmp_path)
    dir_digest(d)
    os.symlink(tmp_path / "evil", d / "more")
    for digest_of in (dir_digest, path_digest):
        with pytest.raises(ProvenanceInputError, match="more") as err:
            digest_of(d)
        assert err.value.code == "input:symlink" and err.value.exit_code == 2
        assert "symlink to the directory" in err.value.message
    (d / "more").unlink()
    (d / "sub").mkdir()
    os.symlink("..", d / "sub" / "loop")  # into the tree, one level down: refused as well
    with pytest.raises(ProvenanceInputError, match="loop") as err:
        dir_digest(d)
    assert err.value.code == "input:symlink"


def test_dir_digest_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    d = _dataset(tmp_path)
    os.symlink(tmp_path / "gone.csv", d / "part-2.csv")
    with pytest.raises(ProvenanceInputError, match="part-2.csv") as err:
        dir_digest(d)
    assert err.value.code == "input:symlink"


def test_dir_digest_hashes_a_symlinked_file_as_its_bytes(tmp_path: Path) -> None:
    """A link to a regular file is read as that file by pandas/pyarrow, so it is hashed as one, under its name."""
    d = _dataset(tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "part-0.csv").write_text("x,y\n1,0\n")
    (copy / "part-1.csv").write_text("x,y\n9,1\n")
    os.symlink(tmp_path / "evil" / "part-1.csv", d / "part-1.csv")
    assert dir_digest(d) == dir_digest(copy)
    (tmp_path / "evil" / "part-1.csv").write_text("x,y\n9,0\n")  # the target changes: so does the digest
    assert dir_digest(d) != dir_digest(copy)


@pytest.mark.timeout(60)
def test_fifo_refused_without_blocking(tmp_path: Path) -> None:
    """Found by review (F1): ``gate`` and ``ledger prove`` on a FIFO hung in open(). It is refused by its stat."""
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    with unblocked(fifo):
        for digest_of in (file_digest, path_digest):
            with pytest.raises(ProvenanceInputError, match="fifo.csv") as err:
                digest_of(fifo)
            assert err.value.code == "input:not_a_file" and "FIFO" in err.value.message
            assert err.value.exit_code == 2


@pytest.mark.timeout(60)
def test_dir_digest_refuses_special_files(tmp_path: Path) -> None:
    d = _dataset(tmp_path)
    os.mkfifo(d / "stream.csv")
    with unblocked(d / "stream.csv"):
        with pytest.raises(ProvenanceInputError, match="stream.csv") as err:
            dir_digest(d)
    assert err.value.code == "input:not_a_file"
    (d / "stream.csv").unlink()
    os.symlink(os.devnull, d / "null.csv")  # a link to a character device
    with pytest.raises(ProvenanceInputError, match="character device") as err:
        dir_digest(d)
    assert err.value.code == "input:not_a_file"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any directory")
def test_dir_digest_refuses_an_unreadable_subdirectory(tmp_path: Path) -> None:
    """os.walk skipped a subdirectory it could not list; a reader with other rights would read it."""
    d = _dataset(tmp_path)
    (d / "hidden").mkdir()
    (d / "hidden").chmod(0)
    try:
        with pytest.raises(ProvenanceInputError, match="hidden") as err:
            dir_digest(d)
        assert err.value.code == "input:unreadable"
    finally:
        (d / "hidden").chmod(0o700)


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
