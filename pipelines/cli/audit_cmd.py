"""CLI commands of the provenance side: ``gate``, ``approve``, ``ledger {verify,log,show,prove,export}``, ``keys``.

Heavy imports live inside the handlers so ``trainguard gate`` costs the hashing plus milliseconds. Errors are
``provenance.errors`` subclasses; ``pipelines/cli/main.py`` maps them to one stderr line and their exit code.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from pipelines.cli import _console
from pipelines.cli._click import Args, argument, command, group, option

__all__ = ["register"]

_LEDGER_HELP = "ledger URL (default $TRAINGUARD_LEDGER or sqlite:///.trainguard/ledger.db)"
_TRUSTED_HELP = "file of trusted base64 public keys (default $TRAINGUARD_TRUSTED_KEYS, else the ledger's own key)"


def _common(*, trusted: bool = True) -> list[click.Parameter]:
    """The options every audit command takes (a subcommand of ``keys`` inherits those given before it)."""
    params = [option("--ledger", metavar="URL", help=_LEDGER_HELP)]
    if trusted:
        params.append(option("--trusted-keys", metavar="FILE", help=_TRUSTED_HELP))
    return [*params, option("--json", is_flag=True, help="print one JSON document on stdout")]


def _target() -> click.Argument:
    return argument("target", "DIGEST|PATH", "sha256:<hex> digest, or a file to hash")


def register(root: click.Group) -> None:
    """Add this module's commands to the ``trainguard`` command group."""
    command(root, "gate", _gate, summary="Refuse a dataset unless its exact bytes carry an approving, provable "
            "ledger entry.", example="trainguard gate outputs/clean.parquet --json", params=[
                argument("path", "PATH", "file or directory that training is about to read"),
                option("--checkpoint", metavar="FILE", help="a checkpoint signed earlier (e.g. saved from a "
                       "previous gate's --json 'checkpoint'): refuse unless the ledger still extends it (rollback "
                       "check)"),
                *_common()])
    command(root, "approve", _approve, summary="Append a signed override approving a digest (or a file's digest).",
            example='trainguard approve sha256:ab12... --reason "reviewed by data owner" --approver-key approver.key',
            params=[
                _target(),
                option("--reason", required=True, metavar="TEXT", help="why the data is approved despite the checks"),
                option("--approver-key", metavar="PATH", help="approver's private key (default: the ledger signing "
                       "key)"),
                option("--actor", metavar="NAME", help="who approves (default: the current user)"),
                *_common(trusted=False)])

    led = group(root, "ledger", summary="Audit the provenance ledger: verify, log, show, prove, export.",
                example="trainguard ledger verify --json")
    command(led, "verify", _verify, summary="Recompute every leaf, chain link, Merkle node, root and signature (exit "
            "3 when bad).", example="trainguard ledger verify --checkpoint audit-2024-06/checkpoint.json", params=[
                option("--bundle", metavar="DIR", help="verify an exported bundle instead (no database, no network)"),
                option("--checkpoint", metavar="FILE", multiple=True, help="an earlier exported checkpoint the "
                       "ledger must still contain (catches truncation)"),
                option("--all-signatures", is_flag=True, help="also check the signature of every stored checkpoint"),
                *_common()])
    command(led, "log", _log, summary="List entries, newest first, filtered by source, verdict and time.",
            example="trainguard ledger log --source vendor-a --verdict rejected --since 2024-06-01", params=[
                option("--source", metavar="NAME", help="only entries of this source"),
                option("--verdict", type=click.Choice(["approved", "rejected", "quarantined", "override", "error"]),
                       help="only this verdict"),
                option("--since", metavar="TIME", help="only entries at or after this RFC 3339 time or date"),
                option("--until", metavar="TIME", help="only entries at or before this RFC 3339 time or date"),
                option("--limit", type=click.IntRange(min=1), metavar="N", help="at most this many entries"),
                *_common(trusted=False)])
    command(led, "show", _show, summary="Print one entry (by index or digest) with its inclusion proof.",
            example="trainguard ledger show 12",
            params=[argument("which", "N|DIGEST", "entry index, or a sha256 digest it names"), *_common()])
    command(led, "prove", _prove, summary="Print the inclusion proof of the newest entry naming DIGEST "
            "(docs/design.md format).", example="trainguard ledger prove sha256:ab12... --json > proof.json",
            params=[_target(), *_common()])
    command(led, "export", _export, summary="Verify, then write entries (JSONL), the latest checkpoint and public "
            "keys to DIR.", example="trainguard ledger export --out audit-2024-06/", params=[
                option("--out", required=True, metavar="DIR", help="bundle directory to write"), *_common()])

    from pipelines.cli import ledger_cmd

    ledger_cmd.register(led, _common)

    # plain `trainguard keys` shows the ledger's keys; its subcommands inherit the options given before them
    keys = group(root, "keys", summary="Generate or show Ed25519 keys (public keys print as base64 of the raw 32 "
                 "bytes).", example="trainguard keys generate --out approver.key", params=_common(),
                 handler=_keys_show, defaults={"key": None})
    command(keys, "generate", _keys_generate, summary="Write a new private key (mode 0600) and print its public "
            "key.", example="trainguard keys generate --out approver.key", inherit=True, params=[
                option("--out", metavar="PATH", help="where to write the key (default: the ledger signing key path)"),
                *_common(trusted=False)])
    command(keys, "show", _keys_show, summary="Print the public key of a private key file, or the ledger's signing "
            "and trusted keys.", example="trainguard keys show --key approver.key", inherit=True, params=[
                option("--key", metavar="PATH", help="private key file (default: the ledger signing key)"),
                *_common()])
    ledger_cmd.register_keys(keys, _common)


# --- helpers -------------------------------------------------------------------------------------------------
def _open(args: Args) -> Any:
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
def _gate(args: Args) -> int:
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


def _approve(args: Args) -> int:
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


def _verify(args: Args) -> int:
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


def _log(args: Args) -> int:
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


def _show(args: Args) -> int:
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


def _prove(args: Args) -> int:
    with _open(args) as led:
        proof = led.prove(_digest_of(args.target))
    if args.json:
        _console.print_ok(proof)
    else:
        import json

        _console.stdout.print(json.dumps(proof, indent=2, sort_keys=True), markup=False)
    return 0


def _export(args: Args) -> int:
    from provenance.bundle import export_bundle

    with _open(args) as led:
        doc = export_bundle(led, args.out)
    if args.json:
        _console.print_ok(doc)
    else:  # the result is data: on stdout
        _console.stdout.print(f"exported {doc['entries']} entries, checkpoint and keys to {doc['out']}", markup=False)
    return 0


def _keys_generate(args: Args) -> int:
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


def _keys_show(args: Args) -> int:
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
