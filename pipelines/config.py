"""The TOML config of an ingestion: policy thresholds, allowed roots, scoring knobs and scheduled sources.

Every key is optional; ``load_config(None)`` gives the defaults. Parsing is strict: an unknown key, a value of the
wrong type (a boolean is not a number, a string is not a list) or out of range is ``config:unknown_key`` /
``config:bad_value`` (exit 2), one line naming the file, the table and key, what was expected and what was found.
Relative local paths are taken from the working directory, as on the command line (``allowed_roots`` is stored
resolved). Example::

    >>> from pipelines.config import load_config
    >>> load_config(None).policy.max_quarantined_share
    0.3
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from pipelines.errors import PipelineConfigError

__all__ = ["Config", "Policy", "SourceConfig", "load_config", "parse_config"]

_T = TypeVar("_T")

# a contract failure kind: the reason code without its column (``expect:not_null``, ``schema:type``)
_KIND = re.compile(r"^(schema|expect):[A-Za-z0-9_]+$")
_KIND_TEXT = 'an array of failure kinds such as ["expect:not_null", "schema:type"] (schema:* or expect:*, no column)'


# --- typed values --------------------------------------------------------------------------------------------
def _found(value: object) -> str:
    """What a config value is, in TOML's words, for an error message (one line, shortened)."""
    def short(text: str) -> str:
        return text if len(text) <= 60 else text[:57] + "..."

    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the float {value}"
    if isinstance(value, str):
        return f"the string {short(json.dumps(value, ensure_ascii=False))}"
    if isinstance(value, list | tuple):
        return f"an array {short(json.dumps(list(value), default=str, ensure_ascii=False))}"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, dt.date | dt.time):
        return f"the date/time {value.isoformat()}"
    return f"a {type(value).__name__}"


SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # a source names a directory of its state


def _bad(place: str, expected: str, value: object) -> PipelineConfigError:
    return PipelineConfigError("config:bad_value", f"{place} must be {expected}, not {_found(value)}")


def _bool(value: object, place: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(place, "true or false", value)
    return value


def _int(value: object, place: str, *, low: int, high: int | None = None) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high):
        return value
    raise _bad(place, f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]", value)


def _fraction(value: object, place: str, *, open_interval: bool = False, high: float = 1.0) -> float:
    """A number in [0, ``high``] (or, ``open_interval``, in (0, ``high``)); booleans, nan and inf are not numbers."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        number = float(value)
        if (0.0 < number < high) if open_interval else (0.0 <= number <= high):
            return number
    raise _bad(place, f"a number in (0, {high:g})" if open_interval else f"a number in [0, {high:g}]", value)


def _text(value: object, place: str) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(place, "a non-empty string", value)
    return value


def _texts(value: object, place: str, *, expected: str = "an array of non-empty strings",
           each: Callable[[str], bool] = bool) -> tuple[str, ...]:
    """An array of strings (a single string is refused: ``"a"`` is not ``["a"]``)."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and each(v) for v in value):
        raise _bad(place, expected, value)
    return tuple(value)


def _kinds(value: object, place: str) -> tuple[str, ...]:
    return _texts(value, place, expected=_KIND_TEXT, each=lambda v: bool(_KIND.match(v)))


def _check_policy(policy: Policy, where: str) -> None:
    """Type and range of every field of a ``Policy`` built in Python (``parse_config`` checks a file's values
    first, naming the file and table)."""
    _bool(policy.quarantine_flagged, f"{where} quarantine_flagged")
    for name in ("max_quarantined_share", "max_drift_share"):
        _fraction(getattr(policy, name), f"{where} {name}")
    _kinds(policy.reject_on_contract, f"{where} reject_on_contract")
    _int(policy.min_rows, f"{where} min_rows", low=0)
    _bool(policy.relabel, f"{where} relabel")


# --- the config ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    """When rows are quarantined and when a whole batch is rejected (values are checked: ``config:bad_value``)."""

    quarantine_flagged: bool = True
    max_quarantined_share: float = 0.30
    max_drift_share: float = 0.50
    # contract failure kinds that reject the batch outright: the reason code without its column
    # (``schema:missing_column``, ``expect:in_range``...); batch-level failures always reject
    reject_on_contract: tuple[str, ...] = ("schema:missing_column", "schema:extra_column", "schema:type",
                                           "schema:duplicate_column")
    min_rows: int = 1
    # release rows quarantined only for their label with the label the trusted view is confident of, instead
    # of dropping them (pipelines/_relabel.py); the ledger entry records every change
    relabel: bool = False

    def __post_init__(self) -> None:
        _check_policy(self, "Policy")
        object.__setattr__(self, "reject_on_contract", tuple(self.reject_on_contract))  # a list works too


@dataclass(frozen=True)
class SourceConfig:
    """A source that ``trainguard serve`` ingests on a schedule."""

    name: str
    path: str = ""
    label_column: str | None = None
    source_column: str | None = None
    schedule: str | None = None  # cron
    landing_dir: str | None = None
    poll_seconds: int = 60
    out: str | None = None


@dataclass(frozen=True)
class Config:
    """Everything an ingestion run reads from the config file."""

    ledger: str | None = None
    state_dir: str | None = None
    out_root: str = "out"
    allowed_roots: tuple[str, ...] = ()  # local roots absolute (relative ones taken from the working directory)
    chunk_mb: int = 128  # files larger than this are read as a stream of blocks of this size
    partition_rows: int = 250_000  # rows per scoring partition (and per row group of the staged batch)
    fp_budget: float = 0.01
    random_state: int = 0
    anchor: bool = True  # clean a rolling reference against the source's first approved data (pipelines/_anchor.py)
    policy: Policy = field(default_factory=Policy)
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    path: str | None = None  # where it was loaded from

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


_TOP = {"ledger", "state_dir", "out_root", "allowed_roots", "chunk_mb", "partition_rows", "policy",
        "scoring", "sources"}
_POLICY = {"quarantine_flagged", "max_quarantined_share", "max_drift_share", "reject_on_contract", "min_rows",
           "relabel"}
_SCORING = {"fp_budget", "random_state", "anchor"}
_SOURCE = {"path", "label_column", "source_column", "schedule", "landing_dir", "poll_seconds", "out"}
_SEED_MAX = 2**32 - 1  # numpy's RandomState takes seeds in [0, 2**32 - 1]
_FP_BUDGET_MAX = 0.5  # checks.scoring.RowScorer refuses a budget of 0.5 or more (after the batch was read)


def _check_keys(where: str, table: Mapping[str, Any], allowed: set[str], origin: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise PipelineConfigError(
            "config:unknown_key",
            f"{origin}: unknown key(s) {', '.join(unknown)} in [{where}]; allowed: {', '.join(sorted(allowed))}",
        )


def _table(value: object, place: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(place, "a table", value)
    return value


def _check_cron(expr: object, where: str) -> None:
    """A schedule must be a cron expression Prefect accepts (five fields, e.g. ``"0 * * * *"``)."""
    if expr is None:
        return
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    if not isinstance(expr, str):
        raise _bad(where, 'a cron expression such as "0 * * * *"', expr)
    try:
        CronSchedule(cron=expr)
    except (ValidationError, TypeError, ValueError):
        raise _bad(where, 'a cron expression such as "0 * * * *"', expr) from None


def _opt(table: Mapping[str, Any], key: str, read: Callable[[object, str], _T], place: str) -> _T | None:
    """``read(value, place)`` of ``table[key]``, or None when the key is absent."""
    return read(table[key], place) if key in table else None


def _resolve_root(root: str) -> str:
    """A relative local root taken from the working directory (as every other relative path is); URLs as they are."""
    scheme = urlparse(root).scheme
    if len(scheme) > 1 or os.path.isabs(root):  # an fsspec or file:// URL, or an absolute path
        return root
    return os.path.join(os.getcwd(), root)


def parse_config(doc: Mapping[str, Any], *, origin: str = "<config>") -> Config:
    """Validate a parsed TOML document (fail closed on unknown keys, wrong types and out-of-range values)."""
    if "trainguard" in doc:  # everything under [trainguard]: a table beside it would be ignored, so refuse it
        _check_keys("top level", doc, {"trainguard"}, origin)
        root = _table(doc["trainguard"], f"{origin}: [trainguard]")
        top = f"{origin}: [trainguard]"
        prefix = "trainguard."
    else:
        root, top, prefix = doc, f"{origin}:", ""
    _check_keys(prefix.rstrip(".") or "top level", root, _TOP, origin)

    def at(table: str | None, key: str) -> str:
        return f"{top} {key}" if table is None else f"{origin}: [{prefix}{table}] {key}"

    pol = _table(root.get("policy", {}), at(None, "policy"))
    _check_keys(f"{prefix}policy", pol, _POLICY, origin)
    defaults = Policy()
    policy = Policy(
        quarantine_flagged=_bool(pol.get("quarantine_flagged", defaults.quarantine_flagged),
                                 at("policy", "quarantine_flagged")),
        max_quarantined_share=_fraction(pol.get("max_quarantined_share", defaults.max_quarantined_share),
                                        at("policy", "max_quarantined_share")),
        max_drift_share=_fraction(pol.get("max_drift_share", defaults.max_drift_share),
                                  at("policy", "max_drift_share")),
        reject_on_contract=_kinds(pol.get("reject_on_contract", defaults.reject_on_contract),
                                  at("policy", "reject_on_contract")),
        min_rows=_int(pol.get("min_rows", defaults.min_rows), at("policy", "min_rows"), low=0),
        relabel=_bool(pol.get("relabel", defaults.relabel), at("policy", "relabel")),
    )
    sc = _table(root.get("scoring", {}), at(None, "scoring"))
    _check_keys(f"{prefix}scoring", sc, _SCORING, origin)
    fp_budget = _fraction(sc.get("fp_budget", 0.01), at("scoring", "fp_budget"), open_interval=True,
                          high=_FP_BUDGET_MAX)
    random_state = _int(sc.get("random_state", 0), at("scoring", "random_state"), low=0, high=_SEED_MAX)
    anchor = sc.get("anchor", True)
    _bool(anchor, at("scoring", "anchor"))
    sources: dict[str, SourceConfig] = {}
    for name, value in _table(root.get("sources", {}), at(None, "sources")).items():
        where = f"sources.{name}"
        if not SOURCE_NAME.match(name):
            raise _bad(f"{origin}: [{prefix}sources] table name", "letters, digits, '.', '_' or '-' starting with "
                       "a letter or digit (at most 128)", name)
        table = _table(value, f"{origin}: [{prefix}{where}]")
        _check_keys(f"{prefix}{where}", table, _SOURCE, origin)
        _check_cron(table.get("schedule"), at(where, "schedule"))
        sources[name] = SourceConfig(
            name=name,
            path=_opt(table, "path", _text, at(where, "path")) or "",
            label_column=_opt(table, "label_column", _text, at(where, "label_column")),
            source_column=_opt(table, "source_column", _text, at(where, "source_column")),
            schedule=table.get("schedule"),
            landing_dir=_opt(table, "landing_dir", _text, at(where, "landing_dir")),
            poll_seconds=_int(table.get("poll_seconds", 60), at(where, "poll_seconds"), low=1),
            out=_opt(table, "out", _text, at(where, "out")),
        )
    roots = _texts(root.get("allowed_roots", []), at(None, "allowed_roots"))
    return Config(
        ledger=_opt(root, "ledger", _text, at(None, "ledger")),
        state_dir=_opt(root, "state_dir", _text, at(None, "state_dir")),
        out_root=_opt(root, "out_root", _text, at(None, "out_root")) or "out",
        allowed_roots=tuple(_resolve_root(r) for r in roots),
        chunk_mb=_int(root.get("chunk_mb", 128), at(None, "chunk_mb"), low=1),
        partition_rows=_int(root.get("partition_rows", 250_000), at(None, "partition_rows"), low=1),
        fp_budget=fp_budget,
        random_state=random_state,
        anchor=anchor,
        policy=policy,
        sources=sources,
        path=None if origin == "<config>" else origin,
    )


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
