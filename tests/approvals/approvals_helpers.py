"""Shared builders for the approval tests (a module, not a conftest, so workers can import it)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from amp_tools.approvals import ApprovalRequest
from amp_tools.approvals.request import make_request
from amp_tools.clock import ManualClock
from amp_tools.money import Money
from amp_tools.policy import Item, SpendIntent, Verdict

T0 = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)


def intent(**over: Any) -> SpendIntent:
    base = SpendIntent(action="pay", merchant_id="MARINA-HOTEL", merchant_name="Marina Hotel", mcc="7011",
                       amount=Money.parse("180.00", "SGD"), budget_amount=Money.parse("134.29", "USD"),
                       fx_rate=Decimal("0.746"), items=(Item("ROOM-1", "Deluxe room, 1 night", 1,
                                                              Money.parse("180.00", "SGD")),),
                       human_present=False, checkout_id="chk-9", at=T0)
    return replace(base, **over)


VERDICT = Verdict(approval_reasons=("the amount 134.29 USD is above the confirmation threshold 100.00 USD",),
                  budget_left=Money.parse("865.71", "USD"), checked_rules=("total_budget",))


def request(clock: ManualClock | None = None, ttl: timedelta = timedelta(minutes=15), **over: Any) -> ApprovalRequest:
    return make_request(intent(**over), VERDICT, ttl=ttl, budget_id="default", clock=clock or ManualClock(T0))


def consume_worker(path: str, binding: str, start: Any, results: Any) -> None:
    """Race for one grant from a separate process; report whether this process won it."""
    from amp_tools.approvals import ApprovalStore

    store = ApprovalStore(path)
    start.wait()
    decision = store.consume(binding, T0 + timedelta(minutes=1))
    results.put(None if decision is None else (decision.approved, decision.approver))
    store.close()


def same_basket_requests(*budgets: str, clock: ManualClock | None = None, checkout_id: str = "chk-9"
                         ) -> list[ApprovalRequest]:
    """One request per budget for the very same basket, merchant, amount and checkout, made at the same
    instant: what two agents (or two MCP clients) on different budgets ask. Their requests, grants and
    denials must never be shared."""
    at = clock or ManualClock(T0)
    return [make_request(intent(checkout_id=checkout_id), VERDICT, budget_id=budget, clock=at) for budget in budgets]
