"""Issue 19, item 1, end to end: Alice's and Bob's toolkits (budgets `alice`, `bob`, one ledger) buy the same
flight at the same moment; the owner approves Alice's request. Bob's payment must not consume it (before the fix
it was committed "approving alice" and Alice was asked again); a denial of Bob's stays Bob's. Both engines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from amp_tools.approvals import ApprovalStore, OutOfBandApprover
from amp_tools.errors import ApprovalDenied, ApprovalPending, ToolError
from amp_tools.policy import parse_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit
from tests.ledger._ledger_helpers import open_backend

POLICY = {"currency": "USD", "total_budget": "1000.00", "approval": {"confirm_above": "100.00"}}


class Agent:
    def __init__(self, toolkit: AmpToolkit) -> None:
        self.toolkit = toolkit
        self.tools = {spec.name: spec for spec in toolkit.specs()}

    async def call(self, name: str, **args: Any) -> Any:
        return await self.tools[name].ainvoke(args)

    async def checkout(self) -> str:
        found = await self.call("search_offers", query="flight Kuala Lumpur", category="flight")
        offer = next(o["offer_id"] for o in found["offers"] if "08:00" in o["name"])
        return str((await self.call("checkout", offer_id=offer))["checkout_id"])

    async def pay(self, checkout_id: str) -> Any:
        try:
            return await self.call("pay", checkout_id=checkout_id)
        except ToolError as exc:
            return exc


@pytest.fixture
async def world(backend: str, target: str) -> AsyncIterator[tuple[Sandbox, ApprovalStore, Agent, Agent]]:
    sandbox = Sandbox(SandboxConfig(seed=11, idv_mode="auto"))
    ledger = open_backend(backend, target, sandbox.clock)
    store = ApprovalStore(ledger, clock=sandbox.clock)
    agents = [Agent(AmpToolkit.for_sandbox(sandbox, parse_policy(POLICY), ledger=ledger, budget_id=name,
                                           approver=OutOfBandApprover(store, clock=sandbox.clock)))
              for name in ("alice", "bob")]
    yield sandbox, store, agents[0], agents[1]
    for agent in agents:
        await agent.toolkit.aclose()
    await ledger.close()


async def test_alices_grant_is_not_bobs_and_bobs_denial_is_not_alices(
        world: tuple[Sandbox, ApprovalStore, Agent, Agent]) -> None:
    sandbox, store, alice, bob = world
    alice_checkout, bob_checkout = await alice.checkout(), await bob.checkout()
    first = await alice.pay(alice_checkout)
    second = await bob.pay(bob_checkout)
    assert isinstance(first, ApprovalPending) and isinstance(second, ApprovalPending)
    alice_id, bob_id = first.details["approval_id"], second.details["approval_id"]
    assert alice_id != bob_id
    assert {r.id: r.budget_id for r in store.list("pending")} == {alice_id: "alice", bob_id: "bob"}

    store.approve(alice_id, by="owner")
    again = await bob.pay(bob_checkout)  # Bob retries first: still his own question, nothing paid
    assert isinstance(again, ApprovalPending) and again.details["approval_id"] == bob_id
    assert [p for p in sandbox.payments() if p["status"] == "SUCCESS"] == []
    paid = await alice.pay(alice_checkout)
    assert isinstance(paid, dict) and paid["status"] == "paid" and paid["approved_by"] == "owner"
    assert len([p for p in sandbox.payments() if p["status"] == "SUCCESS"]) == 1
    assert [e.status for e in await alice.toolkit.ledger.entries("alice") if e.status == "committed"] == ["committed"]
    assert [e.status for e in await bob.toolkit.ledger.entries("bob") if e.status == "committed"] == []

    store.deny(bob_id, by="owner", reason="not this week, Bob")
    refused = await bob.pay(bob_checkout)
    assert isinstance(refused, ApprovalDenied) and "not this week, Bob" in str(refused)
    alice_next = await alice.checkout()
    asked = await alice.pay(alice_next)  # Alice's next identical flight is asked, not refused with Bob's reason
    assert isinstance(asked, ApprovalPending) and "Bob" not in str(asked)
    assert len([p for p in sandbox.payments() if p["status"] == "SUCCESS"]) == 1
