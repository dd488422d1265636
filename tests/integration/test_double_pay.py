"""The model pays one checkout twice, as two parallel calls in one turn or in two turns: charged once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from amp_examples.scripted import Final, ToolCall
from amp_tools.money import Money
from tests.integration._scenarios import DRIVERS, Shop, offer, plan_script, policy


def _flight_paid_twice(parallel: bool) -> list[Any]:
    def pay(s: Any) -> ToolCall:
        return ToolCall("pay", {"checkout_id": s.ok("checkout")[0]["checkout_id"]})

    steps: list[Any] = [
        lambda s: ToolCall("search_offers", {"query": "flight Kuala Lumpur", "category": "flight"}),
        lambda s: ToolCall("checkout", {"offer_id": offer(s, "SIN->KUL 19:00"), "quantity": 1}),
    ]
    steps += [lambda s: [pay(s), pay(s)]] if parallel else [pay, pay]
    return [*steps, lambda s: ToolCall("budget_status", {}), lambda s: Final("booked")]


@pytest.mark.parametrize("parallel", [True, False], ids=["one-turn-parallel", "two-turns"])
async def test_paying_one_checkout_twice_charges_once(shop: Shop, framework: str, parallel: bool) -> None:
    tk = shop.toolkit(policy())
    run = await DRIVERS[framework](tk, plan_script(_flight_paid_twice(parallel)))

    texts = run.seen.texts("pay")
    assert len(texts) == 2
    paid, errors = run.seen.ok("pay"), run.seen.errors("pay")
    statuses = sorted(p["status"] for p in paid)
    # The second call either finds the first committed, or (if it ran while the first was in
    # flight) is told the payment is in progress; it never reaches the wallet.
    assert statuses == ["already_paid", "paid"] or (statuses == ["paid"] and errors[0].startswith(
        "PAYMENT_IN_PROGRESS"))
    if not parallel:
        assert statuses == ["already_paid", "paid"]
        assert paid[1]["transaction_id"] == paid[0]["transaction_id"]

    [row] = await shop.rows()
    assert (row.merchant_id, row.status, row.amount) == ("SKYLARK-AIR", "committed", Money.parse("149.00", "SGD"))
    [payment] = shop.paid()
    assert (payment["merchantId"], payment["amount"]["cent"], payment["transactionId"]) == (
        "SKYLARK-AIR", 14900, row.external_ref)
    status = run.seen.ok("budget_status")[0]["total"]
    assert status["used"] == {"amount": "110.26", "currency": "USD"} and status["committed_count"] == 1
    assert await tk.budget_left() == Money.parse("889.74", "USD")


def test_checkout_lock_excludes_across_threads_and_event_loops(shop: Shop) -> None:
    """CrewAI runs parallel tool calls on separate threads, each with its own loop (`ToolSpec.invoke`)."""
    tk = shop.toolkit(policy())
    inside: list[int] = []
    overlaps: list[int] = []

    async def hold() -> None:
        async with tk.lock("checkout:X"):
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(1)
            await asyncio.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=asyncio.run, args=(hold(),), daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert [t.is_alive() for t in threads] == [False, False, False]  # an asyncio.Lock shared by loops hangs here
    assert overlaps == [] and inside == []
