"""The click command line parses as the argparse one did: abbreviations, options given before a ``keys``
subcommand, one-line usage errors, and a ``gate`` that imports nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]


def _parsed(*argv: str) -> dict[str, Any]:
    args = vars(cli_main._parse(list(argv))).copy()
    args["func"] = args["func"].__name__
    return args


def test_a_unique_prefix_of_a_long_option_is_the_option() -> None:
    """argparse's ``allow_abbrev``: ``--label`` is ``--label-column``; an option's value is never expanded."""
    args = _parsed("ingest", "x.csv", "--lab", "class", "--rel", "--refer=r", "--run", "dask")
    assert (args["label_column"], args["relabel"], args["reference"], args["runner"]) == ("class", True, "r", "dask")
    assert _parsed("approve", "sha256:ab", "--reas", "--json")["reason"] == "--json"  # a value, kept as given
    assert _parsed("ledger", "upgrade", "--rebuild")["rebuild_index"] is True
    assert _parsed("keys", "--led", "L", "show")["ledger"] == "L"


def test_an_ambiguous_prefix_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["ledger", "log", "--l", "3"]) == 2  # --ledger or --limit
    err = capsys.readouterr().err
    assert err.startswith("trainguard ledger log: error: no such option '--l'") and err.count("\n") == 1


@pytest.mark.parametrize(("argv", "expected"), [
    (["keys"], {"func": "_keys_show", "key": None, "ledger": None, "json": False}),
    (["keys", "--ledger", "L", "--json"], {"func": "_keys_show", "ledger": "L", "json": True}),
    (["keys", "--ledger", "L", "show", "--key", "k"], {"func": "_keys_show", "ledger": "L", "key": "k"}),
    (["keys", "--ledger", "L", "show", "--ledger", "M"], {"ledger": "M"}),  # the subcommand's own value wins
    (["keys", "--json", "show"], {"json": True}),
    (["keys", "--trusted-keys", "T", "show"], {"trusted_keys": "T"}),
    (["keys", "--ledger", "L", "--json", "generate", "--out", "o"],
     {"func": "_keys_generate", "ledger": "L", "json": True, "out": "o"}),
    (["keys", "--ledger", "L", "rotate", "--reason", "r"], {"func": "_rotate", "ledger": "L", "reason": "r"}),
])
def test_keys_options_given_before_the_subcommand_are_kept(argv: list[str], expected: dict[str, Any]) -> None:
    args = _parsed(*argv)
    assert {k: args[k] for k in expected} == expected


def test_defaults_are_the_argparse_ones() -> None:
    args = _parsed("ingest", "x.csv")
    assert args["relabel"] is None and args["runner"] == "local" and args["json"] is False
    assert list(_parsed("ledger", "verify")["checkpoint"]) == []
    assert _parsed("ledger", "verify", "--checkpoint", "a", "--checkpoint", "b")["checkpoint"] == ("a", "b")
    assert _parsed("ledger", "log", "--limit", "3")["limit"] == 3


@pytest.mark.parametrize("argv", [[], ["ledger"], ["gate", "a", "b"], ["ledger", "log", "--limit", "0"],
                                  ["approve", "sha256:ab"], ["serve"], ["--bogus"], ["keys", "rotate"]])
def test_usage_errors_are_one_line_with_the_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "error:" in err and "(usage: trainguard" in err
    assert cli_main.main([*argv, "--json"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out) == {"ok": False, "code": "usage", "message": err.strip(), "exit_code": 2}


def test_version_prints_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli_main.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("trainguard ")


def test_gate_imports_no_heavy_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``trainguard gate`` is hashing plus milliseconds: no pandas, Prefect, Great Expectations or rich."""
    from provenance.entries import make_statement
    from provenance.hashing import file_digest
    from provenance.ledger import open_ledger

    for name in ("TRAINGUARD_SIGNING_KEY", "TRAINGUARD_TRUSTED_KEYS", "TRAINGUARD_APPROVER_KEYS", "TRAINGUARD_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRAINGUARD_WITNESS", str(tmp_path / "witness"))
    data, url = tmp_path / "x.bin", f"sqlite:///{tmp_path}/ledger.db"
    data.write_bytes(b"x")
    with open_ledger(url) as led:
        led.append(make_statement(subjects=[("x.bin", file_digest(data))], predicate={"verdict": "approved"}))
    probe = ("import sys\nfrom pipelines.cli.main import main\n"
             f"code = main(['gate', {str(data)!r}, '--ledger', {url!r}])\n"
             "heavy = sorted(m for m in ('pandas', 'prefect', 'great_expectations', 'rich', 'sklearn')"
             " if m in sys.modules)\n"
             "print(code, heavy)\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr
