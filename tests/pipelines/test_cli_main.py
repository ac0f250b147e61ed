"""The CLI dispatcher: every package's errors become one stderr line and their exit code; bugs exit 70."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from checks.errors import ChecksDataError
from pipelines.cli import main as cli_main
from pipelines.cli._click import Args, command, option
from pipelines.errors import BatchRejected, PipelineInputError
from provenance.errors import LedgerIntegrityError, NotApprovedError


def _run_raising(exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> int:
    def handler(args: Args) -> int:
        raise exc

    real = cli_main.build_parser

    def parser_with_boom() -> click.Group:
        parser = real()
        command(parser, "boom", handler, summary="Raise.", example="trainguard boom")
        return parser

    monkeypatch.setattr(cli_main, "build_parser", parser_with_boom)
    return cli_main.main(["boom"])


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ChecksDataError("data:empty_file", "x.csv is empty"), 2),
        (PipelineInputError("input:missing", "no such file: x.csv"), 2),
        (BatchRejected("policy:rejected", "batch rejected"), 1),
        (NotApprovedError("gate:unknown", "no entry names sha256:ab"), 1),
        (LedgerIntegrityError("ledger:bad_leaf", "leaf hash differs", index=4, expected="aa", found="bb"), 3),
    ],
)
def test_known_errors_map_to_their_exit_code_and_one_line(
    exc: Exception, expected: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TRAINGUARD_DEBUG", raising=False)
    assert _run_raising(exc, monkeypatch) == expected
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(exc) in err.replace("\n", "") and f"[{exc.code}]" in err  # type: ignore[attr-defined]


@pytest.mark.parametrize(("exc", "code", "exit_code"), [
    (PipelineInputError("data:empty_file", "x.csv is empty"), "data:empty_file", 2),
    (ZeroDivisionError("x.csv is empty"), "internal", 70),  # a bug is still one document (found by review)
])
def test_json_failure_is_one_document_on_stdout(
    exc: Exception, code: str, exit_code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    monkeypatch.delenv("TRAINGUARD_DEBUG", raising=False)

    _add_boom_command(monkeypatch, exc)
    assert cli_main.main(["boom", "--json"]) == exit_code
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["ok"] is False and doc["code"] == code and doc["exit_code"] == exit_code
    assert "x.csv is empty" in doc["message"] and "x.csv is empty" in err


@pytest.mark.parametrize("argv", [["gate", "--json"], ["ledger", "log", "--verdict", "nonsense", "--json"],
                                  ["ingest", "x.csv", "--runner", "spark", "--json"], ["nope", "--json"]])
def test_usage_errors_exit_2_and_with_json_print_one_document(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    assert cli_main.main(argv) == 2
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc == {"ok": False, "code": "usage", "message": doc["message"], "exit_code": 2}
    assert "error:" in doc["message"] and doc["message"] in err and "usage:" in err and "Traceback" not in err
    assert cli_main.main([a for a in argv if a != "--json"]) == 2
    assert capsys.readouterr().out == ""


def test_unexpected_error_is_internal_not_rejected(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TRAINGUARD_DEBUG", raising=False)
    assert _run_raising(ZeroDivisionError("division by zero"), monkeypatch) == cli_main.INTERNAL_ERROR == 70
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError" in err and "TRAINGUARD_DEBUG=1" in err and "Traceback" not in err


def test_debug_shows_the_traceback_of_a_bug_and_keeps_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRAINGUARD_DEBUG", "1")
    assert _run_raising(ZeroDivisionError("division by zero"), monkeypatch) == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ZeroDivisionError: division by zero" in err
    assert "internal error: ZeroDivisionError" in err


@pytest.mark.parametrize(("exc", "expected"), [
    (PipelineInputError("data:missing_file", "x.csv does not exist"), 2),
    (NotApprovedError("gate:rejected", "rejected by ledger entry 1"), 1),
    (LedgerIntegrityError("ledger:untrusted_key", "checkpoint signed by another key", index=0, expected="a",
                          found="b"), 3),
    (ZeroDivisionError("x"), 70),
])
def test_debug_keeps_exit_codes_and_the_json_document(
    exc: Exception, expected: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by review: with TRAINGUARD_DEBUG=1 every error was re-raised, so Python exited 1 ("rejected") and
    --json printed nothing."""
    import json

    monkeypatch.setenv("TRAINGUARD_DEBUG", "1")

    _add_boom_command(monkeypatch, exc)
    assert cli_main.main(["boom", "--json"]) == expected
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["ok"] is False and doc["exit_code"] == expected
    assert ("Traceback" in err) == (expected == 70)  # a traceback only for a bug


def test_print_json_is_strict_json(capsys: pytest.CaptureFixture[str]) -> None:
    """Found by review: a drift statistic of an all-null column was printed as a bare NaN, which is not JSON."""
    import json

    import numpy as np

    from pipelines.cli._console import print_json

    print_json({"statistic": float("nan"), "threshold": float("inf"), "low": -float("inf"), "np": np.float32("nan"),
                "rows": [np.int64(3), (1.5, float("nan"))]})
    out = capsys.readouterr().out

    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    doc = json.loads(out, parse_constant=refuse)
    assert doc == {"statistic": None, "threshold": None, "low": None, "np": None, "rows": [3, [1.5, None]]}


def test_every_command_has_an_example_in_its_help() -> None:
    parser = cli_main.build_parser()
    missing = []
    for name, cmd in parser.commands.items():
        nested = cmd.commands if isinstance(cmd, click.Group) else None
        parsers = {f"{name} {n}": p for n, p in nested.items()} if nested else {name: cmd}
        missing += [n for n, p in parsers.items() if "Example" not in (p.epilog or "")]
    assert not missing, f"commands without an example in --help: {missing}"


def _add_boom_command(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    """A ``boom --json`` subcommand whose handler raises ``exc``."""

    def handler(args: Args) -> int:
        raise exc

    real = cli_main.build_parser

    def parser_with_json_boom() -> click.Group:
        parser = real()
        command(parser, "boom", handler, summary="Raise.", example="trainguard boom --json",
                params=[option("--json", is_flag=True)])
        return parser

    monkeypatch.setattr(cli_main, "build_parser", parser_with_json_boom)


def test_the_console_entry_freezes_the_heap_before_exit_and_keeps_the_exit_code(tmp_path: Path) -> None:
    """The collector's passes over the imported libraries at exit cost a second after every ingest: the entry
    point freezes the heap first (atexit handlers still run, and see it frozen), and exits with main's code."""
    probe = ("import atexit, gc, sys\n"
             "atexit.register(lambda: sys.stderr.write(f'frozen={gc.get_freeze_count() > 0}\\n'))\n"
             "from pipelines.cli.main import _entry\n"
             f"sys.argv = ['trainguard', 'ledger', 'verify', '--ledger', 'sqlite:///{tmp_path}/none.db']\n"
             "_entry()\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr  # ledger:not_found, as main returns it
    assert "frozen=True" in proc.stderr
