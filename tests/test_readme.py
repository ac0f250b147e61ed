"""README.md stays true: every CLI command is shown, and the scikit-learn training snippet runs as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "trainguard") -> list[str]:
    out = []
    for name, sub in group.commands.items():
        out.append(f"{prefix} {name}")
        if isinstance(sub, click.Group):
            out += _commands(sub, f"{prefix} {name}")
    return out


def test_every_cli_command_is_in_the_readme() -> None:
    from pipelines.cli.main import build_parser

    commands = _commands(build_parser())
    assert {"trainguard ingest", "trainguard gate", "trainguard serve", "trainguard report"} <= set(commands)
    missing = [c for c in commands if c not in README]
    assert not missing, f"README.md does not show: {missing}"


def test_readme_names_the_two_commands() -> None:
    assert "make demo" in README and "make test" in README


def test_training_snippet_runs(tmp_path: Path, data_samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the README's training script unchanged on approved data, then on data the ledger never approved.

    The approving entry is appended with the ledger API (the ingest flow that writes such entries end to end is
    tested in tests/pipelines/test_flows.py), so this test needs no Prefect server.
    """
    import shutil

    from provenance.entries import make_statement
    from provenance.errors import NotApprovedError
    from provenance.hashing import file_digest
    from provenance.ledger import open_ledger

    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    snippet = next(b for b in blocks if "require_approved" in b)
    assert "from provenance.gate import require_approved" in snippet
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRAINGUARD_LEDGER", raising=False)
    clean = tmp_path / "out" / "credit" / "clean.parquet"
    clean.parent.mkdir(parents=True)
    shutil.copyfile(data_samples / "credit" / "reference.parquet", clean)
    with open_ledger() as ledger:  # the default ledger, .trainguard/ledger.db in the working directory
        ledger.append(make_statement(subjects=[("out/credit/clean.parquet", file_digest(clean))],
                                     predicate={"verdict": "approved", "source": {"name": "credit"}}))
    exec(compile(snippet, "README.md", "exec"), {"__name__": "__readme__"})  # noqa: S102 - our own README
    shutil.copyfile(data_samples / "credit" / "batch_poisoned.parquet", clean)
    with pytest.raises(NotApprovedError):
        exec(compile(snippet, "README.md", "exec"), {"__name__": "__readme__"})  # noqa: S102
    assert os.getcwd() == str(tmp_path)


def test_config_example_is_valid() -> None:
    import tomllib

    from pipelines.config import parse_config

    block = next(b for b in re.findall(r"```toml\n(.*?)```", README, flags=re.S) if "[policy]" in b)
    cfg = parse_config(tomllib.loads(block), origin="README.md")
    assert cfg.sources["credit"].schedule == "0 * * * *"
    assert cfg.policy.max_quarantined_share == 0.30
