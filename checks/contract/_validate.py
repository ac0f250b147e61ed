"""Validate a batch against a contract, chunk by chunk, into one failures table.

Which path runs what (``engine``):

- always ours, before GX: the column set (missing / extra / duplicate columns), the type of each column
  (``expect:type:<c>`` per row whose value cannot be read as the contract type; ``schema:type:<c>`` for the
  whole column when its dtype cannot hold the type), and ``unique`` (needs every chunk; same rule as GX's
  ``~duplicated(keep=False)`` on the non-null values),
- ``engine="gx"``: every other built-in rule and every row-level ``[[expectations]]`` entry run through Great
  Expectations on each chunk (ephemeral context, pandas datasource, whole-dataframe batch, COMPLETE results;
  the chunk's index is the source row, so ``unexpected_index_list`` gives source rows),
- ``engine="auto"`` (default): the built-in rules run vectorised (``_fast``, proven equal to GX by tests), the
  ``[[expectations]]`` entries still run through GX on each chunk,
- both: ``[[expectations]]`` entries that are not row-level (column aggregates such as a mean) run once through
  GX after the last chunk, on the columns they read, collected from every chunk.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from checks._frames import coerce_column
from checks.contract._fast import FAST_KINDS, failing_mask
from checks.contract._model import Contract
from checks.contract._suite import Rule, builtin_rules, rule_columns, run_gx, user_rules
from checks.errors import ChecksConfigError

FAILURE_COLUMNS = ["check", "column", "row", "value", "reason"]
_ENGINES = ("auto", "gx")


@dataclass
class ValidationResult:
    """Failures of one batch: ``failures`` has exactly the columns ``check, column, row, value, reason``."""

    failures: pd.DataFrame
    rows: int
    engine: str

    @property
    def batch_failures(self) -> pd.DataFrame:
        """Failures about the whole batch (``row`` is ``<NA>``)."""
        return self.failures[self.failures["row"].isna()]

    @property
    def success(self) -> bool:
        """True when nothing failed."""
        return len(self.failures) == 0

    def row_reasons(self) -> dict[int, list[str]]:
        """Row -> sorted distinct ``expect:...`` reason codes, for the row scores."""
        rows = self.failures[self.failures["row"].notna()]
        out: dict[int, list[str]] = {}
        for row, reason in zip(rows["row"].to_numpy(dtype="int64"), rows["reason"].to_numpy(dtype=object), strict=True):
            out.setdefault(int(row), []).append(str(reason))
        return {r: sorted(set(v)) for r, v in out.items()}


def _fmt(v: Any) -> str | None:
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, float | np.floating):
        f = float(v)
        return None if math.isnan(f) else repr(f)
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, str):
        return v
    return repr(v)


@dataclass
class _Parts:
    check: list[np.ndarray] = field(default_factory=list)
    column: list[np.ndarray] = field(default_factory=list)
    row: list[np.ndarray] = field(default_factory=list)
    value: list[list[str | None]] = field(default_factory=list)
    reason: list[np.ndarray] = field(default_factory=list)
    batch_seen: set[tuple[str, str | None, str]] = field(default_factory=set)

    def add_rows(
        self, check: str, column: str | None, reason: str, rows: np.ndarray, values: Iterable[Any],
        skip: np.ndarray | None = None,
    ) -> None:
        if skip is not None and len(skip):
            keep = ~np.isin(rows, skip)
            rows, values = np.asarray(rows)[keep], np.asarray(list(values), dtype=object)[keep]
        n = len(rows)
        if n == 0:
            return
        self.check.append(np.full(n, check, dtype=object))
        self.column.append(np.full(n, column, dtype=object))
        self.row.append(np.asarray(rows, dtype="int64"))
        self.value.append([_fmt(v) for v in values])
        self.reason.append(np.full(n, reason, dtype=object))

    def add_batch(self, check: str, column: str | None, reason: str, value: Any) -> None:
        key = (check, column, reason)
        if key in self.batch_seen:
            return
        self.batch_seen.add(key)
        self.check.append(np.array([check], dtype=object))
        self.column.append(np.array([column], dtype=object))
        self.row.append(np.array([-1], dtype="int64"))
        self.value.append([_fmt(value)])
        self.reason.append(np.array([reason], dtype=object))

    def frame(self) -> pd.DataFrame:
        if not self.row:
            return pd.DataFrame({
                "check": pd.Series([], dtype="string"), "column": pd.Series([], dtype="string"),
                "row": pd.Series([], dtype="Int64"), "value": pd.Series([], dtype="string"),
                "reason": pd.Series([], dtype="string"),
            })
        rows = np.concatenate(self.row)
        df = pd.DataFrame({
            "check": pd.array(np.concatenate(self.check), dtype="string"),
            "column": pd.array(np.concatenate(self.column), dtype="string"),
            "row": pd.array(np.where(rows < 0, 0, rows), dtype="Int64"),
            "value": pd.array([v for part in self.value for v in part], dtype="string"),
            "reason": pd.array(np.concatenate(self.reason), dtype="string"),
        })
        df.loc[rows < 0, "row"] = pd.NA
        order = np.lexsort((df["check"].to_numpy(dtype=object, na_value=""),
                            df["reason"].to_numpy(dtype=object, na_value=""), rows))
        return df.iloc[order].reset_index(drop=True)


class _Validator:
    def __init__(self, contract: Contract, engine: str) -> None:
        if engine not in _ENGINES:
            raise ChecksConfigError("config:engine", f"engine must be one of {_ENGINES}, got {engine!r}")
        self.contract, self.engine = contract, engine
        self.parts = _Parts()
        self.rules = [r for r in builtin_rules(contract) if r.kind != "unique"]
        self.unique_cols = [c for c, s in contract.columns.items() if s.unique and s.type != "object"]
        urules = user_rules(contract)
        self.user_row = [r for r in urules if r.row_level]
        self.user_agg = [r for r in urules if not r.row_level]
        self.unique_vals: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {c: [] for c in self.unique_cols}
        self.agg_cols: dict[str, list[pd.Series]] = {c: [] for r in self.user_agg for c in rule_columns(r)}
        self.rows = 0
        self.bad_rows: dict[str, np.ndarray] = {}

    def chunk(self, offset: int, chunk: pd.DataFrame) -> None:
        n = len(chunk)
        names = [str(c) for c in chunk.columns]
        index = pd.RangeIndex(offset, offset + n)
        self.rows = max(self.rows, offset + n)
        first: dict[str, int] = {}
        for pos, name in enumerate(names):
            if name in first:
                self.parts.add_batch("schema", name, f"schema:duplicate_column:{name}", "duplicate column name")
            else:
                first[name] = pos
        for name in self.contract.columns:
            if name not in first:
                self.parts.add_batch("expect_table_columns_to_match_set", name, f"schema:missing_column:{name}", None)
        if not self.contract.allow_extra_columns:
            for name in first:
                if name not in self.contract.columns:
                    self.parts.add_batch("expect_table_columns_to_match_set", name, f"schema:extra_column:{name}", None)
        if n == 0:
            return
        cols: dict[str, pd.Series] = {}
        self.bad_rows = {}
        for name, spec in self.contract.columns.items():
            if name not in first:
                continue
            raw = chunk.iloc[:, first[name]]
            co = coerce_column(raw, spec.type)
            if co.wrong_dtype:
                self.parts.add_batch(
                    "expect_column_values_to_be_in_type_list", name, f"schema:type:{name}",
                    f"dtype {raw.dtype} cannot hold {spec.type}",
                )
                continue
            if co.bad.any():
                bad = np.flatnonzero(co.bad)
                self.bad_rows[name] = bad + offset
                self.parts.add_rows(
                    "expect_column_values_to_be_in_type_list", name, f"expect:type:{name}", bad + offset,
                    raw.iloc[bad].to_numpy(dtype=object),
                )
            cols[name] = co.values.set_axis(index)
        for name, at in first.items():
            if name not in cols and name not in self.contract.columns:
                cols[name] = chunk.iloc[:, at].set_axis(index)
        frame = pd.DataFrame(cols, index=index, copy=False)
        ready = [r for r in self.rules if r.column in cols]
        fast = [r for r in ready if self.engine == "auto" and r.kind in FAST_KINDS]
        for rule in fast:
            hits = np.flatnonzero(failing_mask(rule, frame[rule.column]))
            self.parts.add_rows(rule.gx_type, rule.column, rule.reason, hits + offset,
                                frame[rule.column].to_numpy(dtype=object)[hits], self._skip(rule))
        fast_ids = {id(r) for r in fast}
        via_gx = [r for r in ready if id(r) not in fast_ids]  # by identity: linear in the number of rules
        for rule in self.user_row:
            missing = [c for c in rule_columns(rule) if c not in cols]
            if missing:
                self.parts.add_batch(rule.gx_type, rule.column, f"expect:error:{rule.column}",
                                     f"column(s) {missing} absent from the batch")
            else:
                via_gx.append(rule)
        if via_gx and n:
            self._gx(frame, via_gx)
        for name in self.unique_cols:
            if name in cols:
                v = cols[name]
                keep = np.asarray(v.notna(), dtype=bool)
                arr = v.to_numpy(dtype=object)[keep] if v.dtype == object else v.to_numpy()[keep]
                self.unique_vals[name].append((arr, np.flatnonzero(keep) + offset))
        for name in self.agg_cols:
            if name in cols:
                self.agg_cols[name].append(cols[name])

    def _skip(self, rule: Rule) -> np.ndarray | None:
        """A value of the wrong type became missing: report it once (``expect:type``), not also as null."""
        return self.bad_rows.get(str(rule.column)) if rule.kind == "not_null" else None

    def _gx(self, frame: pd.DataFrame, rules: list[Rule], *, rows: bool = True) -> None:
        for rule, result, err in run_gx(frame, rules):
            if err is not None:
                self.parts.add_batch(rule.gx_type, rule.column, f"expect:error:{rule.column}", err)
                continue
            if not result:
                continue
            idx = result.get("unexpected_index_list")
            if rows and rule.row_level and idx is not None:
                self.parts.add_rows(rule.gx_type, rule.column, rule.reason, np.asarray(idx, dtype="int64"),
                                    result.get("unexpected_list") or [None] * len(idx), self._skip(rule))
            else:
                self.parts.add_batch(rule.gx_type, rule.column, rule.reason, result.get("observed_value"))

    def finish(self) -> ValidationResult:
        if self.rows == 0:
            self.parts.add_batch("schema", None, "schema:empty_batch", "the batch has no rows")
        for name, parts in self.unique_vals.items():
            if not parts:
                continue
            vals = np.concatenate([p[0] for p in parts]) if parts else np.array([])
            rows = np.concatenate([p[1] for p in parts])
            dup = np.asarray(pd.Series(vals, dtype=object if vals.dtype == object else None).duplicated(keep=False))
            self.parts.add_rows("expect_column_values_to_be_unique", name, f"expect:unique:{name}", rows[dup], vals[dup])
        if self.user_agg and self.rows:
            ready = [r for r in self.user_agg if all(self.agg_cols.get(c) for c in rule_columns(r))]
            for r in self.user_agg:
                if r not in ready:
                    self.parts.add_batch(r.gx_type, r.column, f"expect:error:{r.column}", "column absent from the batch")
            if ready:
                data = {c: pd.concat(v) for c, v in self.agg_cols.items() if v}
                # table-level rules (row counts...) read no column: give GX the batch's length
                whole = pd.DataFrame(data) if data else pd.DataFrame(index=pd.RangeIndex(self.rows))
                self._gx(whole, ready, rows=False)
        return ValidationResult(self.parts.frame(), self.rows, self.engine)


def validate(
    batch: pd.DataFrame, contract: Contract, *, engine: str = "auto", chunk_rows: int = 100_000
) -> ValidationResult:
    """Validate a batch (row i of the frame = source row i) against a contract.

    >>> import pandas as pd
    >>> from checks.contract import infer_contract
    >>> c = infer_contract(pd.DataFrame({"age": list(range(20, 60))}))
    >>> validate(pd.DataFrame({"age": [30, 500]}), c).row_reasons()
    {1: ['expect:in_range:age']}
    """
    if chunk_rows < 1:
        raise ChecksConfigError("config:chunk_rows", f"chunk_rows must be >= 1, got {chunk_rows}")
    return validate_chunks(
        ((start, batch.iloc[start:start + chunk_rows]) for start in range(0, len(batch), chunk_rows)),
        contract, engine=engine, columns=batch,
    )


def validate_chunks(
    chunks: Iterable[tuple[int, pd.DataFrame]], contract: Contract, *, engine: str = "auto",
    columns: pd.DataFrame | None = None,
) -> ValidationResult:
    """Validate a batch given as ``(offset, chunk)`` pairs (offset = source row of the chunk's first row).

    Memory is bounded by one chunk plus the values of ``unique`` columns and of columns read by aggregate
    ``[[expectations]]``.
    """
    v = _Validator(contract, engine)
    seen = False
    for offset, chunk in chunks:
        seen = True
        v.chunk(int(offset), chunk)
    if not seen and columns is not None:
        v.chunk(0, columns.iloc[0:0])
    return v.finish()
