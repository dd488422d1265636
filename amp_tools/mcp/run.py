"""Start the server: open the shared backend, settle leftovers, serve one transport, close."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.markup import escape

from amp_tools.approvals import DenyApprover
from amp_tools.errors import ConfigError
from amp_tools.mcp.backend import Backend, open_backend
from amp_tools.mcp.http import http_server, is_loopback
from amp_tools.mcp.server import ApprovalMode, serve_stdio

__all__ = ["reconcile_leftovers", "run"]


def run(policy: Path, *, ledger: str | None = None, cp_url: str | None = None, budget_id: str | None = None,
        transport: Literal["stdio", "http"] = "stdio", approvals: ApprovalMode = "auto", host: str = "127.0.0.1",
        port: int = 8000, allow_remote: bool = False) -> None:
    """Serve until the client disconnects (stdio) or the process is interrupted (http)."""
    if transport == "http" and not is_loopback(host) and not allow_remote:
        raise ConfigError(f"--host {host} is not a loopback address and the MCP server has no authentication",
                          hint="Keep 127.0.0.1 (put an authenticating proxy in front), or pass --allow-remote.")
    backend = open_backend(policy, ledger=ledger, cp_url=cp_url, budget_id=budget_id)
    mode = "elicitation, else `amp-tools approvals`" if approvals == "auto" else "`amp-tools approvals`"
    where = "stdio" if transport == "stdio" else f"http://{host}:{port}/mcp"
    # stdout is the protocol's in stdio mode: people read stderr.
    Console(stderr=True).print(f"amp-tools MCP server on {escape(where)}: {escape(backend.describe())}; "
                               f"approvals by {escape(mode)}", highlight=False, soft_wrap=True)
    asyncio.run(_serve(backend, transport, approvals, host, port))


async def _serve(backend: Backend, transport: str, approvals: ApprovalMode, host: str, port: int) -> None:
    try:
        if backend.cp_url is not None:
            await reconcile_leftovers(backend)
        if transport == "stdio":
            await serve_stdio(backend, approvals=approvals)
        else:
            await http_server(backend, approvals=approvals, host=host, port=port).serve()
    finally:
        await backend.aclose()


async def reconcile_leftovers(backend: Backend) -> None:
    """Settle payments a crash left open (a real network only: an embedded sandbox starts empty)."""
    toolkit = backend.toolkit(DenyApprover())
    try:
        await toolkit.reconcile()
    finally:
        await toolkit.aclose()
