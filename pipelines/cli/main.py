"""``trainguard`` command line: data on stdout, logs on stderr, exit codes from docs/design.md.

Exit codes: 0 ok/approved, 1 rejected or refused by policy or gate, 2 bad input or usage (one clear line,
no traceback), 3 ledger integrity failure, 70 internal error (a bug; ``TRAINGUARD_DEBUG=1`` also prints its
traceback on stderr; known errors keep their one line, exit code and ``--json`` document in debug mode too).
The commands are click commands (``pipelines/cli/_click.py``): command modules add theirs with
``register(group)`` and must import heavy libraries (pandas, prefect, great_expectations, rich) inside their
handlers, so that ``trainguard gate`` stays at "hashing plus milliseconds". Parsing only builds the handler's
arguments; the handler then runs inside ``main``'s error handling. docs/cli.md is generated from the help pages
(``python -m pipelines.cli.docs > docs/cli.md``).

Example::

    trainguard ingest data_samples/credit/batch_poisoned.csv --source credit --label-column class
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

import click

from pipelines.cli import _click, audit_cmd, ingest_cmd
from pipelines.cli._console import print_error, print_json

__all__ = ["main", "build_parser", "INTERNAL_ERROR", "UsageError"]

#: Exit code of an unexpected failure (a bug): distinct from 1 (rejected or refused) and 2 (bad input).
INTERNAL_ERROR = 70


class UsageError(Exception):
    """A command line click refuses (exit 2), as one line; ``main`` prints it (and with ``--json`` a document)."""


def build_parser() -> click.Group:
    """The whole command tree, a click group: every command with its ``--help`` example."""
    root = _click.Group(
        "trainguard",
        help="Keep poisoned and corrupted rows out of training data.",
        epilog="Example: trainguard ingest data.csv --source vendor-a --label-column label",
        params=[_click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
                              help="show the version and exit")],
    )
    ingest_cmd.register(root)
    audit_cmd.register(root)
    return root


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``, looked up only when asked (importlib.metadata costs every command 15 ms otherwise)."""
    if value:
        click.echo(_version())
        ctx.exit()


def _parse(argv: list[str]) -> _click.Args:
    """The command's arguments, ``func`` its handler. ``--help`` and ``--version`` print and raise SystemExit(0)
    (as argparse did); a command line click refuses raises :class:`UsageError`."""
    root = build_parser()
    try:
        with root.make_context("trainguard", list(argv)) as ctx:
            args: _click.Args = root.invoke(ctx)
            return args
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.ClickException as exc:
        raise UsageError(_one_line(exc)) from None


def _one_line(exc: click.ClickException) -> str:
    """``trainguard gate: error: missing argument 'PATH' (usage: trainguard gate [OPTIONS] PATH; see --help)``."""
    ctx = exc.ctx if isinstance(exc, click.UsageError) else None
    prog = ctx.command_path if ctx is not None else "trainguard"
    message = exc.format_message().strip().removesuffix(".").replace("\n", " ")
    message = message[:1].lower() + message[1:]  # argparse's style: "trainguard gate: error: missing ..."
    if ctx is None:
        return f"{prog}: error: {message}"
    usage = " ".join(ctx.get_usage().removeprefix("Usage:").split())
    return f"{prog}: error: {message} (usage: {usage}; see {prog} --help)"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"trainguard {version('trainguard')}"
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "trainguard (source tree)"


def _known_error(exc: BaseException) -> int | None:
    """The exit code of a trainguard error (its class's), or None when ``exc`` is not one of ours."""
    from reasons.errors import TrainguardError  # the shared base: stdlib only, imports no package

    return int(exc.exit_code) if isinstance(exc, TrainguardError) else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (``sys.exit(main())`` from the console script)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(argv)
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
