"""Where the CLI writes: data (tables, JSON) on stdout, logs and progress on stderr (rich)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

__all__ = ["stderr", "stdout", "print_error", "print_json", "log"]

stderr = Console(stderr=True, highlight=False)
stdout = Console(highlight=False, soft_wrap=True)


def print_error(message: str, *, code: str | None = None) -> None:
    """One clear line on stderr, never a traceback."""
    from rich.markup import escape

    suffix = f" [{code}]" if code else ""
    # escaped: a message or code in brackets must print as text, not be swallowed as rich markup
    stderr.print(f"[bold red]trainguard: error:[/] {escape(message + suffix)}", markup=True, soft_wrap=True)


def log(message: str) -> None:
    """A progress or info line on stderr."""
    stderr.print(message, markup=False, soft_wrap=True)


def print_json(document: Any) -> None:
    """One JSON document on stdout (sorted keys, for machines)."""
    sys.stdout.write(json.dumps(document, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()
