"""A small shop for the lifecycle tests: a sandbox, one ledger, toolkits built as the README shows."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from _ledger_helpers import open_backend

from amp_tools.approvals import Approver
from amp_tools.ledger import LedgerBase
from amp_tools.policy import BudgetPolicy, parse_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit, ToolSpec

ESIM = "SUNNY-TOURS:SUN-ESIM-ASIA"  # 19.99 USD at SUNNY-TOURS


def budget_policy(total: str = "30.00", **extra: Any) -> BudgetPolicy:
    return parse_policy({"name": "lifecycle", "currency": "USD", "total_budget": total, **extra}, "lifecycle-test")


@dataclass
class Agent:
    toolkit: AmpToolkit
    specs: dict[str, ToolSpec] = field(default_factory=dict)

    async def call(self, name: str, **args: Any) -> Any:
        return await self.specs[name].ainvoke(args)

    async def buy(self, offer: str = ESIM) -> str:
        await self.call("search_offers", query="eSIM")
        return str((await self.call("checkout", offer_id=offer, quantity=1))["checkout_id"])


class Lab:
    def __init__(self, engine: str, target: str, config: SandboxConfig | None = None) -> None:
        self.sandbox = Sandbox(config or SandboxConfig(seed=5))
        self.ledger: LedgerBase = open_backend(engine, target, self.sandbox.clock)
        self.agents: list[Agent] = []

    def agent(self, policy: BudgetPolicy | None = None, approver: Approver | None = None, **kwargs: Any) -> Agent:
        tk = AmpToolkit.for_sandbox(self.sandbox, policy or budget_policy(), ledger=self.ledger, approver=approver,
                                    **kwargs)
        made = Agent(tk, {s.name: s for s in tk.specs()})
        self.agents.append(made)
        return made

    def until(self, days: int = 7) -> str:
        return (self.sandbox.clock.now() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def charges(self, checkout_id: str) -> list[dict[str, Any]]:
        return [p for p in self.sandbox.payments()
                if p.get("checkoutId") == checkout_id and p.get("status") == "SUCCESS"]

    async def used(self, policy: BudgetPolicy, budget_id: str) -> str:
        report = await self.ledger.usage_report(policy, budget_id)
        return str(report["total"]["used"]["amount"])

    async def close(self) -> None:
        for made in self.agents:
            await made.toolkit.aclose()
        await self.ledger.close()


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
