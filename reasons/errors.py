"""The error base every trainguard package shares: a reason code plus one user-facing sentence.

``TrainguardError(code, message)``: ``code`` is a code of ``reasons.catalogue`` (``data:empty_file``), ``message``
one sentence naming the file, column or row (``str(exc)``), ``exit_code`` comes from the class. The kinds below
decide the exit code, and the CLI and the tasks' retry decide by class, never by a module's name:

- ``ConfigError`` (exit 2): the user's config, contract, keys or command line is wrong (fix the config).
- ``InputError`` (exit 2): the data or file given cannot be used (fix the data).
- ``RefusedError`` (exit 1): not a crash: the policy or the gate refused.
- ``IntegrityError`` (exit 3): the ledger, a proof or a signature does not check out (fail closed).

Each package keeps its own base (``ChecksError``, ``PipelineError``, ``ProvenanceError``) and classes, which
subclass these, so ``except ChecksDataError`` and ``except TrainguardError`` both work.

With ``TRAINGUARD_STRICT_CODES=1`` in the environment (read once, at import; ``STRICT`` here), building an error
whose code the catalogue does not hold raises ``UnknownReasonCode``. Off by default: an uncatalogued code must not
turn a user's clear error into a crash; tests/test_reason_codes.py checks every raise site statically instead.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "TrainguardError",
    "ConfigError",
    "InputError",
    "RefusedError",
    "IntegrityError",
    "UnknownReasonCode",
    "STRICT",
]

#: Check every error's code against the catalogue when it is built (``TRAINGUARD_STRICT_CODES=1``).
STRICT: bool = os.environ.get("TRAINGUARD_STRICT_CODES", "") not in ("", "0")


class UnknownReasonCode(AssertionError):
    """An error was built with a code ``reasons.catalogue`` does not hold (raised only when ``STRICT``)."""


class TrainguardError(Exception):
    """Base of every trainguard error: ``code``, ``message`` (= ``str(exc)``) and the class's ``exit_code``."""

    exit_code: int = 2

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if STRICT:
            _require_catalogued(code)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's default rebuilds with cls(*args) = cls(message), which lacks the code (a pickled error
        # from a Dask worker would not unpickle): restore the attributes instead of calling __init__ again.
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class ConfigError(TrainguardError):
    """The config, the contract, the keys or the command line are wrong (fix the config): exit 2."""


class InputError(TrainguardError):
    """The data or the file given cannot be used as given (fix the data): exit 2."""


class RefusedError(TrainguardError):
    """Not a crash: the policy rejected the batch or the gate refused the bytes: exit 1."""

    exit_code = 1


class IntegrityError(TrainguardError):
    """Verification failed: the ledger, a proof or a signature does not check out (fail closed): exit 3."""

    exit_code = 3


def _restore(cls: type[TrainguardError], args: tuple[Any, ...], state: dict[str, Any]) -> TrainguardError:
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc


def _require_catalogued(code: str) -> None:
    from reasons.catalogue import lookup

    if lookup(code) is None:
        raise UnknownReasonCode(f"reason code {code!r} is not in reasons/catalogue.py: add an entry for it")
