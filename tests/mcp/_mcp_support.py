"""Helpers for the MCP tests: policy files, a stdio client on `python -m amp_tools.mcp`, an
in-process streamable HTTP server, a scripted person answering elicitations, and the trip.

The trip is the integration scenarios' Kuala Lumpur one: the superior hotel for two nights
(1160.00 MYR) countered at 986.00 and settled at 1102.00 MYR (231.42 USD), and the 19:00
Skylark flight at its list price, 149.00 SGD (110.26 USD), on a 1000.00 USD budget.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.context import RequestContext

from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.mcp.backend import Backend, open_backend
from amp_tools.mcp.http import http_server
from amp_tools.mcp.tokens import TokenStore

BUDGET = "trip"
CLIENT = types.Implementation(name="amp-tests", version="1.0")
HOTEL_WORDS, FLIGHT_WORDS = "superior", "SIN->KUL 19:00"


def write_policy(folder: Path, **overrides: Any) -> Path:
    data: dict[str, Any] = {"name": "mcp-test", "currency": "USD", "total_budget": "1000.00",
                            "negotiation": {"max_rounds": 2}}
    data.update(overrides)
    path = folder / "policy.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def server_args(policy: Path, ledger: Path, *extra: str) -> list[str]:
    # No waiting for a person after a URL elicitation unless a test asks: each call answers at once.
    return ["-m", "amp_tools.mcp", "--policy", str(policy), "--ledger", str(ledger), "--budget-id", BUDGET,
            "--approval-wait", "0", *extra]


def server_env(home: Path) -> dict[str, str]:
    return {**os.environ, "AMP_TOOLS_HOME": str(home)}


Elicit = Callable[[RequestContext[ClientSession, Any], types.ElicitRequestParams], Awaitable[types.ElicitResult]]


@asynccontextmanager
async def stdio_session(policy: Path, ledger: Path, home: Path, *, elicit: Elicit | None = None,
                        extra: tuple[str, ...] = ()) -> AsyncIterator[ClientSession]:
    """An initialised MCP client session on a fresh `python -m amp_tools.mcp` subprocess."""
    params = StdioServerParameters(command=sys.executable, args=server_args(policy, ledger, *extra),
                                   env=server_env(home))
    with (home / "server-stderr.log").open("a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), \
                ClientSession(read, write, elicitation_callback=elicit, client_info=CLIENT) as session:
            await session.initialize()
            yield session


@dataclass
class Served:
    """An HTTP server under test: its backend, its /mcp URL and a token for the budget `BUDGET`."""

    backend: Backend
    url: str
    token: str

    def new_token(self, budget: str = BUDGET) -> str:
        """A token for `budget`, stored first (with the server's policy) when it is not yet."""
        if self.backend.ledger.get_budget_sync(budget) is None:
            self.backend.ledger.create_budget_sync(budget, self.backend.policy, by="owner (test)")
        return TokenStore(self.backend.ledger).create(budget, label="test").token


@asynccontextmanager
async def http_backend(policy: Path, ledger: Path | LedgerBase, **options: Any) -> AsyncIterator[Served]:
    """The server on a loopback port in this event loop, with one token for `BUDGET`."""
    backend = open_backend(policy, ledger=ledger if isinstance(ledger, LedgerBase) else str(ledger),
                           budget_id=BUDGET, approval_wait=0)
    server = http_server(backend, host="127.0.0.1", port=0, **options)  # the OS picks a free port
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        served = Served(backend, f"http://127.0.0.1:{port}/mcp", "")
        served.token = served.new_token()
        yield served
    finally:
        server.should_exit = True
        await task
        await backend.aclose()


@asynccontextmanager
async def http_session(url: str, token: str, *, elicit: Elicit | None = None) -> AsyncIterator[ClientSession]:
    """An initialised client session sending `token` as its bearer token."""
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(30, read=300)) \
            as http, streamable_http_client(url, http_client=http) as (read, write, _), \
            ClientSession(read, write, elicitation_callback=elicit, client_info=CLIENT) as session:
        await session.initialize()
        yield session


# ---------------------------------------------------------------------- results
def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def ok(session: ClientSession, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await session.call_tool(name, args or {})
    assert not result.isError, text_of(result)
    data: dict[str, Any] = json.loads(text_of(result))
    assert result.structuredContent == data
    return data


async def error(session: ClientSession, name: str, args: dict[str, Any] | None = None) -> types.CallToolResult:
    result = await session.call_tool(name, args or {})
    assert result.isError, text_of(result)
    return result


# ---------------------------------------------------------------------- the trip
async def offer_id(session: ClientSession, query: str, category: str, words: str) -> str:
    found = await ok(session, "search_offers", {"query": query, "category": category})
    return next(str(o["offer_id"]) for o in found["offers"] if words.lower() in o["name"].lower())


async def negotiated_hotel(session: ClientSession) -> str:
    """Quote two superior nights, counter at 986.00 MYR, accept the merchant's 1102.00; the checkout id."""
    offer = await offer_id(session, "hotel Kuala Lumpur", "hotel", HOTEL_WORDS)
    quote = await ok(session, "request_quote", {"offer_id": offer, "quantity": 2})
    assert quote["total"] == {"amount": "1160.00", "currency": "MYR",
                              "in_budget_currency": {"amount": "243.60", "currency": "USD"}}
    countered = await ok(session, "negotiate", {"quote_id": quote["quote_id"], "offer_amount": "986.00"})
    assert countered["total"]["amount"] == "1102.00"
    accepted = await ok(session, "accept_quote", {"quote_id": countered["quote_id"]})
    return str(accepted["checkout_id"])


async def list_price_hotel(session: ClientSession) -> str:
    offer = await offer_id(session, "hotel Kuala Lumpur", "hotel", HOTEL_WORDS)
    quote = await ok(session, "request_quote", {"offer_id": offer, "quantity": 2})
    return str((await ok(session, "accept_quote", {"quote_id": quote["quote_id"]}))["checkout_id"])


async def flight(session: ClientSession) -> str:
    offer = await offer_id(session, "flight Kuala Lumpur", "flight", FLIGHT_WORDS)
    return str((await ok(session, "checkout", {"offer_id": offer, "quantity": 1}))["checkout_id"])


async def ledger_rows(ledger: Path) -> list[tuple[str, str, str, str]]:
    """(merchant, status, amount, budget amount) per ledger entry, oldest first."""
    led = open_ledger(str(ledger))
    try:
        rows = list(reversed(await led.entries(BUDGET)))
    finally:
        await led.close()
    return [(r.merchant_id, r.status, str(r.amount), str(r.budget_amount)) for r in rows]


# ---------------------------------------------------------------------- a person at the client
@dataclass
class Person:
    """Answers elicitations in order: ``"approve"``, ``"deny"``, or an action ``"decline"``/``"cancel"``.

    Given `console`, a URL elicitation first has the person act on the approval's page (the
    function gets the approval id from the URL), as someone who opens the link would.
    """

    answers: list[str]
    reason: str = ""
    asked: list[types.ElicitRequestParams] = field(default_factory=list)
    console: Callable[[str], Awaitable[None]] | None = None

    async def __call__(self, context: RequestContext[ClientSession, Any],
                       params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append(params)
        if isinstance(params, types.ElicitRequestURLParams) and self.console is not None:
            await self.console(params.url.rsplit("/", 1)[-1])
        answer = self.answers.pop(0)
        if answer in ("decline", "cancel"):
            return types.ElicitResult(action=answer)
        return types.ElicitResult(action="accept", content={"decision": answer, "reason": self.reason})
