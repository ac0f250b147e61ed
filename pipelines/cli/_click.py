"""The click building blocks of the ``trainguard`` command tree.

Every command is a :class:`Command` (or :class:`Group`) whose click callback does no work: it returns the parsed
values as an ``Args`` namespace whose ``func`` is the command's handler, so parsing (click) and running (the
handler, inside ``main``'s error handling) stay apart, and a handler reads ``args.ledger`` as it did under argparse.
Help pages print their ``Example:`` epilog verbatim (copy-paste safe), list subcommands in the order they were
added, take ``-h`` as well as ``--help``, and accept a unique prefix of a long option (``--label`` for
``--label-column``) as argparse did.

Example::

    from pipelines.cli._click import Group, argument, command, option

    root = Group("trainguard")
    command(root, "report", handler, summary="Re-render report.html.", example="trainguard report out/credit",
            params=[argument("out_dir", "OUT", "an ingest output directory"), option("--json", is_flag=True)])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace as Args
from typing import Any

import click

__all__ = ["Args", "Handler", "Command", "Group", "command", "group", "option", "argument"]

#: A command's handler: the parsed values in, the exit code out (errors are raised, ``main`` maps them).
Handler = Callable[[Args], int]

_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


def _expand_prefixes(cmd: click.Command, ctx: click.Context, args: list[str], *, group: bool) -> list[str]:
    """``args`` with each unique prefix of a long option spelled out (argparse's ``allow_abbrev``); an ambiguous or
    unknown one is left for click to refuse. A group stops at its subcommand's name: the rest is the subcommand's."""
    takes_value: dict[str, bool] = {}
    for param in cmd.get_params(ctx):
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                if name.startswith("--"):
                    takes_value[name] = not param.is_flag and not param.count
    out: list[str] = []
    value_next = False
    for i, arg in enumerate(args):
        if value_next:
            out.append(arg)
            value_next = False
            continue
        if arg == "--" or (group and not arg.startswith("-")):
            return out + args[i:]
        if not arg.startswith("--"):
            out.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name not in takes_value:
            matches = [known for known in takes_value if known.startswith(name)]
            name = matches[0] if len(matches) == 1 else name
        out.append(name + eq + value)
        value_next = takes_value.get(name, False) and not eq
    return out


class Command(click.Command):
    """A command taking ``-h`` and unique prefixes of its long options; its epilog (``Example:``) prints as written."""

    def __init__(self, name: str | None, **attrs: Any) -> None:
        attrs["context_settings"] = {**_SETTINGS, **(attrs.get("context_settings") or {})}
        super().__init__(name, **attrs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _expand_prefixes(self, ctx, args, group=False))

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _verbatim_epilog(self.epilog, formatter)


class Group(click.Group):
    """A group of commands listed in the order they were added; a usage error, not the help, when run bare."""

    command_class = Command

    def __init__(self, name: str | None = None, **attrs: Any) -> None:
        attrs["context_settings"] = {**_SETTINGS, **(attrs.get("context_settings") or {})}
        attrs.setdefault("no_args_is_help", False)
        super().__init__(name, **attrs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _expand_prefixes(self, ctx, args, group=True))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _verbatim_epilog(self.epilog, formatter)


def _verbatim_epilog(epilog: str | None, formatter: click.HelpFormatter) -> None:
    if epilog:
        formatter.write_paragraph()
        with formatter.indentation():
            for line in epilog.splitlines():
                formatter.write(f"{'':>{formatter.current_indent}}{line}\n")


def _callback(handler: Handler, *, inherit: bool, defaults: dict[str, Any] | None = None) -> Callable[..., Any]:
    """The click callback of a command: its values (with ``defaults``) and ``handler`` as an ``Args``. ``inherit``:
    an option the command shares with its group and that is not given here keeps the group's value
    (``keys --ledger X show`` is ``keys show --ledger X``), as argparse's ``default=SUPPRESS`` did."""

    def callback(**params: Any) -> Args | None:
        ctx = click.get_current_context()
        if isinstance(ctx.command, click.Group) and ctx.invoked_subcommand is not None:
            return None  # the subcommand's callback makes the Args
        values = {**(defaults or {}), **params}
        if inherit and ctx.parent is not None:
            given = {k: v for k, v in params.items() if v is not None and v is not False}
            values = {**(defaults or {}), **params, **ctx.parent.params, **given}
        return Args(func=handler, **values)

    return callback


def command(parent: click.Group, name: str, handler: Handler, *, summary: str, example: str,
            params: Sequence[click.Parameter] = (), description: str | None = None,
            inherit: bool = False) -> Command:
    """Add the command ``name`` to ``parent``: ``summary`` in the parent's list, ``description`` (default the
    summary) atop its ``--help``, ``Example: <example>`` at its foot."""
    cmd = Command(name, callback=_callback(handler, inherit=inherit), params=list(params), short_help=summary,
                  help=description or summary, epilog=f"Example: {example}")
    parent.add_command(cmd)
    return cmd


def group(parent: click.Group, name: str, *, summary: str, example: str, params: Sequence[click.Parameter] = (),
          handler: Handler | None = None, defaults: dict[str, Any] | None = None) -> Group:
    """Add the group ``name`` to ``parent``; with a ``handler``, the group run without a subcommand calls it
    (with ``defaults`` for the values only its subcommands take), otherwise a subcommand is required."""
    callback = _callback(handler, inherit=False, defaults=defaults) if handler is not None else None
    grp = Group(name, callback=callback, params=list(params), short_help=summary, help=summary,
                epilog=f"Example: {example}", invoke_without_command=handler is not None)
    parent.add_command(grp)
    return grp


def option(*decls: str, **attrs: Any) -> click.Option:
    """``click.Option``: ``option("--out", metavar="DIR", help=...)``; ``is_flag=True`` for argparse's store_true."""
    return click.Option(list(decls), **attrs)


def argument(name: str, metavar: str, help: str) -> click.Argument:
    """A required positional argument, listed with its help under "Positional arguments"."""
    return click.Argument([name], metavar=metavar, help=help)
