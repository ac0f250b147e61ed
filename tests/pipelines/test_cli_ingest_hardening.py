"""trainguard ingest on hostile input, end to end: a URL's credentials never reach the ledger, the outputs or the
logs; URLs fsspec cannot read, FIFOs and binary Parquet columns are bad input (exit 2, one line, an ``error``
entry), never an internal error; a name with a line break still gives one error line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli.main import main
from provenance.ledger import open_ledger

pytestmark = pytest.mark.usefixtures("prefect_harness")

_SECRET = "s3cr3tPW"


def _entries(url: str) -> list[dict]:
    with open_ledger(url) as ledger:
        return [ledger.record(i).statement for i in range(ledger.size())]


def _everything_recorded(out: Path, ledger_url: str) -> str:
    """The ledger's entries and every file the run published, as one text to search."""
    texts = [json.dumps(_entries(ledger_url))]
    texts += [p.read_text(encoding="utf-8") for p in sorted(out.iterdir()) if p.suffix in (".json", ".html")]
    return "\n".join(texts)


def test_credentials_in_the_url_are_read_with_but_never_recorded(data_samples: Path, tmp_path: Path,
                                                                 ledger_url: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    src, ref = data_samples / "credit" / "batch_clean.csv", data_samples / "credit" / "reference.csv"
    rc = main(["ingest", f"file://svc:{_SECRET}@localhost{src}", "--label-column", "class",
               "--reference", f"file://svc:{_SECRET}@localhost{ref}", "--ledger", ledger_url,
               "--out", str(tmp_path / "out"), "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert rc == doc["exit_code"] and rc in (0, 1), captured.err
    assert doc["source"]["uri"] == f"file://***@localhost{src}"
    assert doc["reference"]["uri"] == f"file://***@localhost{ref}"
    assert _SECRET not in captured.out and _SECRET not in captured.err
    recorded = _everything_recorded(tmp_path / "out", ledger_url)
    assert _SECRET not in recorded and f"file://***@localhost{src}" in recorded
    with get_client(sync_client=True) as client:  # nor do the flow runs' parameters, which Prefect keeps and shows
        runs = client.read_flow_runs(limit=200, sort=FlowRunSort.START_TIME_DESC)
    assert runs and not [r.parameters for r in runs if _SECRET in json.dumps(r.parameters, default=str)]


@pytest.mark.parametrize(("uri", "shown"), [
    (f"tgmissing://user:{_SECRET}@bucket/x.csv", "tgmissing://***@bucket/x.csv"),  # backend not installed
    (f"foo://user:{_SECRET}@x/y.csv", "foo://***@x/y.csv"),                          # protocol fsspec does not know
])
def test_a_url_fsspec_cannot_read_is_bad_input_recorded_without_credentials(
        uri: str, shown: str, tmp_path: Path, ledger_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from fsspec.registry import known_implementations

    monkeypatch.setitem(known_implementations, "tgmissing",
                        {"class": "tg_missing_backend.FS", "err": "Install tg-missing-backend to access tgmissing"})
    rc = main(["ingest", uri, "--source", "remote", "--ledger", ledger_url, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "[data:unsupported_url]" in err and "Traceback" not in err and _SECRET not in err
    (entry,) = _entries(ledger_url)
    assert entry["predicate"]["verdict"] == "error"
    assert entry["predicate"]["error"]["code"] == "data:unsupported_url"
    assert entry["subject"][0]["name"] == f"uri:{shown}"
    assert _SECRET not in _everything_recorded(tmp_path / "out", ledger_url)


@pytest.mark.timeout(120)
def test_a_fifo_is_bad_input(tmp_path: Path, ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    rc = main(["ingest", str(fifo), "--ledger", ledger_url, "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "[data:not_a_file]" in capsys.readouterr().err
    (entry,) = _entries(ledger_url)
    assert entry["predicate"]["error"]["code"] == "data:not_a_file"


def test_a_fixed_size_binary_parquet_column_is_bad_input(tmp_path: Path, ledger_url: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fixedbin.parquet"
    pq.write_table(pa.table({"a": [float(i) for i in range(60)], "label": [i % 2 for i in range(60)],
                             "fb": pa.array([bytes([i, 0xFF]) for i in range(60)], pa.binary(2))}), path)
    rc = main(["ingest", str(path), "--label-column", "label", "--ledger", ledger_url,
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "[data:encoding]" in err and "'fb'" in err
    (entry,) = _entries(ledger_url)
    assert entry["predicate"]["error"]["code"] == "data:encoding"


def test_a_name_with_a_line_break_gives_one_error_line(data_samples: Path, tmp_path: Path, ledger_url: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "evil\nname.csv"
    path.write_bytes((data_samples / "bad" / "pickle.csv").read_bytes())
    rc = main(["ingest", str(path), "--source", "evil", "--ledger", ledger_url, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    errors = [ln for ln in err.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1 and errors[0].startswith("trainguard: error:"), err
    assert "evil\\nname.csv" in errors[0] and "[data:executable_format]" in errors[0]
    assert not [ln for ln in err.splitlines() if ln.startswith("name.csv")], err  # nothing spills onto a new line


def test_an_unreachable_chained_url_is_bad_input_recorded_without_credentials(
        tmp_path: Path, ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Found by a second review: a refused connection was an internal error (exit 70), and the password of a
    chained URL (``simplecache::ftp://user:pw@host``) was recorded as written."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"simplecache::ftp://svc:{_SECRET}@127.0.0.1:{port}/x.csv"
    rc = main(["ingest", uri, "--source", "remote", "--ledger", ledger_url, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "[data:unreachable]" in err and "Traceback" not in err and _SECRET not in err
    (entry,) = _entries(ledger_url)
    assert entry["predicate"]["error"]["code"] == "data:unreachable"
    assert _SECRET not in _everything_recorded(tmp_path / "out", ledger_url)


def test_a_nested_label_column_against_a_reference_is_bad_input(tmp_path: Path, ledger_url: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Found by review: a list-typed label column crashed the run (exit 70, ``unhashable type``)."""
    ref, batch = tmp_path / "ref.parquet", tmp_path / "nested.parquet"
    pq.write_table(pa.table({"a": [float(i) for i in range(200)], "label": [i % 2 for i in range(200)]}), ref)
    pq.write_table(pa.table({"a": [float(i) for i in range(60)],
                             "label": pa.array([[i % 2] for i in range(60)], pa.list_(pa.int64()))}), batch)
    rc = main(["ingest", str(batch), "--label-column", "label", "--reference", str(ref), "--ledger", ledger_url,
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and "'label'" in err
    (entry,) = _entries(ledger_url)
    assert entry["predicate"]["verdict"] == "error"


@pytest.mark.parametrize("label", ["class", "credit_amount"])  # credit_amount: the fit fails too (continuous)
def test_a_hand_broken_contract_is_a_config_error_recorded_while_the_fit_runs_beside_it(
        label: str, data_samples: Path, tmp_path: Path, ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The contract task runs on the task runner's thread while the scorer is fitted in the flow's: its failure
    still comes back as itself (exit 2, one line, its code), also when the fit fails as well (the contract's
    failure comes first, as when the steps ran in turn), and the attempt is an ``error`` entry."""
    ref, batch = data_samples / "credit" / "reference.csv", data_samples / "credit" / "batch_clean.csv"
    assert main(["ingest", str(ref), "--source", "credit", "--label-column", "class", "--ledger", ledger_url,
                 "--out", str(tmp_path / "ref")]) == 0
    contract = Path(ledger_url.removeprefix("sqlite:///")).parent / "state" / "sources" / "credit" / "contract.toml"
    contract.write_text(contract.read_text(encoding="utf-8") + "\n[columns\n", encoding="utf-8")
    capsys.readouterr()
    rc = main(["ingest", str(batch), "--source", "credit", "--label-column", label, "--ledger", ledger_url,
               "--out", str(tmp_path / "out"), "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert rc == 2 and doc["exit_code"] == 2 and doc["code"] == "config:contract_toml", captured.err
    assert [line for line in captured.err.splitlines() if "error:" in line] == [
        line for line in captured.err.splitlines() if "[config:contract_toml]" in line]
    last = _entries(ledger_url)[-1]
    assert last["predicate"]["verdict"] == "error"
    assert "config:contract_toml" in json.dumps(last["predicate"]["reasons"])
