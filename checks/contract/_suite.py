"""Contract -> Great Expectations 1.x ExpectationSuite, and a quiet ephemeral GX context to run suites on (the way
back, suite -> contract, is ``_model.suite_to_contract``: this module does not import ``_model``).

Each built-in contract rule becomes one GX expectation whose ``meta["trainguard"]`` names its reason code:

| contract key | GX expectation | reason |
| --- | --- | --- |
| column set | ``expect_table_columns_to_match_set`` | ``schema:missing_column:<c>`` / ``schema:extra_column:<c>`` |
| ``type`` | ``expect_column_values_to_be_in_type_list`` | ``expect:type:<c>`` |
| ``nullable = false`` | ``expect_column_values_to_not_be_null`` | ``expect:not_null:<c>`` |
| ``min`` / ``max`` | ``expect_column_values_to_be_between`` | ``expect:in_range:<c>`` |
| ``allowed`` | ``expect_column_values_to_be_in_set`` | ``expect:in_set:<c>`` |
| ``classes`` of the label | ``expect_column_values_to_be_in_set`` | ``expect:label_class:<c>`` |
| ``unique`` | ``expect_column_values_to_be_unique`` | ``expect:unique:<c>`` |
| ``min_length`` / ``max_length`` | ``expect_column_value_lengths_to_be_between`` | ``expect:length:<c>`` |
| ``pattern`` | ``expect_column_values_to_match_regex`` | ``expect:pattern:<c>`` |
| ``[[expectations]]`` | the named expectation | ``expect:<name without expect_/column_values_to_>:<c>`` |
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from checks.errors import ChecksConfigError

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd


class ColumnRules(Protocol):
    """What the rules read of a column (``checks.contract.ColumnSpec``; this module does not import it, so that
    ``_model`` can build suites through it)."""

    @property
    def type(self) -> str: ...
    @property
    def nullable(self) -> bool: ...
    @property
    def min(self) -> Any: ...
    @property
    def max(self) -> Any: ...
    @property
    def allowed(self) -> Sequence[Any] | None: ...
    @property
    def unique(self) -> bool: ...
    @property
    def min_length(self) -> int | None: ...
    @property
    def max_length(self) -> int | None: ...
    @property
    def pattern(self) -> str | None: ...


class ContractRules(Protocol):
    """What the rules and the suite read of a contract (``checks.contract.Contract``)."""

    @property
    def columns(self) -> Mapping[str, ColumnRules]: ...
    @property
    def source(self) -> str | None: ...
    @property
    def label_column(self) -> str | None: ...
    @property
    def classes(self) -> Sequence[Any] | None: ...
    @property
    def allow_extra_columns(self) -> bool: ...
    @property
    def expectations(self) -> Sequence[dict[str, Any]]: ...
    @property
    def inferred(self) -> Mapping[str, Any]: ...

_TYPE_LISTS: dict[str, list[str]] = {
    "integer": ["int", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "Int64", "Int32",
                "float", "float32", "float64", "Float64"],
    "float": ["float", "float16", "float32", "float64", "Float64", "int", "int8", "int16", "int32", "int64", "Int64"],
    "boolean": ["bool", "boolean", "bool_"],
    "string": ["str", "string", "object", "StringDtype", "str_"],
    "datetime": ["datetime64", "datetime64[ns]", "datetime64[ns, UTC]", "Timestamp", "datetime"],
    # validation sees durations as float64 seconds (checks._frames); the source may hold timedelta64
    "duration": ["float", "float64", "Float64", "timedelta64", "timedelta64[ns]", "Timedelta", "timedelta"],
}
# ``object`` columns hold opaque values (nested lists, structs, maps): any type (GX type_list=None)
_BUILTIN = {
    "not_null": "expect_column_values_to_not_be_null",
    "in_range": "expect_column_values_to_be_between",
    "in_set": "expect_column_values_to_be_in_set",
    "label_class": "expect_column_values_to_be_in_set",
    "unique": "expect_column_values_to_be_unique",
    "length": "expect_column_value_lengths_to_be_between",
    "pattern": "expect_column_values_to_match_regex",
    "type": "expect_column_values_to_be_in_type_list",
}


@dataclass
class Rule:
    """One check of the contract: its kind, column, GX expectation type and kwargs, and its reason code."""

    kind: str
    column: str | None
    gx_type: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    row_level: bool = True

    @property
    def reason(self) -> str:
        return f"expect:{self.kind}:{self.column if self.column is not None else '*'}"


def builtin_rules(contract: ContractRules) -> list[Rule]:
    """The contract's built-in per-column rules (the type rule and the column set are handled before GX)."""
    rules: list[Rule] = []
    for name, spec in contract.columns.items():
        if not spec.nullable:
            rules.append(Rule("not_null", name, _BUILTIN["not_null"]))
        if spec.type == "object":
            continue  # opaque values: presence and not-null only
        if spec.type in ("integer", "float", "datetime", "duration") and (spec.min is not None or spec.max is not None):
            rules.append(Rule("in_range", name, _BUILTIN["in_range"], {"min_value": spec.min, "max_value": spec.max}))
        if name == contract.label_column and contract.classes is not None:
            rules.append(Rule("label_class", name, _BUILTIN["label_class"], {"value_set": list(contract.classes)}))
        elif spec.allowed is not None:
            rules.append(Rule("in_set", name, _BUILTIN["in_set"], {"value_set": list(spec.allowed)}))
        if spec.unique:
            rules.append(Rule("unique", name, _BUILTIN["unique"]))
        if spec.type == "string" and (spec.min_length is not None or spec.max_length is not None):
            rules.append(
                Rule("length", name, _BUILTIN["length"], {"min_value": spec.min_length, "max_value": spec.max_length})
            )
        if spec.type == "string" and spec.pattern is not None:
            rules.append(Rule("pattern", name, _BUILTIN["pattern"], {"regex": spec.pattern}))
    return rules


def _short(gx_type: str) -> str:
    for prefix in ("expect_column_values_to_", "expect_column_value_", "expect_column_", "expect_table_", "expect_"):
        if gx_type.startswith(prefix):
            return gx_type[len(prefix):]
    return gx_type


@lru_cache(maxsize=1)
def _registry() -> dict[str, type]:
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.expectations.expectation import Expectation

    out: dict[str, type] = {}
    for attr in dir(gx.expectations):
        obj = getattr(gx.expectations, attr)
        if isinstance(obj, type) and issubclass(obj, Expectation):
            etype = str(obj.__dict__.get("expectation_type") or getattr(obj, "expectation_type", None) or "")
            if etype:
                out[etype] = obj
                out[obj.__name__] = obj
    return out


def resolve_expectation(entry: dict[str, Any], *, path: str = "<contract>") -> tuple[type, dict[str, Any]]:
    """The GX class and kwargs of one ``[[expectations]]`` entry; ``ChecksConfigError`` when it cannot be built."""
    kwargs = {k: v for k, v in entry.items() if k != "type"}
    name = str(entry.get("type"))
    cls = _registry().get(name)
    if cls is None:
        raise ChecksConfigError(
            "config:contract_expectation", f"{path}: unknown Great Expectations expectation {name!r} in [[expectations]]"
        )
    try:
        cls(**kwargs)
    except Exception as exc:  # noqa: BLE001 - pydantic validation of user kwargs; reported as config error
        first = str(exc).splitlines()[0:3]
        raise ChecksConfigError(
            "config:contract_expectation", f"{path}: [[expectations]] {name} has bad arguments ({' '.join(first)})"
        ) from None
    return cls, kwargs


def user_rules(contract: ContractRules) -> list[Rule]:
    """One rule per ``[[expectations]]`` entry; row-level when GX evaluates it row by row (a map expectation)."""
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    rules = []
    for entry in contract.expectations:
        cls, kwargs = resolve_expectation(entry)
        column = kwargs.get("column") or kwargs.get("column_A")
        if column is None and kwargs.get("column_list"):
            column = "+".join(map(str, kwargs["column_list"]))
        row_level = issubclass(cls, ColumnMapExpectation | ColumnPairMapExpectation | MulticolumnMapExpectation)
        etype = str(getattr(cls, "expectation_type", entry["type"]))
        rules.append(Rule(_short(etype), column, etype, kwargs, row_level))
    return rules


def rule_columns(rule: Rule) -> list[str]:
    """Columns a rule reads."""
    kw = rule.kwargs
    if rule.kind in _BUILTIN:
        return [str(rule.column)]
    cols = [kw[k] for k in ("column", "column_A", "column_B") if k in kw]
    return [str(c) for c in cols + list(kw.get("column_list") or [])]


def to_gx(rule: Rule) -> Any:
    """The GX expectation object of a rule, tagged with its trainguard kind in ``meta``."""
    cls = _registry()[rule.gx_type]
    kwargs = dict(rule.kwargs)
    if rule.kind in _BUILTIN:
        kwargs["column"] = rule.column
        kwargs["meta"] = {"trainguard": rule.kind}
    return cls(**{k: v for k, v in kwargs.items() if v is not None})


def contract_to_suite(contract: ContractRules, *, name: str | None = None) -> gx.ExpectationSuite:
    """Build the GX 1.x suite of a contract (table column set, types, built-in rules, user expectations)."""
    _batch_definition()  # GX 1.x needs an active context before a suite can be built
    import great_expectations as gx

    exps: list[Any] = [
        gx.expectations.ExpectTableColumnsToMatchSet(
            column_set=list(contract.columns), exact_match=not contract.allow_extra_columns,
            meta={"trainguard": "columns"},
        )
    ]
    for col, spec in contract.columns.items():
        exps.append(
            gx.expectations.ExpectColumnValuesToBeInTypeList(
                column=col, type_list=_TYPE_LISTS.get(spec.type), meta={"trainguard": "type", "type": spec.type}
            )
        )
    exps += [to_gx(rule) for rule in builtin_rules(contract) + user_rules(contract)]
    # passed to the constructor, not add_expectation(): that one compares each new expectation with every
    # earlier one through pydantic .dict() (quadratic: minutes for a 1000-column contract)
    suite = gx.ExpectationSuite(
        name=name or contract.source or "trainguard_contract",
        expectations=exps,
        meta={"trainguard": {"source": contract.source, "inferred": dict(contract.inferred)}},
    )
    return suite


# -- running GX quietly ---------------------------------------------------------------------------------------
def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    for name in ("great_expectations", "great_expectations.core", "great_expectations.validator"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


@contextmanager
def _silenced() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@lru_cache(maxsize=1)
def _batch_definition() -> Any:
    """One ephemeral context per process with a pandas datasource and a whole-dataframe batch definition."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    with _silenced():
        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        asset = ctx.data_sources.add_pandas("trainguard").add_dataframe_asset("batch")
        return asset.add_batch_definition_whole_dataframe("whole")


GX_GROUP = 200  # expectations per GX validate call (and only their columns: keeps wide contracts linear)


def run_gx(frame: pd.DataFrame, rules: list[Rule]) -> list[tuple[Rule, dict[str, Any], str | None]]:
    """Validate ``frame`` (its index = source rows) with GX, result_format COMPLETE.

    Returns ``(rule, result dict, exception message or None)`` per rule. Rules go to GX in groups of
    ``GX_GROUP`` (one suite and one ``batch.validate`` each), which keeps wide contracts linear.
    """
    out: list[tuple[Rule, dict[str, Any], str | None]] = []
    for start in range(0, len(rules), GX_GROUP):
        group = rules[start:start + GX_GROUP]
        # only the columns this group reads: GX's cost per expectation grows with the frame's width
        cols = list(dict.fromkeys(c for r in group for c in rule_columns(r) if c in frame.columns))
        whole = any(not rule_columns(r) for r in group) or len(cols) == frame.shape[1]  # table-level rules
        out += _run_gx_group(frame if whole else frame[cols], group)
    return out


def _run_gx_group(frame: pd.DataFrame, rules: list[Rule]) -> list[tuple[Rule, dict[str, Any], str | None]]:
    if not rules:
        return []
    import great_expectations as gx

    bd = _batch_definition()
    with _silenced():
        exps = []
        for i, rule in enumerate(rules):
            exp = to_gx(rule)
            exp.meta = {**(exp.meta or {}), "trainguard_index": i}
            exps.append(exp)
        suite = gx.ExpectationSuite(name="trainguard_run", expectations=exps)  # linear, see contract_to_suite
        batch = bd.get_batch(batch_parameters={"dataframe": frame})
        res = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    out: list[tuple[Rule, dict[str, Any], str | None]] = []
    for r in res.results:
        rule = rules[int(r.expectation_config.meta["trainguard_index"])]
        info = r.exception_info or {}
        err = None
        if info.get("raised_exception"):
            err = str(info.get("exception_message") or "error").splitlines()[0]
        elif not r.success and not r.result:
            err = "failed without a result"
        out.append((rule, dict(r.result or {}) if r.success is False or err else {}, err))
    return out

