"""Audit bundles: a ledger exported to a directory and verified with no database and no network.

A bundle holds ``entries.jsonl`` (one entry's canonical bytes per line, index order), ``checkpoint.json`` (the
latest signed checkpoint), ``checkpoint.note`` (the same checkpoint as a C2SP signed note), ``verify_proof.py``
(the stand-alone proof verifier), ``keys.txt`` (the trusted public keys, base64, one per line with its key id) and
``approvers.txt`` (the keys whose signed overrides the exporting side honours, same format), so an auditor can
check an override offline: its ``approval.signature`` is Ed25519 over the canonical JSON of the entry without
``predicate.previous`` and ``predicate.approval.signature``. Verifying recomputes every leaf, chain link and the
root and checks the checkpoint's signature.

Example::

    >>> export_bundle(open_ledger(), "audit/")        # doctest: +SKIP
    >>> verify_bundle("audit/").tree_size             # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from provenance.checkpoint_note import verify_checkpoint_note
from provenance.entries import ROTATION_V1, parse_entry
from provenance.errors import ProvenanceInputError
from provenance.hashing import read_regular
from provenance.ledger import Ledger
from provenance.rotation import KeyChain
from provenance.signing import TrustedKeys, key_id, public_key_b64
from provenance.verify import (
    CHECKPOINT_EXPECTED,
    VerifyReport,
    parse_checkpoint,
    require_checkpoint,
    verify_contents,
)

__all__ = ["export_bundle", "verify_bundle", "read_checkpoint"]

ENTRIES, CHECKPOINT, KEYS, APPROVERS = "entries.jsonl", "checkpoint.json", "keys.txt", "approvers.txt"
NOTE, VERIFIER = "checkpoint.note", "verify_proof.py"


def export_bundle(ledger: Ledger, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Verify ``ledger``, then write its entries, latest checkpoint and trusted public keys to ``out``."""
    report = ledger.verify()
    d = Path(out)
    try:
        d.mkdir(parents=True, exist_ok=True)
        count = 0
        with open(d / ENTRIES, "wb") as fh:
            for idx, body in ledger.iter_entries():
                if idx >= report.tree_size:
                    break
                fh.write(body + b"\n")
                count += 1
        (d / CHECKPOINT).write_text(json.dumps(report.checkpoint, sort_keys=True, indent=2) + "\n", encoding="utf-8")
        note = ledger.note(report.tree_size) if report.tree_size else None
        if note is not None:  # the same checkpoint as a C2SP signed note, for standard transparency-log tools
            (d / NOTE).write_bytes(note.encode("utf-8"))
        shutil.copyfile(Path(__file__).with_name(VERIFIER), d / VERIFIER)  # the auditor's stand-alone verifier
        for name, keys in ((KEYS, ledger.trusted), (APPROVERS, ledger.approvers)):
            lines = [f"{public_key_b64(pub)}  # key_id {key_id(pub)}" for pub in keys.keys.values()]
            (d / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    except OSError as exc:  # a file of that name, no permission, a full disk
        raise ProvenanceInputError("input:bad_out", f"cannot export to {d}: {exc.strerror or exc} (--out names a "
                                   "directory to create or fill)") from exc
    return {"out": str(d), "entries": count, "checkpoint": report.checkpoint, "keys": ledger.public_keys(),
            "approver_keys": [public_key_b64(k) for k in ledger.approvers.keys.values()]}


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint saved as JSON (e.g. a bundle's ``checkpoint.json``). A file that is not a checkpoint at all is
    ``input:bad_checkpoint`` (exit 2); whether its signature and root check out is the ledger's check (exit 3)."""
    p = Path(path)
    try:
        body = read_regular(p)
    except ProvenanceInputError as exc:
        raise ProvenanceInputError(exc.code, f"cannot read checkpoint file {p} ({exc})") from exc
    try:
        cp = json.loads(body.decode("utf-8"))
    except ValueError as exc:  # not UTF-8 or not JSON: a file the auditor named, so bad input, not tampering
        raise ProvenanceInputError("input:bad_checkpoint", f"{p} is not a checkpoint (not JSON text): expected "
                                   f"{CHECKPOINT_EXPECTED}") from exc
    return require_checkpoint(cp, where=str(p))


def _entries(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        for idx, line in enumerate(fh):
            yield idx, line[:-1] if line.endswith(b"\n") else line


def verify_bundle(
    directory: str | os.PathLike[str],
    *,
    trusted_keys: TrustedKeys | None = None,
    earlier: Sequence[Mapping[str, Any]] = (),
) -> VerifyReport:
    """Verify an exported bundle offline; trusts ``trusted_keys``, else the bundle's own ``keys.txt``."""
    d = Path(directory)
    for name in (ENTRIES, CHECKPOINT, KEYS):
        if not (d / name).is_file():
            raise ProvenanceInputError("input:bad_bundle", f"{d} is not a ledger bundle: {name} is missing")
    trusted = trusted_keys if trusted_keys is not None else TrustedKeys.from_file(d / KEYS)
    # the bundle's own checkpoint: unparseable is a damaged bundle (integrity, exit 3), unlike a file the auditor names
    checkpoint = parse_checkpoint((d / CHECKPOINT).read_bytes(), where=str(d / CHECKPOINT))
    with open(d / ENTRIES, "rb") as fh:
        size = sum(1 for _ in fh)
    report = verify_contents(
        _entries(d / ENTRIES), size=size, latest=checkpoint, trusted=trusted,
        earlier=[require_checkpoint(e, where="an earlier checkpoint") for e in earlier],
    )
    if (d / NOTE).is_file():  # the same tree, signed by the key that signed the JSON checkpoint
        keys = trusted
        if checkpoint["key_id"] not in trusted:  # a key the bundle's rotations reach
            rotations = [(i, parse_entry(b, i)) for i, b in _entries(d / ENTRIES) if ROTATION_V1.encode() in b]
            keys = KeyChain(trusted, rotations).valid_keys(tree_size=int(checkpoint["tree_size"]))
        verify_checkpoint_note((d / NOTE).read_text(encoding="utf-8"), keys, cp=checkpoint)
    return report
