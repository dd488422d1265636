"""Streamable HTTP: the MCP endpoint at ``/mcp`` as a Starlette app served by uvicorn.

Stateful sessions (each ``Mcp-Session-Id`` is one client with its own toolkit), which is also
what lets the server ask the person through elicitation in the middle of a tool call. The
server has no authentication of its own, so it binds to loopback unless told otherwise, and
then checks Host and Origin headers against DNS rebinding.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from amp_tools.mcp.backend import Backend
from amp_tools.mcp.server import ApprovalMode, build_server

__all__ = ["PATH", "build_http_app", "http_server", "is_loopback"]

PATH = "/mcp"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Endpoint:
    """The session manager as the ASGI endpoint of one route."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.manager.handle_request(scope, receive, send)


def build_http_app(backend: Backend, *, approvals: ApprovalMode = "auto", host: str = "127.0.0.1") -> Starlette:
    security = None
    if is_loopback(host):
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])
    manager = StreamableHTTPSessionManager(build_server(backend, approvals=approvals), security_settings=security)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return Starlette(routes=[Route(PATH, endpoint=_Endpoint(manager))], lifespan=lifespan)


def http_server(backend: Backend, *, approvals: ApprovalMode = "auto", host: str = "127.0.0.1", port: int = 8000,
                log_level: str = "warning", **uvicorn_options: Any) -> uvicorn.Server:
    """A uvicorn server for the app; `serve()` it (the caller owns the event loop)."""
    app = build_http_app(backend, approvals=approvals, host=host)
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, **uvicorn_options))
