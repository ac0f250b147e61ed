"""The gate's rule, applied to a digest's proven history: refusals stick.

- No entry names the bytes: refused (``gate:unknown``).
- Once an entry ``rejected`` or ``quarantined`` the bytes, only a valid override after that refusal approves them
  again: signed by a trusted approver key, over the entry directly before it among the digest's entries
  (``provenance.overrides``). A later run's ``approved`` does not lift a refusal, whatever its source
  (``gate:refused_before``, naming the refusal and the override command).
- Otherwise the newest ``approved`` entry or valid override approves. ``error`` entries (failed attempts) say
  nothing about the bytes: they neither approve nor refuse; bytes with only those are ``gate:no_verdict``.

Example::

    >>> from provenance.ledger import open_ledger                                   # doctest: +SKIP
    >>> led = open_ledger(create=False)                                             # doctest: +SKIP
    >>> decide_history(led.history("sha256:" + "ab" * 32), led.approvers).approved  # doctest: +SKIP
    False
"""

from __future__ import annotations

from dataclasses import dataclass

from provenance.overrides import override_problem
from provenance.records import DigestHistory, LedgerRecord
from provenance.signing import TrustedKeys

__all__ = ["Decision", "decide_history", "REFUSALS"]

REFUSALS = frozenset({"rejected", "quarantined"})


@dataclass(frozen=True)
class Decision:
    """The gate's answer: ``code`` is ``gate:approved`` or the refusal's reason code; ``decisive`` the entry the
    answer rests on (None when no entry decides); ``refusal`` the newest refusing entry, if any."""

    approved: bool
    code: str
    message: str
    decisive: LedgerRecord | None
    refusal: LedgerRecord | None


def override_command(digest: str) -> str:
    return f'trainguard approve {digest} --reason "..." --approver-key APPROVER.key'


def decide_history(history: DigestHistory, approvers: TrustedKeys, *, label: str | None = None) -> Decision:
    """Apply the rule above to ``history`` (see the module docstring); ``label`` names the bytes in messages."""
    d = history.digest
    what = f"{label} ({d})" if label else d
    records = history.records
    if not records:
        return Decision(False, "gate:unknown", f"{what} has no ledger entry; ingest it first", None, None)
    refusal_pos = max((i for i, r in enumerate(records) if r.verdict in REFUSALS), default=-1)
    refusal = records[refusal_pos] if refusal_pos >= 0 else None
    ignored: list[str] = []
    later_approval: LedgerRecord | None = None
    failed: LedgerRecord | None = None
    for pos in range(len(records) - 1, refusal_pos, -1):
        rec = records[pos]
        if rec.verdict == "override":
            problem = override_problem(rec, approvers, records[pos - 1] if pos else None)
            if problem is None:
                return Decision(True, "gate:approved", f"{what} approved by override entry {rec.index}", rec, refusal)
            ignored.append(problem)
        elif rec.verdict == "approved":
            if refusal is None:
                return Decision(True, "gate:approved", f"{what} approved by ledger entry {rec.index}", rec, None)
            later_approval = later_approval or rec
        elif rec.verdict == "error":
            failed = failed or rec
    if refusal is not None:
        reasons = refusal.statement["predicate"].get("reasons") or []
        why = f" ({'; '.join(map(str, reasons[:3]))})" if reasons else ""
        source = f" of source {refusal.source}" if refusal.source else ""
        msg = f"{what} was {refusal.verdict} by ledger entry {refusal.index}{source}{why}"
        if ignored:
            return Decision(False, "gate:untrusted_override", f"{msg}; ignored newer {ignored[0]}", refusal, refusal)
        fix = f"; only a trusted approver releases these exact bytes: {override_command(d)}"
        if later_approval is not None:
            return Decision(False, "gate:refused_before", f"{msg}; the later approval in entry {later_approval.index}"
                            f" does not lift a refusal{fix}", refusal, refusal)
        return Decision(False, "gate:rejected", msg + fix, refusal, refusal)
    if ignored:
        return Decision(False, "gate:untrusted_override", f"{what} is not approved: {ignored[0]}", None, None)
    error = (failed.statement["predicate"].get("error") or {}) if failed is not None else {}
    where = f", ledger entry {failed.index}" if failed is not None else ""
    return Decision(False, "gate:no_verdict", f"{what} has no verdict: its ingest failed "
                    f"({error.get('code', 'unknown')}{where}); fix that and ingest it again", failed, None)
