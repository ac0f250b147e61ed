"""The witness: the newest checkpoint this machine has verified or signed, per ledger, kept outside the database.

Someone who can write the ledger's database but not its key can still roll the whole database back to an older,
consistent state (entries, nodes, index and checkpoints together): every proof in it would verify. The only defence
is a checkpoint remembered elsewhere, as TUF clients keep the newest metadata they trusted. The ledger's writer
records each checkpoint it signs here and the gate each one it verified; the gate refuses a ledger that does not
extend the remembered one with a consistency proof (``ledger:truncated`` / ``ledger:fork``, exit 3).

Where: ``$TRAINGUARD_WITNESS`` (a directory; ``off`` turns the witness off), else
``$XDG_STATE_HOME/trainguard/checkpoints``, else ``~/.local/state/trainguard/checkpoints``; one JSON file per ledger
origin, named by the SHA-256 of the origin. A witness that cannot be written is said once on stderr and skipped.

Example::

    >>> import os, tempfile; os.environ["TRAINGUARD_WITNESS"] = tempfile.mkdtemp()
    >>> remember({"origin": "demo", "tree_size": 3, "root_hash": "00" * 32})
    >>> recall("demo")["tree_size"]
    3
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provenance.errors import LedgerIntegrityError

__all__ = ["directory", "file_for", "recall", "remember"]

_warned: set[str] = set()


def directory() -> Path | None:
    """The witness directory, or None when ``$TRAINGUARD_WITNESS=off``."""
    env = os.environ.get("TRAINGUARD_WITNESS")
    if env:
        return None if env == "off" else Path(env)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "trainguard" / "checkpoints"


def file_for(origin: str) -> Path | None:
    """The witness file of the ledger ``origin`` (None when the witness is off)."""
    return _file(origin)


def _file(origin: str) -> Path | None:
    d = directory()
    return None if d is None else d / f"{hashlib.sha256(origin.encode('utf-8')).hexdigest()}.json"


def recall(origin: str) -> dict[str, Any] | None:
    """The newest checkpoint remembered for the ledger ``origin`` (its signature is for the caller to check)."""
    path = _file(origin)
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _damaged(path, exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # never half of a checkpoint being written
        cp = json.loads(_read_all(fd))
    except (OSError, ValueError) as exc:
        raise _damaged(path, exc) from exc
    finally:
        os.close(fd)
    if not isinstance(cp, dict) or cp.get("origin") != origin or not isinstance(cp.get("tree_size"), int):
        raise LedgerIntegrityError("ledger:bad_witness", f"the witness file {path} holds no checkpoint of {origin}",
                                   expected="a checkpoint", found=str(cp)[:80])
    return cp


def remember(cp: Mapping[str, Any]) -> None:
    """Remember ``cp`` when it is newer than the remembered checkpoint of its ledger; never raises. The file is
    rewritten in place under an exclusive lock (readers take a shared one), so no rename is needed."""
    path = _file(str(cp.get("origin", "")))
    if path is None:
        return
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # two processes never write an older checkpoint over a newer one
            try:
                old = json.loads(_read_all(fd) or b"null")
            except ValueError:
                old = None
            if isinstance(old, dict) and isinstance(old.get("tree_size"), int) and old["tree_size"] >= cp["tree_size"]:
                return
            body = (json.dumps(dict(cp), sort_keys=True) + "\n").encode("utf-8")
            os.pwrite(fd, body, 0)
            os.ftruncate(fd, len(body))
        finally:
            os.close(fd)
    except OSError as exc:
        if str(path.parent) not in _warned:
            _warned.add(str(path.parent))
            print(f"trainguard: warning: cannot keep the ledger witness in {path.parent} ({exc.strerror or exc}); "
                  "set TRAINGUARD_WITNESS to a writable directory", file=sys.stderr)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    offset = 0
    while True:
        chunk = os.pread(fd, 65536, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def _damaged(path: Path, exc: Exception) -> LedgerIntegrityError:
    return LedgerIntegrityError(
        "ledger:bad_witness", f"the witness file {path} is damaged: remove it only if you trust the ledger's "
        "current state", expected="a checkpoint", found=str(exc))
