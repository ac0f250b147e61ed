"""The gate: training starts only on bytes that carry an approving, provable ledger entry.

``require_approved`` hashes the file (or directory) and asks the ledger for the digest's history: the signed
index proves the complete list of entries naming the digest (or that none does), each entry is inclusion-proved
against the same checkpoint, and the checkpoint's signature is checked against the trusted keys. It trusts no row
of the database: a proof that does not verify is exit 3. The rule (``provenance.decision``): refusals stick; only a
trusted approver's override after the newest refusal releases refused bytes; otherwise the newest ``approved`` entry
or valid override approves. The gate also remembers the newest checkpoint it verified (``provenance.witness``) and
refuses a ledger that no longer extends it, so a database rolled back to an older state is caught. It starts no
Prefect and no server.

Example::

    >>> require_approved("outputs/clean.parquet", ledger="sqlite:///.trainguard/ledger.db")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal, overload

from provenance.config import TrustedSpec
from provenance.decision import Decision, decide_history
from provenance.errors import NotApprovedError, ProvenanceConfigError
from provenance.hashing import parse_digest, path_digest
from provenance.ledger import Ledger, LedgerRecord, open_ledger
from provenance.overrides import append_override, make_override, override_problem

__all__ = ["require_approved", "decide", "judge", "make_override", "append_override", "override_problem"]


def require_approved(
    path: str | os.PathLike[str], *, ledger: Ledger | str | None = None, trusted_keys: TrustedSpec = None,
    seen: Mapping[str, Any] | None = None,
) -> LedgerRecord:
    """The approving record of ``path``'s exact bytes, or raise ``NotApprovedError`` / ``LedgerIntegrityError``.

    ``seen``: a checkpoint signed earlier (a previous answer's ``record.checkpoint``, or an export's
    checkpoint.json); the ledger must still extend it, as it must extend the one the witness remembers."""
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
        return decide(led, digest, label=os.fspath(path), seen=seen)
    finally:
        if own:
            led.close()


@overload
def judge(led: Ledger, digest: str, *, label: str, seen: Mapping[str, Any] | None = ...,
          with_proof: Literal[False] = ...) -> Decision: ...
@overload
def judge(led: Ledger, digest: str, *, label: str, seen: Mapping[str, Any] | None = ...,
          with_proof: Literal[True]) -> tuple[Decision, dict[str, Any] | None]: ...
def judge(led: Ledger, digest: str, *, label: str, seen: Mapping[str, Any] | None = None,
          with_proof: bool = False) -> Decision | tuple[Decision, dict[str, Any] | None]:
    """The gate's decision on ``digest`` with its proofs checked; raises only ``LedgerIntegrityError`` (and
    configuration errors). The ledger must extend ``seen`` and the witness's checkpoint; the witness then
    remembers the checkpoint the answer was proven against. ``with_proof`` also returns the proof document the
    answer rests on (None when no entry names the digest)."""
    history = led.history(parse_digest(digest), extends=[seen] if seen is not None else [], use_witness=True)
    decision = decide_history(history, led.approvers, label=label)
    if not with_proof:
        return decision
    if not history.records or history.checkpoint is None:
        return decision, None
    return decision, history.proof(decision.decisive, note=led.note(int(history.checkpoint["tree_size"])))


def decide(led: Ledger, digest: str, *, label: str, seen: Mapping[str, Any] | None = None) -> LedgerRecord:
    """The approving record of ``digest``, or ``NotApprovedError`` with the rule's reason code."""
    decision = judge(led, digest, label=label, seen=seen)
    if not decision.approved:
        raise NotApprovedError(decision.code, decision.message)
    assert decision.decisive is not None
    return decision.decisive
