"""CLI commands of the provenance side: ``gate``, ``approve``, ``ledger {verify,log,show,prove,export}``, ``keys``.

Heavy imports live inside the handlers so ``trainguard gate`` costs the hashing plus milliseconds. Errors are
``provenance.errors`` subclasses; ``pipelines/cli/main.py`` maps them to one stderr line and their exit code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from pathlib import Path
from typing import Any

from pipelines.cli import _console

__all__ = ["register"]

_RAW = argparse.RawDescriptionHelpFormatter


def _add(sub: Any, name: str, help_: str, example: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_, description=help_, epilog=f"Example: {example}", formatter_class=_RAW
    )
    return parser


def _common(p: argparse.ArgumentParser, *, trusted: bool = True, nested: bool = False) -> None:
    """The options every audit command takes. ``nested``: a subcommand of a command that takes them too, so a
    value given before the subcommand (``keys --ledger X show``) is kept, not reset to the default."""
    keep: dict[str, Any] = {"default": argparse.SUPPRESS} if nested else {}
    p.add_argument("--ledger", metavar="URL", help="ledger URL (default $TRAINGUARD_LEDGER or sqlite:///.trainguard/ledger.db)",
                   **keep)
    if trusted:
        p.add_argument("--trusted-keys", metavar="FILE",
                       help="file of trusted base64 public keys (default $TRAINGUARD_TRUSTED_KEYS, else the ledger's own key)",
                       **keep)
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout", **keep)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this module's commands to the ``trainguard`` parser."""
    p = _add(sub, "gate", "Refuse a dataset unless its exact bytes carry an approving, provable ledger entry.",
             "trainguard gate outputs/clean.parquet --json")
    p.add_argument("path", metavar="PATH", help="file or directory that training is about to read")
    p.add_argument("--checkpoint", metavar="FILE", help="a checkpoint signed earlier (e.g. saved from a previous "
                   "gate's --json 'checkpoint'): refuse unless the ledger still extends it (rollback check)")
    _common(p)
    p.set_defaults(func=_gate)

    p = _add(sub, "approve", "Append a signed override approving a digest (or a file's digest).",
             'trainguard approve sha256:ab12... --reason "reviewed by data owner" --approver-key approver.key')
    p.add_argument("target", metavar="DIGEST|PATH", help="sha256:<hex> digest, or a file to hash")
    p.add_argument("--reason", required=True, help="why the data is approved despite the checks")
    p.add_argument("--approver-key", metavar="PATH", help="approver's private key (default: the ledger signing key)")
    p.add_argument("--actor", help="who approves (default: the current user)")
    _common(p, trusted=False)
    p.set_defaults(func=_approve)

    led = _add(sub, "ledger", "Audit the provenance ledger: verify, log, show, prove, export.",
               "trainguard ledger verify --json")
    lsub = led.add_subparsers(dest="ledger_command", metavar="SUBCOMMAND", required=True)
    p = _add(lsub, "verify", "Recompute every leaf, chain link, Merkle node, root and signature (exit 3 when bad).",
             "trainguard ledger verify --checkpoint audit-2024-06/checkpoint.json")
    p.add_argument("--bundle", metavar="DIR", help="verify an exported bundle instead (no database, no network)")
    p.add_argument("--checkpoint", metavar="FILE", action="append", default=[],
                   help="an earlier exported checkpoint the ledger must still contain (catches truncation)")
    p.add_argument("--all-signatures", action="store_true", help="also check the signature of every stored checkpoint")
    _common(p)
    p.set_defaults(func=_verify)

    p = _add(lsub, "log", "List entries, newest first, filtered by source, verdict and time.",
             "trainguard ledger log --source vendor-a --verdict rejected --since 2024-06-01")
    p.add_argument("--source", help="only entries of this source")
    p.add_argument("--verdict", choices=("approved", "rejected", "quarantined", "override", "error"),
                   help="only this verdict")
    p.add_argument("--since", help="only entries at or after this RFC 3339 time or date")
    p.add_argument("--until", help="only entries at or before this RFC 3339 time or date")
    p.add_argument("--limit", type=_positive_int, default=None, help="at most this many entries")
    _common(p, trusted=False)
    p.set_defaults(func=_log)

    p = _add(lsub, "show", "Print one entry (by index or digest) with its inclusion proof.",
             "trainguard ledger show 12")
    p.add_argument("which", metavar="N|DIGEST", help="entry index, or a sha256 digest it names")
    _common(p)
    p.set_defaults(func=_show)

    p = _add(lsub, "prove", "Print the inclusion proof of the newest entry naming DIGEST (docs/design.md format).",
             "trainguard ledger prove sha256:ab12... --json > proof.json")
    p.add_argument("target", metavar="DIGEST|PATH", help="sha256:<hex> digest, or a file to hash")
    _common(p)
    p.set_defaults(func=_prove)

    p = _add(lsub, "export", "Verify, then write entries (JSONL), the latest checkpoint and public keys to DIR.",
             "trainguard ledger export --out audit-2024-06/")
    p.add_argument("--out", required=True, metavar="DIR", help="bundle directory to write")
    _common(p)
    p.set_defaults(func=_export)

    from pipelines.cli import ledger_cmd

    ledger_cmd.register(lsub, _add, _common)

    keys = _add(sub, "keys", "Generate or show Ed25519 keys (public keys print as base64 of the raw 32 bytes).",
                "trainguard keys generate --out approver.key")
    _common(keys)
    keys.set_defaults(func=_keys_show, key=None)  # plain `trainguard keys` shows the ledger's keys
    ksub = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND")
    p = _add(ksub, "generate", "Write a new private key (mode 0600) and print its public key.",
             "trainguard keys generate --out approver.key")
    p.add_argument("--out", metavar="PATH", help="where to write the key (default: the ledger signing key path)")
    _common(p, trusted=False, nested=True)
    p.set_defaults(func=_keys_generate)
    p = _add(ksub, "show", "Print the public key of a private key file, or the ledger's signing and trusted keys.",
             "trainguard keys show --key approver.key")
    p.add_argument("--key", metavar="PATH", help="private key file (default: the ledger signing key)")
    _common(p, nested=True)
    p.set_defaults(func=_keys_show)
    ledger_cmd.register_keys(ksub, _add, _common)


# --- helpers -------------------------------------------------------------------------------------------------
def _open(args: argparse.Namespace) -> Any:
    from provenance.ledger import open_ledger

    return open_ledger(args.ledger, trusted_keys=getattr(args, "trusted_keys", None), create=False)


def _digest_of(target: str) -> str:
    from provenance.hashing import parse_digest, path_digest

    if os.path.exists(target):
        return path_digest(target)
    if not target.startswith("sha256:") and not re.fullmatch(r"[0-9a-fA-F]{64}", target):
        from provenance.errors import ProvenanceInputError

        raise ProvenanceInputError("input:missing_file",
                                   f"{target} is neither an existing file nor a sha256:<hex> digest")
    return parse_digest(target)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _time_bound(text: str | None, *, end: bool) -> str | None:
    if text is None:
        return None
    from provenance.errors import ProvenanceInputError

    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min, tzinfo=dt.UTC)
        else:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise ProvenanceInputError("input:bad_time", f"not an RFC 3339 time or date: {text!r}") from exc
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- handlers ------------------------------------------------------------------------------------------------
def _gate(args: argparse.Namespace) -> int:
    from provenance.errors import NotApprovedError, ProvenanceError
    from provenance.gate import judge
    from provenance.hashing import path_digest

    digest = path_digest(args.path)  # hashed once, before the ledger is opened
    seen = None
    if args.checkpoint:
        from provenance.bundle import read_checkpoint

        seen = read_checkpoint(args.checkpoint)
    proof: dict[str, Any] | None = None
    try:
        with _open(args) as led:
            decision, proof = judge(led, digest, label=args.path, seen=seen, with_proof=True)
        if not decision.approved:
            raise NotApprovedError(decision.code, decision.message)
    except ProvenanceError as exc:  # with --json, main prints the refusal with these fields on stdout
        exc.details = {"approved": False, "path": args.path, "digest": digest}  # type: ignore[attr-defined]
        if isinstance(exc, NotApprovedError) and proof is not None:  # the proof of the refusal
            exc.details["proof"] = proof  # type: ignore[attr-defined]
        raise
    rec = decision.decisive
    assert rec is not None
    doc = {"approved": True, "path": args.path, "digest": digest, "verdict": rec.verdict,
           "leaf_index": rec.index, "tree_size": rec.checkpoint["tree_size"], "root_hash": rec.checkpoint["root_hash"],
           "checkpoint": rec.checkpoint,  # save it: the next gate's --checkpoint then refuses a rolled-back ledger
           "proof": proof}
    if args.json:
        _console.print_ok(doc)
    else:
        sys.stdout.write(f"approved: {args.path} (ledger entry {rec.index}, {rec.verdict})\n")  # no rich: start-up
    return 0


def _approve(args: argparse.Namespace) -> int:
    from provenance.errors import NotApprovedError
    from provenance.gate import append_override, decide
    from provenance.ledger import open_ledger
    from provenance.signing import load_private_key

    digest = _digest_of(args.target)
    with open_ledger(args.ledger, create=False) as led:  # a mistyped URL is not a new ledger to approve into
        key = load_private_key(args.approver_key) if args.approver_key else led.signing_key()
        name = os.path.basename(args.target) if os.path.exists(args.target) else None
        res = append_override(led, digest, reason=args.reason, approver_key=key, actor=args.actor, name=name)
        approval = led.record(res.index).statement["predicate"]["approval"]
        trusted = approval["key_id"] in led.approvers
        try:
            effective = decide(led, digest, label=args.target).index == res.index
            why = "a newer entry" if not effective else ""
        except NotApprovedError as exc:
            effective, why = False, exc.message
    doc = {"index": res.index, "entry_hash": res.entry_hash, "digest": digest, "approver_key_id": approval["key_id"],
           "approver_trusted": trusted, "effective": effective, "checkpoint": res.checkpoint}
    if args.json:
        _console.print_ok(doc)
    else:  # the result is data: on stdout (warnings stay on stderr)
        _console.stdout.print(f"override appended as entry {res.index} (approver key {approval['key_id'][:12]})",
                              markup=False)
    if not trusted:  # recorded, but the gate ignores it until the key is listed as a trusted approver
        _console.log(f"warning: approver key {approval['key_id'][:12]} is not trusted here (the ledger's own key and "
                     "$TRAINGUARD_APPROVER_KEYS): a gate honours this override only where the key is trusted "
                     "(--trusted-keys or $TRAINGUARD_APPROVER_KEYS)")
    elif not effective:
        _console.log(f"warning: the gate does not pass {args.target} on this override: {why}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from provenance.bundle import read_checkpoint, verify_bundle

    earlier = [read_checkpoint(p) for p in args.checkpoint]
    if args.bundle:
        from provenance.signing import TrustedKeys

        trusted = TrustedKeys.from_file(args.trusted_keys) if args.trusted_keys else None
        if trusted is None:
            _console.log("note: trusting the bundle's own keys.txt; pass --trusted-keys to pin the keys you expect")
        report = verify_bundle(args.bundle, trusted_keys=trusted, earlier=earlier)
    else:
        with _open(args) as led:
            _console.log(f"verifying {led.store.describe()} ...")
            report = led.verify(earlier=earlier, all_signatures=args.all_signatures)
    if args.json:
        _console.print_ok(report.to_dict())
    else:
        _console.stdout.print(
            f"ok: {report.tree_size} entries, root {report.root_hash}, "
            f"{report.checkpoints_checked} checkpoint roots and {report.signatures_checked} signatures checked",
            markup=False,
        )
    return 0


def _log(args: argparse.Namespace) -> int:
    with _open(args) as led:
        rows = led.log(source=args.source, verdict=args.verdict, since=_time_bound(args.since, end=False),
                       until=_time_bound(args.until, end=True), limit=args.limit)
    docs = [_summary(idx, st) for idx, st in rows]
    if args.json:
        _console.print_ok({"entries": docs})
        return 0
    from rich.table import Table

    table = Table("index", "time", "source", "verdict", "subjects", "reasons")
    for d in docs:
        table.add_row(str(d["index"]), str(d["time"]), str(d["source"] or ""), str(d["verdict"]),
                      "\n".join(f"{s['name']} {s['digest'][:19]}" for s in d["subjects"]),
                      "; ".join(map(str, d["reasons"]))[:80])
    _console.print_table(table)  # piped to a file: whole times and digests, not cut to 80 columns
    return 0


def _summary(idx: int, st: dict[str, Any]) -> dict[str, Any]:
    pred = st["predicate"]
    src = pred.get("source")
    return {
        "index": idx, "time": pred.get("time"), "verdict": pred.get("verdict"),
        "source": src.get("name") if isinstance(src, dict) else src,
        "subjects": [{"name": s["name"], "digest": "sha256:" + s["digest"]["sha256"]} for s in st["subject"]],
        "reasons": pred.get("reasons") or ([pred["reason"]] if pred.get("reason") else []),
        "predicateType": st["predicateType"],
    }


def _show(args: argparse.Namespace) -> int:
    with _open(args) as led:
        if args.which.isdigit():
            proof = led.record(int(args.which)).proof()
        else:
            proof = led.prove(_digest_of(args.which))
    if args.json:
        _console.print_ok(proof)
    else:
        import json

        _console.stdout.print_json(proof["entry"])
        _console.stdout.print(json.dumps({k: v for k, v in proof.items() if k != "entry"}, indent=2), markup=False)
    return 0


def _prove(args: argparse.Namespace) -> int:
    with _open(args) as led:
        proof = led.prove(_digest_of(args.target))
    if args.json:
        _console.print_ok(proof)
    else:
        import json

        _console.stdout.print(json.dumps(proof, indent=2, sort_keys=True), markup=False)
    return 0


def _export(args: argparse.Namespace) -> int:
    from provenance.bundle import export_bundle

    with _open(args) as led:
        doc = export_bundle(led, args.out)
    if args.json:
        _console.print_ok(doc)
    else:  # the result is data: on stdout
        _console.stdout.print(f"exported {doc['entries']} entries, checkpoint and keys to {doc['out']}", markup=False)
    return 0


def _keys_generate(args: argparse.Namespace) -> int:
    from provenance import config
    from provenance.signing import generate_private_key, key_id, public_key_b64, write_private_key

    out = Path(args.out) if args.out else config.default_key_path(config.ledger_url(args.ledger))
    if not args.out:  # the ledger's own key: only for a ledger without history (approver keys: --out FILE)
        from provenance.errors import ProvenanceConfigError, ProvenanceError
        from provenance.ledger import open_ledger

        try:
            with open_ledger(args.ledger, create=False) as led:
                with led.store.read():
                    entries = led.store.size()
        except ProvenanceError as exc:
            if getattr(exc, "code", None) != "ledger:not_found":
                raise
            entries = 0
        if entries or out.exists():
            raise ProvenanceConfigError(
                "keys:ledger_has_key", f"the ledger {config.ledger_url(args.ledger)} already has "
                f"{'a key at ' + str(out) if out.exists() else str(entries) + ' entries'}: a new signing key would "
                "re-sign its history; use --out FILE for another key (an approver's)")
    key = generate_private_key()
    write_private_key(key, out)
    pub = key.public_key()
    _console.log(f"wrote private key {out} (mode 0600)")
    doc = {"path": str(out), "public_key": public_key_b64(pub), "key_id": key_id(pub)}
    if args.json:
        _console.print_ok(doc)
    else:
        _console.stdout.print(doc["public_key"], markup=False)
    return 0


def _keys_show(args: argparse.Namespace) -> int:
    from provenance import config
    from provenance.errors import ProvenanceConfigError
    from provenance.signing import key_id, load_private_key, public_key_b64

    if args.key:
        pub = load_private_key(args.key).public_key()
        doc: dict[str, Any] = {"public_key": public_key_b64(pub), "key_id": key_id(pub)}
        text = doc["public_key"]
    else:
        url = config.ledger_url(args.ledger)
        own = config.resolve_signing_key(None, url, create=False)
        trusted = config.resolve_trusted(args.trusted_keys, own)
        if own is None and not len(trusted):
            raise ProvenanceConfigError("keys:missing", f"no signing key for {url} and no trusted keys configured")
        doc = {
            "signing_key": None if own is None else {"public_key": public_key_b64(own.public_key()),
                                                     "key_id": key_id(own.public_key())},
            "trusted_keys": [{"public_key": public_key_b64(k), "key_id": kid} for kid, k in trusted.keys.items()],
        }
        text = "\n".join(f"{t['public_key']}  # key_id {t['key_id']}" for t in doc["trusted_keys"])
    if args.json:
        _console.print_ok(doc)
    else:
        _console.stdout.print(text, markup=False)
    return 0
