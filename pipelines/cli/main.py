"""``trainguard`` command line: data on stdout, logs on stderr, exit codes from docs/design.md.

Exit codes: 0 ok/approved, 1 rejected or refused by policy or gate, 2 bad input or usage (one clear line,
no traceback), 3 ledger integrity failure, 70 internal error (a bug; ``TRAINGUARD_DEBUG=1`` also prints its
traceback on stderr; known errors keep their one line, exit code and ``--json`` document in debug mode too).
Command modules register themselves with ``register(subparsers)`` and must import heavy libraries (pandas,
prefect, great_expectations) inside their handlers, so that ``trainguard gate`` stays at "hashing plus
milliseconds".

Example::

    trainguard ingest data_samples/credit/batch_poisoned.csv --source credit --label-column class
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from pipelines.cli import audit_cmd, ingest_cmd
from pipelines.cli._console import print_error, print_json

__all__ = ["main", "build_parser", "INTERNAL_ERROR", "UsageError"]

#: Exit code of an unexpected failure (a bug): distinct from 1 (rejected or refused) and 2 (bad input).
INTERNAL_ERROR = 70

_KNOWN_ERROR_BASES = (
    ("checks.errors", "ChecksError"),
    ("provenance.errors", "ProvenanceError"),
    ("pipelines.errors", "PipelineError"),
)


class UsageError(Exception):
    """A command line argparse refuses (exit 2); ``main`` prints it, and with ``--json`` a JSON document too."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print and exit; main decides how to report
        raise UsageError(f"{self.format_usage().strip()}\n{self.prog}: error: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, every command with its ``--help`` example."""
    parser = _Parser(
        prog="trainguard",
        description="Keep poisoned and corrupted rows out of training data.",
        epilog="Example: trainguard ingest data.csv --source vendor-a --label-column label",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    ingest_cmd.register(sub)
    audit_cmd.register(sub)
    return parser


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked (importlib.metadata costs every command 15 ms otherwise)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(_version())
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"trainguard {version('trainguard')}"
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "trainguard (source tree)"


def _known_error(exc: BaseException) -> int | None:
    """The exit code of a trainguard error, or None when ``exc`` is not one of ours."""
    for module_name, class_name in _KNOWN_ERROR_BASES:
        module = sys.modules.get(module_name)
        base = getattr(module, class_name, None) if module is not None else None
        if base is not None and isinstance(exc, base):
            return int(getattr(exc, "exit_code", 2))
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (``sys.exit(main())`` from the console script)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        if "--json" in argv:
            print_json({"ok": False, "code": "usage", "message": str(exc).splitlines()[-1], "exit_code": 2})
        return 2
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - ours map to their exit code; anything else is a bug (70)
        exit_code = _known_error(exc)
        if exit_code is None:
            if os.environ.get("TRAINGUARD_DEBUG"):  # the traceback on stderr; the exit code and JSON stay as they are
                traceback.print_exception(exc, file=sys.stderr)
            message = (f"internal error: {type(exc).__name__}: {exc} (this is a bug in trainguard; rerun with "
                       "TRAINGUARD_DEBUG=1 for the traceback and report it)")
            print_error(message)
            if getattr(args, "json", False):
                print_json({"ok": False, "code": "internal", "message": message, "exit_code": INTERNAL_ERROR})
            return INTERNAL_ERROR
        print_error(str(exc), code=getattr(exc, "code", None))
        if getattr(args, "json", False):  # machines get the failure as the one JSON document on stdout
            print_json({"ok": False, "code": getattr(exc, "code", None), "message": str(exc),
                        "exit_code": exit_code, **getattr(exc, "details", {})})
        return exit_code
    return int(code or 0)


def _entry() -> None:
    code = main()
    # What the command imported (Prefect, Great Expectations, scikit-learn, pandas) is a large object graph, and
    # the collector's passes over it at interpreter exit took a second after every ingest; frozen objects are
    # left out of them. Nothing is skipped: atexit handlers run, files and connections close as before.
    import gc

    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    _entry()
