"""A real toolkit on an in-process sandbox, with a transport that can lose, reset or stall requests.

`Shop` is what the fault tests drive: the `pay` / `order_status` tool specs exactly as a model
would call them, an armed sandbox fault or a `FlakyTransport` rule in between, and readers for
what matters afterwards: the sandbox's own payment record, the ledger rows and the budget used.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from amp_tools.amp.client import AmpClient
from amp_tools.amp.keys import AgentKey
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.money import Money
from amp_tools.policy import BudgetPolicy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit, ToolSpec

__all__ = ["AGENT_KEY", "PRICE", "FlakyTransport", "Rule", "Shop"]

AGENT_KEY = AgentKey.generate(kid="reliability-agent")
MERCHANT, OFFER, PRICE = "SUNNY-TOURS", "SUNNY-TOURS:SUN-ESIM-ASIA", 1999


@dataclass
class Rule:
    """What to do with the next `count` requests whose path ends with `path`.

    ``reset_before``: the connection fails before the request is sent (httpx.ConnectError);
    ``reset_after``: the service processes it, then the connection resets (httpx.ReadError);
    ``stall_before`` / ``stall_after``: wait on `gate` before sending / before answering.
    """

    path: str
    action: str
    count: int = 1
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    reached: asyncio.Event = field(default_factory=asyncio.Event)


class FlakyTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.rules: list[Rule] = []
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        rule = next((r for r in self.rules if r.count > 0 and request.url.path.endswith(r.path)), None)
        if rule is not None:
            rule.count -= 1
            rule.reached.set()
            if rule.action == "reset_before":
                raise httpx.ConnectError("connection refused", request=request)
            if rule.action == "stall_before":
                await rule.gate.wait()
        self.sent.append(request.url.path)
        response = await self.inner.handle_async_request(request)
        if rule is not None and rule.action == "reset_after":
            raise httpx.ReadError("connection reset by peer", request=request)
        if rule is not None and rule.action == "stall_after":
            await rule.gate.wait()
        return response


class Shop:
    """One agent session: sandbox + ledger + toolkit, mandate already granted."""

    def __init__(self, tmp: Path, *, total: str = "100.00", ledger: LedgerBase | None = None) -> None:
        self.sandbox = Sandbox(SandboxConfig(seed=7))
        self.sandbox.register_agent("reliability-agent", AGENT_KEY.public_jwk())
        self.transport = FlakyTransport(self.sandbox.transport())
        self.ledger = ledger or open_ledger(tmp / "ledger.db", clock=self.sandbox.clock)
        self.policy = BudgetPolicy.model_validate({"name": "faults", "currency": "USD", "total_budget": total})
        client = AmpClient("http://sandbox", transport=self.transport, agent_id="reliability-agent",
                           clock=self.sandbox.clock, backoff=0.0)
        self.toolkit = AmpToolkit(client, self.policy, ledger=self.ledger, agent_key=AGENT_KEY,
                                  agent_id="reliability-agent", clock=self.sandbox.clock, run_id="run-1",
                                  budget_id="default")
        self.specs: dict[str, ToolSpec] = {s.name: s for s in self.toolkit.specs()}

    async def start(self) -> Shop:
        await self.call("discover_merchants")
        await self.call("search_offers", query="eSIM")
        until = (self.sandbox.clock.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        mandate = await self.call("request_mandate", purpose="Buy eSIMs", expires_at=until, merchant_ids=[MERCHANT])
        assert mandate["status"] == "ACTIVE", mandate
        return self

    async def call(self, name: str, **args: Any) -> dict[str, Any]:
        return await self.specs[name].ainvoke(args)

    async def checkout(self) -> str:
        return str((await self.call("checkout", offer_id=OFFER, quantity=1))["checkout_id"])

    async def pay(self, checkout_id: str) -> dict[str, Any]:
        return await self.call("pay", checkout_id=checkout_id)

    async def payments(self, checkout_id: str) -> list[dict[str, Any]]:
        """The sandbox's own record of successful payments for this checkout."""
        async with httpx.AsyncClient(transport=self.sandbox.transport(), base_url="http://sandbox") as c:
            data = (await c.get("/_admin/payments")).json()["data"]
        return [p for p in data if p["checkoutId"] == checkout_id and p["status"] == "SUCCESS"]

    async def rows(self, checkout_id: str) -> list[tuple[int, str, int, str | None]]:
        """(attempt, status, amount minor, external ref) of this checkout's ledger entries."""
        entries = await self.ledger.entries(self.toolkit.budget_id, limit=1000)
        return sorted((e.attempt, e.status, e.amount.minor, e.external_ref) for e in entries
                      if e.checkout_id == checkout_id)

    async def used(self) -> int:
        report = await self.ledger.usage_report(self.policy, self.toolkit.budget_id)
        return Money.parse(str(report["total"]["used"]["amount"]), "USD").minor

    async def close(self) -> None:
        await self.toolkit.aclose()
        await self.ledger.close()
