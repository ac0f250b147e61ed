"""docs/cli.md is the commands' ``--help``, generated (``python -m pipelines.cli.docs > docs/cli.md``) and current;
every command's help shows an example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.cli import docs
from pipelines.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
CLI_MD = ROOT / "docs" / "cli.md"
PATHS = ["trainguard", *(path for path, _ in docs.iter_commands(build_parser()))]


def test_docs_cli_md_is_the_generated_text() -> None:
    expected = docs.generate()
    assert CLI_MD.read_text(encoding="utf-8") == expected, (
        "docs/cli.md is out of date with the commands' --help: run `python -m pipelines.cli.docs > docs/cli.md`")


def test_docs_cli_md_shows_every_command() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings == PATHS
    assert {"trainguard ingest", "trainguard gate", "trainguard ledger verify", "trainguard keys rotate"} <= set(PATHS)


@pytest.mark.parametrize("path", PATHS)
def test_every_help_page_has_an_example_and_is_the_one_in_the_docs(
    path: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # the width docs/cli.md is laid out at (click keeps 2 columns free)
    with pytest.raises(SystemExit) as exit_:
        main([*path.split()[1:], "--help"])
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "Example" in out and re.search(r"^  Example: trainguard\b", out, flags=re.M), out
    section = CLI_MD.read_text(encoding="utf-8").split(f"\n## {path}\n\n```text\n", 1)[1].split("\n```\n", 1)[0]
    assert out.rstrip() == section


def test_short_help_option_prints_the_same_page(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ledger", "log", "--help"])
    long = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["ledger", "log", "-h"])
    assert capsys.readouterr().out == long
