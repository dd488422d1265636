"""The ``amp-tools mcp`` command: options, start-up checks, and which transport runs.

Imports only typer at module level, so the CLI loads without the ``[mcp]`` extra; the SDK is
imported when the command runs, and its absence is one readable error line. In stdio mode
stdout belongs to the protocol, so everything for a person goes to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from amp_tools.cli_help import LedgerOpt
from amp_tools.errors import ConfigError

__all__ = ["mcp_command"]

_INSTALL_HINT = "install the MCP extra: pip install 'amp-tools[mcp]'"


def mcp_command(
    policy: Annotated[Path, typer.Option("--policy", metavar="PATH",
                                         help="Budget policy file (.yaml, .toml or .json).")],
    ledger: LedgerOpt = None,
    sandbox: Annotated[bool, typer.Option("--sandbox", help="Use the embedded offline sandbox (the default when "
                                                            "no --cp is given).")] = False,
    cp: Annotated[str | None, typer.Option("--cp", metavar="URL",
                                           help="Credential Provider URL of a real AMP network.")] = None,
    transport: Annotated[str, typer.Option(metavar="NAME", help="stdio (one client, e.g. Claude Desktop) or http "
                                                "(streamable HTTP at /mcp, one session per client).")] = "stdio",
    host: Annotated[str, typer.Option(metavar="HOST", help="Interface for --transport http.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="TCP port for --transport http.")] = 8000,
    approvals: Annotated[str, typer.Option(metavar="HOW",
                                           help="auto: ask the person through the MCP client when it supports "
                                                "elicitation, else wait for `amp-tools approvals`; cli: always "
                                                "wait for `amp-tools approvals`.")] = "auto",
    budget_id: Annotated[str | None, typer.Option(metavar="ID",
                                                  help="Budget id in the ledger (default: 'default', or a fresh "
                                                       "'sandbox-...' id with the sandbox).")] = None,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a --host other than loopback. The "
                                                                      "server has no authentication: anyone who "
                                                                      "reaches the port can spend the budget.")
                            ] = False,
) -> None:
    """Serve the guarded shopping and payment tools over MCP (stdio or streamable HTTP)."""
    if sandbox and cp:
        raise ConfigError("--sandbox and --cp exclude each other", hint="Pass one: --sandbox for offline, --cp URL.")
    if transport not in ("stdio", "http"):
        raise ConfigError(f"unknown --transport {transport!r}; expected stdio or http")
    if approvals not in ("auto", "cli"):
        raise ConfigError(f"unknown --approvals {approvals!r}; expected auto or cli")
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port} is not a TCP port; expected 1 to 65535")
    try:
        from amp_tools.mcp.run import run
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != "mcp":
            raise
        raise ConfigError("the mcp package is not installed", hint=_INSTALL_HINT) from None
    run(policy, ledger=ledger, cp_url=cp, budget_id=budget_id, transport=transport,  # type: ignore[arg-type]
        approvals=approvals, host=host, port=port, allow_remote=allow_remote)  # type: ignore[arg-type]
