"""The TOML config of an ingestion: policy thresholds, allowed roots, scoring knobs and scheduled sources.

Every key is optional; ``load_config(None)`` gives the defaults. Example::

    >>> from pipelines.config import load_config
    >>> load_config(None).policy.max_quarantined_share
    0.3
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import PipelineConfigError

__all__ = ["Config", "Policy", "SourceConfig", "load_config", "parse_config"]


@dataclass(frozen=True)
class Policy:
    """When rows are quarantined and when a whole batch is rejected."""

    quarantine_flagged: bool = True
    max_quarantined_share: float = 0.30
    max_drift_share: float = 0.50
    # contract failure kinds that reject the batch outright: the reason code without its column
    # (``schema:missing_column``, ``expect:in_range``...); batch-level failures always reject
    reject_on_contract: tuple[str, ...] = ("schema:missing_column", "schema:extra_column", "schema:type",
                                           "schema:duplicate_column")
    min_rows: int = 1


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
    allowed_roots: tuple[str, ...] = ()
    chunk_mb: int = 128  # files larger than this are read as a stream of blocks of this size
    partition_rows: int = 250_000  # rows per scoring partition (and per row group of the staged batch)
    fp_budget: float = 0.01
    random_state: int = 0
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
_POLICY = {"quarantine_flagged", "max_quarantined_share", "max_drift_share", "reject_on_contract", "min_rows"}
_SCORING = {"fp_budget", "random_state"}
_SOURCE = {"path", "label_column", "source_column", "schedule", "landing_dir", "poll_seconds", "out"}


def _check_keys(where: str, table: dict[str, Any], allowed: set[str], origin: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise PipelineConfigError(
            "config:unknown_key",
            f"{origin}: unknown key(s) {', '.join(unknown)} in [{where}]; allowed: {', '.join(sorted(allowed))}",
        )


def _share(value: Any, key: str, origin: str) -> float:
    if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise PipelineConfigError("config:bad_value", f"{origin}: [policy] {key} must be a number in [0, 1]")
    return float(value)


def _check_cron(expr: object, where: str) -> None:
    """A schedule must be a cron expression Prefect accepts (five fields, e.g. ``"0 * * * *"``)."""
    if expr is None:
        return
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        if not isinstance(expr, str):
            raise TypeError(expr)
        CronSchedule(cron=expr)
    except (ValidationError, TypeError, ValueError):
        raise PipelineConfigError("config:bad_value",
                                  f"{where} must be a cron expression such as \"0 * * * *\", not {expr!r}") from None


def _positive_int(value: Any, key: str, origin: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PipelineConfigError("config:bad_value", f"{origin}: {key} must be a positive integer")
    return value


def parse_config(doc: dict[str, Any], *, origin: str = "<config>") -> Config:
    """Validate a parsed TOML document (fail closed on unknown keys and bad values)."""
    root = doc.get("trainguard", doc)
    _check_keys("trainguard", root, _TOP, origin)
    pol = root.get("policy", {})
    _check_keys("policy", pol, _POLICY, origin)
    policy = Policy(
        quarantine_flagged=bool(pol.get("quarantine_flagged", True)),
        max_quarantined_share=_share(pol.get("max_quarantined_share", 0.30), "max_quarantined_share", origin),
        max_drift_share=_share(pol.get("max_drift_share", 0.50), "max_drift_share", origin),
        reject_on_contract=tuple(str(k) for k in pol.get("reject_on_contract", Policy.reject_on_contract)),
        min_rows=int(pol.get("min_rows", 1)),
    )
    sc = root.get("scoring", {})
    _check_keys("scoring", sc, _SCORING, origin)
    fp = sc.get("fp_budget", 0.01)
    if not isinstance(fp, int | float) or not 0.0 < float(fp) < 1.0:
        raise PipelineConfigError("config:bad_value", f"{origin}: [scoring] fp_budget must be in (0, 1)")
    sources: dict[str, SourceConfig] = {}
    for name, table in root.get("sources", {}).items():
        if not isinstance(table, dict):
            raise PipelineConfigError("config:bad_value", f"{origin}: [sources.{name}] must be a table")
        _check_keys(f"sources.{name}", table, _SOURCE, origin)
        _check_cron(table.get("schedule"), f"{origin}: [sources.{name}] schedule")
        sources[name] = SourceConfig(
            name=name,
            path=str(table.get("path", "")),
            label_column=table.get("label_column"),
            source_column=table.get("source_column"),
            schedule=table.get("schedule"),
            landing_dir=table.get("landing_dir"),
            poll_seconds=_positive_int(table.get("poll_seconds", 60), f"[sources.{name}] poll_seconds", origin),
            out=table.get("out"),
        )
    roots = root.get("allowed_roots", [])
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise PipelineConfigError("config:bad_value", f"{origin}: allowed_roots must be a list of strings")
    return Config(
        ledger=root.get("ledger"),
        state_dir=root.get("state_dir"),
        out_root=str(root.get("out_root", "out")),
        allowed_roots=tuple(roots),
        chunk_mb=_positive_int(root.get("chunk_mb", 128), "chunk_mb", origin),
        partition_rows=_positive_int(root.get("partition_rows", 250_000), "partition_rows", origin),
        fp_budget=float(fp),
        random_state=int(sc.get("random_state", 0)),
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
