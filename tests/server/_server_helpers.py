"""An agent world for the owner-console tests: the sandbox, a ledger file the agent and the inbox
share, the agent's toolkit with an out-of-band approver, and the inbox app with a known passphrase."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from amp_tools.approvals import ApprovalStore, OutOfBandApprover
from amp_tools.errors import ToolError
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.policy import parse_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.server import ServeSettings, create_app, hash_secret
from amp_tools.toolkit import AmpToolkit

PASSPHRASE = "correct horse battery staple"
PASSPHRASE_HASH = hash_secret(PASSPHRASE)
BASE = "http://127.0.0.1"
#: The 08:00 flight costs 139.86 USD from the budget: above 100.00, so a person is asked.
POLICY: dict[str, Any] = {"name": "trip", "currency": "USD", "total_budget": "1000.00",
                          "windows": {"day": {"limit": "800.00"}}, "approval": {"confirm_above": "100.00"}}


class World:
    """The agent on one ledger handle, the inbox on another handle of the same database file."""

    def __init__(self, tmp: Path, *, ledger_url: str | None = None, approver: Any = None,
                 policy: dict[str, Any] | None = None, **options: Any) -> None:
        self.sandbox = Sandbox(SandboxConfig(seed=11))
        self.clock = self.sandbox.clock
        self.url = ledger_url or str(tmp / "ledger.db")
        self.policy = parse_policy(policy or POLICY)
        self.agent_ledger: LedgerBase = open_ledger(self.url, clock=self.clock, **options)
        self.agent_store = ApprovalStore(self.agent_ledger, budget_id="trip")
        self.approver = approver or OutOfBandApprover(self.agent_store, budget_id="trip")
        self.toolkit = AmpToolkit.for_sandbox(self.sandbox, self.policy, ledger=self.agent_ledger,
                                              approver=self.approver, budget_id="trip")
        self.tools = {spec.name: spec for spec in self.toolkit.specs()}
        self.inbox_ledger: LedgerBase = open_ledger(self.url, clock=self.clock, **options)
        self.settings = ServeSettings(ledger=self.inbox_ledger, passphrase_hash=PASSPHRASE_HASH,
                                      network_url="http://sandbox/network",
                                      network_transport=self.sandbox.transport(), expire_every=0.5)
        self.app = create_app(self.settings)

    async def call(self, name: str, **args: Any) -> dict[str, Any]:
        return await self.tools[name].ainvoke(args)

    async def flight_checkout(self) -> str:
        found = await self.call("search_offers", query="flight Kuala Lumpur", category="flight")
        offer = next(o["offer_id"] for o in found["offers"] if "08:00" in o["name"])
        return str((await self.call("checkout", offer_id=offer))["checkout_id"])

    async def try_pay(self, checkout_id: str) -> dict[str, Any] | ToolError:
        """The agent's `pay` tool call: its result, or the business error the model would read."""
        try:
            return await self.call("pay", checkout_id=checkout_id)
        except ToolError as exc:
            return exc

    def paid(self) -> list[dict[str, Any]]:
        return [p for p in self.sandbox.payments() if p["status"] == "SUCCESS"]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE)

    async def close(self) -> None:
        await self.toolkit.aclose()
        await self.agent_ledger.close()
        await self.inbox_ledger.close()


async def login(client: httpx.AsyncClient) -> str:
    """Log in through the JSON API; returns the session's CSRF token (the cookie stays in the client)."""
    resp = await client.post("/login", json={"passphrase": PASSPHRASE})
    assert resp.status_code == 200, resp.text
    assert "httponly" in resp.headers["set-cookie"].lower()
    assert "samesite=strict" in resp.headers["set-cookie"].lower()
    return str(resp.json()["csrf"])
