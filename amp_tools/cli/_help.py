"""Help conventions of every ``amp-tools`` command, and the options commands share.

Every command has a one-line summary (the docstring's first line), a help text for each
argument and option, a readable metavar (``PATH``, ``ID``, ``URL``, ``N``...; flags show none),
and an example (`examples` makes the epilog). ``tests/cli/test_help.py`` walks every command's
``--help`` and holds new commands to these rules.

Shared options are defined once here: `LedgerOpt` for every command that reads the ledger,
`BudgetOpt` for a budget id filter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import typer

__all__ = ["LEDGER_HELP", "BudgetOpt", "LedgerOpt", "examples", "readable", "walk"]

LEDGER_HELP = "The ledger: a SQLite file or a postgresql:// URL (default: AMP_TOOLS_LEDGER_URL, else " \
              "$AMP_TOOLS_HOME/ledger.db)."

#: ``--ledger PATH|URL``: the one definition every ledger-reading command uses
LedgerOpt = Annotated[str | None, typer.Option("--ledger", metavar="PATH|URL", help=LEDGER_HELP,
                                               show_default=False)]
#: ``--budget ID``: only this budget
BudgetOpt = Annotated[str | None, typer.Option("--budget", metavar="ID", help="Only this budget id.",
                                               show_default=False)]


def examples(*commands: str) -> str:
    """An epilog listing example invocations (each a full ``amp-tools ...`` line)."""
    return "Examples:\n\n" + "\n\n".join(f"  {c}" for c in commands)


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, command) for `command` and every subcommand, depth first, in name order."""
    yield path, command
    for name in sorted(getattr(command, "commands", {}) or {}):
        if not getattr(command.commands[name], "hidden", False):  # an alias kept for old scripts
            yield from walk(command.commands[name], (*path, name))


def _no_type(ctx: Any) -> None:
    return None


def readable(command: Any) -> Any:
    """Fix what typer renders unreadably, on a built command tree: flags (and ``--help``) show
    no ``<bool>`` type, and an argument is shown by its metavar alone (no ``<str>``, no ``{ID}``).
    Returns `command`."""
    for _, cmd in walk(command):
        ctx = typer.Context(cmd, info_name=cmd.name)
        help_option = cmd.get_help_option(ctx)
        if help_option is not None:
            help_option.metavar = ""
        for param in cmd.params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
            elif param.param_type_name == "argument" and param.metavar:
                # typer prints an argument's Python type next to its metavar, and braces a required one in
                # the usage line ({ID}); the metavar says it all: `... approve [OPTIONS] ID`
                param.display_type_rich = _no_type
                shown = param.metavar if param.required else f"[{param.metavar}]"
                param._usage_display_name = lambda shown=shown: shown
    return command
