#!/usr/bin/env python3
"""Stand-alone verifier of a trainguard proof document: it needs only the stdlib, ``cryptography`` and the
ledger's public key, and imports nothing from trainguard, so a third party can copy this file and run it.

Input: ``trainguard ledger prove DIGEST --json`` output (or an object holding it under ``"proof"``).
Checks, in order, failing closed:

1. checkpoint: its ``key_id`` (hex SHA-256 of a raw 32-byte Ed25519 key) is a trusted key whose signature
   verifies over the canonical JSON (sorted keys, no spaces, UTF-8) of the checkpoint without ``signature``.
2. map: the map proof, keyed by the digest's 32 bytes, leads to the signed ``map_root`` of the sparse Merkle
   map from digest to entry list, proving the digest's complete list (or that no entry names it). Empty
   subtree: 32 zero bytes; one key: SHA-256(0x02 || key || per entry: 8-byte big-endian index || leaf hash);
   any other: SHA-256(0x03 || left || right), empty when both are; key bits MSB first, 0 = left.
3. entries: ``entries`` are exactly that list (leaf hash = SHA-256(0x00 || bytes)) and name the digest.
4. inclusion: the decisive ``entry`` is one of them; its RFC 9162 audit path leads to the signed root.
5. note: the C2SP signed note, if any, is signed by a trusted key under the origin and states the same tree.
6. the gate's rule: refusals (rejected, quarantined) stick; only a valid override after the newest one (an
   approver key's signature over the entry directly before it) approves; ``error`` (and ``key_rotation``)
   entries neither approve nor refuse; otherwise the newest ``approved`` entry approves.

Prints one line, or with ``--json`` ``{"ok" (checks 1-5 passed), "approved", "digest", "code", "message",
"tree_size", "entries"}``. Exit 0 approved, 1 refused by the rule, 2 usage or unreadable input, 3 a check
failed. Example (the key is in ``trainguard keys --json``)::

    python verify_proof.py proof.json --key sc6hyqsc4IHgxn6bAwf5jiEkcTpnMP8EXbIbP6xg1Ts=
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

STATEMENT = "https://in-toto.io/Statement/v1"
TYPES = {"override": "override/v1", "key_rotation": "key-rotation/v1"}  # by verdict; else ingestion/v1
VERDICTS = {"approved", "rejected", "quarantined", "override", "error", "key_rotation"}
REFUSALS = {"rejected", "quarantined"}
CHECKPOINT_FIELDS = {"origin", "tree_size", "root_hash", "map_root", "timestamp", "key_id", "signature"}
EMPTY, HEX64, DIGEST = bytes(32), re.compile(r"[0-9a-f]{64}\Z"), re.compile(r"sha256:[0-9a-f]{64}\Z")
Keys = dict[str, Ed25519PublicKey]  # key id (hex SHA-256 of the raw key) -> key
Record = tuple[int, str, dict[str, Any]]  # (entry index, leaf hash hex, statement)


class ProofError(Exception):
    """A failed check (``check`` "usage": bad usage or unreadable input), with what was expected and found."""

    def __init__(self, check: str, what: str, expected: object = None, found: object = None) -> None:
        detail = "" if expected is None else f": expected {expected}, found {found}"
        super().__init__(what + detail if check == "usage" else f"check {check}: {what}{detail}")
        self.check = check


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ProofError("usage", message)


def need(ok: object, check: str, what: str, expected: object = None, found: object = None) -> None:
    if not ok:
        raise ProofError(check, what, expected, found)


def sha256(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def canonical(obj: Any) -> bytes:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def b64(text: object) -> bytes | None:
    """Strict, canonical padded base64 (None when ``text`` is not that)."""
    try:
        raw = base64.b64decode(text, validate=True) if isinstance(text, str) else None
    except (binascii.Error, ValueError):
        return None
    return raw if raw is not None and base64.b64encode(raw).decode() == text else None


def hex32(value: object, what: str, check: str = "format") -> bytes:
    if isinstance(value, str) and HEX64.match(value):
        return bytes.fromhex(value)
    raise ProofError(check, f"{what} is not 64 lowercase hex digits", "a SHA-256 hash", repr(value)[:80])


def index_of(value: object, what: str, check: str = "format") -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ProofError(check, f"{what} is not an entry index", "an integer >= 0", repr(value)[:40])


def signed_by(pub: Ed25519PublicKey, signature: bytes | None, message: bytes) -> bool:
    try:
        pub.verify(signature or b"", message)
    except InvalidSignature:
        return False
    return True


def read_keys(keys: list[str], files: list[str]) -> Keys:
    """Keys from base64 arguments and files (one key a line, maybe a comment after it; '#' lines ignored)."""
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                keys = keys + [t.split()[0] for t in fh if t.strip() and not t.strip().startswith("#")]
        except (OSError, UnicodeDecodeError) as exc:
            raise ProofError("usage", f"cannot read key file {path}: {exc}") from None
    raws = [b64(k) for k in keys]
    for k, raw in zip(keys, raws, strict=True):
        need(raw is not None and len(raw) == 32, "usage", f"not a base64 Ed25519 public key: {k!r}")
    return {hashlib.sha256(raw).hexdigest(): Ed25519PublicKey.from_public_bytes(raw) for raw in raws if raw}


def check_checkpoint(cp: Any, trusted: Keys) -> dict[str, Any]:
    """Check 1: ``cp`` has the checkpoint's fields and a trusted key's valid signature."""
    need(isinstance(cp, dict) and set(cp) == CHECKPOINT_FIELDS, "checkpoint", "malformed",
         sorted(CHECKPOINT_FIELDS), sorted(cp) if isinstance(cp, dict) else type(cp).__name__)
    need(cp["key_id"] in trusted, "checkpoint", "signed by an untrusted key", f"one of {sorted(trusted)}",
         cp["key_id"])
    body = canonical({k: v for k, v in cp.items() if k != "signature"})
    need(signed_by(trusted[cp["key_id"]], b64(cp["signature"]), body), "checkpoint", "invalid signature",
         f"a signature by key {cp['key_id'][:16]}", str(cp["signature"])[:24])
    return cp


def verify_map(root: bytes, key: bytes, mp: dict[str, Any]) -> list[tuple[int, str]]:
    """Check 2: the complete entry list of ``key`` ([] when absent) that the map proof ``mp`` proves."""
    def bit(k: bytes, d: int) -> int:
        return (k[d >> 3] >> (7 - (d & 7))) & 1

    def node(left: bytes, right: bytes) -> bytes:
        return EMPTY if left == EMPTY and right == EMPTY else sha256(b"\x03", left, right)

    need(hex32(mp["key"], "map_proof.key", "map") == key, "map", "the proof is for another digest", key.hex(),
         mp["key"])
    siblings = [EMPTY if s is None else hex32(s, "a map proof sibling", "map") for s in mp["siblings"]]
    need(len(siblings) <= 256, "map", "the map proof is too deep", "at most 256 siblings", len(siblings))
    leaf, refs, h = mp["leaf"], [], EMPTY
    if leaf is not None:
        lkey = hex32(leaf["key"], "the map leaf's key", "map")
        pairs = [(index_of(i, "a map index", "map"), hex32(x, "a map hash", "map"))
                 for i, x in leaf["entries"]]
        indices = [i for i, _ in pairs]
        need(indices and indices == sorted(set(indices)), "map", "the leaf's entry list is not strictly "
             "increasing", "entry indices oldest first", indices[:8])
        need(all(bit(lkey, d) == bit(key, d) for d in range(len(siblings))), "map",
             "the leaf's key is off the digest's path", key.hex(), lkey.hex())
        h = sha256(b"\x02", lkey, *(i.to_bytes(8, "big") + lh for i, lh in pairs))
        refs = [(i, lh.hex()) for i, lh in pairs] if lkey == key else []
    for d in range(len(siblings), 0, -1):
        h = node(siblings[d - 1], h) if bit(key, d - 1) else node(h, siblings[d - 1])
    need(h == root, "map", "the map proof does not lead to the signed map root", root.hex(), h.hex())
    return refs


def parse_entry(index: int, text: str, digest: str) -> dict[str, Any]:
    """Check 3: an entry is the canonical JSON of a statement of a known type naming ``digest``."""
    try:
        st = json.loads(text)
        pred, names = st["predicate"], ["sha256:" + s["digest"]["sha256"] for s in st["subject"]]
        ok = canonical(st) == text.encode() and st["_type"] == STATEMENT and pred["verdict"] in VERDICTS \
            and st["predicateType"] == "https://trainguard.dev/" + TYPES.get(pred["verdict"], "ingestion/v1")
    except (ValueError, KeyError, TypeError, RecursionError):
        ok, names = False, []
    need(ok, "entries", f"entry {index} is not a ledger entry", "canonical JSON of a statement", text[:80])
    need(digest in names, "entries", f"entry {index} does not name the digest", digest, names)
    return dict(st)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """Check 4: RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = sha256(b"\x01", p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = sha256(b"\x01", r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def check_note(note: str, cp: dict[str, Any], trusted: Keys) -> None:
    """Check 5: the signed note is signed by a trusted key under the origin and states ``cp``'s tree."""
    split = note.rfind("\n\n") if note.endswith("\n") else -1
    text, lines = note[: split + 1], note[split + 2 : -1].split("\n")
    origin, good = text.split("\n", 1)[0], 0
    known = {sha256(origin.encode(), b"\n\x01", pub.public_bytes_raw())[:4]: pub for pub in trusted.values()}
    for line in lines:
        name, _, sig = line.removeprefix("\u2014 ").partition(" ")
        raw = b64(sig)
        need(split >= 0 and line.startswith("\u2014 ") and raw and len(raw) > 4, "note", "malformed",
             "text, a blank line, '\u2014 <name> <base64>' lines", repr(line if split >= 0 else note)[:80])
        if raw and name == origin and raw[:4] in known:
            need(signed_by(known[raw[:4]], raw[4:], text.encode()), "note", f"bad signature by {name}",
                 "an Ed25519 signature of the note text", "one that does not verify")
            good += 1
    need(good, "note", "no trusted key signed it under its origin", f"a signature by {origin}",
         f"{len(lines)} signature(s) by other keys")
    body = text[:-1].split("\n")
    maps = [b64(e.partition(" ")[2]) for e in body[3:] if e.partition(" ")[0] == "trainguard-map-root"]
    got = (*body[:3], maps[0].hex() if len(maps) == 1 and maps[0] else None)
    want = (cp["origin"], str(cp["tree_size"]), base64.b64encode(bytes.fromhex(cp["root_hash"])).decode(),
            cp["map_root"])
    need(got == want, "note", "the note states another tree than the checkpoint", want, got)


def override_problem(rec: Record, previous: Record | None, approvers: Keys) -> str | None:
    """Why the override ``rec`` does not approve (None when it does), as in ``provenance.overrides``."""
    index, _, st = rec
    approval = st["predicate"].get("approval")
    if not isinstance(approval, dict) or approval.get("digest") not in [
            "sha256:" + s["digest"]["sha256"] for s in st["subject"]]:
        return f"override entry {index} does not approve its own subject"
    before = None if previous is None else {"index": previous[0], "leaf_hash": previous[1]}
    if approval.get("supersedes", 0) != before:
        return (f"override entry {index} was signed over {approval.get('supersedes', 'nothing')}, but the "
                f"entry before it naming the digest is {before} (a replayed or raced override)")
    kid = approval.get("key_id")
    if kid not in approvers:
        return f"override entry {index} is signed by approver key {str(kid)[:12]}, which is not trusted"
    pred = {k: v for k, v in st["predicate"].items() if k != "previous"}
    pred["approval"] = {k: v for k, v in approval.items() if k != "signature"}
    if not signed_by(approvers[kid], b64(approval.get("signature")), canonical({**st, "predicate": pred})):
        return f"override entry {index} has an invalid approver signature"
    return None


def decide(digest: str, records: list[Record], approvers: Keys) -> tuple[bool, str, str]:
    """Check 6: (approved, code, message) by the gate's rule (``provenance.decision``)."""
    verdicts = [st["predicate"]["verdict"] for _, _, st in records]
    cut = max((i for i, v in enumerate(verdicts) if v in REFUSALS), default=-1)
    ignored, later = [], None
    for pos in range(len(records) - 1, cut, -1):
        if verdicts[pos] == "override":
            problem = override_problem(records[pos], records[pos - 1] if pos else None, approvers)
            if problem is None:
                return True, "gate:approved", f"{digest} approved by override entry {records[pos][0]}"
            ignored.append(problem)
        elif verdicts[pos] == "approved" and cut < 0:
            return True, "gate:approved", f"{digest} approved by ledger entry {records[pos][0]}"
        elif verdicts[pos] == "approved" and later is None:
            later = records[pos][0]
    if cut >= 0:
        msg = f"{digest} was {verdicts[cut]} by ledger entry {records[cut][0]}"
        if ignored:
            return False, "gate:untrusted_override", f"{msg}; ignored newer {ignored[0]}"
        if later is not None:
            return False, "gate:refused_before", f"{msg}; the later approval (entry {later}) does not lift it"
        return False, "gate:rejected", msg
    if ignored:
        return False, "gate:untrusted_override", f"{digest} is not approved: {ignored[0]}"
    if not records:
        return False, "gate:unknown", f"{digest} has no ledger entry (proven absent)"
    return False, "gate:no_verdict", f"{digest} has no verdict: no entry naming it approves or refuses"


def verify(doc: Any, trusted: Keys, approvers: Keys, want: str | None = None) -> dict[str, Any]:
    """Checks 1-6: the result, or ``ProofError`` naming the first failed check (another error: malformed)."""
    proof = doc["proof"] if isinstance(doc.get("proof"), dict) else doc
    cp = check_checkpoint(proof["checkpoint"], trusted)  # 1
    digest = proof["digest"]
    need(isinstance(digest, str) and DIGEST.match(digest), "format", "bad digest", "sha256:<hex>", digest)
    need(want in (None, digest), "digest", "the proof is about other bytes", want, digest)
    for name in ("tree_size", "root_hash", "map_root"):
        need(proof.get(name, cp[name]) == cp[name], "format", f"{name} is not the checkpoint's", cp[name],
             proof.get(name))
    refs = verify_map(hex32(cp["map_root"], "map_root", "map"), bytes.fromhex(digest[7:]), proof["map_proof"])
    entries = [(index_of(e["index"], "an entry index"), e["entry"].encode()) for e in proof["entries"]]
    listed = [(i, sha256(b"\x00", body).hex()) for i, body in entries]
    need(listed == refs, "entries", "the entries are not the list the map proves",  # 3
         [f"{i}:{h[:12]}" for i, h in refs], [f"{i}:{h[:12]}" for i, h in listed])
    records = [(i, h, parse_entry(i, body.decode(), digest))
               for (i, h), (_, body) in zip(refs, entries, strict=True)]
    entry, at = proof.get("entry"), proof.get("leaf_index")
    if entry is not None or records:  # 4 (a proof of absence has no decisive entry)
        need((at, str(entry).encode()) in entries, "inclusion", "the decisive entry is not one of the "
             "digest's entries", f"one of {[i for i, _ in entries]}", f"leaf_index {at!r}")
        leaf = sha256(b"\x00", str(entry).encode())
        need(proof["leaf_hash"] == leaf.hex(), "inclusion", "leaf_hash is not SHA-256(0x00 || entry)",
             leaf.hex(), proof["leaf_hash"])
        path = [hex32(p, "an audit path hash", "inclusion") for p in proof["inclusion_proof"]]
        root = hex32(cp["root_hash"], "root_hash")
        need(verify_inclusion(index_of(at, "leaf_index"), cp["tree_size"], leaf, path, root),
             "inclusion", f"entry {at}'s audit path does not lead to the signed root of size "
             f"{cp['tree_size']}", cp["root_hash"], "another root")
    if proof.get("checkpoint_note") is not None:  # 5
        check_note(proof["checkpoint_note"], cp, trusted)
    approved, code, message = decide(digest, records, approvers)  # 6
    return {"ok": True, "approved": approved, "digest": digest, "code": code, "message": message,
            "tree_size": cp["tree_size"], "entries": [{"index": i, "verdict": st["predicate"]["verdict"]}
                                                      for i, _, st in records]}


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="verify_proof.py", description="Verify a trainguard proof document offline. Exit 0 "
               "approved, 1 refused by the gate's rule, 2 usage or unreadable input, 3 a check failed.")
    p.add_argument("proof", help="the proof document: a JSON file, or - for stdin")
    for flag, var, what in (("--key", "BASE64", "a trusted ledger public key"),
                            ("--keys", "FILE", "a file of trusted keys, one a line"),
                            ("--approver-key", "BASE64", "an approver key (default: the trusted keys)"),
                            ("--approver-keys", "FILE", "a file of approver keys")):
        p.add_argument(flag, action="append", default=[], metavar=var, help=what + "; repeatable")
    p.add_argument("--digest", help="also fail (3) unless the proof is about this sha256:<hex> digest")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    as_json = "--json" in (sys.argv[1:] if argv is None else argv)
    result: dict[str, Any] = {"ok": False, "approved": False, "digest": None, "tree_size": None}
    try:
        args = p.parse_args(argv)
        trusted = read_keys(args.key, args.keys)
        explicit = args.approver_key or args.approver_keys
        approvers = read_keys(args.approver_key, args.approver_keys) if explicit else trusted
        need(trusted, "usage", "no trusted key: pass --key BASE64 or --keys FILE (see `trainguard keys`)")
        try:
            with open(args.proof, encoding="utf-8") if args.proof != "-" else sys.stdin as fh:
                doc = json.load(fh)
        except (OSError, ValueError, RecursionError) as exc:
            raise ProofError("usage", f"cannot read the proof document {args.proof}: {exc}") from None
        want = args.digest and "sha256:" + args.digest.strip().lower().removeprefix("sha256:")
        need(want is None or DIGEST.match(want), "usage", f"--digest {args.digest!r} is not sha256:<64 hex>")
        result = verify(doc, trusted, approvers, want)
        rc, line = (0, "approved") if result["approved"] else (1, "refused")
        line = f"{line}: {result['message']} ({result['code']})"
    except ProofError as exc:
        rc, line = (2, f"usage error: {exc}") if exc.check == "usage" else (3, f"proof rejected: {exc}")
        result.update(code=exc.check if rc == 2 else f"proof:{exc.check}", message=str(exc), entries=[])
    except Exception as exc:  # fail closed, without a traceback: a malformed proof document is unverified
        rc, line = 3, f"proof rejected: check format: malformed proof document ({type(exc).__name__}: {exc})"
        result.update(code="proof:format", message=line.removeprefix("proof rejected: "), entries=[])
    print(json.dumps(result, ensure_ascii=False) if as_json else line,
          file=sys.stderr if rc == 2 and not as_json else sys.stdout)
    return rc


if __name__ == "__main__":
    sys.exit(main())
