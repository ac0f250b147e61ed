"""Property tests: the TOML round-trip, validate never raises, failures are exactly the violating rows."""

from __future__ import annotations

import math
import re
from datetime import UTC

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks.contract import FAILURE_COLUMNS, ColumnSpec, Contract, infer_contract, validate

_names = st.text(min_size=1, max_size=12)
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_scalar = st.one_of(st.text(max_size=8), st.integers(-10**6, 10**6), _finite, st.booleans())


@st.composite
def _specs(draw: st.DrawFn) -> ColumnSpec:
    ctype = draw(st.sampled_from(["integer", "float", "boolean", "string", "datetime"]))
    bound = st.datetimes(timezones=st.just(UTC)) if ctype == "datetime" else _finite
    lo = draw(st.none() | bound)
    hi = draw(st.none() | bound)
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    return ColumnSpec(
        type=ctype,
        nullable=draw(st.booleans()), min=lo, max=hi,
        allowed=draw(st.none() | st.lists(_scalar, max_size=5)), unique=draw(st.booleans()),
        min_length=draw(st.none() | st.integers(0, 5)), max_length=draw(st.none() | st.integers(5, 50)),
        pattern=draw(st.none() | st.sampled_from([r"^\d+$", r"^[a-z]+@x\.org$", "a|b"])),
    )


@settings(max_examples=60, deadline=None)
@given(
    columns=st.dictionaries(_names, _specs(), max_size=4),
    source=st.none() | _names,
    extra=st.booleans(),
    exps=st.lists(st.fixed_dictionaries({"type": st.just("expect_column_values_to_match_regex"),
                                         "column": _names, "regex": st.sampled_from(["a", r"^\w+$"])}), max_size=2),
)
def test_toml_round_trip(columns: dict[str, ColumnSpec], source: str | None, extra: bool, exps: list) -> None:
    c = Contract(columns=columns, source=source, allow_extra_columns=extra, expectations=exps)
    back = Contract.from_toml(c.to_toml())
    assert back == c and back.digest() == c.digest()


_cell = st.one_of(
    st.none(), st.integers(-10**12, 10**12), st.floats(), st.text(max_size=6), st.binary(max_size=4),
    st.booleans(), st.just(""), st.just(float("inf")),
)
_REF = pd.DataFrame({
    "n": np.arange(40, dtype="float64") / 4, "i": np.arange(40), "s": ["a", "b", "c", "d"] * 10,
    "t": [f"id{i}" for i in range(40)], "b": [True, False] * 20,
})
_CONTRACT = infer_contract(_REF)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cols=st.lists(st.sampled_from(["n", "i", "s", "t", "b", "zz", 0]), max_size=7),
    rows=st.integers(0, 6),
    data=st.data(),
)
def test_validate_never_raises(cols: list, rows: int, data: st.DataObject) -> None:
    frame = pd.DataFrame([[data.draw(_cell) for _ in cols] for _ in range(rows)], columns=cols)
    dtype = data.draw(st.sampled_from([None, "string", "str", "arrow"]))
    if dtype is not None:  # the same cells as pandas-3 / nullable / Arrow-backed columns, when they convert
        for pos in range(frame.shape[1]):
            col = frame.iloc[:, pos]
            try:
                conv = col.astype(pd.ArrowDtype(pa.string()) if dtype == "arrow" else dtype)
            except (TypeError, ValueError, UnicodeDecodeError, pa.ArrowException):
                continue
            frame.isetitem(pos, conv)
    res = validate(frame, _CONTRACT, chunk_rows=data.draw(st.integers(1, 4)))
    assert list(res.failures.columns) == FAILURE_COLUMNS
    assert res.failures["reason"].str.match(r"^(expect|schema):").all()
    assert res.success == (len(res.failures) == 0)


_CHECK = Contract(columns={
    "x": ColumnSpec(type="float", nullable=False, min=-1.0, max=1.0),
    "c": ColumnSpec(type="string", nullable=True, allowed=["a", "b"]),
    "w": ColumnSpec(type="string", nullable=True, min_length=2, max_length=4, pattern=r"^[a-z]+$"),
})


def _oracle(x: list, c: list, w: list) -> set[tuple[int, str]]:
    out: set[tuple[int, str]] = set()
    for i, (xv, cv, wv) in enumerate(zip(x, c, w, strict=True)):
        if xv is None or (isinstance(xv, float) and math.isnan(xv)):
            out.add((i, "expect:not_null:x"))
        elif not -1.0 <= xv <= 1.0:
            out.add((i, "expect:in_range:x"))
        if cv is not None and cv not in ("a", "b"):
            out.add((i, "expect:in_set:c"))
        if wv is not None:
            if not 2 <= len(wv) <= 4:
                out.add((i, "expect:length:w"))
            if not re.search(r"^[a-z]+$", wv):
                out.add((i, "expect:pattern:w"))
    return out


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(1, 25), engine=st.sampled_from(["auto", "auto", "gx"]))
def test_failures_are_exactly_the_violating_rows(data: st.DataObject, n: int, engine: str) -> None:
    x = data.draw(st.lists(st.one_of(st.none(), st.floats(-3, 3), st.just(float("-inf"))), min_size=n, max_size=n))
    c = data.draw(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", ""])), min_size=n, max_size=n))
    w = data.draw(st.lists(st.one_of(st.none(), st.text("abZ1", max_size=6)), min_size=n, max_size=n))
    frame = pd.DataFrame({"x": pd.array(x, dtype="float64") if x else x, "c": c, "w": w})
    res = validate(frame, _CHECK, engine=engine, chunk_rows=data.draw(st.integers(1, 30)))
    got = {(int(r), str(s)) for r, s in zip(res.failures["row"], res.failures["reason"], strict=True)}
    assert got == _oracle(x, c, w)
