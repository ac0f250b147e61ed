"""pydantic's ValidationError about a config, as the one line a user reads (``pipelines.config``).

The first error, in the order a reader meets it (a table's unknown keys before its values, a source's name before
its table), becomes ``config:unknown_key`` (every unknown key of that table, and the allowed ones) or
``config:bad_value``: ``<file>: [table] key must be <the field's description>, not <what was found>``. What was
found is the whole value of the key (an array, not its wrong item), in TOML's words.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ArgsKwargs, ErrorDetails

from pipelines.errors import PipelineConfigError

__all__ = ["file_error", "python_error"]

_UNKNOWN = {"extra_forbidden", "unexpected_keyword_argument"}
_NAME_TEXT = "letters, digits, '.', '_' or '-' starting with a letter or digit (at most 128)"  # config.SOURCE_NAME


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


def _bad(place: str, expected: str | None, found: str) -> PipelineConfigError:
    return PipelineConfigError("config:bad_value", f"{place} must be {expected or 'valid'}, not {found}")


def _unknown(errors: list[ErrorDetails], parent: tuple[Any, ...], head: str, where: str,
             allowed: list[str]) -> PipelineConfigError:
    """Every unknown key of the table ``parent`` (``head``: who names them, ``where``: the table)."""
    unknown = sorted(str(e["loc"][-1]) for e in errors if e["type"] in _UNKNOWN and e["loc"][:-1] == parent)
    return PipelineConfigError("config:unknown_key", f"{head}unknown key(s) {', '.join(unknown)}{where}; "
                               f"allowed: {', '.join(sorted(allowed))}")


def _is_name(loc: tuple[Any, ...], kind: str) -> bool:
    """Whether an error is about the name of a source (a key of [sources]), not about its table."""
    return len(loc) >= 3 and loc[-1] == "[key]" and loc[-3] == "sources" and kind not in _UNKNOWN


def _in_reading_order(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """pydantic reports a model's fields in order, then its unknown keys; a reader (and the checks before pydantic)
    meets a table's unknown keys first, and a source's name before its table."""
    first: dict[tuple[Any, ...], int] = {}
    for i, err in enumerate(errors):
        for n in range(len(err["loc"]) + 1):
            first.setdefault(err["loc"][:n], i)

    def rank(err: ErrorDetails) -> tuple[int, ...]:
        loc = err["loc"]
        head = tuple(first[loc[:n]] for n in range(1, len(loc)))  # the tables it is in
        if _is_name(loc, err["type"]):
            return (*head, -2)
        return (*head, -1) if err["type"] in _UNKNOWN else (*head, first[loc], 0)

    return sorted(errors, key=rank)


def _value_at(doc: object, loc: tuple[Any, ...]) -> object:
    for part in loc:
        doc = doc[part]  # type: ignore[index]
    return doc


def file_error(exc: ValidationError, doc: Mapping[str, Any], *, origin: str, wrapped: bool,
               tables: Mapping[str, type[BaseModel]]) -> PipelineConfigError:
    """The first error of a config file's document; ``tables``: the model of each table ("" the top level)."""
    errors = _in_reading_order(exc.errors())
    loc = errors[0]["loc"]
    skip, prefix = (1, "trainguard.") if wrapped else (0, "")
    if errors[0]["type"] in _UNKNOWN:
        parent = loc[:-1]
        table = parent[skip:]
        allowed = ["trainguard"] if wrapped and not parent else list(tables[str(table[0]) if table else ""].model_fields)
        where = ".".join(map(str, parent)) or "top level"
        return _unknown(errors, parent, f"{origin}: ", f" in [{where}]", allowed)
    while loc and isinstance(loc[-1], int):  # an item of an array: the array is named
        loc = loc[:-1]
    rel = loc[skip:]
    if not rel:
        return _bad(f"{origin}: [trainguard]", "a table", _found(doc.get("trainguard")))
    if _is_name(rel, errors[0]["type"]):
        return _bad(f"{origin}: [{prefix}sources] table name", _NAME_TEXT, _found(rel[1]))
    found = _found(_value_at(doc, loc))
    if rel[0] == "sources" and len(rel) == 2:
        return _bad(f"{origin}: [{prefix}sources.{rel[1]}]", "a table", found)
    table, key = rel[:-1], str(rel[-1])
    if table:
        place = f"{origin}: [{prefix}{'.'.join(map(str, table))}] {key}"
    else:
        place = f"{origin}: [trainguard] {key}" if wrapped else f"{origin}: {key}"
    info = tables[str(table[0]) if table else ""].model_fields.get(key)
    return _bad(place, info.description if info else None, found)


def python_error(cls: str, fields: Mapping[str, FieldInfo], values: object, exc: ValidationError
                 ) -> PipelineConfigError:
    """The first error of a dataclass built in Python: ``Policy min_rows must be ..., not ...``."""
    errors = _in_reading_order(exc.errors())
    names = list(fields)
    given: dict[str, Any] = {}
    if isinstance(values, ArgsKwargs):
        given = dict(zip(names, values.args, strict=False)) | dict(values.kwargs or {})
    if errors[0]["type"] in _UNKNOWN:
        return _unknown(errors, errors[0]["loc"][:-1], f"{cls}: ", "", names)
    key = errors[0]["loc"][0] if errors[0]["loc"] else ""
    name = names[key] if isinstance(key, int) and 0 <= key < len(names) else str(key)
    info = fields.get(name)
    found = _found(given[name]) if name in given else "nothing" if errors[0]["type"].startswith("missing") \
        else _found(errors[0]["input"])
    return _bad(f"{cls} {name}", info.description if info else None, found)
