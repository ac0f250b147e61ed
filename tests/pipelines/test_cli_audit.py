"""``trainguard gate | approve | ledger ... | keys``: exit codes, JSON documents, and a proof checked independently."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pipelines.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("TRAINGUARD_SIGNING_KEY", "TRAINGUARD_TRUSTED_KEYS", "TRAINGUARD_APPROVER_KEYS", "TRAINGUARD_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAINGUARD_LEDGER", "sqlite:///led/ledger.db")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def jrun(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code, out, _ = run(capsys, *argv, "--json")
    return code, json.loads(out)


def _append(path: Path, verdict: str, source: str = "vendor-a") -> None:
    from provenance.entries import make_statement
    from provenance.hashing import file_digest
    from provenance.ledger import open_ledger

    with open_ledger() as led:
        led.append(make_statement(subjects=[(path.name, file_digest(path))],
                                  predicate={"verdict": verdict, "source": {"name": source}, "reasons": ["r:" + verdict]}))


def _files(env: Path) -> tuple[Path, Path]:
    good, bad = env / "good.csv", env / "bad.csv"
    good.write_text("a,b\n1,2\n")
    bad.write_text("a,b\n1,999999\n")
    _append(good, "approved")
    _append(bad, "rejected", source="vendor-b")
    return good, bad


def test_every_command_has_description_and_example() -> None:
    parser = build_parser()
    seen = 0

    def walk(p: click.Command) -> None:
        nonlocal seen
        if isinstance(p, click.Group):
            for name, child in p.commands.items():
                if name in {"gate", "approve", "ledger", "keys", "verify", "log", "show", "prove", "export",
                            "generate"}:
                    assert child.help and (child.epilog or "").startswith("Example: "), name  # help: the description
                    seen += 1
                walk(child)

    walk(parser)
    assert seen >= 10


def test_gate_exit_codes_and_json(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = _files(env)
    code, doc = jrun(capsys, "gate", str(good))
    assert code == 0 and doc["approved"] is True and doc["verdict"] == "approved" and doc["leaf_index"] == 0
    code, out, err = run(capsys, "gate", str(bad))
    assert code == 1 and out == "" and "rejected by ledger entry 1" in err and len(err.strip().splitlines()) == 1
    (env / "new.csv").write_text("x")
    assert run(capsys, "gate", "new.csv")[0] == 1
    code, _, err = run(capsys, "gate", "missing.csv")
    assert code == 2 and "missing.csv" in err
    code, doc = jrun(capsys, "gate", str(good))
    (env / "seen.json").write_text(json.dumps(doc["checkpoint"]))  # kept by the training job for next time
    assert run(capsys, "gate", str(good), "--checkpoint", "seen.json")[0] == 0
    code, doc = jrun(capsys, "gate", str(bad))  # a refusal with --json is a document on stdout as well
    assert code == 1 and doc["approved"] is False and doc["code"] == "gate:rejected" and doc["exit_code"] == 1
    assert doc["ok"] is False and doc["digest"].startswith("sha256:") and "rejected by ledger entry 1" in doc["message"]


def test_approve_override_needs_a_trusted_approver(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, bad = _files(env)
    code, out, _ = run(capsys, "keys", "generate", "--out", "approver.key")
    approver_pub = out.strip()
    assert code == 0 and len(base64.b64decode(approver_pub)) == 32
    assert stat.S_IMODE((env / "approver.key").stat().st_mode) == 0o600
    code, out, err = run(capsys, "approve", str(bad), "--reason", "owner checked the outlier", "--approver-key",
                         "approver.key", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["index"] == 2
    assert doc["approver_trusted"] is False and "not trusted here" in err  # said, not silent (found by review)
    assert doc["effective"] is False
    assert run(capsys, "gate", str(bad))[0] == 1  # approver not trusted by default
    code, keys = jrun(capsys, "keys", "show")
    trusted = env / "trusted.txt"
    trusted.write_text(f"{keys['signing_key']['public_key']} ledger\n{approver_pub} approver\n")
    code, doc = jrun(capsys, "gate", str(bad), "--trusted-keys", str(trusted))
    assert code == 0 and doc["verdict"] == "override"
    code, doc = jrun(capsys, "approve", str(bad), "--reason", "signed with the ledger's own key")
    assert code == 0 and doc["approver_trusted"] is True and doc["effective"] is True
    assert json.loads(jrun(capsys, "ledger", "show", "3")[1]["entry"])["predicate"]["approval"]["supersedes"][
        "index"] == 2
    assert run(capsys, "gate", str(bad))[0] == 0


def test_ledger_log_show_and_verify(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, _ = _files(env)
    code, doc = jrun(capsys, "ledger", "log", "--verdict", "rejected")
    assert code == 0 and [e["index"] for e in doc["entries"]] == [1] and doc["entries"][0]["source"] == "vendor-b"
    code, doc = jrun(capsys, "ledger", "log", "--source", "vendor-a", "--since", "2000-01-01", "--until", "2999-01-01")
    assert [e["index"] for e in doc["entries"]] == [0]
    assert jrun(capsys, "ledger", "log", "--until", "2000-01-01")[1]["entries"] == []
    code, out, _ = run(capsys, "ledger", "log")
    assert code == 0 and "verdict" in out and "rejected" in out
    assert run(capsys, "ledger", "log", "--since", "yesterday")[0] == 2
    code, doc = jrun(capsys, "ledger", "show", "1")
    assert json.loads(doc["entry"])["predicate"]["verdict"] == "rejected" and doc["leaf_index"] == 1
    code, doc = jrun(capsys, "ledger", "show", str(good))
    assert doc["leaf_index"] == 0
    code, doc = jrun(capsys, "ledger", "verify")
    assert code == 0 and doc["ok"] and doc["tree_size"] == 2


def test_verify_exits_3_naming_the_bad_entry(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _files(env)
    import sqlite3

    con = sqlite3.connect(env / "led" / "ledger.db")
    body = con.execute("select body from entries where idx = 1").fetchone()[0]
    con.execute("update entries set body = ? where idx = 1", (body.replace(b"vendor-b", b"vendor-c"),))
    con.commit()
    con.close()
    code, out, err = run(capsys, "ledger", "verify")
    assert code == 3 and out == "" and "entry 1" in err and "expected" in err and "found" in err


def test_export_and_verify_bundle_without_the_database(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, _ = _files(env)
    assert run(capsys, "ledger", "export", "--out", "audit1")[0] == 0
    (env / "a-file").write_text("x")
    code, _, err = run(capsys, "ledger", "export", "--out", "a-file")  # exit 70 before (found by review)
    assert code == 2 and "cannot export to a-file" in err and "[input:bad_out]" in err
    _append(good, "approved")
    assert run(capsys, "ledger", "export", "--out", "audit2")[0] == 0
    for p in (env / "led").iterdir():
        p.unlink()  # no database from here on
    code, _, err = run(capsys, "ledger", "verify")  # readers never create an empty ledger where none is
    assert code == 2 and "[ledger:not_found]" in err and not (env / "led" / "ledger.db").exists()
    code, doc = jrun(capsys, "ledger", "verify", "--bundle", "audit2", "--checkpoint", "audit1/checkpoint.json")
    assert code == 0 and doc["tree_size"] == 3
    code, _, err = run(capsys, "ledger", "verify", "--bundle", "audit1", "--checkpoint", "audit2/checkpoint.json")
    assert code == 3 and "shorter" in err


# --- an independent RFC 6962 verifier (RFC 9162 section 2.1.3.2), written without importing provenance -------
def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def rfc9162_verify_inclusion(leaf_index: int, tree_size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    if leaf_index >= tree_size:
        return False
    fn, sn, r = leaf_index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = _h(b"\x01" + p + r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _h(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def test_prove_output_verifies_with_an_independent_verifier(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, _ = _files(env)
    for i in range(5):
        extra = env / f"x{i}.csv"
        extra.write_text(str(i))
        _append(extra, "approved")
    code, out, _ = run(capsys, "keys")
    public_key_b64 = out.split()[0]
    assert run(capsys, "keys", "show")[1] == out
    digest = "sha256:" + hashlib.sha256(good.read_bytes()).hexdigest()
    code, proof = jrun(capsys, "ledger", "prove", digest)
    assert code == 0
    assert list(proof) == sorted(["entry", "leaf_index", "tree_size", "leaf_hash", "inclusion_proof", "root_hash",
                                  "checkpoint", "digest", "map_root", "map_proof", "entries", "checkpoint_note",
                                  "ok"])  # docs/design.md's proof, plus the "ok" of every success
    # 1. the entry names the digest and hashes to the leaf
    entry = json.loads(proof["entry"])
    assert digest[7:] in [s["digest"]["sha256"] for s in entry["subject"]]
    leaf = _h(b"\x00" + proof["entry"].encode("utf-8"))
    assert leaf.hex() == proof["leaf_hash"]
    # 2. the leaf is in the tree with that root
    path = [bytes.fromhex(h) for h in proof["inclusion_proof"]]
    assert rfc9162_verify_inclusion(proof["leaf_index"], proof["tree_size"], leaf, path, bytes.fromhex(proof["root_hash"]))
    assert not rfc9162_verify_inclusion(proof["leaf_index"], proof["tree_size"], _h(b"\x00x"), path,
                                        bytes.fromhex(proof["root_hash"]))
    # 3. the root is signed by the public key alone
    cp = proof["checkpoint"]
    assert cp["root_hash"] == proof["root_hash"] and cp["tree_size"] == proof["tree_size"] == 7
    raw = base64.b64decode(public_key_b64)
    assert cp["key_id"] == hashlib.sha256(raw).hexdigest()
    unsigned = {k: v for k, v in cp.items() if k != "signature"}
    message = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(cp["signature"]), message)


def test_installed_cli_gate_process(env: Path) -> None:
    good, bad = _files(env)
    exe = Path(sys.executable).parent / "trainguard"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pipelines.cli"]
    envs = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run([*cmd, "gate", str(good), "--json"], capture_output=True, text=True, env=envs, cwd=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["approved"] is True
    no = subprocess.run([*cmd, "gate", str(bad)], capture_output=True, text=True, env=envs, cwd=env)
    assert no.returncode == 1 and no.stdout == "" and "Traceback" not in no.stderr


def test_keys_options_before_the_subcommand_are_kept(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``keys --ledger X generate`` writes X's key (it used to write the default ledger's), and ``keys --json show``
    prints JSON (found by review: the subcommand's defaults overwrote the options given before it)."""
    other = env / "other" / "ledger.db"
    code, _, _ = run(capsys, "keys", "--ledger", f"sqlite:///{other}", "generate")
    assert code == 0 and (env / "other" / "ledger.key").exists() and not (env / "led").exists()
    code, out, _ = run(capsys, "keys", "--json", "--ledger", f"sqlite:///{other}", "show")
    assert code == 0 and "signing_key" in json.loads(out)


def test_review_messages_and_exit_codes(env: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each was misleading or the wrong exit code before (found by review)."""
    _, bad = _files(env)
    assert run(capsys, "approve", str(bad), "--reason", "reviewed")[0] == 0
    code, _, err = run(capsys, "approve", "nofile.csv", "--reason", "x")  # was "not a SHA-256 digest"
    assert code == 2 and "neither an existing file nor a sha256:<hex> digest" in err
    assert run(capsys, "ledger", "log", "--limit", "-1")[0] == 2  # was accepted, and returned everything
    (env / "notes.txt").write_text("not a checkpoint\n")
    code, _, err = run(capsys, "ledger", "verify", "--checkpoint", "notes.txt")  # was 3: an integrity failure
    assert code == 2 and "[input:bad_checkpoint]" in err
    code, _, err = run(capsys, "keys", "generate")  # the ledger's own key exists and it has entries
    assert code == 2 and "[keys:ledger_has_key]" in err
    code, _, err = run(capsys, "approve", str(bad), "--reason", "x", "--ledger", "sqlite:///typo/ledger.db")
    assert code == 2 and "[ledger:not_found]" in err and not (env / "typo").exists()
    monkeypatch.setenv("TRAINGUARD_APPROVER_KEYS", "nope.txt")
    code, _, err = run(capsys, "gate", str(bad))  # named the trusted-keys file
    assert code == 2 and "cannot read $TRAINGUARD_APPROVER_KEYS file nope.txt" in err


def test_every_success_document_says_ok_true(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found by review: failure documents had "ok": false, success documents no "ok" at all (a KeyError)."""
    good, bad = _files(env)
    digest = "sha256:" + hashlib.sha256(good.read_bytes()).hexdigest()
    commands = [("gate", str(good)), ("approve", str(bad), "--reason", "owner checked"),
                ("ledger", "verify"), ("ledger", "log"), ("ledger", "show", "0"), ("ledger", "prove", digest),
                ("ledger", "export", "--out", "bundle"), ("keys",), ("keys", "show"),
                ("keys", "generate", "--out", "approver.key"), ("keys", "show", "--key", "approver.key")]
    for argv in commands:
        code, doc = jrun(capsys, *argv)
        assert code == 0 and doc["ok"] is True, argv
    code, doc = jrun(capsys, "gate", "missing.csv")
    assert code == 2 and doc["ok"] is False


def test_results_are_on_stdout_and_a_piped_log_is_not_cut(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found by review: approve and ledger export printed their result on stderr only, and ledger log piped to a
    file cut times and digests to rich's 80 columns."""
    from provenance.ledger import open_ledger

    good, bad = _files(env)
    code, out, _ = run(capsys, "approve", str(bad), "--reason", "owner checked")
    assert code == 0 and out.startswith("override appended as entry 2 ")
    code, out, _ = run(capsys, "ledger", "export", "--out", "bundle")
    assert code == 0 and out == "exported 3 entries, checkpoint and keys to bundle\n"
    code, out, _ = run(capsys, "ledger", "log")  # captured: stdout is not a terminal, as with `> audit.txt`
    assert code == 0 and "\u2026" not in out
    with open_ledger() as led:
        for i in range(3):
            pred = led.record(i).statement["predicate"]
            assert pred["time"] in out
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    assert f"sha256:{digest[:12]}" in out  # the log shows 19 characters of a digest, whole
    assert max(len(line) for line in out.splitlines()) < 300  # laid out at its natural width, not padded


def test_ingest_help_names_every_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    assert "CSV, TSV, Parquet or JSON lines" in capsys.readouterr().out
