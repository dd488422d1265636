"""Streamable HTTP: the MCP endpoint at ``/mcp``, authenticated, as a Starlette app served by uvicorn.

Stateful sessions (each ``Mcp-Session-Id`` is one client with its own toolkit), which is also
what lets the server send the person a URL elicitation in the middle of a tool call.

Every request carries a bearer token (``amp-tools mcp tokens create --budget ID``), checked by
the SDK's bearer middleware through `LedgerTokenVerifier`: no valid token, 401 and no tools. A
token names its budget, so a client spends only the budget its token was made for. The SDK ties
each session to the token that opened it (another token's requests for it get 404, as if it did
not exist); on top, `CappedSessionManager` caps the live sessions per token, and idle sessions
are closed after `idle_seconds`. Host and Origin headers are always checked against DNS
rebinding: loopback names by default, plus the ``--allowed-host`` names when serving remotely.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import (
    AuthorizationContext,
    BearerAuthBackend,
    RequireAuthMiddleware,
)
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from amp_tools.mcp.approval import ApprovalMode
from amp_tools.mcp.backend import Backend
from amp_tools.mcp.server import build_server
from amp_tools.mcp.tokens import TokenStore

__all__ = ["PATH", "CappedSessionManager", "LedgerTokenVerifier", "build_http_app", "http_server",
           "is_loopback", "security_settings"]

PATH = "/mcp"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def security_settings(allowed_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """Host and Origin checks always on: the loopback names, and the hosts the operator listed."""
    names = [*_LOOPBACK_NAMES, *(h.strip().lower() for h in allowed_hosts if h.strip())]
    hosts = [value for name in names for value in (name, f"{name}:*")]
    origins = [value for name in names for scheme in ("http", "https")
               for value in (f"{scheme}://{name}", f"{scheme}://{name}:*")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


class LedgerTokenVerifier:
    """The SDK's `TokenVerifier` over `TokenStore`: a token's id is its client id, its budget a claim."""

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        record = await self.tokens.verify(token)
        if record is None:
            return None
        return AccessToken(token=token, client_id=f"mcp-token:{record.token_id}", scopes=["amp-tools"],
                           claims={"budget_id": record.budget_id, "token_id": record.token_id})


class CappedSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager with a cap on the live sessions of each token."""

    def __init__(self, *args: Any, sessions_per_token: int = 4, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions_per_token = sessions_per_token

    def _admit_session(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        # Runs under the manager's session-creation lock, so two opening requests cannot both slip in.
        owners = list(self._session_owners.values())
        if requestor is None or owners.count(requestor) >= self.sessions_per_token:
            return None
        return super()._admit_session(requestor)


class _Endpoint:
    """The session manager as the ASGI endpoint of one route."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.manager.handle_request(scope, receive, send)


def build_http_app(backend: Backend, *, approvals: ApprovalMode = "auto", allowed_hosts: Sequence[str] = (),
                   sessions_per_token: int = 4, idle_seconds: float = 900.0) -> Starlette:
    manager = CappedSessionManager(build_server(backend, approvals=approvals),
                                   security_settings=security_settings(allowed_hosts),
                                   session_idle_timeout=idle_seconds, sessions_per_token=sessions_per_token)
    verifier = LedgerTokenVerifier(TokenStore(backend.ledger))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    endpoint = RequireAuthMiddleware(_Endpoint(manager), required_scopes=["amp-tools"])
    return Starlette(routes=[Route(PATH, endpoint=endpoint)], lifespan=lifespan,
                     middleware=[Middleware(AuthenticationMiddleware, backend=BearerAuthBackend(verifier)),
                                 Middleware(AuthContextMiddleware)])


def http_server(backend: Backend, *, approvals: ApprovalMode = "auto", host: str = "127.0.0.1", port: int = 8000,
                allowed_hosts: Sequence[str] = (), sessions_per_token: int = 4, idle_seconds: float = 900.0,
                log_level: str = "warning", **uvicorn_options: Any) -> uvicorn.Server:
    """A uvicorn server for the app; `serve()` it (the caller owns the event loop)."""
    app = build_http_app(backend, approvals=approvals, allowed_hosts=allowed_hosts,
                         sessions_per_token=sessions_per_token, idle_seconds=idle_seconds)
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, **uvicorn_options))
