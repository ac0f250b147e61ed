"""CLI commands of the verifiable index and checkpoints: ``ledger upgrade`` and ``ledger checkpoint``.

Registered under ``trainguard ledger`` by ``audit_cmd``; heavy imports stay inside the handlers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from pipelines.cli import _console
from pipelines.cli._click import Args, command, option

__all__ = ["register"]


def register(led: click.Group, common: Callable[..., list[click.Parameter]]) -> None:
    """Add ``upgrade`` and ``checkpoint`` to the ``trainguard ledger`` subcommands."""
    command(led, "upgrade", _upgrade, summary="Build the verifiable index of a ledger made before it and sign a "
            "checkpoint with its root (needs the signing key; the first append does it too).",
            example="trainguard ledger upgrade --ledger sqlite:///.trainguard/ledger.db", params=[
                option("--rebuild-index", is_flag=True,
                       help="rebuild the index even if the ledger has one (after its rows were damaged)"),
                *common(trusted=False)])
    command(led, "checkpoint", _checkpoint, summary="Print the latest checkpoint as a C2SP signed note "
            "(tlog-checkpoint), verified against the trusted keys; --json adds the JSON checkpoint and the note's "
            "verifier keys.", example="trainguard ledger checkpoint > checkpoint.note", params=common())


def register_keys(keys: click.Group, common: Callable[..., list[click.Parameter]]) -> None:
    """Add ``rotate`` to the ``trainguard keys`` subcommands."""
    command(keys, "rotate", _rotate, summary="Replace the ledger's signing key: append a rotation entry signed by "
            "the old key and the new one; later checkpoints are the new key's. Verifiers that trust either key "
            "follow the rotation.", example='trainguard keys rotate --reason "yearly rotation"', inherit=True,
            params=[
                option("--reason", required=True, metavar="TEXT", help="why the key is replaced (recorded in the entry)"),
                option("--new-key", metavar="PATH", help="the new private key (default: a new one is generated)"),
                option("--out", metavar="PATH", help="where to write a generated new key (default: the ledger's "
                       "own key path, the old key kept beside it as <path>.retired-<key id>)"),
                *common(trusted=False)])


def _rotate(args: Args) -> int:
    import os
    from pathlib import Path

    from provenance import config
    from provenance.errors import ProvenanceConfigError
    from provenance.ledger import open_ledger
    from provenance.signing import (
        generate_private_key,
        key_id,
        load_private_key,
        public_key_b64,
        write_private_key,
    )

    url = config.ledger_url(args.ledger)
    default = config.default_key_path(url)
    from_default = not os.environ.get("TRAINGUARD_SIGNING_KEY")
    if not args.new_key and not args.out and not from_default:
        raise ProvenanceConfigError("usage:rotate_out", "the signing key comes from $TRAINGUARD_SIGNING_KEY: pass "
                                    "--out FILE for the new key (then point the variable at it) or --new-key FILE")
    new = load_private_key(args.new_key) if args.new_key else generate_private_key()
    staged: Path | None = None
    if not args.new_key:  # the new key is on disk before the ledger depends on it
        staged = Path(args.out) if args.out else default.with_name(f".{default.name}.rotating")
        write_private_key(new, staged)
    with open_ledger(args.ledger, create=False) as led:
        led.require_appendable()
        old_id = key_id(led.signing_key().public_key())
        try:
            res = led.rotate(new, reason=args.reason)
        except BaseException:
            if staged is not None:
                staged.unlink(missing_ok=True)
            raise
    where = str(args.out or default if from_default and not args.out else args.out or args.new_key)
    if from_default and not args.out:  # the ledger's own key file: the new key takes its place
        retired = default.with_name(f"{default.name}.retired-{old_id[:12]}")
        os.replace(default, retired)
        if staged is not None:
            os.replace(staged, default)
        else:
            write_private_key(new, default)
        _console.log(f"the old signing key is kept as {retired}; the new one is {default}")
    else:
        _console.log(f"the ledger now signs with {where}: point $TRAINGUARD_SIGNING_KEY at it")
    pub = new.public_key()
    doc = {"index": res.index, "old_key_id": old_id, "new_key_id": key_id(pub), "public_key": public_key_b64(pub),
           "key_path": where, "checkpoint": res.checkpoint}
    if args.json:
        _console.print_ok(doc)
    else:
        _console.stdout.print(f"rotated: entry {res.index}, key {old_id[:12]} -> {key_id(pub)[:12]}; new public key "
                              f"{doc['public_key']}", markup=False)
    return 0


def _upgrade(args: Args) -> int:
    from provenance.ledger import open_ledger

    with open_ledger(args.ledger, create=False) as led:
        led.require_writable()
        doc = led.upgrade(rebuild=args.rebuild_index)
    if args.json:
        _console.print_ok(doc)
    elif doc["upgraded"]:
        _console.stdout.print(f"upgraded: index built over {doc['entries']} entries", markup=False)
    else:
        _console.stdout.print(f"nothing to do: the ledger's {doc['entries']} entries are indexed", markup=False)
    return 0


def _checkpoint(args: Args) -> int:
    from provenance.checkpoint_note import verifier_keys, verify_checkpoint_note
    from provenance.errors import LedgerIntegrityError
    from provenance.ledger import open_ledger

    with open_ledger(args.ledger, trusted_keys=args.trusted_keys, create=False) as led:
        cp = led.checkpoint()
        if cp is None:
            raise LedgerIntegrityError("ledger:no_checkpoint", "the ledger has no signed checkpoint yet")
        note = led.note(int(cp["tree_size"]))
        if note is None:
            raise LedgerIntegrityError(
                "ledger:no_note", "the latest checkpoint has no signed note (signed before notes existed): "
                "`trainguard ledger upgrade --rebuild-index` signs one", index=int(cp["tree_size"]) - 1,
                expected="a C2SP signed note", found="none")
        keys = led.keys_for(cp)
        verify_checkpoint_note(note, keys, cp=cp)
        vkeys = verifier_keys(str(cp["origin"]), keys)
    if args.json:
        _console.print_ok({"note": note, "checkpoint": cp, "verifier_keys": vkeys})
    else:
        sys.stdout.write(note)  # byte for byte: the signature covers the text
        sys.stdout.flush()
    return 0
