"""ApprovalRequest: binding, summary, public form."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from amp_tools.approvals import ApprovalRequest
from amp_tools.approvals.request import compute_binding, make_request
from amp_tools.clock import ManualClock
from amp_tools.money import Money
from amp_tools.policy import Item
from tests.approvals.approvals_helpers import T0, VERDICT, intent, request


def test_request_fields_and_expiry() -> None:
    req = request(ttl=timedelta(minutes=5))
    assert req.id.startswith("apr_") and len(req.id) == 20
    assert (req.action, req.merchant_id, req.merchant_name) == ("pay", "MARINA-HOTEL", "Marina Hotel")
    assert req.amount == Money.parse("180.00", "SGD") and req.budget_amount == Money.parse("134.29", "USD")
    assert req.rules == VERDICT.approval_reasons
    assert req.created_at == T0 and req.expires_at == T0 + timedelta(minutes=5)
    assert not req.is_expired(T0 + timedelta(minutes=4, seconds=59))
    assert req.is_expired(T0 + timedelta(minutes=5))
    assert req.matches(intent())
    with pytest.raises(ValueError, match="must be positive"):
        make_request(intent(), VERDICT, ttl=0, budget_id="default", clock=ManualClock(T0))


def test_binding_covers_action_merchant_amount_currency_items() -> None:
    base = request().binding
    assert len(base) == 64
    assert request().binding == base  # deterministic, independent of the id
    room = Item("ROOM-1", "Deluxe room, 1 night", 1, Money.parse("180.00", "SGD"))
    changed = [
        request(amount=Money.parse("180.01", "SGD")),
        request(amount=Money.parse("180.00", "MYR")),
        request(merchant_id="KL-GRAND-HOTEL"),
        request(action="refund"),
        request(items=(room, Item("BKF", "Breakfast", 1, Money.parse("0.00", "SGD")))),
        request(items=(Item("ROOM-1", "Deluxe room, 1 night", 2, Money.parse("90.00", "SGD")),)),
    ]
    assert len({req.binding for req in changed} | {base}) == len(changed) + 1
    # Item order and the budget-side figures do not change what is being bought.
    a = Item("A", "a", 1, Money(100, "SGD"))
    b = Item("B", "b", 2, Money(200, "SGD"))
    ids = {"budget_id": "alice", "checkout_id": "chk-9"}
    assert compute_binding("pay", "M", Money(500, "SGD"), (a, b), **ids) == compute_binding(
        "pay", "M", Money(500, "SGD"), (b, a), **ids)
    # The budget and the checkout are bound too (issue 19: approvals never cross budgets or checkouts).
    assert compute_binding("pay", "M", Money(500, "SGD"), (a,), **ids) != compute_binding(
        "pay", "M", Money(500, "SGD"), (a,), budget_id="bob", checkout_id="chk-9")
    assert compute_binding("pay", "M", Money(500, "SGD"), (a,), **ids) != compute_binding(
        "pay", "M", Money(500, "SGD"), (a,), budget_id="alice", checkout_id="chk-10")
    # Quoted fields: no budget id can borrow the separator from the checkout id.
    assert compute_binding("pay", "M", Money(500, "SGD"), (a,), budget_id="a|b", checkout_id="c") != compute_binding(
        "pay", "M", Money(500, "SGD"), (a,), budget_id="a", checkout_id="b|c")
    assert request(budget_amount=Money.parse("140.00", "USD")).binding == base


def test_summary_and_public_form_round_trip() -> None:
    req = request()
    text = req.summary()
    assert "Pay 180.00 SGD (= 134.29 USD from the budget) to Marina Hotel (MARINA-HOTEL)" in text
    assert "1 x Deluxe room, 1 night at 180.00 SGD" in text
    assert "above the confirmation threshold 100.00 USD" in text
    assert "Budget left after this payment: 865.71 USD" in text
    public = req.to_public()
    assert json.loads(json.dumps(public)) == public
    assert public["amount"] == {"amount": "180.00", "currency": "SGD"}
    assert ApprovalRequest.from_public(public) == req
