"""The gate: training starts only on bytes that carry an approving, provable ledger entry.

``require_approved`` hashes the file (or directory), looks the digest up through the ledger's index, checks each
answer's inclusion proof against the latest checkpoint (signature checked against the trusted keys) and decides
by the newest decisive entry: ``approved``, or an ``override`` signed by a trusted approver key, lets it through;
``rejected``/``quarantined``/``error`` or nothing refuses it. Overrides signed by an untrusted key are ignored.
An override's signature covers the entry it overrides (``approval.supersedes``: the index and leaf hash of the
newest entry naming the digest when it was signed, or null): an override that is not directly after that entry
among the digest's entries is ignored, so a signed override copied to the end of the ledger after a later
rejection cannot approve again. It starts no Prefect and no server.

Example::

    >>> require_approved("outputs/clean.parquet", ledger="sqlite:///.trainguard/ledger.db")  # doctest: +SKIP
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provenance.config import TrustedSpec
from provenance.entries import OVERRIDE_V1, make_statement
from provenance.errors import NotApprovedError, ProvenanceConfigError
from provenance.hashing import canonical_json, parse_digest, path_digest
from provenance.ledger import AppendResult, Ledger, LedgerRecord, open_ledger
from provenance.signing import TrustedKeys, key_id, sign_bytes

__all__ = ["require_approved", "make_override", "append_override", "override_problem"]


def _override_message(statement: dict[str, Any]) -> bytes:
    """What an approver signs: the statement without ``predicate.previous`` and ``approval.signature``."""
    pred = {k: v for k, v in statement["predicate"].items() if k != "previous"}
    pred["approval"] = {k: v for k, v in pred["approval"].items() if k != "signature"}
    return canonical_json({**statement, "predicate": pred})


def make_override(
    digest: str,
    *,
    reason: str,
    approver_key: Ed25519PrivateKey,
    supersedes: LedgerRecord | None,
    actor: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """An ``override`` statement approving ``digest`` over ``supersedes`` (the newest entry naming the digest, or
    None when there is none), signed by ``approver_key``. ``append_override`` finds ``supersedes`` and appends."""
    d = parse_digest(digest)
    if not reason.strip():
        from provenance.errors import ProvenanceInputError

        raise ProvenanceInputError("input:no_reason", "an override needs a non-empty --reason")
    predicate = {
        "verdict": "override",
        "reason": reason,
        "actor": actor or _user(),
        "approval": {"digest": d, "key_id": key_id(approver_key.public_key()), "supersedes": _ref(supersedes),
                     "signature": ""},
    }
    statement = make_statement(subjects=[(name or d, d)], predicate=predicate, predicate_type=OVERRIDE_V1)
    statement["predicate"]["approval"]["signature"] = sign_bytes(approver_key, _override_message(statement))
    return statement


def append_override(
    led: Ledger,
    digest: str,
    *,
    reason: str,
    approver_key: Ed25519PrivateKey,
    actor: str | None = None,
    name: str | None = None,
) -> AppendResult:
    """Sign an override of the newest entry naming ``digest`` and append it (``trainguard approve``).

    If another entry about the digest lands between the lookup and the append, the override is recorded but not
    effective (the gate ignores it): ``decide`` after this call tells whether the gate now passes.
    """
    d = parse_digest(digest)
    earlier = led.find(d, verdicts=None)
    statement = make_override(d, reason=reason, approver_key=approver_key, supersedes=earlier[-1] if earlier else None,
                              actor=actor, name=name)
    return led.append(statement)


def _ref(record: LedgerRecord | None) -> dict[str, Any] | None:
    return None if record is None else {"index": record.index, "leaf_hash": record.leaf_hash}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def override_problem(record: LedgerRecord, approvers: TrustedKeys, previous: LedgerRecord | None) -> str | None:
    """Why an override record may not approve (None when it is valid, signed by a trusted approver, and overrides
    ``previous``: the entry before it among those naming its digest)."""
    approval = record.statement["predicate"].get("approval") or {}
    if record.statement.get("predicateType") != OVERRIDE_V1:
        return f"entry {record.index} is not an override"
    kid = str(approval.get("key_id", ""))
    if approval.get("digest") not in record.digests:
        return f"override entry {record.index} approves {approval.get('digest')}, not its subject"
    if "supersedes" not in approval:
        return f"override entry {record.index} does not name the entry it overrides (approve again)"
    if approval["supersedes"] != _ref(previous):
        signed = approval["supersedes"]
        what = "no earlier entry" if signed is None else f"entry {signed.get('index') if isinstance(signed, dict) else signed}"
        now = "none" if previous is None else f"entry {previous.index}"
        return (f"override entry {record.index} was signed over {what}, but the entry before it naming the digest "
                f"is {now} (a replayed or raced override; approve again)")
    if kid not in approvers:
        return f"override entry {record.index} is signed by approver key {kid[:12]}, which is not trusted"
    if not approvers.verify(kid, str(approval.get("signature", "")), _override_message(record.statement)):
        return f"override entry {record.index} has an invalid approver signature"
    return None


def require_approved(
    path: str | os.PathLike[str], *, ledger: Ledger | str | None = None, trusted_keys: TrustedSpec = None,
    seen: Mapping[str, Any] | None = None,
) -> LedgerRecord:
    """The approving record of ``path``'s exact bytes, or raise ``NotApprovedError`` / ``LedgerIntegrityError``.

    ``seen``: a checkpoint signed earlier (a previous answer's ``record.checkpoint``, or an export's
    checkpoint.json); the ledger must still extend it, so a database rolled back since then is refused."""
    if isinstance(ledger, Ledger) and trusted_keys is not None:  # fail closed: the keys would not be checked
        raise ProvenanceConfigError(
            "gate:trusted_keys_with_open_ledger",
            "trusted_keys are checked when the gate opens the ledger: pass its URL (or open the Ledger with "
            "open_ledger(url, trusted_keys=...)), not an open Ledger together with trusted_keys",
        )
    digest = path_digest(path)
    own = not isinstance(ledger, Ledger)
    led = open_ledger(ledger if isinstance(ledger, str) else None, trusted_keys=trusted_keys, create=False) if own \
        else ledger
    assert isinstance(led, Ledger)
    try:
        if seen is not None:
            led.require_contains(seen)
        return decide(led, digest, label=os.fspath(path))
    finally:
        if own:
            led.close()


def decide(led: Ledger, digest: str, *, label: str) -> LedgerRecord:
    """Apply the gate's rule to the proved records naming ``digest``."""
    d = parse_digest(digest)
    records = led.find(d, verdicts=None)
    if not records:
        raise NotApprovedError("gate:unknown", f"{label} ({d}) has no ledger entry; ingest it first")
    ignored: list[str] = []
    failed: LedgerRecord | None = None
    for pos in range(len(records) - 1, -1, -1):
        rec = records[pos]
        if rec.verdict == "approved":
            return rec
        if rec.verdict == "error":  # a failed attempt (a typo in --label-column, an unreachable ledger...) says
            failed = failed or rec  # nothing about the bytes: it neither approves nor revokes (found by review)
            continue
        if rec.verdict == "override":
            problem = override_problem(rec, led.approvers, records[pos - 1] if pos else None)
            if problem is None:
                return rec
            ignored.append(problem)
            continue
        reasons = rec.statement["predicate"].get("reasons") or []
        why = f" ({'; '.join(map(str, reasons[:3]))})" if reasons else ""
        if ignored:
            why += f"; ignored newer {ignored[0]}"
        code = "gate:untrusted_override" if ignored else "gate:rejected"
        raise NotApprovedError(code, f"{label} ({d}) was {rec.verdict} by ledger entry {rec.index}{why}")
    if ignored:
        raise NotApprovedError("gate:untrusted_override", f"{label} ({d}) is not approved: {ignored[0]}")
    error = (failed.statement["predicate"].get("error") or {}) if failed is not None else {}
    where = f", ledger entry {failed.index}" if failed is not None else ""
    raise NotApprovedError("gate:no_verdict", f"{label} ({d}) has no verdict: its ingest failed "
                           f"({error.get('code', 'unknown')}{where}); fix that and ingest it again")
