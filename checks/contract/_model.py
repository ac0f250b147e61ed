"""The contract: per-column specs, the label column, user-added GX expectations; TOML in and out; digest."""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

from checks._frames import LOGICAL_TYPES
from checks.errors import ChecksConfigError

if TYPE_CHECKING:
    import great_expectations as gx

Scalar = str | int | float | bool

_COLUMN_KEYS = {"type", "nullable", "min", "max", "allowed", "unique", "min_length", "max_length", "pattern"}
_TOP_KEYS = {"source", "label_column", "classes", "allow_extra_columns", "columns", "expectations", "inferred"}


@dataclass
class ColumnSpec:
    """What one column must hold. ``None`` means "not checked"."""

    type: str = "string"
    nullable: bool = True
    min: float | int | datetime | None = None
    max: float | int | datetime | None = None
    allowed: list[Scalar] | None = None
    unique: bool = False
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None


@dataclass
class Contract:
    """A data contract for one source; edit it as TOML (see :meth:`to_toml`).

    >>> c = Contract(columns={"age": ColumnSpec(type="integer", nullable=False, min=0, max=120)})
    >>> Contract.from_toml(c.to_toml()) == c
    True
    """

    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    source: str | None = None
    label_column: str | None = None
    classes: list[Scalar] | None = None
    allow_extra_columns: bool = False
    expectations: list[dict[str, Any]] = field(default_factory=list)
    inferred: dict[str, Any] = field(default_factory=dict)

    # -- serialisation -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (the TOML document), ``None`` fields left out."""
        out: dict[str, Any] = {}
        for key in ("source", "label_column", "classes"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["allow_extra_columns"] = self.allow_extra_columns
        if self.inferred:
            out["inferred"] = dict(self.inferred)
        out["columns"] = {
            name: {k: v for k, v in asdict(spec).items() if v is not None and not (k == "unique" and v is False)}
            for name, spec in self.columns.items()
        }
        out["expectations"] = [dict(e) for e in self.expectations]
        return out

    def to_toml(self) -> str:
        """The human-editable TOML text: one ``[columns.<name>]`` table per column, ``[[expectations]]`` last."""
        d = self.to_dict()
        lines = [
            "# trainguard data contract. Edit freely: every column table may set type, nullable, min, max,",
            "# allowed, unique, min_length, max_length, pattern. Add any Great Expectations 1.x expectation as",
            '# [[expectations]] with type = "expect_..." (or its class name) and its keyword arguments.',
            "# Types: integer, float, boolean, string, datetime, duration (min/max in seconds), object (nested or",
            "# opaque values: only nullable is checked). Datetime columns get a wide sanity range only; narrow it if wanted.",
        ]
        for key in ("source", "label_column", "classes", "allow_extra_columns"):
            if key in d:
                lines.append(f"{key} = {_toml_value(d[key])}")
        if "inferred" in d:
            lines += ["", "[inferred]"] + [f"{_key(k)} = {_toml_value(v)}" for k, v in d["inferred"].items()]
        for name, spec in d["columns"].items():
            lines += ["", f"[columns.{_key(name)}]"] + [f"{k} = {_toml_value(v)}" for k, v in spec.items()]
        for exp in d["expectations"]:
            lines += ["", "[[expectations]]"] + [f"{_key(k)} = {_toml_value(v)}" for k, v in exp.items()]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str, *, path: str = "<contract>") -> Contract:
        """Parse and check a contract; raises ``ChecksConfigError`` naming the file and the key."""
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ChecksConfigError("config:contract_toml", f"{path}: not valid TOML ({exc})") from None
        return cls.from_dict(doc, path=path)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, path: str = "<contract>") -> Contract:
        unknown = set(doc) - _TOP_KEYS
        if unknown:
            raise ChecksConfigError("config:contract_key", f"{path}: unknown top-level key(s) {sorted(unknown)}")
        cols = doc.get("columns", {})
        if not isinstance(cols, dict):
            raise ChecksConfigError("config:contract_key", f"{path}: [columns] must be a table of column tables")
        columns = {str(name): _column_spec(name, spec, path) for name, spec in cols.items()}
        exps = doc.get("expectations", [])
        if not isinstance(exps, list) or not all(isinstance(e, dict) and "type" in e for e in exps):
            raise ChecksConfigError(
                "config:contract_expectation", f"{path}: each [[expectations]] entry needs a type = \"expect_...\""
            )
        contract = cls(
            columns=columns,
            source=doc.get("source"),
            label_column=doc.get("label_column"),
            classes=doc.get("classes"),
            allow_extra_columns=bool(doc.get("allow_extra_columns", False)),
            expectations=[dict(e) for e in exps],
            inferred=dict(doc.get("inferred", {})),
        )
        from checks.contract._suite import resolve_expectation

        for e in contract.expectations:
            cls_, _ = resolve_expectation(e, path=path)
            e["type"] = str(getattr(cls_, "expectation_type", e["type"]))  # canonical snake_case name
        return contract

    @classmethod
    def from_file(cls, path: str) -> Contract:
        """Read a contract TOML file."""
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ChecksConfigError("config:contract_unreadable", f"{path}: cannot read the contract ({exc})") from None
        return cls.from_toml(text, path=path)

    def to_file(self, path: str) -> None:
        """Write the TOML text to ``path`` (UTF-8, atomically)."""
        import os

        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(self.to_toml())
        os.replace(tmp, path)

    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical JSON of the contract (independent of TOML formatting)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def to_expectation_suite(self, name: str | None = None) -> gx.ExpectationSuite:
        """The same contract as a Great Expectations 1.x ``ExpectationSuite`` (see ``checks.contract._suite``)."""
        from checks.contract._suite import contract_to_suite

        return contract_to_suite(self, name=name)

    @classmethod
    def from_expectation_suite(cls, suite: gx.ExpectationSuite) -> Contract:
        """Inverse of :meth:`to_expectation_suite` (expectations it does not know become ``[[expectations]]``)."""
        return suite_to_contract(suite)


def suite_to_contract(suite: gx.ExpectationSuite) -> Contract:
    """Rebuild the contract from a suite made by :func:`contract_to_suite` (others become ``[[expectations]]``)."""
    info = (suite.meta or {}).get("trainguard", {})
    contract = Contract(source=info.get("source"), inferred=dict(info.get("inferred") or {}))
    specs: dict[str, ColumnSpec] = {}
    for exp in suite.expectations:
        cfg = exp.configuration
        kw = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id", "result_format", "catch_exceptions")}
        tag = (cfg.meta or {}).get("trainguard")
        col = kw.get("column")
        spec = specs.setdefault(str(col), ColumnSpec()) if tag not in (None, "columns") else None
        if tag == "columns":
            contract.allow_extra_columns = not kw.get("exact_match", True)
            for c in kw["column_set"]:
                specs.setdefault(c, ColumnSpec())
        elif spec is not None and tag == "type":
            spec.type = cfg.meta["type"]
        elif spec is not None and tag == "not_null":
            spec.nullable = False
        elif spec is not None and tag == "in_range":
            spec.min, spec.max = kw.get("min_value"), kw.get("max_value")
        elif spec is not None and tag == "in_set":
            spec.allowed = list(kw["value_set"])
        elif spec is not None and tag == "label_class":
            contract.label_column, contract.classes = col, list(kw["value_set"])
        elif spec is not None and tag == "unique":
            spec.unique = True
        elif spec is not None and tag == "length":
            spec.min_length, spec.max_length = kw.get("min_value"), kw.get("max_value")
        elif spec is not None and tag == "pattern":
            spec.pattern = kw["regex"]
        else:
            contract.expectations.append({"type": cfg.type, **{k: v for k, v in kw.items() if v is not None}})
    contract.columns = specs
    return contract


def _column_spec(name: object, spec: object, path: str) -> ColumnSpec:
    if not isinstance(spec, dict):
        raise ChecksConfigError("config:contract_key", f"{path}: [columns.{name}] must be a table")
    unknown = set(spec) - _COLUMN_KEYS
    if unknown:
        raise ChecksConfigError("config:contract_key", f"{path}: column {name!r} has unknown key(s) {sorted(unknown)}")
    ctype = spec.get("type", "string")
    if ctype not in LOGICAL_TYPES:
        raise ChecksConfigError(
            "config:contract_type", f"{path}: column {name!r} has type {ctype!r}; use one of {', '.join(LOGICAL_TYPES)}"
        )
    if ctype == "object":
        value_keys = sorted(set(spec) & (_COLUMN_KEYS - {"type", "nullable"}))
        if value_keys and any(spec[k] not in (None, False) for k in value_keys):
            raise ChecksConfigError(
                "config:contract_key",
                f"{path}: column {name!r} has type \"object\" (opaque values): only nullable may be set, not {value_keys}",
            )
    lo, hi = _bound(spec.get("min"), ctype), _bound(spec.get("max"), ctype)
    for key, v in (("min", lo), ("max", hi)):
        if ctype == "datetime" and v is not None and not isinstance(v, datetime):
            raise ChecksConfigError("config:contract_range", f"{path}: column {name!r} {key} must be a TOML date-time")
        if ctype != "datetime" and v is not None and (
            isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v)
        ):
            raise ChecksConfigError("config:contract_range", f"{path}: column {name!r} {key} must be a number")
    if lo is not None and hi is not None and lo > hi:
        raise ChecksConfigError("config:contract_range", f"{path}: column {name!r} has min {lo} > max {hi}")
    allowed = spec.get("allowed")
    if allowed is not None and not isinstance(allowed, list):
        raise ChecksConfigError("config:contract_key", f"{path}: column {name!r} allowed must be a list")
    pattern = spec.get("pattern")
    if pattern is not None:
        import re

        try:
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise ChecksConfigError("config:contract_pattern", f"{path}: column {name!r} pattern is invalid ({exc})") from None
    return ColumnSpec(
        type=ctype,
        nullable=bool(spec.get("nullable", True)),
        min=lo,
        max=hi,
        allowed=allowed,
        unique=bool(spec.get("unique", False)),
        min_length=spec.get("min_length"),
        max_length=spec.get("max_length"),
        pattern=pattern,
    )


def _bound(v: Any, ctype: str) -> Any:
    """Datetime bounds are UTC-aware (a TOML local date-time or date is read as UTC)."""
    if ctype != "datetime" or v is None:
        return v
    if isinstance(v, datetime):
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    if isinstance(v, date):
        return datetime.combine(v, time(0), tzinfo=UTC)
    return v


def _str(text: str) -> str:
    """A TOML basic string (JSON escaping, plus DEL which TOML also forbids raw)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _key(name: str) -> str:
    return _str(str(name))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        r = repr(v)
        return r if any(ch in r for ch in ".en") else r + ".0"
    if isinstance(v, str):
        return _str(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if v is None:
        raise ChecksConfigError("config:contract_value", "TOML has no null: leave the key out instead of None")
    return _str(str(v))
