"""Start the server: open the shared backend, settle leftovers, serve one transport, close."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.markup import escape

from amp_tools.approvals import DenyApprover
from amp_tools.errors import ConfigError
from amp_tools.mcp.approval import ApprovalMode
from amp_tools.mcp.backend import Backend, open_backend
from amp_tools.mcp.http import PATH, http_server, is_loopback
from amp_tools.mcp.server import serve_stdio
from amp_tools.mcp.tokens import TokenStore

__all__ = ["HttpOptions", "reconcile_leftovers", "run"]

_MODES = {"auto": "the owner console (URL elicitation) or `amp-tools approvals`",
          "cli": "`amp-tools approvals` and the owner console",
          "form": "the MCP client's form (trusts the MCP client's UI)"}


@dataclass(frozen=True)
class HttpOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    allow_remote: bool = False
    allowed_hosts: Sequence[str] = field(default_factory=tuple)
    sessions_per_token: int = 4
    idle_seconds: float = 900.0


def run(policy: Path | None, *, ledger: str | None = None, cp_url: str | None = None, budget_id: str | None = None,
        transport: Literal["stdio", "http"] = "stdio", approvals: ApprovalMode = "auto",
        http: HttpOptions = HttpOptions(), merchants: str | None = None, console_url: str | None = None,
        approval_wait: float = 30.0, owner_key: str | None = None) -> None:
    """Serve until the client disconnects (stdio) or the process is interrupted (http)."""
    if transport == "http" and not is_loopback(http.host):
        if not http.allow_remote:
            raise ConfigError(f"--host {http.host} is not a loopback address",
                              hint="Keep 127.0.0.1, or pass --allow-remote with --allowed-host NAME for each name "
                                   "clients reach the server by.")
        if not http.allowed_hosts:
            raise ConfigError("--allow-remote needs the host names clients use: --allowed-host NAME (repeatable)",
                              hint="Host and Origin headers are checked against them (DNS rebinding).")
    backend = open_backend(policy, ledger=ledger, cp_url=cp_url, budget_id=budget_id, merchants=merchants,
                           console_url=console_url, approval_wait=approval_wait, owner_key=owner_key)
    err = Console(stderr=True)  # stdout is the protocol's in stdio mode: people read stderr
    if transport == "http" and not TokenStore(backend.ledger).list():
        err.print("No MCP token exists yet: every request will be refused (401). Create one with "
                  "`amp-tools mcp tokens create --budget ID`.", highlight=False, soft_wrap=True, markup=False)
    where = "stdio" if transport == "stdio" else f"http://{http.host}:{http.port}{PATH} (bearer tokens)"
    budget = "" if transport == "stdio" else " (stdio; over HTTP each token's budget)"
    err.print(f"amp-tools MCP server on {escape(where)}: {escape(backend.describe())}{budget}; approvals by "
              f"{escape(_MODES[approvals])}", highlight=False, soft_wrap=True)
    asyncio.run(_serve(backend, transport, approvals, http))


async def _serve(backend: Backend, transport: str, approvals: ApprovalMode, http: HttpOptions) -> None:
    try:
        if backend.cp_url is not None:
            await reconcile_leftovers(backend)
        if transport == "stdio":
            await serve_stdio(backend, approvals=approvals)
        else:
            await http_server(backend, approvals=approvals, host=http.host, port=http.port,
                              allowed_hosts=http.allowed_hosts, sessions_per_token=http.sessions_per_token,
                              idle_seconds=http.idle_seconds).serve()
    finally:
        await backend.aclose()


async def reconcile_leftovers(backend: Backend) -> None:
    """Settle payments a crash left open (a real network only: an embedded sandbox starts empty)."""
    toolkit = backend.toolkit(DenyApprover())
    try:
        await toolkit.reconcile()
    finally:
        await toolkit.aclose()
