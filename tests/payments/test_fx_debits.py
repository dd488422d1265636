"""Defect 3: the ledger understated spend when the FX rate moved (110.26 USD recorded, 134.10 USD debited).

A payment now fetches a fresh network quote, reserves at it and passes its quote id, which locks that rate for
the charge; the commit records what the network reports it debited. If the network debits more than was held
anyway, the debit is what counts, flagged in the audit record and shown by budget_status.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from amp_tools.approvals import CallbackApprover
from amp_tools.money import Money
from tests.payments._support import Lab, budget_policy

ROOM = "KL-GRAND-HOTEL:KLG-SUPERIOR-NIGHT"  # 580.00 MYR a night
OVER, DEBITED, HELD = ({"currency": "USD", "minor": m} for m in (5220, 17400, 12180))


@pytest.fixture
async def lab(engine_name: str, ledger_target: str) -> Any:
    made = Lab(engine_name, ledger_target)
    yield made
    await made.close()


async def _set_rate(lab: Lab, currency: str, usd: str) -> None:
    async with httpx.AsyncClient(transport=lab.sandbox.transport(), base_url="http://sandbox") as admin:
        answer = (await admin.post("/_admin/setFxRate", json={"currency": currency, "usdRate": usd})).json()
    assert answer.get("success") is not False, answer


async def _hotel_agent(lab: Lab) -> Any:
    agent = lab.agent(budget_policy("1000.00"), CallbackApprover(lambda r: True), budget_id="fx")
    await agent.call("discover_merchants")
    mandate = await agent.call("request_mandate", purpose="Book the Kuala Lumpur hotel", budget="600.00",
                               expires_at=lab.until(), merchant_ids=["KL-GRAND-HOTEL"])
    assert mandate["status"] == "ACTIVE"
    shown = await agent.call("search_offers", query="superior room", merchant_ids=["KL-GRAND-HOTEL"])
    assert shown["offers"][0]["price_in_budget_currency"]["amount"] == "121.80"  # quoted at 0.21 USD per MYR
    return agent


def _debit(lab: Lab, checkout: str) -> Money:
    [paid] = [p for p in lab.sandbox.payments() if p["checkoutId"] == checkout and p["status"] == "SUCCESS"]
    return Money.from_wire(paid["walletAmount"])


async def test_a_rate_move_after_the_prices_were_shown_is_reserved_and_counted_as_debited(lab: Lab) -> None:
    agent = await _hotel_agent(lab)
    await _set_rate(lab, "MYR", "0.25")  # the network's rate moves while the shown quote is still cached
    checkout = (await agent.call("checkout", offer_id=ROOM, quantity=1))["checkout_id"]
    paid = await agent.call("pay", checkout_id=checkout)
    assert paid["status"] == "paid" and paid["budget_amount"]["amount"] == "145.00"
    assert _debit(lab, checkout) == Money.parse("145.00", "USD")  # the wallet paid exactly what was reserved
    [entry] = await lab.ledger.entries("fx")
    assert entry.budget_amount == entry.reserved == Money.parse("145.00", "USD")
    assert await lab.used(agent.toolkit.policy, "fx") == "145.00"
    assert "debited_above_reservation" not in paid


async def test_a_debit_above_the_reservation_is_committed_flagged_and_shown(lab: Lab) -> None:
    agent = await _hotel_agent(lab)
    checkout = (await agent.call("checkout", offer_id=ROOM, quantity=1))["checkout_id"]
    client = agent.toolkit.client
    real_apply = client.apply_credential

    async def late_rate_move(*args: Any, **kwargs: Any) -> Any:
        # The quote is not honoured (a network without the quote lock, or it expired): charged at a new rate.
        kwargs.pop("fx_quote_id", None)
        await _set_rate(lab, "MYR", "0.30")
        return await real_apply(*args, **kwargs)

    client.apply_credential = late_rate_move  # type: ignore[method-assign]
    paid = await agent.call("pay", checkout_id=checkout)
    assert _debit(lab, checkout) == Money.parse("174.00", "USD")
    assert paid["budget_amount"]["amount"] == "174.00"
    assert paid["debited_above_reservation"]["amount"] == "52.20"  # held 121.80 at the fresh 0.21 quote
    [entry] = await lab.ledger.entries("fx")
    assert entry.budget_amount == Money.parse("174.00", "USD") and entry.reserved == Money.parse("121.80", "USD")
    status = await agent.call("budget_status")
    assert status["total"]["used"]["amount"] == "174.00"
    assert status["total"]["debited_above_reservations"] == {"count": 1,
                                                            "amount": {"amount": "52.20", "currency": "USD"}}
    [commit] = [r for r in await lab.ledger.audit.records() if r.kind == "commit"]
    assert (commit.payload["over_reservation"], commit.payload["debited"], commit.payload["reserved"]) == (
        OVER, DEBITED, HELD)
    assert (await lab.ledger.audit.verify()).ok
