"""Errors raised by ``provenance``: a reason code plus one user-facing sentence.

Exit codes follow docs/design.md: 1 refused (not approved, rejected), 2 bad input or config, 3 ledger integrity failure.
``LedgerIntegrityError`` says what was expected and what was found, and which entry is bad. All subclass
``reasons.errors.TrainguardError``; codes are catalogued in ``reasons.catalogue``.
"""

from __future__ import annotations

from reasons.errors import ConfigError, InputError, IntegrityError, RefusedError, TrainguardError

__all__ = [
    "ProvenanceError",
    "ProvenanceConfigError",
    "ProvenanceInputError",
    "NotApprovedError",
    "LedgerIntegrityError",
]


class ProvenanceError(TrainguardError):
    """Base error of ``provenance`` (``code``, ``message``, ``exit_code`` 2: see ``reasons.errors``)."""


class ProvenanceConfigError(ProvenanceError, ConfigError):
    """Ledger URL, keys or trusted-keys file are wrong (fix the config)."""


class ProvenanceInputError(ProvenanceError, InputError):
    """The file or digest given cannot be used (missing file, malformed digest)."""


class NotApprovedError(ProvenanceError, RefusedError):
    """The gate refuses: no approving, verifiable entry names these bytes (exit 1)."""


class LedgerIntegrityError(ProvenanceError, IntegrityError):
    """Verification failed: the ledger, a proof or a signature does not check out (fail closed; exit 3)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        index: int | None = None,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        detail = message
        if index is not None:
            detail = f"entry {index}: {detail}"
        if expected is not None or found is not None:
            detail = f"{detail} (expected {expected}, found {found})"
        super().__init__(code, detail)
        self.index = index
        self.expected = expected
        self.found = found
