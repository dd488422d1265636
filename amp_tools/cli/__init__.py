"""The ``amp-tools`` command: `app` (the typer application), `main` (the console script) and
`cli_command` (the click command with the help conventions applied).

The commands live in private modules of this package, one per command group (``_main`` the root
and the small groups, ``_budgets``, ``_ledger``, ``_owner``, ``_payments``, ``_serve``); ``_help``
holds the help conventions and shared options, ``_paths`` and ``_ports`` the checks commands share.

The names are loaded on first use: ``amp_tools.mcp.command`` uses ``_help`` and is itself registered
by ``_main``, so importing ``_main`` eagerly here would make importing ``amp_tools.mcp.command``
first a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amp_tools.cli._main import app, cli_command, main
    from amp_tools.cli._ports import require_free_port

__all__ = ["app", "cli_command", "main", "require_free_port"]

_HOMES = {"app": "_main", "cli_command": "_main", "main": "_main", "require_free_port": "_ports"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{home}"), name)
