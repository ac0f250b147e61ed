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
import stat
from pathlib import Path
from typing import Any

from provenance.errors import ProvenanceInputError

__all__ = ["file_digest", "dir_digest", "path_digest", "copy_with_digest", "read_regular", "canonical_json", "parse_digest", "sha256_hex"]

_BUFFER = 1 << 20  # 1 MiB reads: large enough that hashing, not Python, sets the pace
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def canonical_json(obj: Any) -> bytes:
    """Canonical bytes of a JSON value: sorted keys, no spaces, UTF-8 (docs/design.md)."""
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProvenanceInputError("entry:not_json", f"value cannot be written as canonical JSON: {exc}") from exc
    return text.encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """``"sha256:<hex>"`` of a file's bytes, streamed in constant memory (symlinks followed).

    Only a regular file is read: a FIFO, socket or device is refused by its ``stat`` before it is opened (reading
    one would block or never end), and what was opened is checked again, so a path swapped meanwhile is refused too.
    Example: ``file_digest("data_samples/credit/reference.csv")``.
    """
    p = Path(path)
    fd = _open_regular(p)
    try:
        with open(fd, "rb", buffering=0, closefd=False) as fh:
            digest = hashlib.file_digest(fh, "sha256")  # type: ignore[arg-type]
    except OSError as exc:
        raise _os_error(p, exc) from exc
    finally:
        os.close(fd)
    return "sha256:" + digest.hexdigest()


def copy_with_digest(path: str | os.PathLike[str], dest: str | os.PathLike[str]) -> str:
    """Copy the regular file ``path`` to ``dest`` and return the ``"sha256:<hex>"`` of the bytes copied (refused as
    ``file_digest`` refuses), so what is read from ``dest`` afterwards is exactly what the digest names."""
    p = Path(path)
    fd = _open_regular(p)
    sha = hashlib.sha256()
    try:
        with open(fd, "rb", closefd=False) as fh, open(dest, "wb") as out:
            while chunk := fh.read(1 << 20):
                sha.update(chunk)
                out.write(chunk)
    except OSError as exc:
        raise _os_error(p, exc) from exc
    finally:
        os.close(fd)
    return "sha256:" + sha.hexdigest()


def read_regular(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a small regular file (a saved checkpoint), refused as ``file_digest`` refuses: a FIFO, socket,
    device or directory is never opened for reading."""
    p = Path(path)
    fd = _open_regular(p)
    try:
        with open(fd, "rb", closefd=False) as fh:
            return fh.read()
    except OSError as exc:
        raise _os_error(p, exc) from exc
    finally:
        os.close(fd)


def dir_digest(path: str | os.PathLike[str]) -> str:
    """``"sha256:<hex>"`` of a directory: SHA-256 over sorted ``"<relative posix path>\\0<file digest>\\n"`` lines.

    It covers every file a reader of the directory can reach, so anything it cannot cover is refused (fail closed)
    rather than skipped: a symlink to a directory or a dangling symlink (``input:symlink``), a FIFO, socket or
    device (``input:not_a_file``), a subdirectory that cannot be listed (``input:unreadable``). A symlink to a
    regular file is hashed as that file's bytes under the link's own path, as a reader sees it.
    """
    root = Path(path)
    if not root.is_dir():
        raise ProvenanceInputError("input:not_directory", f"not a directory: {root}")
    lines = []
    todo = [root]
    while todo:
        folder = todo.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            raise _os_error(folder, exc) from exc
        for entry in entries:
            full = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                todo.append(full)
                continue
            if entry.is_symlink():
                _require_file_link(full, root)
            elif not entry.is_file(follow_symlinks=False):
                _require_regular(full, _stat(full))  # raises: a FIFO, socket or device
            rel = full.relative_to(root).as_posix()
            lines.append(f"{rel}\0{file_digest(full)}\n")
    lines.sort()
    # surrogateescape: a file name that is not UTF-8 is hashed as its raw bytes (UTF-8 names are unchanged)
    return "sha256:" + hashlib.sha256("".join(lines).encode("utf-8", "surrogateescape")).hexdigest()


def path_digest(path: str | os.PathLike[str]) -> str:
    """The digest of a file, or of a directory when ``path`` is one."""
    return dir_digest(path) if Path(path).is_dir() else file_digest(path)


_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def _open_regular(p: Path) -> int:
    """A blocking read-only descriptor of the regular file ``p``: refused by ``stat`` before it is opened, and opened
    non-blocking then checked again (a FIFO swapped in meanwhile never waits for a writer)."""
    _require_regular(p, _stat(p))
    try:
        fd = os.open(p, os.O_RDONLY | _NONBLOCK)
    except OSError as exc:
        raise _os_error(p, exc) from exc
    try:
        _require_regular(p, os.fstat(fd))
        if _NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError):
            raise _os_error(p, exc) from exc
        raise
    return fd


def _stat(p: Path) -> os.stat_result:
    try:
        return os.stat(p)
    except OSError as exc:
        raise _os_error(p, exc) from exc


def _os_error(p: Path, exc: OSError) -> ProvenanceInputError:
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return ProvenanceInputError("input:missing_file", f"file not found: {p}")
    return ProvenanceInputError("input:unreadable", f"cannot read {p}: {exc.strerror or exc}")


def _require_regular(p: Path, st: os.stat_result) -> None:
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode):
        raise ProvenanceInputError("input:is_directory", f"{p} is a directory; use dir_digest")
    kind = next((what for test, what in _KINDS if test(st.st_mode)), "not a regular file")
    raise ProvenanceInputError("input:not_a_file", f"{p} is {kind}, not a regular file or a directory of them; "
                                                   "refused without reading it")


def _require_file_link(link: Path, root: Path) -> None:
    """Refuse a symlink inside a directory unless it leads to a regular file (its bytes are then hashed)."""
    try:
        target = os.readlink(link)
        st = os.stat(link)
    except OSError as exc:  # dangling, a loop, no permission
        why = "leads nowhere" if isinstance(exc, FileNotFoundError) else f"cannot be followed ({exc.strerror or exc})"
        raise ProvenanceInputError("input:symlink", f"{link} in {root} is a symlink that {why}; the directory "
                                                    "is refused: remove the link or replace it with a file") from exc
    if stat.S_ISDIR(st.st_mode):
        raise ProvenanceInputError(
            "input:symlink", f"{link} in {root} is a symlink to the directory {target}; the directory is refused, "
            "since readers (pandas, pyarrow) would read the files behind the link: copy them in place of the link")
    _require_regular(link, st)


def parse_digest(text: str) -> str:
    """Normalise ``sha256:<hex>`` or a bare 64-hex string to ``sha256:<hex>``; refuse anything else."""
    value = text.strip().lower()
    if not value.startswith("sha256:"):
        value = "sha256:" + value
    if not _DIGEST_RE.match(value):
        raise ProvenanceInputError("input:bad_digest", f"not a SHA-256 digest: {text!r} (want sha256:<64 hex>)")
    return value
