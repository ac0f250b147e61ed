"""Errors raised by ``pipelines``: a reason code plus one user-facing sentence.

``PipelineConfigError``: the TOML config or the command line is wrong. ``PipelineInputError``: the dataset
cannot be ingested (missing, unreadable, malformed, a pickle offered as data, outside the allowed roots).
``BatchRejected`` is not a crash: the policy rejected the batch (exit 1). All subclass
``reasons.errors.TrainguardError``; codes are catalogued in ``reasons.catalogue``.
"""

from __future__ import annotations

from reasons.errors import ConfigError, InputError, RefusedError, TrainguardError

__all__ = ["PipelineError", "PipelineConfigError", "PipelineInputError", "BatchRejected"]


class PipelineError(TrainguardError):
    """Base error of ``pipelines`` (``code``, ``message``, ``exit_code`` 2: see ``reasons.errors``)."""


class PipelineConfigError(PipelineError, ConfigError):
    """The config file or the command line is wrong."""


class PipelineInputError(PipelineError, InputError):
    """The input dataset cannot be read as data."""


class BatchRejected(PipelineError, RefusedError):
    """The policy rejected the batch; the ledger has a ``rejected`` entry for it (exit 1)."""
