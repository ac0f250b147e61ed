"""``trainguard ledger checkpoint | upgrade`` and ``trainguard keys rotate`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenance import note
from provenance.checkpoint_note import map_root_of
from tests.pipelines.test_cli_audit import _append, _files, env, jrun, run  # noqa: F401 - fixtures and helpers


def test_checkpoint_prints_a_c2sp_signed_note_standard_verifiers_read(env: Path,  # noqa: F811
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _files(env)
    code, text, _ = run(capsys, "ledger", "checkpoint")
    assert code == 0
    code, doc = jrun(capsys, "ledger", "checkpoint")
    assert code == 0 and doc["note"] == text
    name, _, pub = note.parse_verifier_key(doc["verifier_keys"][0])  # <origin>+<hash>+<key>, as Go's note reads
    body, signers = note.verify_note(text, {name: pub})
    ck = note.parse_checkpoint(body)
    cp = doc["checkpoint"]
    assert signers == [cp["origin"]] and ck.origin == cp["origin"] and ck.tree_size == cp["tree_size"] == 2
    assert ck.root_hash.hex() == cp["root_hash"] and map_root_of(ck) == bytes.fromhex(cp["map_root"])
    code, _, _ = run(capsys, "ledger", "export", "--out", "bundle")
    assert code == 0 and (env / "bundle" / "checkpoint.note").read_text() == text
    assert (env / "bundle" / "verify_proof.py").is_file()


def test_keys_rotate_hands_the_ledger_to_a_new_key(env: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
                                                   ) -> None:
    good, bad = _files(env)
    code, trusted_old, _ = run(capsys, "keys")
    (env / "trusted-old.txt").write_text(trusted_old)
    code, doc = jrun(capsys, "keys", "rotate", "--reason", "yearly rotation")
    assert code == 0 and doc["index"] == 2 and doc["old_key_id"] != doc["new_key_id"]
    assert (env / "led" / f"ledger.key.retired-{doc['old_key_id'][:12]}").is_file()
    _append(env / "good.csv", "approved")  # signed by the new key, found where the old one was
    code, trusted_new, _ = run(capsys, "keys")
    assert trusted_new != trusted_old
    for keys in (trusted_old, trusted_new):
        (env / "trusted.txt").write_text(keys)
        assert run(capsys, "gate", str(good), "--trusted-keys", "trusted.txt")[0] == 0
        assert run(capsys, "gate", str(bad), "--trusted-keys", "trusted.txt")[0] == 1
        assert run(capsys, "ledger", "verify", "--all-signatures", "--trusted-keys", "trusted.txt")[0] == 0
        assert run(capsys, "ledger", "checkpoint", "--trusted-keys", "trusted.txt")[0] == 0


def test_keys_rotate_with_the_key_in_an_environment_variable_needs_out(
        env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    _files(env)
    monkeypatch.setenv("TRAINGUARD_SIGNING_KEY", str(env / "led" / "ledger.key"))
    code, out, err = run(capsys, "keys", "rotate", "--reason", "r", "--json")
    assert code == 2 and json.loads(out)["code"] == "usage:rotate_out"
    code, doc = jrun(capsys, "keys", "rotate", "--reason", "r", "--out", "next.key")
    assert code == 0 and doc["key_path"] == "next.key"
    monkeypatch.setenv("TRAINGUARD_SIGNING_KEY", str(env / "next.key"))
    _append(env / "good.csv", "approved")


def test_upgrade_of_an_indexed_ledger_does_nothing(env: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
                                                   ) -> None:
    _files(env)
    code, doc = jrun(capsys, "ledger", "upgrade")
    assert code == 0 and doc["upgraded"] is False and doc["entries"] == 2
