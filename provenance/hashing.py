"""Hashing: streamed file digests, directory digests and canonical JSON bytes.

Example::

    >>> from provenance.hashing import canonical_json
    >>> canonical_json({"b": 1, "a": "é"})
    b'{"a":"\\xc3\\xa9","b":1}'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from provenance.errors import ProvenanceInputError

__all__ = ["file_digest", "dir_digest", "path_digest", "canonical_json", "parse_digest", "sha256_hex"]

_BUFFER = 1 << 20  # 1 MiB reads: large enough that hashing, not Python, sets the pace
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def canonical_json(obj: Any) -> bytes:
    """Canonical bytes of a JSON value: sorted keys, no spaces, UTF-8 (DESIGN.md)."""
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProvenanceInputError("entry:not_json", f"value cannot be written as canonical JSON: {exc}") from exc
    return text.encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """``"sha256:<hex>"`` of a file's bytes, streamed in constant memory.

    Example: ``file_digest("data_samples/credit/reference.csv")``.
    """
    p = Path(path)
    try:
        with open(p, "rb", buffering=0) as fh:
            digest = hashlib.file_digest(fh, "sha256")  # type: ignore[arg-type]
    except FileNotFoundError as exc:
        raise ProvenanceInputError("input:missing_file", f"file not found: {p}") from exc
    except IsADirectoryError as exc:
        raise ProvenanceInputError("input:is_directory", f"{p} is a directory; use dir_digest") from exc
    except OSError as exc:
        raise ProvenanceInputError("input:unreadable", f"cannot read {p}: {exc.strerror}") from exc
    return "sha256:" + digest.hexdigest()


def dir_digest(path: str | os.PathLike[str]) -> str:
    """``"sha256:<hex>"`` of a directory: SHA-256 over sorted ``"<relative posix path>\\0<file digest>\\n"`` lines."""
    root = Path(path)
    if not root.is_dir():
        raise ProvenanceInputError("input:not_directory", f"not a directory: {root}")
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            lines.append(f"{rel}\0{file_digest(full)}\n")
    lines.sort()
    return "sha256:" + hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def path_digest(path: str | os.PathLike[str]) -> str:
    """The digest of a file, or of a directory when ``path`` is one."""
    return dir_digest(path) if Path(path).is_dir() else file_digest(path)


def parse_digest(text: str) -> str:
    """Normalise ``sha256:<hex>`` or a bare 64-hex string to ``sha256:<hex>``; refuse anything else."""
    value = text.strip().lower()
    if not value.startswith("sha256:"):
        value = "sha256:" + value
    if not _DIGEST_RE.match(value):
        raise ProvenanceInputError("input:bad_digest", f"not a SHA-256 digest: {text!r} (want sha256:<64 hex>)")
    return value
