"""Approvals belong to one budget and one payment (issue 19, item 1), on SQLite and PostgreSQL.

Alice's and Bob's budgets pay the same merchant the same basket and amount at the same moment. Before,
the binding had no budget: Bob's payment consumed the grant the owner gave Alice (committed "approving
alice") and Bob was refused with Alice's denial reason. Now every request, grant and denial is bound to
its budget and checkout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from amp_tools.approvals import ApprovalStore, OutOfBandApprover
from amp_tools.approvals.request import make_request
from amp_tools.clock import ManualClock
from amp_tools.errors import ApprovalPending
from amp_tools.ledger import LedgerBase
from tests.approvals.approvals_helpers import T0, VERDICT, intent, same_basket_requests


@pytest.fixture
def ledger(backend: str, target: str) -> Iterator[LedgerBase]:
    from tests.ledger._ledger_helpers import open_backend

    led = open_backend(backend, target, ManualClock(T0))
    yield led
    led.close_sync()


def _pending_id(approver: OutOfBandApprover, request: object) -> str:
    with pytest.raises(ApprovalPending) as caught:
        asyncio.run(approver(request))  # type: ignore[arg-type]
    return str(caught.value.details["approval_id"])


def test_identical_baskets_of_two_budgets_never_share_a_request(ledger: LedgerBase) -> None:
    clock = ManualClock(T0)
    store = ApprovalStore(ledger, clock=clock)
    alice, bob = same_basket_requests("alice", "bob", clock=clock)
    assert alice.binding != bob.binding
    approver = OutOfBandApprover(store, clock=clock)
    alice_id, bob_id = _pending_id(approver, alice), _pending_id(approver, bob)
    assert alice_id != bob_id  # the one-pending index no longer merges them
    pending = {r.id: r.budget_id for r in store.list("pending")}
    assert pending == {alice_id: "alice", bob_id: "bob"}


def test_a_grant_for_alice_is_never_consumed_by_bob(ledger: LedgerBase) -> None:
    clock = ManualClock(T0)
    store = ApprovalStore(ledger, clock=clock)
    alice, bob = same_basket_requests("alice", "bob", clock=clock)
    approver = OutOfBandApprover(store, clock=clock)
    alice_id = _pending_id(approver, alice)
    bob_id = _pending_id(approver, bob)
    store.approve(alice_id, by="owner")
    clock.advance(5)
    # Bob asks again first: his own request is still pending, Alice's grant stays hers.
    assert _pending_id(approver, bob) == bob_id
    decision = asyncio.run(approver(alice))
    assert decision.approved and decision.approver == "owner"
    statuses = {r.id: r.status for r in store.list(None)}
    assert statuses == {alice_id: "consumed", bob_id: "pending"}
    assert store.consume(bob.binding, clock.now()) is None


def test_a_denial_for_alice_stands_only_for_alice(ledger: LedgerBase) -> None:
    clock = ManualClock(T0)
    store = ApprovalStore(ledger, clock=clock)
    alice, bob = same_basket_requests("alice", "bob", clock=clock)
    approver = OutOfBandApprover(store, clock=clock)
    alice_id = _pending_id(approver, alice)
    store.deny(alice_id, by="owner", reason="not this hotel, Alice")
    refused = asyncio.run(approver(alice))
    assert not refused.approved and refused.reason == "not this hotel, Alice"
    bob_id = _pending_id(approver, bob)  # Bob is asked, not refused with Alice's reason
    assert bob_id != alice_id
    assert [r.reason for r in store.list("pending")] == [""]


def test_a_decision_is_bound_to_its_checkout(ledger: LedgerBase) -> None:
    clock = ManualClock(T0)
    store = ApprovalStore(ledger, clock=clock)
    first = make_request(intent(checkout_id="chk-1"), VERDICT, budget_id="alice", clock=clock)
    second = make_request(intent(checkout_id="chk-2"), VERDICT, budget_id="alice", clock=clock)
    assert first.binding != second.binding
    approver = OutOfBandApprover(store, clock=clock)
    store.approve(_pending_id(approver, first), by="owner")
    _pending_id(approver, second)  # the grant of checkout 1 does not pay checkout 2
    assert asyncio.run(approver(first)).approved


def test_a_sub_budget_level_asks_for_itself(ledger: LedgerBase) -> None:
    clock = ManualClock(T0)
    crew, agent = same_basket_requests("trip", "trip/hotel_booker", clock=clock)
    assert crew.binding != agent.binding and agent.budget_id == "trip/hotel_booker"
