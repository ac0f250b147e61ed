"""The stand-alone proof verifier (provenance/verify_proof.py) on real and tampered proofs of a ledger."""

from __future__ import annotations

import ast
import base64
import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provenance import verify_proof
from provenance.entries import make_statement
from provenance.gate import append_override, make_override
from provenance.hashing import canonical_json, file_digest
from provenance.ledger import Ledger, open_ledger
from provenance.rotation import ROTATIONS_DIGEST
from provenance.signing import generate_private_key, key_id, public_key_b64, sign_bytes

SCRIPT = Path(verify_proof.__file__)
A, B = "sha256:" + "ab" * 32, "sha256:" + "cd" * 32
Run = Callable[..., tuple[int, dict[str, Any]]]


def _st(digest: str, verdict: str, name: str = "a.csv") -> dict[str, Any]:
    reasons = [] if verdict == "approved" else ["outlier:iforest"]
    return make_statement(subjects=[(name, digest)],
                          predicate={"verdict": verdict, "source": {"name": "s"}, "reasons": reasons})


@pytest.fixture()
def led(tmp_path: Path) -> Iterator[Ledger]:
    """A SQLite ledger (its key beside it) with entries about other digests, so proof paths are nontrivial."""
    ledger = open_ledger(f"sqlite:///{tmp_path}/ledger.db")
    for i in range(5):
        ledger.append(_st(f"sha256:{i:064x}", "approved", f"filler-{i}.csv"))
    yield ledger
    ledger.close()


@pytest.fixture()
def key(led: Ledger) -> str:
    """The ledger's public key, base64 (what `trainguard keys` prints)."""
    return public_key_b64(led.signing_key().public_key())


@pytest.fixture()
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """run(proof, *args): the verifier's main() on ``proof`` with ``--json``: (exit code, printed object)."""

    def _run(proof: Any, *args: str) -> tuple[int, dict[str, Any]]:
        path = tmp_path / "proof.json"
        path.write_text(json.dumps(proof), encoding="utf-8")
        capsys.readouterr()
        rc = verify_proof.main([str(path), "--json", *args])
        out = capsys.readouterr().out
        assert out.count("\n") == 1, out  # one JSON object, nothing else
        return rc, json.loads(out)

    return _run


def _cli(*args: str, rc: int = 0) -> dict[str, Any]:
    """The ``--json`` document a ``trainguard`` command prints (its exit code must be ``rc``)."""
    exe = Path(sys.executable).with_name("trainguard")
    cmd = str(exe) if exe.exists() else shutil.which("trainguard") or pytest.skip("no trainguard script")
    res = subprocess.run([cmd, *args, "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == rc, res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def _cli_prove(led: Ledger, digest: str) -> dict[str, Any]:
    doc = _cli("ledger", "prove", digest, "--ledger", led.url)
    assert doc["ok"] is True
    return doc


# --- the rule, on untampered proofs -------------------------------------------------------------------------
def test_approved_digest_via_cli_proof(led: Ledger, key: str, run: Run) -> None:
    led.append(_st(A, "approved"))
    doc = _cli_prove(led, A)  # printed by `trainguard ledger prove --json`, "ok": true included
    rc, out = run(doc, "--key", key)
    assert rc == 0 and out["ok"] and out["approved"] and out["code"] == "gate:approved"
    assert out["digest"] == A and out["tree_size"] == 6
    assert out["entries"] == [{"index": 5, "verdict": "approved"}]
    # the same inside a gate-style document, which carries the proof under "proof"
    assert run({"ok": True, "approved": True, "proof": doc}, "--key", key)[0] == 0
    # --digest: the proof must be about these bytes (a bare hex digest is normalised)
    assert run(doc, "--key", key, "--digest", A.upper().removeprefix("SHA256:"))[0] == 0


def test_rejected_after_approved_is_refused(led: Ledger, key: str, run: Run) -> None:
    led.append(_st(A, "approved"))
    led.append(_st(A, "rejected"))
    rc, out = run(led.prove(A), "--key", key)
    assert rc == 1 and out["ok"] and not out["approved"]
    assert out["code"] == "gate:rejected" and "rejected by ledger entry 6" in out["message"]


def test_refusal_sticks(led: Ledger, key: str, run: Run) -> None:
    led.append(_st(A, "rejected"))
    led.append(_st(A, "error"))
    led.append(_st(A, "approved"))
    rc, out = run(led.prove(A), "--key", key)
    assert rc == 1 and out["code"] == "gate:refused_before" and "(entry 7) does not lift" in out["message"]
    assert [e["verdict"] for e in out["entries"]] == ["rejected", "error", "approved"]


def test_override_after_rejection(led: Ledger, key: str, run: Run) -> None:
    led.append(_st(A, "approved"))
    led.append(_st(A, "rejected"))
    append_override(led, A, reason="owner reviewed", approver_key=led.signing_key())
    proof = led.prove(A)
    rc, out = run(proof, "--key", key)
    assert rc == 0 and out["approved"] and "override entry 7" in out["message"]
    # an override counts only when its approver key is trusted as one
    other = public_key_b64(generate_private_key().public_key())
    rc, out = run(proof, "--key", key, "--approver-key", other)
    assert rc == 1 and out["code"] == "gate:untrusted_override"
    # and only right after the entry it was signed over: a later refusal is not lifted by it
    led.append(_st(A, "quarantined"))
    rc, out = run(led.prove(A), "--key", key)
    assert rc == 1 and out["code"] == "gate:rejected" and "quarantined by ledger entry 8" in out["message"]
    replayed = json.loads(proof["entry"])  # the same signed override, appended again after the refusal
    del replayed["predicate"]["previous"]
    led.append(replayed)
    rc, out = run(led.prove(A), "--key", key)
    assert rc == 1 and out["code"] == "gate:untrusted_override" and "replayed" in out["message"]


def test_override_with_a_bad_approver_signature(led: Ledger, key: str, run: Run) -> None:
    led.append(_st(A, "rejected"))
    before = led.find(A, verdicts=None)[-1]
    st = make_override(A, reason="r", approver_key=led.signing_key(), supersedes=before)
    st["predicate"]["approval"]["signature"] = sign_bytes(led.signing_key(), b"something else")
    led.append(st)
    rc, out = run(led.prove(A), "--key", key)
    assert rc == 1 and out["code"] == "gate:untrusted_override"
    assert "invalid approver signature" in out["message"]


def test_gate_json_documents(led: Ledger, key: str, run: Run, tmp_path: Path) -> None:
    """`trainguard gate PATH --json` carries the proof under "proof", when it passes and when it refuses."""
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("a,b\n1,2\n")
    bad.write_text("a,b\n1,3\n")
    led.append(_st(file_digest(good), "approved", "good.csv"))
    led.append(_st(file_digest(bad), "approved", "bad.csv"))
    led.append(_st(file_digest(bad), "quarantined", "bad.csv"))
    rc, out = run(_cli("gate", str(good), "--ledger", led.url), "--key", key, "--digest", file_digest(good))
    assert rc == 0 and out["digest"] == file_digest(good)
    refused = _cli("gate", str(bad), "--ledger", led.url, rc=1)
    assert refused["ok"] is False and "proof" in refused
    rc, out = run(refused, "--key", key)
    assert rc == 1 and out["ok"] and out["code"] == "gate:rejected" == refused["code"]


def test_rotated_ledger(led: Ledger, key: str, run: Run) -> None:
    """After a key rotation the checkpoints are the new key's: this verifier trusts only the keys it is given
    (it does not follow rotation entries); a rotation entry neither approves nor refuses."""
    new = generate_private_key()
    led.rotate(new, reason="yearly")
    led.append(_st(A, "approved"))
    proof = led.prove(A)
    assert run(proof, "--key", public_key_b64(new.public_key()))[0] == 0
    rc, out = run(proof, "--key", key)
    assert rc == 3 and out["code"] == "proof:checkpoint"
    rc, out = run(led.prove(ROTATIONS_DIGEST), "--key", public_key_b64(new.public_key()))
    assert rc == 1 and out["code"] == "gate:no_verdict"
    assert out["entries"] == [{"index": 5, "verdict": "key_rotation"}]


def test_error_entries_alone_have_no_verdict(led: Ledger, key: str, run: Run) -> None:
    led.append(_st(A, "error"))
    rc, out = run(led.prove(A), "--key", key)
    assert rc == 1 and out["code"] == "gate:no_verdict"


def test_absence(led: Ledger, key: str, run: Run) -> None:
    """The map's proof of absence refuses (1); a real proof of A claimed for B fails its map check (3)."""
    led.append(_st(A, "approved"))
    proof_a = led.prove(A)
    history = led.history(B)  # `ledger prove` refuses an absent digest: build the document by hand
    assert history.records == [] and history.map_proof is not None and history.checkpoint is not None
    cp = history.checkpoint
    absent = {"entry": None, "digest": B, "map_root": cp["map_root"], "entries": [], "checkpoint": cp,
              "map_proof": history.map_proof.to_json(), "checkpoint_note": led.note(int(cp["tree_size"]))}
    rc, out = run(absent, "--key", key)
    assert rc == 1 and out["ok"] and out["code"] == "gate:unknown" and out["entries"] == []
    # B's absence proof given with A's entries, or A's proof claimed for B: both fail
    rc, out = run({**absent, "entries": proof_a["entries"]}, "--key", key)
    assert rc == 3 and out["code"] == "proof:entries"
    rc, out = run({**proof_a, "digest": B}, "--key", key)
    assert rc == 3 and out["code"] == "proof:map" and "another digest" in out["message"] and not out["ok"]
    # a --digest the proof is not about
    rc, out = run(proof_a, "--key", key, "--digest", B)
    assert rc == 3 and out["code"] == "proof:digest"


# --- tampering: every change fails closed with exit 3, naming the check -------------------------------------
def _flip(hexstr: str) -> str:
    return ("0" if hexstr[0] != "0" else "1") + hexstr[1:]


def _resign(cp: dict[str, Any]) -> None:
    other = generate_private_key()
    cp["key_id"] = key_id(other.public_key())
    cp["signature"] = sign_bytes(other, canonical_json({k: v for k, v in cp.items() if k != "signature"}))


def _note_line(p: dict[str, Any], n: int, new: str) -> None:
    lines = p["checkpoint_note"].split("\n")
    lines[n] = new
    p["checkpoint_note"] = "\n".join(lines)


def _drop_map_entry(p: dict[str, Any]) -> None:  # entry 5 out of the map's list and of "entries" alike
    del p["map_proof"]["leaf"]["entries"][0]
    del p["entries"][0]


def _set(member: str, value: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    return lambda p: p.update({member: value(p[member])})


_MAP_ROOT_LINE = "trainguard-map-root " + base64.b64encode(bytes(32)).decode()
TAMPER: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "entry byte in entries": (lambda p: p["entries"][0].update(
        entry=p["entries"][0]["entry"].replace('"approved"', '"approvee"')), "entries"),
    "decisive entry byte": (_set("entry", lambda e: e.replace('"override"', '"overridf"')), "inclusion"),
    "entry dropped from entries": (lambda p: p["entries"].pop(1), "entries"),
    "entry added to entries": (lambda p: p["entries"].append(p["entries"][0]), "entries"),
    "entry dropped from the map list": (_drop_map_entry, "map"),
    "map sibling": (lambda p: p["map_proof"].update(
        siblings=[s and _flip(s) for s in p["map_proof"]["siblings"]]), "map"),
    "map leaf key": (lambda p: p["map_proof"]["leaf"].update(key=B[7:]), "map"),
    "checkpoint by another key": (lambda p: _resign(p["checkpoint"]), "checkpoint"),
    "checkpoint tree size": (lambda p: p["checkpoint"].update(tree_size=9), "checkpoint"),
    "checkpoint map root": (lambda p: p["checkpoint"].update(map_root=_flip(p["map_root"])), "checkpoint"),
    "note size line": (lambda p: _note_line(p, 1, "9"), "note"),
    "note map root line": (lambda p: _note_line(p, 3, _MAP_ROOT_LINE), "note"),
    "note signature": (_set("checkpoint_note", lambda n: n[:-7] + "AAAAA=\n"), "note"),
    "note without signature": (_set("checkpoint_note", lambda n: n.split("\n\n")[0] + "\n"), "note"),
    "inclusion proof element": (_set("inclusion_proof", lambda a: [_flip(a[0]), *a[1:]]), "inclusion"),
    "inclusion proof shortened": (_set("inclusion_proof", lambda path: path[:-1]), "inclusion"),
    "leaf index": (_set("leaf_index", lambda i: i - 1), "inclusion"),
    "top-level root hash": (_set("root_hash", _flip), "format"),
    "missing map proof": (lambda p: p.pop("map_proof"), "format"),
}


@pytest.mark.parametrize("what", list(TAMPER))
def test_tampered_proof_fails_closed(what: str, led: Ledger, key: str, run: Run) -> None:
    led.append(_st(A, "approved"))
    led.append(_st(A, "rejected"))
    append_override(led, A, reason="owner reviewed", approver_key=led.signing_key())
    proof = led.prove(A)
    assert run(proof, "--key", key)[0] == 0
    assert any(proof["map_proof"]["siblings"]) and len(proof["inclusion_proof"]) >= 2
    tampered = copy.deepcopy(proof)
    change, check = TAMPER[what]
    change(tampered)
    assert tampered != proof
    rc, out = run(tampered, "--key", key)
    assert (rc, out["code"], out["ok"], out["approved"]) == (3, f"proof:{check}", False, False), out
    assert f"check {check}:" in out["message"]


def test_untrusted_key(led: Ledger, run: Run) -> None:
    led.append(_st(A, "approved"))
    rc, out = run(led.prove(A), "--key", public_key_b64(generate_private_key().public_key()))
    assert rc == 3 and out["code"] == "proof:checkpoint" and "untrusted key" in out["message"]
    assert key_id(led.signing_key().public_key()) in out["message"]  # found: the key that did sign


def test_checkpoint_and_note_by_another_trusted_key(led: Ledger, run: Run) -> None:
    """A checkpoint re-signed by a key the verifier trusts still needs its note signed by a trusted key."""
    led.append(_st(A, "approved"))
    proof = led.prove(A)
    other = generate_private_key()
    cp = proof["checkpoint"]
    cp["key_id"] = key_id(other.public_key())
    cp["signature"] = sign_bytes(other, canonical_json({k: v for k, v in cp.items() if k != "signature"}))
    rc, out = run(proof, "--key", public_key_b64(other.public_key()))
    assert rc == 3 and out["code"] == "proof:note" and "no trusted key signed" in out["message"]


# --- usage and input ----------------------------------------------------------------------------------------
def test_keys_file_and_usage_errors(led: Ledger, key: str, run: Run, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    led.append(_st(A, "approved"))
    proof = led.prove(A)
    keys = tmp_path / "trusted.txt"
    other = public_key_b64(generate_private_key().public_key())
    keys.write_text(f"# trusted ledger keys\n\n{other} old key\n  {key}   the ledger's key\n")
    assert run(proof, "--keys", str(keys))[0] == 0
    for args in ([], ["--key", "not-base64!"], ["--key", base64.b64encode(b"short").decode()],
                 ["--keys", str(tmp_path / "missing.txt")], ["--key", key, "--bogus"],
                 ["--key", key, "--digest", "sha256:12"]):
        rc, out = run(proof, *args)
        assert rc == 2 and out["code"] == "usage" and not out["ok"], (args, out)
    for text in ("{not json", ""):
        (tmp_path / "bad.json").write_text(text)
        assert verify_proof.main([str(tmp_path / "bad.json"), "--key", key]) == 2
        assert "usage error: cannot read the proof document" in capsys.readouterr().err
    assert verify_proof.main([str(tmp_path / "nothing.json"), "--key", key]) == 2


def test_malformed_documents_fail_closed(led: Ledger, key: str, run: Run) -> None:
    led.append(_st(A, "approved"))
    proof = led.prove(A)
    for doc in ([proof], "text", {}, {**proof, "entries": None}, {**proof, "entries": [{"index": True}]},
                {**proof, "map_proof": {**proof["map_proof"], "siblings": [None] * 300}},
                {**proof, "checkpoint_note": 7}, {**proof, "checkpoint": {**proof["checkpoint"], "x": 1}}):
        rc, out = run(doc, "--key", key)
        assert rc == 3 and out["code"].startswith("proof:") and "Traceback" not in out["message"], (doc, out)


def test_one_line_output(led: Ledger, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    led.append(_st(A, "rejected"))
    path = tmp_path / "p.json"
    path.write_text(json.dumps(led.prove(A)))
    assert verify_proof.main([str(path), "--key", key]) == 1
    out = capsys.readouterr().out
    assert out.startswith("refused: ") and out.count("\n") == 1 and "(gate:rejected)" in out


# --- stand-alone --------------------------------------------------------------------------------------------
def test_imports_only_stdlib_and_cryptography() -> None:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(SCRIPT.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    assert roots - {"cryptography", "__future__"} <= set(sys.stdlib_module_names), roots
    assert "cryptography" in roots


def test_runs_as_a_script_from_an_empty_dir(led: Ledger, key: str, tmp_path: Path) -> None:
    """A copy in an empty directory runs with `python` and `python -I`, also with trainguard's packages made
    unimportable (the editable install would otherwise still find them)."""
    led.append(_st(A, "approved"))
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = Path(shutil.copy(SCRIPT, work / "verify_proof.py"))
    (work / "proof.json").write_text(json.dumps(_cli_prove(led, A)))
    args = ["proof.json", "--key", key]
    block = ("import runpy, sys\nfor m in ('provenance', 'pipelines', 'checks'): sys.modules[m] = None\n"
             "sys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')")
    env = {"PATH": "/usr/bin:/bin"}
    for cmd in ([sys.executable, "verify_proof.py", *args], [sys.executable, "-I", "verify_proof.py", *args],
                [sys.executable, "-I", "-c", block, str(script), *args]):
        res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=60)
        assert (res.returncode, res.stderr) == (0, ""), (cmd, res)
        assert res.stdout.startswith("approved: " + A)
    res = subprocess.run([sys.executable, "-I", "verify_proof.py", "proof.json", "--key", "AAAA"], cwd=work,
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr and res.stderr.startswith("usage error")
