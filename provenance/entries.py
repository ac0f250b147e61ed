"""Ledger entries: in-toto Statement v1 shaped documents, validated on write and on read.

An entry is::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "batch.csv", "digest": {"sha256": "<hex>"}}, ...],
     "predicateType": "https://trainguard.dev/ingestion/v1",
     "predicate": {"verdict": "approved" | "rejected" | "quarantined" | "override" | "error",
                   "source": {"name": ..., "uri": ...}, "time": "<RFC 3339>", "previous": "<hex>" | null, ...}}

``predicate.previous`` is the hash chain link: the leaf hash (hex) of the entry before it, ``null`` for entry 0.
The ledger sets it at append time. Only the predicate types in ``PREDICATE_TYPES`` are accepted; any other
(e.g. a future ``/v2``) is refused, so an old verifier never silently misreads a newer entry.

Example::

    >>> st = make_statement(subjects=[("batch.csv", "sha256:" + "ab" * 32)],
    ...                     predicate={"verdict": "approved", "source": {"name": "vendor-a"}})
    >>> st["subject"][0]["digest"]["sha256"] == "ab" * 32
    True
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from provenance.errors import LedgerIntegrityError, ProvenanceInputError

__all__ = [
    "STATEMENT_TYPE",
    "INGESTION_V1",
    "OVERRIDE_V1",
    "ROTATION_V1",
    "PREDICATE_TYPES",
    "VERDICTS",
    "make_statement",
    "validate_statement",
    "parse_entry",
    "subject_digests",
    "utc_now",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
INGESTION_V1 = "https://trainguard.dev/ingestion/v1"
OVERRIDE_V1 = "https://trainguard.dev/override/v1"
ROTATION_V1 = "https://trainguard.dev/key-rotation/v1"
PREDICATE_TYPES = frozenset({INGESTION_V1, OVERRIDE_V1, ROTATION_V1})
VERDICTS = frozenset({"approved", "rejected", "quarantined", "override", "error", "key_rotation"})
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


def _json_loads(body: bytes) -> Any:
    return json.loads(body.decode("utf-8"))


_fast_loads: Callable[[bytes], Any] = _json_loads
try:
    import orjson

    _fast_loads = orjson.loads
except ImportError:  # pragma: no cover - orjson comes with Prefect; the ledger works without it
    pass
_FIELDS = frozenset({"_type", "subject", "predicateType", "predicate"})


def utc_now() -> str:
    """Current UTC time as RFC 3339 with microseconds and a ``Z``."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_statement(
    *,
    subjects: Iterable[tuple[str, str]],
    predicate: Mapping[str, Any],
    predicate_type: str = INGESTION_V1,
) -> dict[str, Any]:
    """Build and validate an entry; ``subjects`` are ``(name, "sha256:<hex>")`` pairs.

    ``predicate.time`` is filled with the current UTC time when absent.
    """
    subject_list = []
    for pair in subjects:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ProvenanceInputError("entry:bad_subject", f"subject must be (name, digest), got {pair!r}")
        name, digest = pair
        hexpart = str(digest).removeprefix("sha256:")
        subject_list.append({"name": str(name), "digest": {"sha256": hexpart}})
    pred = copy.deepcopy(dict(predicate))
    pred.setdefault("time", utc_now())
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": subject_list,
        "predicateType": predicate_type,
        "predicate": pred,
    }
    validate_statement(statement)
    return statement


def _problem(statement: Any) -> tuple[str, str] | None:
    """``(code, message)`` of the first thing wrong with ``statement``, or None when it is valid."""
    if not isinstance(statement, dict):
        return "entry:not_object", "entry is not a JSON object"
    if statement.get("_type") != STATEMENT_TYPE:
        return "entry:bad_type", f"_type must be {STATEMENT_TYPE}, found {statement.get('_type')!r}"
    if len(statement) != 4:
        extra = set(statement) - _FIELDS
        return "entry:unknown_field", f"unknown or missing top-level field(s) {sorted(extra) or sorted(_FIELDS)}"
    ptype = statement.get("predicateType")
    if ptype not in PREDICATE_TYPES:
        return (
            "entry:unknown_predicate_version",
            f"predicateType {ptype!r} is not supported (known: {', '.join(sorted(PREDICATE_TYPES))})",
        )
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        return "entry:no_subject", "subject must be a non-empty list"
    match = _HEX64.match
    for i, s in enumerate(subjects):
        digest = s.get("digest") if type(s) is dict else None
        if type(digest) is not dict or type(s.get("name")) is not str:
            return "entry:bad_subject", f"subject[{i}] must be {{name, digest: {{sha256}}}}"
        value = digest.get("sha256")
        if type(value) is not str or not match(value):
            return "entry:bad_subject", f"subject[{i}] digest.sha256 must be 64 lowercase hex characters"
    pred = statement.get("predicate")
    if not isinstance(pred, dict):
        return "entry:bad_predicate", "predicate must be a JSON object"
    verdict = pred.get("verdict")
    if verdict not in VERDICTS:
        return "entry:bad_verdict", f"predicate.verdict {verdict!r} is not one of {sorted(VERDICTS)}"
    if (ptype == OVERRIDE_V1) != (verdict == "override"):
        return "entry:bad_verdict", "verdict override goes with predicateType override/v1 and only with it"
    if (ptype == ROTATION_V1) != (verdict == "key_rotation"):
        return "entry:bad_verdict", "verdict key_rotation goes with predicateType key-rotation/v1 and only with it"
    if not isinstance(pred.get("time"), str):
        return "entry:no_time", "predicate.time must be an RFC 3339 string"
    previous = pred.get("previous")
    if previous is not None and (not isinstance(previous, str) or not _HEX64.match(previous)):
        return "entry:bad_previous", "predicate.previous must be null or 64 hex characters"
    if ptype == OVERRIDE_V1:
        approval = pred.get("approval")
        if not isinstance(approval, dict) or not all(
            isinstance(approval.get(k), str) for k in ("key_id", "signature", "digest")
        ):
            return "entry:bad_approval", "override predicate.approval needs key_id, signature and digest"
    if ptype == ROTATION_V1:
        rotation = pred.get("rotation")
        fields = ("origin", "old_key_id", "old_public_key", "new_key_id", "new_public_key", "signature",
                  "new_key_signature")
        if not isinstance(rotation, dict) or not all(isinstance(rotation.get(k), str) for k in fields):
            return "entry:bad_rotation", f"key-rotation predicate.rotation needs {', '.join(fields)}"
    return None


def validate_statement(statement: Any) -> None:
    """Raise ``ProvenanceInputError`` naming the first problem of an entry about to be written."""
    problem = _problem(statement)
    if problem is not None:
        raise ProvenanceInputError(problem[0], f"invalid ledger entry: {problem[1]}")


def parse_entry(body: bytes, index: int) -> dict[str, Any]:
    """Parse and validate a stored entry (fail closed: ``LedgerIntegrityError`` naming ``index``)."""
    try:
        try:
            statement = _fast_loads(body)  # verify parses every entry: orjson is about 4x faster than json
        except ValueError:
            statement = json.loads(body.decode("utf-8"))  # what orjson refuses (integers beyond 64 bits) json reads
    except (UnicodeDecodeError, ValueError) as exc:
        raise LedgerIntegrityError(
            "ledger:corrupt_entry", "stored bytes are not UTF-8 JSON", index=index,
            expected="a canonical JSON entry", found=repr(body[:40]),
        ) from exc
    problem = _problem(statement)
    if problem is not None:
        raise LedgerIntegrityError(problem[0], f"stored entry is invalid: {problem[1]}", index=index)
    return statement  # type: ignore[no-any-return]


def subject_digests(statement: Mapping[str, Any]) -> list[str]:
    """``sha256:<hex>`` of every subject (and, for an override, of the approved digest)."""
    out = ["sha256:" + s["digest"]["sha256"] for s in statement["subject"]]
    return list(dict.fromkeys(out))


def source_name(statement: Mapping[str, Any]) -> str | None:
    """The predicate's source name (``source`` may be a name or a table with ``name``)."""
    src = statement["predicate"].get("source")
    if isinstance(src, dict):
        src = src.get("name")
    return str(src) if src is not None else None


def index_row(statement: Mapping[str, Any]) -> tuple[str | None, str, str | None, str]:
    """What the store's index columns hold for an entry: (source name, verdict, time, its subject digests sorted
    and joined by ","). The lookups (gate, log) read these columns, so ``verify`` checks them against the signed
    bodies."""
    pred = statement["predicate"]
    return (source_name(statement), str(pred["verdict"]), pred.get("time"),
            ",".join(sorted(subject_digests(statement))))
