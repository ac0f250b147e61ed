"""Where the CLI writes: data (tables, JSON) on stdout, logs and progress on stderr (rich)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    stderr: Console
    stdout: Console

__all__ = ["stderr", "stdout", "print_error", "print_json", "print_ok", "print_table", "log"]


def __getattr__(name: str) -> Any:
    """``stdout`` and ``stderr`` are rich consoles made on first use: importing rich costs a command that prints a
    line (``trainguard gate``) a fifth of its start-up."""
    if name not in ("stdout", "stderr"):
        raise AttributeError(name)
    from rich.console import Console

    console = Console(stderr=True, highlight=False) if name == "stderr" else Console(highlight=False, soft_wrap=True)
    globals()[name] = console
    return console


def _err() -> Console:
    return __getattr__("stderr") if "stderr" not in globals() else globals()["stderr"]  # type: ignore[no-any-return]


def _out() -> Console:
    return __getattr__("stdout") if "stdout" not in globals() else globals()["stdout"]  # type: ignore[no-any-return]


def print_error(message: str, *, code: str | None = None) -> None:
    """One clear line on stderr, never a traceback."""
    from rich.markup import escape

    suffix = f" [{code}]" if code else ""
    # escaped: a message or code in brackets must print as text, not be swallowed as rich markup
    _err().print(f"[bold red]trainguard: error:[/] {escape(message + suffix)}", markup=True, soft_wrap=True)


def log(message: str) -> None:
    """A progress or info line on stderr."""
    _err().print(message, markup=False, soft_wrap=True)


def print_json(document: Any) -> None:
    """One strict JSON document on stdout (sorted keys, for machines; nan and inf are null, never a bare NaN)."""
    from pipelines._json import dumps

    sys.stdout.write(dumps(document, sort_keys=True) + "\n")
    sys.stdout.flush()


def print_ok(document: dict[str, Any]) -> None:
    """A command's success document: ``"ok": true`` (failure documents carry ``"ok": false``) and its fields."""
    print_json({"ok": True, **document})


def print_table(table: Any) -> None:
    """A rich table on stdout; when stdout is not a terminal (a file, a pipe) it is laid out at its natural width,
    so nothing is cut to the 80 columns rich assumes there (``ledger log > audit.txt`` keeps whole digests)."""
    from rich.console import Console

    if _out().is_terminal:
        _out().print(table)
        return
    wide = Console(file=sys.stdout, width=100_000, highlight=False, color_system=None)
    wide.print(table)
