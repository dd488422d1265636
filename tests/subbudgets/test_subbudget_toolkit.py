"""`toolkit.for_agent(name)`: an agent's toolkit on its sub-budget, sharing the crew's client, ledger
and approver; its payments count toward the crew; budget_status shows its own room and the crew's;
a refusal names the level that refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from amp_tools.errors import ConfigError, InvalidArguments, PolicyViolation
from amp_tools.ledger import open_ledger
from amp_tools.money import Money
from amp_tools.policy import parse_policy
from amp_tools.sandbox import Sandbox
from amp_tools.toolkit import AmpToolkit

CREW: dict[str, Any] = {
    "name": "trip", "currency": "USD", "total_budget": "300.00", "per_transaction_max": "250.00",
    "agents": {
        "flight_booker": {"total_budget": "250.00"},
        "hotel_booker": {"total_budget": "120.00", "windows": {"day": {"limit": "40.00"}}},
        "researcher": {"total_budget": "5.00"},
    },
}


async def _call(tk: AmpToolkit, name: str, **args: Any) -> dict[str, Any]:
    spec = next(s for s in tk.specs() if s.name == name)
    result: dict[str, Any] = await spec.ainvoke(args)
    return result


async def _buy(tk: AmpToolkit, query: str, category: str, words: str) -> dict[str, Any]:
    found = await _call(tk, "search_offers", query=query, category=category)
    offer = next(o["offer_id"] for o in found["offers"] if words in o["name"])
    ck = await _call(tk, "checkout", offer_id=offer)
    return await _call(tk, "pay", checkout_id=ck["checkout_id"])


def _amount(figure: dict[str, Any]) -> Money:
    return Money.parse(figure["amount"], figure["currency"])


@pytest.fixture
async def crew(tmp_path: Path) -> Any:
    sandbox = Sandbox()
    toolkit = AmpToolkit.for_sandbox(sandbox, parse_policy(CREW), ledger=open_ledger(tmp_path / "l.db",
                                                                                     clock=sandbox.clock))
    yield toolkit
    await toolkit.aclose()
    await toolkit.ledger.close()


async def test_agent_payment_counts_toward_the_crew_and_status_shows_both(crew: AmpToolkit) -> None:
    flights = crew.for_agent("flight_booker")
    assert flights.budget_id == "trip/flight_booker" and flights.ledger is crew.ledger
    assert flights.client is crew.client and flights.guard.approver is crew.guard.approver
    paid = await _buy(flights, "flight Kuala Lumpur", "flight", "SIN->KUL")
    assert paid["status"] == "paid"
    [entry] = await crew.ledger.entries("trip/flight_booker")
    assert entry.parents == ("trip",) and entry.status == "committed"
    spent = entry.budget_amount

    status = await _call(flights, "budget_status")
    assert _amount(status["total"]["used"]) == spent
    assert _amount(status["total"]["left"]) == Money.parse("250.00", "USD") - spent
    [parent] = status["parents"]
    assert parent["budget"] == "trip" and _amount(parent["total"]["used"]) == spent
    assert _amount(parent["total"]["left"]) == Money.parse("300.00", "USD") - spent
    assert _amount(status["can_spend"]) == Money.parse("250.00", "USD") - spent

    # The crew's own status counts the agent's payment; a sibling's room is its own and the crew's.
    crew_status = await _call(crew, "budget_status")
    assert _amount(crew_status["total"]["used"]) == spent
    research = await _call(crew.for_agent("researcher"), "budget_status")
    assert _amount(research["total"]["used"]) == Money.zero("USD")
    assert _amount(research["can_spend"]) == Money.parse("5.00", "USD")
    tree = await crew.ledger.budget_tree("trip")
    # Every agent's level is a stored budget from the start (0 used until it pays).
    assert sorted((b, p, used) for b, p, _cur, used, _n in tree) == [
        ("trip", None, spent.minor), ("trip/flight_booker", "trip", spent.minor),
        ("trip/hotel_booker", "trip", 0), ("trip/researcher", "trip", 0)]


async def test_refusal_names_the_agent_level_and_changes_nothing(crew: AmpToolkit) -> None:
    hotels = crew.for_agent("hotel_booker")
    with pytest.raises(PolicyViolation) as refused:
        await _buy(hotels, "hotel Kuala Lumpur", "hotel", "Superior")
    assert refused.value.rule.startswith("agents.hotel_booker.")
    assert "hotel_booker" in refused.value.message and "trip/hotel_booker" in refused.value.message
    assert await crew.ledger.entries("trip/hotel_booker") == []
    researcher = crew.for_agent("researcher")
    with pytest.raises(PolicyViolation) as small:
        await _buy(researcher, "flight Kuala Lumpur", "flight", "SIN->KUL")
    assert small.value.rule == "agents.researcher.total_budget"
    assert small.value.details["budget_id"] == "trip/researcher"
    assert json.dumps(small.value.details)  # tool errors carry plain data


async def test_crew_total_binds_an_agent_within_its_own_budget(tmp_path: Path) -> None:
    sandbox = Sandbox()
    crew = AmpToolkit.for_sandbox(sandbox, parse_policy({**CREW, "total_budget": "260.00"}),
                                  ledger=open_ledger(tmp_path / "l.db", clock=sandbox.clock))
    try:
        # The crew's own toolkit (the root level) spends first; the agent's room is then the crew's.
        first = await _buy(crew, "flight Kuala Lumpur", "flight", "SIN->KUL")
        spent = _amount(first.get("budget_amount", first["amount"]))
        flights = crew.for_agent("flight_booker")
        assert await flights.budget_left() == Money.parse("260.00", "USD") - spent
        status = await _call(flights, "budget_status")
        assert _amount(status["total"]["left"]) == Money.parse("250.00", "USD")  # its own budget is untouched
        assert _amount(status["can_spend"]) == Money.parse("260.00", "USD") - spent
        # Buying until refused: the crew's total refuses first (the agent's own 250.00 is never reached).
        with pytest.raises(PolicyViolation) as refused:
            for _ in range(20):
                await _buy(flights, "flight Kuala Lumpur", "flight", "SIN->KUL")
        assert refused.value.rule == "total_budget" and "shared budget trip" in refused.value.message
        own = sum((e.budget_amount for e in await crew.ledger.entries("trip/flight_booker")), Money.zero("USD"))
        assert own + spent <= Money.parse("260.00", "USD") < own + spent + spent
        assert own < Money.parse("250.00", "USD")
    finally:
        await crew.aclose()
        await crew.ledger.close()


def test_unknown_agent_is_refused_with_the_names_known(crew: AmpToolkit) -> None:
    with pytest.raises(ConfigError) as unknown:
        crew.for_agent("hotel")
    assert "flight_booker, hotel_booker, researcher" in unknown.value.message
    with pytest.raises(InvalidArguments):
        crew.for_agent("")
    assert crew.agents() == ["flight_booker", "hotel_booker", "researcher"]


async def test_crew_reconcile_settles_its_agents_payments_whose_process_is_gone(crew: AmpToolkit) -> None:
    from datetime import timedelta

    from amp_tools.payments.owner import current_owner
    from amp_tools.policy import SpendIntent

    host = current_owner().split("|")[0]
    hotels = crew.for_agent("hotel_booker")
    assert hotels.path is not None
    amount = Money.parse("30.00", "USD")
    spend = SpendIntent(action="pay", merchant_id="KL-GRAND-HOTEL", merchant_name="KL Grand Hotel", mcc="7011",
                        amount=amount, budget_amount=amount, fx_rate=None, items=(), human_present=False,
                        checkout_id="CKO-LOST", at=crew.clock.now())
    # Reserved by a process that died before sending anything: nothing can have left, so it is released.
    held = await crew.ledger.reserve(spend, hotels.policy, budget_id=hotels.budget_id, idempotency_key="lost",
                                     now=crew.clock.now(), owner=f"{host}|999999999|gone",
                                     lease_until=crew.clock.now() - timedelta(seconds=1), path=hotels.path)
    assert (await _call(crew, "budget_status"))["total"]["used"]["amount"] == "30.00"
    report = await crew.reconcile()
    assert report.released == [held.id] and not report.failed
    assert (await crew.ledger.get(held.id)).status == "released"
    assert (await _call(crew, "budget_status"))["total"]["used"]["amount"] == "0.00"
