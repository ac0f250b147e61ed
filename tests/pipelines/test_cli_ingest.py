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


@pytest.mark.parametrize("toml", ['[scoring]\nrandom_state = "x"\n', "policy = 5\n", "sources = 5\n",
                                  '[policy]\nreject_on_contract = "expect:not_null"\n',
                                  '[policy]\nquarantine_flagged = "false"\n'])
def test_wrongly_typed_config_is_exit_2_not_a_bug(toml: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Found by review: these were exit 70 ("a bug in trainguard") or silently misread."""
    cfg = tmp_path / "tg.toml"
    cfg.write_text(toml, encoding="utf-8")
    assert main(["ingest", "x.csv", "--config", str(cfg), "--json"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["code"] == "config:bad_value"
    assert err.startswith(f"trainguard: error: {cfg}: ") and "[config:bad_value]" in err and err.count("\n") == 1


def test_an_all_null_column_gives_strict_json(data_samples: Path, tmp_path: Path, ledger_url: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Found by review: drift of a numeric column that is entirely null printed `"statistic": NaN` with --json and
    in summary.json, which is not JSON."""
    import pandas as pd

    batch = pd.read_csv(data_samples / "credit" / "batch_clean.csv")
    batch["age"] = float("nan")
    path = tmp_path / "nullage.csv"
    batch.to_csv(path, index=False)
    out_dir = tmp_path / "out"
    rc = main(["ingest", str(path), "--source", "nullage", "--label-column", "class", "--reference",
               str(data_samples / "credit" / "reference.csv"), "--ledger", ledger_url, "--out", str(out_dir),
               "--json"])

    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    doc = json.loads(capsys.readouterr().out, parse_constant=refuse)
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"), parse_constant=refuse)
    assert rc == doc["exit_code"]
    (age,) = [d for d in summary["drift"] if d["column"] == "age"]
    assert age["statistic"] is None and doc["drift"] == summary["drift"]
    assert [e["predicate"]["verdict"] for e in _entries(ledger_url)] == [e["verdict"] for e in doc["ledger"]]


def test_relative_allowed_roots_and_paths_share_the_working_directory(
    data_samples: Path, tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Found by review: with the README's example config (allowed_roots = ["data/landing"]) run from another
    directory, a path under ./data/landing was refused, since the roots alone were taken from the config's
    directory."""
    import shutil

    cfg_dir, work = tmp_path / "cfgdir", tmp_path / "work"
    landing = work / "data" / "landing"
    landing.mkdir(parents=True)
    cfg_dir.mkdir()
    shutil.copy(data_samples / "credit" / "batch_clean.csv", landing / "x.csv")
    shutil.copy(data_samples / "credit" / "reference.csv", landing / "ref.csv")
    (cfg_dir / "tg.toml").write_text('allowed_roots = ["data/landing"]\nout_root = "out"\n', encoding="utf-8")
    monkeypatch.chdir(work)
    rc = main(["ingest", "data/landing/x.csv", "--source", "x", "--label-column", "class", "--reference",
               "data/landing/ref.csv", "--config", str(cfg_dir / "tg.toml"), "--ledger", ledger_url, "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert rc == 0 and doc["verdict"] == "approved", err
    assert (work / "out" / "x" / "clean.parquet").is_file()  # out_root: the working directory too
    shutil.copy(data_samples / "credit" / "batch_clean.csv", tmp_path / "elsewhere.csv")
    assert main(["ingest", str(tmp_path / "elsewhere.csv"), "--source", "x", "--config", str(cfg_dir / "tg.toml"),
                 "--ledger", ledger_url]) == 2
    err = capsys.readouterr().err
    assert "[data:outside_allowed_roots]" in err and f"({landing})" in err  # the resolved root is shown


def test_the_same_column_as_label_and_source_is_named_as_such(data_samples: Path, tmp_path: Path, ledger_url: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ingest", str(data_samples / "credit" / "batch_clean.csv"), "--label-column", "class",
               "--source-column", "class", "--ledger", ledger_url, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "[usage:same_column]" in err and "both name 'class'" in err
    (entry,) = _entries(ledger_url)
    assert entry["predicate"]["error"]["code"] == "usage:same_column"
