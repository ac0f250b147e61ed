"""CLI commands of the verifiable index and checkpoints: ``ledger upgrade`` and ``ledger checkpoint``.

Registered under ``trainguard ledger`` by ``audit_cmd``; heavy imports stay inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from pipelines.cli import _console

__all__ = ["register"]


def register(lsub: Any, add: Callable[..., argparse.ArgumentParser], common: Callable[..., None]) -> None:
    """Add ``upgrade`` and ``checkpoint`` to the ``trainguard ledger`` subcommands."""
    p = add(lsub, "upgrade", "Build the verifiable index of a ledger made before it and sign a checkpoint with its "
            "root (needs the signing key; the first append does it too).",
            "trainguard ledger upgrade --ledger sqlite:///.trainguard/ledger.db")
    p.add_argument("--rebuild-index", action="store_true",
                   help="rebuild the index even if the ledger has one (after its rows were damaged)")
    common(p, trusted=False)
    p.set_defaults(func=_upgrade)

    p = add(lsub, "checkpoint", "Print the latest checkpoint as a C2SP signed note (tlog-checkpoint), verified "
            "against the trusted keys; --json adds the JSON checkpoint and the note's verifier keys.",
            "trainguard ledger checkpoint > checkpoint.note")
    common(p)
    p.set_defaults(func=_checkpoint)


def _upgrade(args: argparse.Namespace) -> int:
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


def _checkpoint(args: argparse.Namespace) -> int:
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
        verify_checkpoint_note(note, led.trusted, cp=cp)
        vkeys = verifier_keys(str(cp["origin"]), led.trusted)
    if args.json:
        _console.print_ok({"note": note, "checkpoint": cp, "verifier_keys": vkeys})
    else:
        sys.stdout.write(note)  # byte for byte: the signature covers the text
        sys.stdout.flush()
    return 0
