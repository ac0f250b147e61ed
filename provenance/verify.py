"""Full verification of a ledger's contents: every leaf, chain link, stored node, checkpoint root and signature.

Used for a live store and for an exported bundle (no database, no network). Fails closed: the first problem
raises ``LedgerIntegrityError`` naming the first bad entry, what was expected and what was found.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from hashlib import sha256 as _sha256
from typing import Any

from provenance import vmap
from provenance.entries import ROTATION_V1, index_row, parse_entry
from provenance.errors import LedgerIntegrityError, ProvenanceInputError
from provenance.merkle import EMPTY_ROOT, Frontier
from provenance.rotation import KeyChain
from provenance.signing import CHECKPOINT_FIELDS, MAP_ROOT, TrustedKeys, checkpoint_shape_problem

__all__ = ["VerifyReport", "verify_contents", "parse_checkpoint", "require_checkpoint"]

#: What a checkpoint given by a caller (``--checkpoint FILE``, ``seen=``, ``earlier=``) must look like.
CHECKPOINT_EXPECTED = (f"a JSON object with exactly the fields {', '.join(CHECKPOINT_FIELDS)}, as in an export's "
                       "checkpoint.json or the \"checkpoint\" member of a gate's --json output")


@dataclass(frozen=True)
class VerifyReport:
    """What a successful verification covered."""

    tree_size: int
    root_hash: str
    checkpoint: dict[str, Any] | None
    checkpoints_checked: int
    signatures_checked: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "checkpoint": self.checkpoint,
            "checkpoints_checked": self.checkpoints_checked,
            "signatures_checked": self.signatures_checked,
        }


def parse_checkpoint(body: bytes | str, *, where: str) -> dict[str, Any]:
    """Parse a stored or exported checkpoint (fail closed)."""
    try:
        cp = json.loads(body)
    except ValueError as exc:
        raise LedgerIntegrityError(
            "ledger:corrupt_checkpoint", f"{where} is not JSON", expected="a checkpoint", found=repr(body[:40])
        ) from exc
    if not isinstance(cp, dict) or not isinstance(cp.get("tree_size"), int) or not isinstance(cp.get("root_hash"), str):
        raise LedgerIntegrityError("ledger:corrupt_checkpoint", f"{where} is not a checkpoint")
    return cp


def require_checkpoint(cp: object, *, where: str) -> dict[str, Any]:
    """``cp`` as a checkpoint dict, or ``ProvenanceInputError`` (``input:bad_checkpoint``, exit 2) when the caller
    gave a document that is not a checkpoint at all (say a whole gate or proof document). A checkpoint of the right
    shape is returned as it is: whether its signature and root check out is for ``TrustedKeys.check_checkpoint``
    and the ledger (exit 3)."""
    problem = checkpoint_shape_problem(cp)
    if problem is None and isinstance(cp, Mapping):
        return dict(cp)
    if isinstance(cp, Mapping) and checkpoint_shape_problem(cp.get("checkpoint")) is None:
        raise ProvenanceInputError(
            "input:bad_checkpoint", f"{where} is not a checkpoint but holds one under \"checkpoint\" (a gate's or "
            "proof's --json output): use that member (`jq .checkpoint FILE > checkpoint.json` saves it)")
    raise ProvenanceInputError("input:bad_checkpoint", f"{where} is not a checkpoint ({problem}): expected "
                               f"{CHECKPOINT_EXPECTED}")


def verify_contents(
    entries: Iterable[tuple[int, bytes]],
    *,
    size: int,
    latest: dict[str, Any] | None,
    trusted: TrustedKeys,
    checkpoints: Iterable[dict[str, Any]] = (),
    stored_nodes: Mapping[int, bytes] | None = None,
    earlier: Iterable[dict[str, Any]] = (),
    all_signatures: bool = False,
    index_rows: Callable[[int, int], Mapping[int, tuple[Any, ...]]] | None = None,
    stored_map_root: bytes | None = None,
) -> VerifyReport:
    """Recompute the tree over ``entries`` (index order) and check it against the signed checkpoints.

    ``latest`` must cover exactly ``size`` entries and carry a trusted signature; every other checkpoint in
    ``checkpoints`` must have the root of the tree at its size (and, with ``all_signatures``, a trusted
    signature); ``earlier`` are checkpoints saved elsewhere (an export): the ledger must still contain them.
    ``index_rows(lo, hi)`` gives the store's index columns of entries lo..hi: each must match the entry's body
    (``entries.index_row``), since ``ledger log`` looks entries up through them. The verifiable index is rebuilt
    from the entries: its root must be the latest checkpoint's ``map_root`` (when it has one), and so must
    ``stored_map_root``, the root of the index rows the store holds.
    """
    sigs = 0
    checked: list[tuple[dict[str, Any], bool]] = []  # (checkpoint, its signature checked already)

    def sign_check(cp: dict[str, Any], index: int | None = None) -> None:
        """Check a directly trusted key's signature now; a key only rotations reach, after the scan."""
        direct = str(cp.get("key_id")) in trusted or not len(trusted)
        if direct:
            trusted.check_checkpoint(cp, index=index)
        checked.append((cp, direct))

    if latest is None:
        if size:
            raise LedgerIntegrityError(
                "ledger:no_checkpoint", "no signed checkpoint covers the ledger", index=0,
                expected="a signed checkpoint", found="none",
            )
    else:
        sign_check(latest)
        sigs += 1
        if latest["tree_size"] != size:
            first = min(size, latest["tree_size"])
            raise LedgerIntegrityError(
                "ledger:size_mismatch", "the entries do not match the latest signed checkpoint", index=first,
                expected=f"{latest['tree_size']} entries", found=f"{size} entries",
            )
    want: dict[int, str] = {}
    for cp in checkpoints:
        if all_signatures:
            sign_check(cp, cp["tree_size"] - 1)
            sigs += 1
        want[cp["tree_size"]] = cp["root_hash"]
    for cp in earlier:
        sign_check(cp)
        sigs += 1
        if cp["tree_size"] > size:
            raise LedgerIntegrityError(
                "ledger:truncated", "the ledger is shorter than a checkpoint it signed earlier", index=size,
                expected=f"at least {cp['tree_size']} entries (root {cp['root_hash'][:16]})", found=f"{size} entries",
            )
        if want.get(cp["tree_size"], cp["root_hash"]) != cp["root_hash"]:
            raise LedgerIntegrityError(
                "ledger:fork", "two signed checkpoints disagree on one tree size", index=cp["tree_size"] - 1,
                expected=cp["root_hash"], found=want[cp["tree_size"]],
            )
        want[cp["tree_size"]] = cp["root_hash"]
    if latest is not None:
        want[latest["tree_size"]] = latest["root_hash"]

    frontier = Frontier()
    previous: str | None = None
    expected_idx = 0
    map_values: dict[bytes, list[tuple[int, bytes]]] = {}
    rotations: list[tuple[int, dict[str, Any]]] = []
    page: dict[int, tuple[Any, ...]] = {}
    for idx, body in entries:
        if idx != expected_idx:
            raise LedgerIntegrityError(
                "ledger:gap", "entry is missing", index=expected_idx, expected=f"index {expected_idx}",
                found=f"index {idx}",
            )
        statement = parse_entry(body, idx)
        if statement["predicateType"] == ROTATION_V1:
            rotations.append((idx, statement))
        if index_rows is not None:
            page[idx] = index_row(statement)
            if len(page) >= _INDEX_PAGE:
                _check_index(page, index_rows)
                page = {}
        link = statement["predicate"].get("previous")
        if link != previous:
            raise LedgerIntegrityError(
                "ledger:broken_chain",
                f"predicate.previous does not name the hash of entry {idx - 1} (entry {idx - 1} or {idx} was changed)",
                index=idx,
                expected=str(previous), found=str(link),
            )
        created = frontier.push(_leaf(body))
        leaf = created[0][1]
        for subject in statement["subject"]:
            refs = map_values.setdefault(bytes.fromhex(subject["digest"]["sha256"]), [])
            if not refs or refs[-1][0] != idx:  # an entry naming a digest twice is listed once
                refs.append((idx, leaf))
        if stored_nodes is not None:
            for nid, h in created:
                stored = stored_nodes.get(nid)
                if stored != h:
                    what = "leaf hash" if nid == idx else f"Merkle node {nid >> 48}/{nid & ((1 << 48) - 1)}"
                    raise LedgerIntegrityError(
                        "ledger:hash_mismatch", f"stored {what} differs from the recomputed one", index=idx,
                        expected=h.hex(), found=stored.hex() if stored else "nothing",
                    )
        previous = created[0][1].hex()
        root_want = want.get(idx + 1)
        if root_want is not None:
            root = frontier.root().hex()
            if root != root_want:
                raise LedgerIntegrityError(
                    "ledger:root_mismatch", f"the root of the first {idx + 1} entries differs from the checkpoint",
                    index=idx, expected=root_want, found=root,
                )
        expected_idx += 1
    if expected_idx != size:
        raise LedgerIntegrityError(
            "ledger:gap", "entries are missing at the end", index=expected_idx,
            expected=f"{size} entries", found=f"{expected_idx} entries",
        )
    if index_rows is not None:
        if page:
            _check_index(page, index_rows)
        beyond = index_rows(size, 2**62)
        if beyond:
            extra = min(beyond)
            raise LedgerIntegrityError(
                "ledger:bad_index", "the index names an entry the ledger does not have", index=extra,
                expected=f"{size} entries", found=f"index rows for entry {extra}",
            )
    if rotations or not all(direct for _, direct in checked):
        chain = KeyChain(trusted, rotations)
        for cp, direct in checked:
            chain.check_checkpoint(cp, index=cp["tree_size"] - 1, signed=not direct)
    if latest is not None and MAP_ROOT in latest:
        _check_map(map_values, latest, stored_map_root)
    root_hex = (frontier.root() if size else EMPTY_ROOT).hex()
    return VerifyReport(
        tree_size=size, root_hash=root_hex, checkpoint=latest, checkpoints_checked=len(want), signatures_checked=sigs
    )


_INDEX_PAGE = 5000


def _check_map(values: dict[bytes, list[tuple[int, bytes]]], latest: Mapping[str, Any],
               stored: bytes | None) -> None:
    root, _ = vmap.build(values, nodes=False)
    last = int(latest["tree_size"]) - 1
    if root.hex() != latest[MAP_ROOT]:
        raise LedgerIntegrityError(
            "ledger:map_root_mismatch", "the index rebuilt from the entries differs from the signed map root",
            index=last, expected=str(latest[MAP_ROOT]), found=root.hex())
    if stored is not None and stored != root:
        raise LedgerIntegrityError(
            "ledger:bad_map", "the stored index rows differ from the index rebuilt from the entries (map rows were "
            "changed): `trainguard ledger upgrade --rebuild-index` rebuilds them", index=last,
            expected=root.hex(), found=stored.hex())


def _check_index(page: Mapping[int, tuple[Any, ...]], index_rows: Callable[[int, int], Mapping[int, tuple[Any, ...]]],
                 ) -> None:
    stored = index_rows(min(page), max(page))
    for idx in sorted(set(page) | set(stored)):
        want, got = page.get(idx), stored.get(idx)
        if want != got:
            raise LedgerIntegrityError(
                "ledger:bad_index", "the index columns (source, verdict, time, subject digests) differ from the "
                f"signed entry {idx}: lookups through them (gate, ledger log) could be misled", index=idx,
                expected=_show(want), found=_show(got),
            )


def _show(row: tuple[Any, ...] | None) -> str:
    if row is None:
        return "nothing"
    source, verdict, time, digests = row
    return f"source={source} verdict={verdict} time={time} subjects={digests}"


def _leaf(body: bytes) -> bytes:
    return _sha256(b"\x00" + body).digest()
