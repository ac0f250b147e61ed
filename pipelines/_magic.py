"""What a file is by its first bytes, when it is something that must never be read as data (internal to
``reading``): a pickle, an executable, an archive, a compressed file.

Pickles of protocol 2-5 start with PROTO (0x80) and the protocol number. Protocols 0 and 1 have no magic: the
first bytes are decoded with ``pickletools.genops`` (which only decodes opcodes and their arguments, never imports
or calls anything) while the unpickler's stack, marks and memo are emulated. The bytes are refused as a pickle
when the unpickler would get as far as calling something it imported (REDUCE, INST, OBJ, NEWOBJ, BUILD after a
GLOBAL or INST naming ``module`` and ``name`` as dotted identifiers, a STACK_GLOBAL or an extension code), or
would reach STOP having imported something. When the first bytes are still a valid pickle prefix where they end,
the whole file is decoded the same way (streamed; ``rest``): padding cannot push the import out of sight. Text such as a CSV
whose header starts with ``c`` (the GLOBAL opcode) stops the unpickler first: ``,`` and a line break are not
opcodes, and letters are opcodes that need items the stack does not have.

Example::

    >>> refused_as(b"cos\\nsystem\\n(S'echo pwned'\\ntR.", complete=True)
    'a Python pickle (it imports os.system)'
    >>> refused_as(b"color,size\\nred,3\\n", complete=True) is None
    True
"""

from __future__ import annotations

import io
import pickletools
import re
from collections.abc import Callable
from typing import BinaryIO

__all__ = ["refused_as"]

_REFUSED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x80\x02", "a Python pickle"), (b"\x80\x03", "a Python pickle"), (b"\x80\x04", "a Python pickle"),
    (b"\x80\x05", "a Python pickle"), (b"(dp0", "a Python pickle"), (b"(lp0", "a Python pickle"),
    (b"ccopy_reg", "a Python pickle"), (b"c__builtin__", "a Python pickle"), (b"cnumpy", "a Python pickle"),
    (b"\x93NUMPY", "a NumPy .npy file (may hold pickled objects)"),
    (b"PK\x03\x04", "a ZIP archive (e.g. .npz, PyTorch or joblib files may hold pickles)"),
    (b"\x7fELF", "an ELF executable"), (b"#!/", "a script"), (b"#! /", "a script"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"), (b"\x89HDF", "an HDF5 file"),
    (b"\x1f\x8b", "a gzip-compressed file (decompress it first)"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file (decompress it first)"),
)
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
# genops' complaints when the bytes simply run out (the prefix ends inside a pickle), not when they are not one
_TRUNCATED = ("exhausted before seeing STOP", "no newline found", "not enough data", "but only")
# opcodes that call an object on the stack (the unpickler runs code here)
_CALLS = frozenset({"REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})


class _Undecided(Exception):
    """The bytes ended inside what is still a valid pickle stream: only more of the file can tell."""


def refused_as(head: bytes, *, complete: bool, rest: Callable[[], BinaryIO] | None = None) -> str | None:
    """What ``head`` (a file's first bytes; ``complete`` when it is the whole file) is, when it must be refused.
    ``rest`` opens the whole file, decoded when ``head`` ends inside a valid pickle prefix (without it, such a
    head is refused: it cannot be shown to be data)."""
    for magic, what in _REFUSED_MAGIC:
        if head.startswith(magic):
            return what
    if _windows_executable(head):
        return "a Windows executable"
    try:
        imported = _pickle_import(io.BytesIO(head), complete=complete)
    except _Undecided:
        if rest is None:
            return "a Python pickle (a valid pickle prefix)"
        with rest() as whole:
            try:
                imported = _pickle_import(whole, complete=True)
            except _Undecided:  # pragma: no cover - complete never leaves it undecided
                imported = "an unfinished stream"
    return None if imported is None else f"a Python pickle (it imports {imported})"


def _windows_executable(head: bytes) -> bool:
    """An MZ header whose e_lfanew points at a PE signature (a text file starting with "MZ" is not one)."""
    if not head.startswith(b"MZ") or len(head) < 0x40:
        return False
    pe = int.from_bytes(head[0x3C:0x40], "little")
    return head[pe:pe + 4] == b"PE\0\0" if pe + 4 <= len(head) else b"\x00" in head[:0x40]


def _import_of(name: str, arg: object) -> str | None:
    """The ``module.name`` a GLOBAL/INST opcode imports (None when its argument is not two dotted names)."""
    if name in ("GLOBAL", "INST"):
        parts = str(arg).split(" ")
        if len(parts) == 2 and all(_DOTTED.fullmatch(p) for p in parts):
            return ".".join(parts)
        return None
    if name == "STACK_GLOBAL":
        return "an object named on the stack"
    if name in ("EXT1", "EXT2", "EXT4"):
        return f"copyreg extension {arg}"
    return None


def _pickle_import(stream: BinaryIO, *, complete: bool) -> str | None:
    """What an unpickler fed ``stream`` would import before calling it or finishing (None when it would stop
    first, which is what happens to text). Raises ``_Undecided`` when an incomplete prefix ends inside a valid
    stream."""
    imported: str | None = None
    stack: list[bool] = []  # one entry per stack item, True for a MARK
    memo: set[object] = set()
    try:
        for opcode, arg, _pos in pickletools.genops(stream):
            name = opcode.name
            if imported is None:
                imported = _import_of(name, arg)
            before = opcode.stack_before
            if pickletools.markobject in before:  # pops everything down to the topmost MARK, and the MARK
                if True not in stack:
                    return None
                while not stack.pop():
                    pass
                popped = before.index(pickletools.markobject)
            else:
                popped = len(before)
            if len(stack) < popped:  # the unpickler fails here: nothing was called
                return None
            del stack[len(stack) - popped:]
            if name in _PUTS:
                if not stack:
                    return None
                memo.add(len(memo) if name == "MEMOIZE" else arg)
            elif name in _GETS and arg not in memo:
                return None
            stack.extend(item is pickletools.markobject for item in opcode.stack_after)
            if name == "STOP":  # finished without calling anything: loading it runs no code of the file's
                return None
            if name in _CALLS and imported is not None:
                return imported
    except ValueError as exc:  # not opcodes (text), or the prefix ends inside the pickle
        if complete or not any(text in str(exc) for text in _TRUNCATED):
            return None
        raise _Undecided from exc
    except Exception:  # noqa: BLE001 - any other failure to decode: not a pickle stream
        return None
    if not complete:
        raise _Undecided
    return imported
