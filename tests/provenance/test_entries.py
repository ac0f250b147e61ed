"""Entries: the in-toto Statement shape, validated on write and on read; unknown predicate versions refused."""

from __future__ import annotations

import pytest

from provenance.entries import INGESTION_V1, make_statement, parse_entry, subject_digests, validate_statement
from provenance.errors import LedgerIntegrityError, ProvenanceInputError
from provenance.hashing import canonical_json

H = "ab" * 32


def test_make_statement_shape() -> None:
    st = make_statement(subjects=[("a.csv", "sha256:" + H), ("clean.parquet", "cd" * 32)],
                        predicate={"verdict": "approved", "source": {"name": "s", "uri": "file:///a.csv"}})
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == INGESTION_V1
    assert st["subject"][0] == {"name": "a.csv", "digest": {"sha256": H}}
    assert st["predicate"]["time"].endswith("Z")
    assert subject_digests(st) == ["sha256:" + H, "sha256:" + "cd" * 32]
    assert parse_entry(canonical_json(st), 0) == st


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda s: s.update(predicateType="https://trainguard.dev/ingestion/v2"), "entry:unknown_predicate_version"),
        (lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"), "entry:bad_type"),
        (lambda s: s.update(subject=[]), "entry:no_subject"),
        (lambda s: s["subject"][0]["digest"].update(sha256="xyz"), "entry:bad_subject"),
        (lambda s: s["predicate"].update(verdict="maybe"), "entry:bad_verdict"),
        (lambda s: s["predicate"].update(verdict="override"), "entry:bad_verdict"),
        (lambda s: s["predicate"].update(previous="nothex"), "entry:bad_previous"),
        (lambda s: s.update(extra=1), "entry:unknown_field"),
    ],
)
def test_invalid_entries_refused_on_write_and_read(mutate, code: str) -> None:  # type: ignore[no-untyped-def]
    st = make_statement(subjects=[("a", "sha256:" + H)], predicate={"verdict": "approved"})
    mutate(st)
    with pytest.raises(ProvenanceInputError) as err:
        validate_statement(st)
    assert err.value.code == code
    with pytest.raises(LedgerIntegrityError) as err2:
        parse_entry(canonical_json(st), 7)
    assert err2.value.code == code and err2.value.index == 7


def test_unknown_predicate_version_message_is_clear() -> None:
    with pytest.raises(ProvenanceInputError, match=r"ingestion/v9.*not supported"):
        make_statement(subjects=[("a", "sha256:" + H)], predicate={"verdict": "approved"},
                       predicate_type="https://trainguard.dev/ingestion/v9")


def test_corrupted_bytes_fail_closed() -> None:
    with pytest.raises(LedgerIntegrityError, match="entry 3") as err:
        parse_entry(b"\xff\xfe{garbage", 3)
    assert err.value.code == "ledger:corrupt_entry"
