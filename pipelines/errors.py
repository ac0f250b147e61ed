"""Errors raised by ``pipelines``: a reason code plus one user-facing sentence.

``PipelineConfigError``: the TOML config or the command line is wrong. ``PipelineInputError``: the dataset
cannot be ingested (missing, unreadable, malformed, a pickle offered as data, outside the allowed roots).
``BatchRejected`` is not a crash: the policy rejected the batch (exit 1).
"""

from __future__ import annotations

__all__ = ["PipelineError", "PipelineConfigError", "PipelineInputError", "BatchRejected"]


class PipelineError(Exception):
    """Base error of ``pipelines``."""

    exit_code: int = 2

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class PipelineConfigError(PipelineError):
    """The config file or the command line is wrong."""


class PipelineInputError(PipelineError):
    """The input dataset cannot be read as data."""


class BatchRejected(PipelineError):
    """The policy rejected the batch; the ledger has a ``rejected`` entry for it."""

    exit_code = 1
