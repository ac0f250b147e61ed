"""The reason-code catalogue (reasons/catalogue.py) and the code agree (issue #16 item 3).

Fails when: a code appears in checks/, pipelines/ or provenance/ (an error's code, a row or verdict reason) without
a catalogue entry; a catalogue entry is used nowhere; an error is raised with a code the catalogue does not hold,
with a computed code at a site nobody reviewed, or by a class whose exit code is not the catalogue's;
docs/reason-codes.md is not what ``python -m reasons.docs`` writes.
"""

from __future__ import annotations

import ast
import os
import pickle
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

import checks.errors
import pipelines.errors
import provenance.errors
import reasons.errors
from reasons import catalogue, docs
from reasons.catalogue import CATALOGUE, Reason, anchor, lookup
from reasons.errors import (
    ConfigError,
    InputError,
    IntegrityError,
    RefusedError,
    TrainguardError,
    UnknownReasonCode,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("checks", "pipelines", "provenance")
HOLE = "<*>"  # what an f-string's replacement field becomes in a scanned literal

# A literal that looks like a code: ``area:what...`` (no space right after the colon: "approved: x" is a message;
# no slash: "http://" is a URL). Only its first token counts ("policy:min_rows {rows} < {min}").
CODE_LIKE = re.compile(r"^[a-z][a-z_]*:(?:[a-z_]|<\*>)")
PREFIX = re.compile(r"^[a-z][a-z_]*:(?:[a-z_]+:)*$")  # "cluster:", "duplicate:" (startswith tests)

#: Literals shaped like codes that are not reason codes (ledger subject names, URL schemes).
NOT_CODES = {
    "uri:<*>",  # pipelines/_record.py: the subject name of an attempt whose bytes could not be read
    "key:<*>",  # provenance/rotation.py: the subject name of a key-rotation entry
    "trainguard:key-rotations",  # provenance/rotation.py: the subject name of every key-rotation entry
    "sqlite:",  # the ledger URL scheme
}

#: Raise sites whose code is computed, not written: each passes on a code that was catalogued where it was made
#: (the tests below check those literals). A new computed code fails the test until it is reviewed and listed.
PASS_THROUGH = {
    ("pipelines/cli/audit_cmd.py", "decision.code"),  # the gate's decision (gate:*)
    ("provenance/gate.py", "decision.code"),  # the gate's decision (gate:*)
    ("pipelines/flows.py", "code"),  # _record_crash: the error's own code, or internal:<exception>
    ("pipelines/flows.py", "err['code']"),  # the code the flow recorded for the failed attempt
    ("pipelines/reading.py", "_code(fmt, exc)"),  # data:empty_file / data:malformed_csv / data:unreadable
    ("provenance/bundle.py", "exc.code"),  # re-raised as input with the checkpoint error's code
    ("provenance/entries.py", "problem[0]"),  # _problem's entry:* codes (written and read)
    ("provenance/reading.py", "exc.code"),  # a witness error re-raised with more context
}


@dataclass(frozen=True)
class Literal:
    path: str
    line: int
    text: str  # an f-string's replacement fields are HOLE

    @property
    def code(self) -> str:
        return self.text.split(None, 1)[0] if self.text.strip() else self.text


def _render(node: ast.expr) -> str | None:
    """The text of a string literal, an f-string (fields as HOLE) or ``"literal" + expr``; None otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else HOLE for v in node.values)  # type: ignore[misc]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _render(node.left), _render(node.right)
        if left is not None or right is not None:
            return (left if left is not None else HOLE) + (right if right is not None else HOLE)
    return None


def _sources() -> list[tuple[str, ast.Module]]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out.append((path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))))
    return out


@lru_cache(maxsize=1)
def _scan() -> tuple[list[Literal], frozenset[str]]:
    """Every string-like literal of the three packages (f-strings and concatenations whole), and the set of plain
    string constants."""
    literals: list[Literal] = []
    constants: set[str] = set()
    for rel, tree in _sources():
        inner: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr | ast.BinOp):
                text = _render(node)
                if text is not None and id(node) not in inner:
                    literals.append(Literal(rel, node.lineno, text))
                for sub in ast.walk(node):
                    if sub is not node:
                        inner.add(id(sub))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                constants.add(node.value)
                if id(node) not in inner:
                    literals.append(Literal(rel, node.lineno, node.value))
    return literals, frozenset(constants)


def _code_literals() -> list[Literal]:
    return [lit for lit in _scan()[0] if CODE_LIKE.match(lit.text) and lit.code not in NOT_CODES]


def _example(entry: Reason) -> str:
    """The entry's code with each placeholder as a NUL (a stand-in no source literal holds)."""
    return re.sub(r"<[a-z_]+>", "\x00", entry.code)


def _template(text: str) -> re.Pattern[str]:
    return re.compile("(.+)".join(map(re.escape, text.split(HOLE))), re.DOTALL)


def _entries_of(text: str) -> list[Reason]:
    """The entries a literal names: lookup() for a plain code, every entry a template can produce otherwise."""
    if HOLE not in text:
        entry = lookup(text)
        return [entry] if entry is not None else []
    pattern = _template(text)
    return [e for e in CATALOGUE.values() if pattern.fullmatch(_example(e))]


# --- (b) every code in the source is catalogued ------------------------------------------------------------------
def test_the_scan_finds_the_codes_it_should() -> None:
    codes = {lit.code for lit in _code_literals()}
    for expected in ("data:empty_file", "ledger:no_index", "gate:no_verdict", "usage:runner", "label:inconsistent",
                     "duplicate:flood", "cluster:backdoor", "expect:<*>:<*>", "score:adaptive", "campaign:<*>",
                     "source:compromised:<*>", "outlier:ecod:feature=<*>", "policy:min_rows",
                     "ledger:refused_before", "internal:<*>", "proof:<*>"):
        assert expected in codes, expected


def test_every_code_in_the_source_is_catalogued() -> None:
    missing = sorted({f"{lit.code}  ({lit.path}:{lit.line})" for lit in _code_literals() if not _entries_of(lit.code)})
    assert not missing, "codes without an entry in reasons/catalogue.py:\n" + "\n".join(missing)


def test_every_code_prefix_in_the_source_names_catalogued_codes() -> None:
    """``startswith("cluster:")`` and the like must still find codes (a renamed area would silently match none)."""
    prefixes = {lit.text for lit in _scan()[0] if PREFIX.match(lit.text)} - NOT_CODES
    assert prefixes, "the scan finds no prefix literal"
    stale = sorted(p for p in prefixes if not any(code.startswith(p) for code in CATALOGUE))
    assert not stale, stale


def _renders(node: ast.expr) -> list[str]:
    if isinstance(node, ast.IfExp):
        return _renders(node.body) + _renders(node.orelse)
    text = _render(node)
    return [text] if text is not None else []


def test_every_code_a_result_document_carries_is_catalogued() -> None:
    """``{"code": "usage", ...}`` and ``result.update(code=...)``: the codes of --json documents, bare ones too."""
    found, missing = set(), []
    for rel, tree in _sources():
        for node in ast.walk(tree):
            values: list[ast.expr] = []
            if isinstance(node, ast.Dict):
                values = [v for k, v in zip(node.keys, node.values, strict=True)
                          if isinstance(k, ast.Constant) and k.value == "code"]
            elif isinstance(node, ast.Call):
                values = [k.value for k in node.keywords if k.arg == "code"]
            for value in values:
                for text in _renders(value):
                    found.add(text)
                    if not _entries_of(text):
                        missing.append(f"{rel}:{value.lineno}: {text!r}")
    assert {"usage", "internal", "policy:rejected", "proof:format", "proof:<*>"} <= found, found
    assert not missing, missing


def _tree(rel: str) -> ast.Module:
    return ast.parse((ROOT / rel).read_text(encoding="utf-8"))


def _assigned(rel: str, name: str) -> ast.expr:
    for node in ast.walk(_tree(rel)):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return node.value
    raise AssertionError(f"{rel} assigns no {name}")


def test_every_row_detector_has_its_outlier_code() -> None:
    """``outlier:{detector}`` is built from ``ROW_DETECTORS``: each needs its own entry, and no entry names a
    detector that is gone."""
    detectors = set(ast.literal_eval(_assigned("checks/scoring.py", "ROW_DETECTORS")))
    assert detectors >= {"iforest", "ecod"}
    catalogued = {c.split(":")[1] for c in CATALOGUE if re.fullmatch(r"outlier:[a-z_]+", c)} - {"too_typical"}
    assert catalogued == detectors


def test_every_builtin_contract_rule_has_its_expect_code() -> None:
    """``expect:{rule.kind}:{column}``: every built-in kind has an entry of its own, not just the generic one."""
    builtin = _assigned("checks/contract/_suite.py", "_BUILTIN")
    assert isinstance(builtin, ast.Dict)
    kinds = {str(k.value) for k in builtin.keys if isinstance(k, ast.Constant)}
    assert {"in_range", "not_null", "type"} <= kinds
    generic = CATALOGUE["expect:<expectation>:<column>"]
    for kind in kinds:
        entry = lookup(f"expect:{kind}:age")
        assert entry is not None and entry is not generic, kind


def test_every_check_of_the_proof_verifier_has_its_proof_code() -> None:
    """provenance/verify_proof.py (stand-alone: it cannot import the catalogue) reports ``proof:{check}``."""
    checks_named: set[str] = set()
    for node in ast.walk(_tree("provenance/verify_proof.py")):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            at = {"need": 1, "ProofError": 0, "hex32": 2, "index_of": 2}.get(node.func.id)
            args = [*node.args[at:at + 1]] if at is not None else []
            args += [k.value for k in node.keywords if k.arg == "check"]
            checks_named |= {a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
        if isinstance(node, ast.FunctionDef):
            for arg, default in zip(node.args.args[::-1], node.args.defaults[::-1], strict=False):
                if arg.arg == "check" and isinstance(default, ast.Constant) and isinstance(default.value, str):
                    checks_named.add(default.value)
    checks_named.discard("usage")  # exit 2, reported as the bare code "usage"
    assert {"checkpoint", "map", "format"} <= checks_named
    assert {c.removeprefix("proof:") for c in CATALOGUE if c.startswith("proof:")} == checks_named


# --- (c) every catalogue entry is used --------------------------------------------------------------------------
def _uses(entry: Reason, literals: list[Literal], constants: frozenset[str]) -> bool:
    if ":" not in entry.code:  # a bare code ("usage", "internal"): the string itself is written somewhere
        return entry.code in constants
    for lit in literals:
        if HOLE not in lit.code:
            if lookup(lit.code) is entry:
                return True
            continue
        m = _template(lit.code).fullmatch(_example(entry))
        # a broad template ("outlier:{name}") uses an entry only when the text it fills in for a concrete entry
        # ("hbos") is itself a literal of the source (ROW_DETECTORS); a placeholder of the entry fills in freely
        if m and all("\x00" in part or part in constants for part in m.groups()):
            return True
    return False


def test_every_catalogue_entry_is_used() -> None:
    literals, constants = _code_literals(), _scan()[1]
    dead = sorted(e.code for e in CATALOGUE.values() if not _uses(e, literals, constants))
    assert not dead, "catalogue entries no code uses (remove them, or the code lost them):\n" + "\n".join(dead)


# --- raise sites: the code and the class agree with the catalogue -----------------------------------------------
def _error_classes() -> dict[str, type[TrainguardError]]:
    out: dict[str, type[TrainguardError]] = {}
    todo: list[type[TrainguardError]] = [TrainguardError]
    while todo:
        cls = todo.pop()
        if cls.__module__.split(".")[0] in (*PACKAGES, "reasons"):
            out[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return out


def _raise_sites() -> list[tuple[str, int, type[TrainguardError], ast.expr | None]]:
    classes = _error_classes()
    sites = []
    for rel, tree in _sources():
        alias = {a.asname: a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
                 if a.asname and a.name in classes}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else None
            cls = classes.get(alias.get(name, name)) if name else None  # type: ignore[arg-type]
            if cls is None:
                continue
            code = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "code"), None)
            sites.append((rel, node.lineno, cls, code))
    return sites


def test_every_raise_site_uses_a_catalogued_error_code_of_its_exit_code() -> None:
    sites = _raise_sites()
    assert len(sites) > 150, len(sites)  # the walk finds the raise sites at all
    problems, passed_through = [], set()
    for rel, line, cls, arg in sites:
        text = _render(arg) if arg is not None else None
        if text is None:
            key = (rel, ast.unparse(arg) if arg is not None else "")
            if key in PASS_THROUGH:
                passed_through.add(key)
            else:
                problems.append(f"{rel}:{line}: {cls.__name__}({key[1]}, ...): a computed code; list it in "
                                f"PASS_THROUGH once every code it can carry is catalogued")
            continue
        entries = _entries_of(text)
        if not entries:
            problems.append(f"{rel}:{line}: {cls.__name__}({text!r}): not in reasons/catalogue.py")
        elif not any(e.kind in ("error", "outcome") for e in entries):
            problems.append(f"{rel}:{line}: {text!r} is raised, but catalogued as a {entries[0].kind} reason")
        elif not any(cls.exit_code in e.exit_codes for e in entries):
            problems.append(f"{rel}:{line}: {cls.__name__} exits {cls.exit_code}, the catalogue says "
                            f"{entries[0].exit_codes} for {text!r}")
    assert not problems, "\n".join(problems)
    assert passed_through == PASS_THROUGH, f"stale PASS_THROUGH entries: {PASS_THROUGH - passed_through}"


def test_contract_error_codes_are_catalogued_errors() -> None:
    for code in checks.errors.CONTRACT_ERROR_CODES:
        entry = lookup(code)
        assert entry is not None and entry.kind == "error" and entry.exit_codes == (2,), code


# --- (a) the docs ------------------------------------------------------------------------------------------------
def test_docs_reason_codes_md_is_generated_from_the_catalogue() -> None:
    committed = (ROOT / "docs" / "reason-codes.md").read_text(encoding="utf-8")
    assert committed == docs.render(), "docs/reason-codes.md is stale: python -m reasons.docs > docs/reason-codes.md"


def test_docs_module_runs_as_a_script() -> None:
    res = subprocess.run([sys.executable, "-m", "reasons.docs"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0 and res.stdout == docs.render(), res.stderr


def test_every_entry_has_a_unique_anchor_in_the_docs() -> None:
    text = docs.render()
    anchors = [e.anchor for e in CATALOGUE.values()]
    assert len(set(anchors)) == len(anchors)
    for e in CATALOGUE.values():
        assert text.count(f'<a id="{e.anchor}"></a>') == 1, e.code
        assert e.meaning.strip() and e.action.strip(), e.code
    ids = re.findall(r'<a id="([^"]+)"></a>', text)
    assert len(ids) == len(set(ids))  # area anchors collide with no code's


# --- the catalogue's lookup and anchors --------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "entry"), [
    ("data:empty_file", "data:empty_file"),
    ("expect:in_range:age", "expect:in_range:<column>"),
    ("expect:in_range:a column: with colons", "expect:in_range:<column>"),
    ("expect:match_regex:email", "expect:<expectation>:<column>"),
    ("expect:column_pair_values_a_to_be_greater_than_b:*", "expect:<expectation>:<column>"),
    ("outlier:iforest", "outlier:iforest"),
    ("outlier:ecod:feature=income", "outlier:ecod:feature=<column>"),
    ("cluster:backdoor", "cluster:backdoor"),
    ("cluster:backdoor:feature=pixel_3", "cluster:backdoor:feature=<column>"),
    ("cluster:backdoor:features=a,b", "cluster:backdoor:features=<column_a>,<column_b>"),
    ("campaign:duplicate:flood", "campaign:<reason>"),
    ("source:compromised:vendor-b", "source:compromised:<name>"),
    ("source:compromised", "source:compromised:<name>"),  # a batch finding's default reason
    ("schema:missing_column", "schema:missing_column:<column>"),  # a failure kind (reject_on_contract)
    ("policy:min_rows 3 < 10", "policy:min_rows"),
    ("policy:contract expect:in_range (age)", "policy:contract"),
    ("ledger:refused_before entry 4 (rejected, source a)", "ledger:refused_before"),
    ("internal:ZeroDivisionError", "internal:<exception>"),
    ("internal", "internal"),
    ("usage", "usage"),
    ("proof:map", "proof:map"),
])
def test_lookup(code: str, entry: str) -> None:
    found = lookup(code)
    assert found is not None and found.code == entry
    assert anchor(code) == found.anchor


@pytest.mark.parametrize("code", ["", "data", "data:", "nope:thing", "outlier:nope", "expect:in_range",
                                  "usage:nope", "ledger:no_such_thing"])
def test_lookup_of_uncatalogued_codes_is_none(code: str) -> None:
    if code == "expect:in_range":  # a failure kind: the family
        assert lookup(code) is CATALOGUE["expect:in_range:<column>"]
        return
    assert lookup(code) is None and anchor(code) is None


def test_entries_are_frozen_and_consistent() -> None:
    entry = CATALOGUE["data:empty_file"]
    with pytest.raises(AttributeError):
        entry.code = "x"  # type: ignore[misc]
    for e in CATALOGUE.values():
        assert e.kind in catalogue.KINDS
        assert (e.kind == "row") == (not e.exit_codes), e.code  # only row reasons end no command
        assert all(c in catalogue.EXIT_CODES for c in e.exit_codes), e.code
        assert e.kind != "error" or e.exit_code in (1, 2, 3, 70), e.code
    assert anchor("expect:in_range:age") == "expect-in_range-column"


# --- the shared error base -------------------------------------------------------------------------------------
_BY_KIND = {
    checks.errors.ChecksConfigError: (checks.errors.ChecksError, ConfigError, 2),
    checks.errors.ChecksDataError: (checks.errors.ChecksError, InputError, 2),
    pipelines.errors.PipelineConfigError: (pipelines.errors.PipelineError, ConfigError, 2),
    pipelines.errors.PipelineInputError: (pipelines.errors.PipelineError, InputError, 2),
    pipelines.errors.BatchRejected: (pipelines.errors.PipelineError, RefusedError, 1),
    provenance.errors.ProvenanceConfigError: (provenance.errors.ProvenanceError, ConfigError, 2),
    provenance.errors.ProvenanceInputError: (provenance.errors.ProvenanceError, InputError, 2),
    provenance.errors.NotApprovedError: (provenance.errors.ProvenanceError, RefusedError, 1),
    provenance.errors.LedgerIntegrityError: (provenance.errors.ProvenanceError, IntegrityError, 3),
}


@pytest.mark.parametrize("cls", list(_BY_KIND), ids=lambda c: c.__name__)
def test_every_package_error_is_a_trainguard_error_of_its_kind(cls: type[TrainguardError]) -> None:
    base, kind, exit_code = _BY_KIND[cls]
    assert issubclass(cls, base) and issubclass(cls, kind) and issubclass(cls, TrainguardError)
    assert cls.exit_code == exit_code
    exc = cls("data:empty_file", "x.csv is empty")
    assert (exc.code, exc.message, str(exc), exc.exit_code) == ("data:empty_file", "x.csv is empty",
                                                                "x.csv is empty", exit_code)
    assert not isinstance(exc, ConfigError) or not isinstance(exc, InputError)  # config and data stay apart


def test_package_bases_exit_2() -> None:
    for base in (checks.errors.ChecksError, pipelines.errors.PipelineError, provenance.errors.ProvenanceError):
        assert issubclass(base, TrainguardError) and base.exit_code == 2
        assert base("usage:runner", "m").exit_code == 2


def test_ledger_integrity_error_keeps_its_detail() -> None:
    exc = provenance.errors.LedgerIntegrityError("ledger:gap", "entry is missing", index=4, expected="a", found="b")
    assert str(exc) == "entry 4: entry is missing (expected a, found b)" and exc.index == 4 and exc.exit_code == 3


@pytest.mark.parametrize("exc", [
    checks.errors.ChecksDataError("data:empty_file", "x.csv is empty"),
    provenance.errors.LedgerIntegrityError("ledger:gap", "entry is missing", index=4, expected="a", found="b"),
    pipelines.errors.BatchRejected("policy:rejected", "rejected"),
], ids=lambda e: type(e).__name__)
def test_errors_pickle_with_their_code(exc: TrainguardError) -> None:
    """A task's error crosses a process (Dask worker) intact: the default pickling lost the code."""
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is type(exc) and again.__dict__ == exc.__dict__ and str(again) == str(exc)


def test_strict_mode_refuses_uncatalogued_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reasons.errors, "STRICT", True)
    with pytest.raises(UnknownReasonCode, match="nope:thing"):
        checks.errors.ChecksDataError("nope:thing", "x")
    assert pipelines.errors.PipelineError("internal:ValueError", "x").code == "internal:ValueError"
    assert provenance.errors.NotApprovedError("gate:unknown", "x").exit_code == 1
    monkeypatch.setattr(reasons.errors, "STRICT", False)
    assert checks.errors.ChecksDataError("nope:thing", "x").code == "nope:thing"  # off: no check, no cost


def test_strict_mode_comes_from_the_environment() -> None:
    script = ("import reasons.errors as r\nfrom checks.errors import ChecksDataError\nassert r.STRICT\n"
              "ChecksDataError('data:empty_file', 'ok')\ntry:\n    ChecksDataError('nope:thing', 'x')\n"
              "except r.UnknownReasonCode:\n    print('refused')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRAINGUARD_STRICT_CODES": "1"}
    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert (res.returncode, res.stdout) == (0, "refused\n"), res.stderr


def test_reasons_imports_only_the_standard_library() -> None:
    """The bottom of the layering: checks, pipelines and provenance import it, it imports none of them."""
    for path in sorted((ROOT / "reasons").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                root = name.split(".")[0]
                assert root in sys.stdlib_module_names or root in ("reasons", "__future__"), (path, name)


# --- decisions by class, not by module name -----------------------------------------------------------------------
class _OutsideIntegrityError(IntegrityError):
    """An error class of no trainguard package (this test module): found by class all the same."""


def test_cli_maps_any_trainguard_error_by_class(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.cli import main as cli_main

    monkeypatch.delenv("TRAINGUARD_DEBUG", raising=False)
    assert cli_main._known_error(_OutsideIntegrityError("ledger:gap", "x")) == 3
    assert cli_main._known_error(checks.errors.ChecksConfigError("config:engine", "x")) == 2
    assert cli_main._known_error(provenance.errors.NotApprovedError("gate:unknown", "x")) == 1
    assert cli_main._known_error(ZeroDivisionError("x")) is None


class _State:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def result(self) -> None:
        raise self.exc


@pytest.mark.parametrize(("exc", "retry"), [
    (checks.errors.ChecksDataError("data:unreadable", "x"), False),
    (provenance.errors.LedgerIntegrityError("ledger:gap", "x"), False),
    (pipelines.errors.PipelineInputError("data:unreachable", "x"), False),
    (_OutsideIntegrityError("ledger:gap", "x"), False),
    (ImportError("Install s3fs"), False),
    (ConnectionResetError("flaky"), True),
    (TimeoutError("slow"), True),
])
def test_tasks_retry_by_class(exc: BaseException, retry: bool) -> None:
    from pipelines import tasks

    assert tasks._retry_unless_ours(None, None, _State(exc)) is retry


def test_docstring_examples_run() -> None:
    import doctest

    for module in (catalogue, reasons.errors, docs):
        assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0, module.__name__
    assert doctest.testmod(catalogue).attempted >= 4
