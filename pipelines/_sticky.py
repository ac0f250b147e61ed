"""Refusals stick across runs: a run over bytes the ledger refused before cannot release them or data made from them.

At the digest stage the flow asks the ledger (through the verifiable index, as the gate does) whether the input's
exact bytes were rejected or quarantined before with no trusted override since, and says so at once. If the run's
own decision would then approve, it is recorded as ``rejected`` (reason ``ledger:refused_before``, the refusing
entry in ``checks.refused_before``), and no clean.parquet is published, unless its clean.parquet is byte for byte
one the ledger already approved (the same run again). Only ``trainguard approve`` by a trusted approver releases
refused bytes.

Example::

    >>> prior_refusal("sqlite:///.trainguard/ledger.db", "sha256:" + "ab" * 32)   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pipelines.policy import Decision

__all__ = ["PriorRefusal", "prior_refusal", "already_approved", "refuse_again"]


@dataclass(frozen=True)
class PriorRefusal:
    """The entry that refused the input's bytes, and the gate's words for it."""

    index: int
    verdict: str
    source: str | None
    message: str

    def warning(self, digest: str) -> str:
        from provenance.decision import override_command

        src = f" of source {self.source!r}" if self.source else ""
        return (f"these bytes ({digest}) were {self.verdict} by ledger entry {self.index}{src}: this run records "
                "its verdict, but an approval will not release them or data made from them; only a trusted "
                f"approver can: {override_command(digest)}")


def _judge(ledger_url: str, digest: str) -> Any:
    from provenance.decision import decide_history
    from provenance.errors import LedgerIntegrityError, ProvenanceConfigError
    from provenance.ledger import open_ledger

    try:
        led = open_ledger(ledger_url, create=False)
    except ProvenanceConfigError as exc:
        if exc.code == "ledger:not_found":  # a first run: nothing was refused
            return None
        raise
    with led:
        if not led.size():
            return None
        try:
            history = led.history(digest)
        except LedgerIntegrityError as exc:
            if exc.code != "ledger:no_index":
                raise
            led.upgrade()  # a ledger made before the index: this run appends anyway, so it upgrades it first
            history = led.history(digest)
        return decide_history(history, led.approvers)


def prior_refusal(ledger_url: str, digest: str) -> PriorRefusal | None:
    """The refusal of ``digest`` that still stands (no trusted override after it), or None."""
    decision = _judge(ledger_url, digest)
    if decision is None or decision.approved or decision.refusal is None:
        return None
    ref = decision.refusal
    return PriorRefusal(ref.index, ref.verdict, ref.source, decision.message)


def already_approved(ledger_url: str, digest: str) -> bool:
    """Whether the gate passes ``digest`` now."""
    decision = _judge(ledger_url, digest)
    return bool(decision is not None and decision.approved)


def refuse_again(decision: Decision, prior: PriorRefusal) -> Decision:
    """``decision`` (an approval) turned into the rejection that a standing refusal makes it."""
    src = f", source {prior.source}" if prior.source else ""
    reason = f"ledger:refused_before entry {prior.index} ({prior.verdict}{src})"
    checks: dict[str, dict[str, object]] = {**decision.checks, "refused_before": {"passed": False, "entry": prior.index, "verdict": prior.verdict,
                                                    "source": prior.source, "would_be": decision.verdict}}
    return replace(decision, verdict="rejected", reasons=[reason, *decision.reasons], checks=checks)
