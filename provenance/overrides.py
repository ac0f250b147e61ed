"""Overrides: a person's signed approval of exact bytes, the only thing that releases bytes a run refused.

``trainguard approve`` appends an ``override`` entry whose ``predicate.approval`` holds the approver's ``key_id``
and an Ed25519 signature over the statement without ``predicate.previous`` and without that signature. The approver
also signs ``approval.supersedes``: the index and leaf hash of the newest entry naming the digest when it was signed
(null when none). The gate honours an override only directly after that entry among the digest's entries and only
for a trusted approver key, so a signed override copied to the end of the ledger after a later refusal approves
nothing.

Example::

    >>> from provenance.signing import generate_private_key
    >>> st = make_override("sha256:" + "ab" * 32, reason="owner reviewed", approver_key=generate_private_key(),
    ...                    supersedes=None, actor="alice")
    >>> st["predicate"]["verdict"]
    'override'
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provenance.entries import OVERRIDE_V1, make_statement
from provenance.hashing import canonical_json, parse_digest
from provenance.ledger import AppendResult, Ledger, LedgerRecord
from provenance.signing import TrustedKeys, key_id, sign_bytes

__all__ = ["make_override", "append_override", "override_problem"]


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
