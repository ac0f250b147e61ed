"""The TOML config of an ingestion: policy thresholds, allowed roots, scoring knobs and scheduled sources.

Every key is optional; ``load_config(None)`` gives the defaults. Parsing is strict (pydantic v2 models in strict mode
that forbid extra keys): an unknown key, a value of the wrong type (a boolean is not a number, a string is not a
list) or out of range is ``config:unknown_key`` / ``config:bad_value`` (exit 2), one line naming the file, the table
and key, what was expected and what was found (``pipelines._config_errors`` words pydantic's errors so). Relative
local paths are taken from the working directory, as on the command line (``allowed_roots`` is stored resolved).
Example::

    >>> from pipelines.config import load_config
    >>> load_config(None).policy.max_quarantined_share
    0.3
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs

from pipelines._config_errors import file_error, python_error
from pipelines.errors import PipelineConfigError

__all__ = ["Config", "Policy", "SourceConfig", "load_config", "parse_config"]

# strict: no coercion (a boolean is not a number, "false" is not a boolean); python-re: a pattern matches as
# ``re.match`` does, as SOURCE_NAME does where pipelines/state.py uses it
_STRICT = ConfigDict(strict=True, extra="forbid", regex_engine="python-re")

# a contract failure kind: the reason code without its column (``expect:not_null``, ``schema:type``)
_KIND = re.compile(r"^(schema|expect):[A-Za-z0-9_]+$")
_KIND_TEXT = 'an array of failure kinds such as ["expect:not_null", "schema:type"] (schema:* or expect:*, no column)'
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # a source names a directory of its state
_SEED_MAX = 2**32 - 1  # numpy's RandomState takes seeds in [0, 2**32 - 1]
_FP_BUDGET_MAX = 0.5  # checks.scoring.RowScorer refuses a budget of 0.5 or more (after the batch was read)
_ABSENT: Any = None  # a file table's key left out: the dataclass default applies (see _config)


def _as_tuple(value: object) -> object:
    """An array as a tuple; anything else (a string too: ``"a"`` is not ``["a"]``) is left to the strict check."""
    return tuple(value) if isinstance(value, list) else value


def _cron(expr: str | None) -> str | None:
    """A schedule must be a cron expression Prefect accepts (five fields, e.g. ``"0 * * * *"``)."""
    if expr is not None:
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=expr)
        except (ValidationError, TypeError, ValueError):
            raise ValueError("not a cron expression") from None
    return expr


# --- value types: each description is what a wrong value is told it must be -----------------------------------
_Flag = Annotated[bool, Field(description="true or false")]
_Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, description="a number in [0, 1]")]
_FpBudget = Annotated[float, Field(gt=0, lt=_FP_BUDGET_MAX, allow_inf_nan=False,
                                   description=f"a number in (0, {_FP_BUDGET_MAX:g})")]
_Seed = Annotated[int, Field(ge=0, le=_SEED_MAX, description=f"an integer in [0, {_SEED_MAX}]")]
_Count = Annotated[int, Field(ge=0, description="an integer >= 0")]
_Positive = Annotated[int, Field(ge=1, description="an integer >= 1")]
_Str = Annotated[str, Field(description="a string")]
_Text = Annotated[str, Field(min_length=1, description="a non-empty string")]
_OptText = Annotated[str | None, Field(min_length=1, description="a non-empty string")]
_Texts = Annotated[tuple[Annotated[str, Field(min_length=1)], ...], BeforeValidator(_as_tuple),
                   Field(description="an array of non-empty strings")]
_Kinds = Annotated[tuple[Annotated[str, Field(pattern=_KIND.pattern)], ...], BeforeValidator(_as_tuple),
                   Field(description=_KIND_TEXT)]
_Cron = Annotated[str | None, AfterValidator(_cron), Field(description='a cron expression such as "0 * * * *"')]
_SourceName = Annotated[str, Field(pattern=SOURCE_NAME.pattern)]


# --- the config ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, config=_STRICT)
class _Checked:
    """Validated when built in Python too: a wrong value is ``config:bad_value`` naming the class and field."""

    @model_validator(mode="wrap")
    @classmethod
    def _one_line(cls, values: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(values)
        except ValidationError as exc:
            if not isinstance(values, ArgsKwargs):  # not a call of the class: the caller's validator names it
                raise
            fields = cls.__pydantic_fields__  # type: ignore[attr-defined]  # set by pydantic on each dataclass
            raise python_error(cls.__name__, fields, values, exc) from None


@dataclass(frozen=True, config=_STRICT)
class Policy(_Checked):
    """When rows are quarantined and when a whole batch is rejected (values are checked: ``config:bad_value``)."""

    quarantine_flagged: _Flag = True
    max_quarantined_share: _Share = 0.30
    max_drift_share: _Share = 0.50
    # contract failure kinds that reject the batch outright: the reason code without its column
    # (``schema:missing_column``, ``expect:in_range``...); batch-level failures always reject (a list works too)
    reject_on_contract: _Kinds = ("schema:missing_column", "schema:extra_column", "schema:type",
                                  "schema:duplicate_column")
    min_rows: _Count = 1
    # release rows quarantined only for their label with the label the trusted view is confident of, instead
    # of dropping them (pipelines/_relabel.py); the ledger entry records every change
    relabel: _Flag = False


@dataclass(frozen=True, config=_STRICT)
class SourceConfig(_Checked):
    """A source that ``trainguard serve`` ingests on a schedule."""

    name: _Str  # not checked against SOURCE_NAME here: Config.source() takes any --source (state.py refuses it)
    path: _Str = ""
    label_column: _OptText = None
    source_column: _OptText = None
    schedule: _Cron = None  # cron
    landing_dir: _OptText = None
    poll_seconds: _Positive = 60
    out: _OptText = None


@dataclass(frozen=True, config=_STRICT)
class Config(_Checked):
    """Everything an ingestion run reads from the config file."""

    ledger: _OptText = None
    state_dir: _OptText = None
    out_root: _Text = "out"
    allowed_roots: _Texts = ()  # local roots absolute (relative ones taken from the working directory)
    chunk_mb: _Positive = 128  # files larger than this are read as a stream of blocks of this size
    partition_rows: _Positive = 250_000  # rows per scoring partition (and per row group of the staged batch)
    fp_budget: _FpBudget = 0.01
    random_state: _Seed = 0
    anchor: _Flag = True  # clean a rolling reference against the source's first approved data (pipelines/_anchor.py)
    policy: Policy = Field(default_factory=Policy, description="a Policy")
    sources: dict[str, SourceConfig] = Field(default_factory=dict, description="a dict of SourceConfig by name")
    path: str | None = Field(default=None, description="a string or None")  # where it was loaded from

    def digest(self) -> str:
        """``sha256:`` of the canonical JSON of the settings that change decisions (not of the file path)."""
        doc = asdict(self)
        doc.pop("path", None)
        doc.pop("sources", None)
        blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=list).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()

    def source(self, name: str) -> SourceConfig:
        """The configured source ``name``, or an unscheduled default."""
        return self.sources.get(name) or SourceConfig(name=name)


# --- the file's tables: only the keys given are set; the dataclasses above hold the defaults -------------------
class _Table(BaseModel):
    model_config = _STRICT


class _Scoring(_Table):
    fp_budget: _FpBudget = _ABSENT
    random_state: _Seed = _ABSENT
    anchor: _Flag = _ABSENT


class _Source(_Table):
    schedule: _Cron = _ABSENT  # first: a bad schedule is the error reported before the other keys'
    path: _Text = _ABSENT
    label_column: _Text = _ABSENT
    source_column: _Text = _ABSENT
    landing_dir: _Text = _ABSENT
    poll_seconds: _Positive = _ABSENT
    out: _Text = _ABSENT


# [policy] has Policy's keys and types: a model with Policy's fields, since a strict pydantic dataclass takes only
# an instance of itself, never a table
_POLICY_FIELDS: dict[str, Any] = {name: (info.annotation, info)
                                  for name, info in Policy.__pydantic_fields__.items()}  # type: ignore[attr-defined]
_PolicyTable = create_model("_PolicyTable", __base__=_Table, **_POLICY_FIELDS)


class _File(_Table):
    # in the order the tables are checked and reported
    policy: _PolicyTable = Field(default_factory=_PolicyTable, description="a table")  # type: ignore[valid-type]  # create_model
    scoring: _Scoring = Field(default_factory=_Scoring, description="a table")
    sources: dict[_SourceName, _Source] = Field(default_factory=dict, description="a table")
    allowed_roots: _Texts = _ABSENT
    ledger: _Text = _ABSENT
    state_dir: _Text = _ABSENT
    out_root: _Text = _ABSENT
    chunk_mb: _Positive = _ABSENT
    partition_rows: _Positive = _ABSENT


class _Wrapped(_Table):
    """A pyproject-style file: everything under [trainguard] (a table beside it would be ignored: refused)."""

    trainguard: _File


_TABLES: dict[str, type[BaseModel]] = {"": _File, "policy": _PolicyTable, "scoring": _Scoring, "sources": _Source}


def _resolve_root(root: str) -> str:
    """A relative local root taken from the working directory (as every other relative path is); URLs as they are."""
    scheme = urlparse(root).scheme
    if len(scheme) > 1 or os.path.isabs(root):  # an fsspec or file:// URL, or an absolute path
        return root
    return os.path.join(os.getcwd(), root)


def _plain(value: object) -> object:
    """Mappings as dicts, which strict models take as tables."""
    return {k: _plain(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def _config(file: _File, origin: str) -> Config:
    top = file.model_dump(exclude_unset=True, exclude={"policy", "scoring", "sources"})
    if "allowed_roots" in top:
        top["allowed_roots"] = tuple(_resolve_root(r) for r in top["allowed_roots"])
    return Config(
        **top,
        **file.scoring.model_dump(exclude_unset=True),
        policy=Policy(**file.policy.model_dump(exclude_unset=True)),  # type: ignore[attr-defined]  # see _File
        sources={name: SourceConfig(name=name, **table.model_dump(exclude_unset=True))
                 for name, table in file.sources.items()},
        path=None if origin == "<config>" else origin,
    )


def parse_config(doc: Mapping[str, Any], *, origin: str = "<config>") -> Config:
    """Validate a parsed TOML document (fail closed on unknown keys, wrong types and out-of-range values)."""
    plain = {key: _plain(value) for key, value in doc.items()}
    wrapped = "trainguard" in doc  # everything under [trainguard]
    try:
        file = _Wrapped.model_validate(plain).trainguard if wrapped else _File.model_validate(plain)
    except ValidationError as exc:
        raise file_error(exc, plain, origin=origin, wrapped=wrapped, tables=_TABLES) from None
    return _config(file, origin)


def load_config(path: str | Path | None) -> Config:
    """Read a TOML config file; ``None`` gives the defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineConfigError("config:missing", f"config file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineConfigError("config:unreadable", f"config file {p} cannot be read: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PipelineConfigError("config:bad_toml", f"config file {p} is not valid TOML: {exc}") from None
    return parse_config(doc, origin=str(p))
