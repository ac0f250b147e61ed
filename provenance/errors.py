"""Errors raised by ``provenance``: a reason code plus one user-facing sentence.

Exit codes follow docs/design.md: 1 refused (not approved, rejected), 2 bad input or config, 3 ledger integrity failure.
``LedgerIntegrityError`` says what was expected and what was found, and which entry is bad.
"""

from __future__ import annotations

__all__ = [
    "ProvenanceError",
    "ProvenanceConfigError",
    "ProvenanceInputError",
    "NotApprovedError",
    "LedgerIntegrityError",
]


class ProvenanceError(Exception):
    """Base error of ``provenance``."""

    exit_code: int = 2

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class ProvenanceConfigError(ProvenanceError):
    """Ledger URL, keys or trusted-keys file are wrong (fix the config)."""


class ProvenanceInputError(ProvenanceError):
    """The file or digest given cannot be used (missing file, malformed digest)."""


class NotApprovedError(ProvenanceError):
    """The gate refuses: no approving, verifiable entry names these bytes."""

    exit_code = 1


class LedgerIntegrityError(ProvenanceError):
    """Verification failed: the ledger, a proof or a signature does not check out (fail closed)."""

    exit_code = 3

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
