"""trainguard ingest / report on the command line: exit codes, one stderr line per bad input, --json, ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli.main import main
from provenance.ledger import open_ledger

pytestmark = pytest.mark.usefixtures("prefect_harness")

BAD = [
    ("bad/malformed.csv", "data:malformed_csv"),
    ("bad/latin1.csv", "data:encoding"),
    ("bad/empty.csv", "data:empty_file"),
    ("bad/header_only.csv", "data:no_rows"),
    ("bad/pickle.csv", "data:executable_format"),
    ("bad/pickle.parquet", "data:executable_format"),
    ("bad/truncated.parquet", "data:unreadable"),
    ("bad/missing.csv", "data:missing_file"),
]


def _entries(url: str) -> list[dict]:
    with open_ledger(url) as ledger:
        return [ledger.record(i).statement for i in range(ledger.size())]


@pytest.mark.parametrize(("name", "code"), BAD)
def test_bad_input_exit_2_and_recorded(name: str, code: str, data_samples: Path, tmp_path: Path, ledger_url: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ingest", str(data_samples / name), "--source", "vendor", "--ledger", ledger_url,
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"[{code}]" in err and "Traceback" not in err
    (entry,) = _entries(ledger_url)
    assert entry["predicate"]["verdict"] == "error"
    assert entry["predicate"]["error"]["code"] == code
    assert not (tmp_path / "out" / "clean.parquet").exists()
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["error"]["code"] == code


def test_unknown_label_column(data_samples: Path, tmp_path: Path, ledger_url: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ingest", str(data_samples / "credit" / "batch_clean.csv"), "--label-column", "target",
               "--ledger", ledger_url, "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "[data:unknown_label_column]" in capsys.readouterr().err
    (entry,) = _entries(ledger_url)
    assert entry["predicate"]["source"]["digest"].startswith("sha256:")  # the bytes were read and are named


def test_outside_allowed_roots(data_samples: Path, tmp_path: Path, ledger_url: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "tg.toml"
    cfg.write_text(f'allowed_roots = ["{tmp_path / "landing"}"]\n', encoding="utf-8")
    rc = main(["ingest", str(data_samples / "credit" / "batch_clean.csv"), "--config", str(cfg),
               "--ledger", ledger_url, "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "[data:outside_allowed_roots]" in capsys.readouterr().err
    (entry,) = _entries(ledger_url)
    assert entry["subject"][0]["name"].startswith("uri:")  # no bytes were opened: the URI is named


def test_bad_config_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "tg.toml"
    cfg.write_text("[policy]\nmax_quarantined_share = 7\n", encoding="utf-8")
    assert main(["ingest", "x.csv", "--config", str(cfg)]) == 2
    assert "[config:bad_value]" in capsys.readouterr().err


def test_json_and_report_command(data_samples: Path, tmp_path: Path, ledger_url: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ingest", str(data_samples / "credit" / "batch_clean.jsonl"), "--source", "jsonl",
               "--label-column", "class", "--ledger", ledger_url, "--out", str(tmp_path / "out"), "--json"])
    out = capsys.readouterr().out
    doc = json.loads(out)  # exactly one JSON document on stdout
    assert rc == doc["exit_code"] == 0 and doc["verdict"] == "approved"
    assert doc["source"]["format"] == "json"
    assert main(["report", str(tmp_path / "out"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["report"].endswith("report.html")
    assert main(["report", str(tmp_path)]) == 2


def test_subprocess_prints_one_error_line(data_samples: Path, tmp_path: Path) -> None:
    """The real console script: no traceback, one error line, Prefect's logs kept off stdout and stderr."""
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ, PREFECT_API_URL=str(PREFECT_API_URL.value()))
    env.pop("PREFECT_LOGGING_LEVEL", None)
    trainguard = str(Path(sys.executable).parent / "trainguard")
    proc = subprocess.run([trainguard, "ingest", str(data_samples / "bad" / "pickle.csv"), "--ledger",
                           f"sqlite:///{tmp_path / 'l.db'}", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    errors = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
    assert errors == [ln for ln in errors if ln.startswith("trainguard: error:")] and len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_human_output(data_samples: Path, tmp_path: Path, ledger_url: str,
                      capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    odd = tmp_path / "[red]clean.parquet"  # a name that is rich markup stays the name (found by review)
    shutil.copy(data_samples / "credit" / "batch_clean.parquet", odd)
    rc = main(["ingest", str(odd), "--source", "human",
               "--label-column", "class", "--ledger", ledger_url, "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 0
    assert captured.out.startswith("APPROVED ") and "ledger entries: #0 approved" in captured.out
    assert "[red]clean.parquet" in captured.out.splitlines()[0]
    assert "trainguard: score" in captured.err  # progress goes to stderr
