"""Issue 20, finding 8: one booking, one row. Retries of a payment waiting for a person reuse its reservation.

Each APPROVAL_PENDING retry used to reserve anew and release: five rows in the console for one hotel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from amp_tools.approvals import ApprovalStore, OutOfBandApprover
from amp_tools.errors import ApprovalPending
from amp_tools.money import Money
from amp_tools.payments import PaymentState, state_of
from tests.payments._support import Lab, budget_policy

ROOM = "KL-GRAND-HOTEL:KLG-SUPERIOR-NIGHT"  # 580.00 MYR


@pytest.fixture
async def lab(engine_name: str, ledger_target: str) -> Any:
    made = Lab(engine_name, ledger_target)
    yield made
    await made.close()


async def test_five_retries_while_a_person_decides_are_one_payment_one_row(lab: Lab, tmp_path: Path) -> None:
    store = ApprovalStore(lab.ledger, clock=lab.sandbox.clock)
    policy = budget_policy("1000.00", approval={"confirm_above": "50.00"})
    agent = lab.agent(policy, OutOfBandApprover(store, clock=lab.sandbox.clock), budget_id="hotel")
    await agent.call("search_offers", query="superior room", merchant_ids=["KL-GRAND-HOTEL"])
    checkout = (await agent.call("checkout", offer_id=ROOM))["checkout_id"]
    for _ in range(5):
        with pytest.raises(ApprovalPending):
            await agent.call("pay", checkout_id=checkout, mode="human_present")
    [entry] = await lab.ledger.entries("hotel")
    assert state_of(entry) == PaymentState.AWAITING_APPROVAL and entry.attempt == 1
    held = entry.budget_amount
    assert (await agent.call("budget_status"))["total"]["held"]["amount"] == held.to_public()
    assert len(store.list("pending")) == 1  # one question for the person, not five
    [record] = store.list("pending")
    store.approve(record.id, "alice")
    paid = await agent.call("pay", checkout_id=checkout, mode="human_present")
    assert paid["status"] == "paid"
    [after] = await lab.ledger.entries("hotel")
    assert (after.id, after.status) == (entry.id, "committed")
    [charge] = lab.charges(checkout)
    assert after.amount == Money.from_wire(charge["amount"]) == Money.parse("580.00", "MYR")
    kinds = [r.kind for r in await lab.ledger.audit.records() if r.payload.get("entry_id") == entry.id]
    assert "release" not in kinds  # never released and reserved again
    assert kinds.count("approval_pending") == 5  # the row's history: each time it was asked
    approvals = [r for r in await lab.ledger.audit.records() if r.kind == "approval"]
    assert len(approvals) == 1 and approvals[0].payload["approved"] is True


async def test_a_frozen_budget_stops_the_retry_of_a_parked_payment_and_releases_it(lab: Lab, tmp_path: Path) -> None:
    from amp_tools.errors import PolicyViolation
    from amp_tools.server.control import freeze

    store = ApprovalStore(lab.ledger, clock=lab.sandbox.clock)
    policy = budget_policy("1000.00", approval={"confirm_above": "50.00"})
    agent = lab.agent(policy, OutOfBandApprover(store, clock=lab.sandbox.clock), budget_id="hotel")
    await agent.call("search_offers", query="superior room", merchant_ids=["KL-GRAND-HOTEL"])
    checkout = (await agent.call("checkout", offer_id=ROOM))["checkout_id"]
    with pytest.raises(ApprovalPending):
        await agent.call("pay", checkout_id=checkout, mode="human_present")
    [record] = store.list("pending")
    store.approve(record.id, "alice")
    await freeze(lab.ledger, "hotel", True, by="owner", reason="going offline")
    with pytest.raises(PolicyViolation) as refused:
        await agent.call("pay", checkout_id=checkout, mode="human_present")
    assert refused.value.rule == "budget.frozen"
    [entry] = await lab.ledger.entries("hotel")
    assert state_of(entry) == PaymentState.RELEASED and lab.charges(checkout) == []
    assert await lab.used(policy, "hotel") == "0.00"
