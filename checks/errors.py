"""Errors raised by ``checks``: a reason code plus one user-facing sentence.

``ChecksConfigError`` means the user's contract or config is wrong; ``ChecksDataError`` means the data is bad.
Both map to exit code 2 in the CLI. Every error carries ``code`` (a stable reason code such as
``data:empty_file``, catalogued in ``reasons.catalogue``), ``message`` (one sentence naming the file, column or
row) and ``exit_code``; all subclass ``reasons.errors.TrainguardError``.
"""

from __future__ import annotations

from reasons.errors import ConfigError, InputError, TrainguardError

__all__ = ["ChecksError", "ChecksConfigError", "ChecksDataError"]


class ChecksError(TrainguardError):
    """Base error of ``checks`` (``code``, ``message``, ``exit_code`` 2: see ``reasons.errors``)."""


class ChecksConfigError(ChecksError, ConfigError):
    """The contract, the detector parameters or the config are wrong (fix the config)."""


class ChecksDataError(ChecksError, InputError):
    """The data cannot be checked as given (fix the data): empty, unreadable, wrong encoding..."""


# Reason codes raised by checks.contract / checks.drift / checks._frames (failure rows use expect:/schema: codes).
CONTRACT_ERROR_CODES: tuple[str, ...] = (
    "data:not_found", "data:empty_file", "data:encoding", "data:unreadable", "data:empty_reference",
    "data:duplicate_column", "data:profile_unreadable", "data:profile_digest",
    "config:contract_toml", "config:contract_key", "config:contract_type", "config:contract_range",
    "config:contract_pattern", "config:contract_expectation", "config:contract_unreadable", "config:contract_value",
    "config:tolerance", "config:quantiles", "config:label_column", "config:engine", "config:chunk_rows",
    "config:profile", "config:drift_thresholds",
)
