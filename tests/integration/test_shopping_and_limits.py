"""Search, quote, negotiate and pay within budget; a payment over a limit refused with its rule.

Each scenario runs through LangChain's `create_agent`, a CrewAI crew and an AutoGen
`AssistantAgent` over the real toolkit, in-process sandbox and a SQLite ledger.
"""

from __future__ import annotations

from amp_examples.scripted import Final, ToolCall
from amp_tools.money import Money
from tests.integration._scenarios import DRIVERS, Seen, Shop, hotel_checkout, offer, plan_script, policy, searches


def _buy_trip(shop: Shop) -> list:  # type: ignore[type-arg]
    """Hotel: quote two nights, counter at 85 %, accept, pay. Flight: check out at list price, pay."""
    return [
        lambda s: searches(),
        lambda s: ToolCall("request_mandate", {"purpose": "Kuala Lumpur trip: hotel and flight",
                                               "expires_at": shop.until()}),
        lambda s: ToolCall("request_quote", {"offer_id": offer(s, "superior"), "quantity": 2}),
        lambda s: ToolCall("negotiate", {"quote_id": s.ok("request_quote")[0]["quote_id"], "offer_amount": "986.00"}),
        lambda s: ToolCall("accept_quote", {"quote_id": s.ok("negotiate")[0]["quote_id"]}),
        lambda s: ToolCall("pay", {"checkout_id": hotel_checkout(s)}),
        lambda s: ToolCall("checkout", {"offer_id": offer(s, "SIN->KUL 19:00"), "quantity": 1}),
        lambda s: ToolCall("pay", {"checkout_id": s.ok("checkout")[0]["checkout_id"]}),
        lambda s: ToolCall("budget_status", {}),
        lambda s: Final(f"Paid {len(s.ok('pay'))} bookings."),
    ]


async def test_search_quote_negotiate_and_pay_within_budget(shop: Shop, framework: str) -> None:
    tk = shop.toolkit(policy())
    run = await DRIVERS[framework](tk, plan_script(_buy_trip(shop)))

    seen = run.seen
    quote, countered = seen.ok("request_quote")[0], seen.ok("negotiate")[0]
    assert quote["total"]["amount"] == "1160.00" and quote["total"]["currency"] == "MYR"
    assert countered["total"] == {"amount": "1102.00", "currency": "MYR",
                                  "in_budget_currency": {"amount": "231.42", "currency": "USD"}}
    paid = seen.ok("pay")
    assert [(p["status"], p["merchant"], p["amount"]["amount"], p["amount"]["currency"], p["mode"]) for p in paid] == [
        ("paid", "KL Grand Hotel", "1102.00", "MYR", "delegated"),
        ("paid", "Skylark Air", "149.00", "SGD", "delegated")]
    assert [p["budget_amount"]["amount"] for p in paid] == ["231.42", "110.26"]
    assert paid[-1]["budget_left"] == {"amount": "658.32", "currency": "USD"}
    assert not seen.errors("pay")

    rows = await shop.rows()
    assert [(r.merchant_id, r.status, r.amount, r.budget_amount) for r in rows] == [
        ("KL-GRAND-HOTEL", "committed", Money.parse("1102.00", "MYR"), Money.parse("231.42", "USD")),
        ("SKYLARK-AIR", "committed", Money.parse("149.00", "SGD"), Money.parse("110.26", "USD"))]
    payments = shop.paid()
    assert sorted((p["merchantId"], p["amount"]["cent"]) for p in payments) == [
        ("KL-GRAND-HOTEL", 110200), ("SKYLARK-AIR", 14900)]
    assert {p["transactionId"] for p in payments} == {r.external_ref for r in rows}
    assert seen.ok("budget_status")[0]["total"]["left"] == {"amount": "658.32", "currency": "USD"}
    assert await tk.budget_left() == Money.parse("658.32", "USD")
    assert run.final == "Paid 2 bookings."


def _over_the_limit(shop: Shop) -> list:  # type: ignore[type-arg]
    """Pay the full-price hotel (over the limits), then the flight; the model reads the refusal."""
    return [
        lambda s: searches(),
        lambda s: ToolCall("request_quote", {"offer_id": offer(s, "superior"), "quantity": 2}),
        lambda s: ToolCall("accept_quote", {"quote_id": s.ok("request_quote")[0]["quote_id"]}),
        lambda s: ToolCall("pay", {"checkout_id": hotel_checkout(s)}),
        lambda s: ToolCall("checkout", {"offer_id": offer(s, "SIN->KUL 19:00"), "quantity": 1}),
        lambda s: ToolCall("pay", {"checkout_id": s.ok("checkout")[0]["checkout_id"]}),
        lambda s: Final("Hotel refused: " + s.errors("pay")[0][:40]),
    ]


async def test_payment_over_per_transaction_max_is_refused_naming_the_rule(shop: Shop, framework: str) -> None:
    tk = shop.toolkit(policy(per_transaction_max="200.00"))
    run = await DRIVERS[framework](tk, plan_script(_over_the_limit(shop)))

    refused = run.seen.errors("pay")
    assert len(refused) == 1
    assert refused[0].startswith("POLICY_VIOLATION")
    assert "per_transaction_max" in refused[0]
    assert "243.60 USD" in refused[0] and "200.00 USD" in refused[0]
    # The run went on: the flight under the limit was paid, and only it.
    assert [(p["status"], p["merchant"]) for p in run.seen.ok("pay")] == [("paid", "Skylark Air")]
    rows = await shop.rows()
    assert [(r.merchant_id, r.status) for r in rows] == [("SKYLARK-AIR", "committed")]
    assert [p["merchantId"] for p in shop.paid()] == ["SKYLARK-AIR"]
    assert await tk.budget_left() == Money.parse("889.74", "USD")
    assert run.final.startswith("Hotel refused: POLICY_VIOLATION")


async def test_merchant_cap_refuses_the_hotel(shop: Shop, framework: str) -> None:
    tk = shop.toolkit(policy(merchants={"caps": {"KL-GRAND-HOTEL": "150.00"}}))
    run = await DRIVERS[framework](tk, plan_script(_over_the_limit(shop)))

    refused = run.seen.errors("pay")
    assert len(refused) == 1 and "merchants.caps" in refused[0] and "KL-GRAND-HOTEL" in refused[0]
    assert [r.merchant_id for r in await shop.committed()] == ["SKYLARK-AIR"]
    assert [p["merchantId"] for p in shop.paid()] == ["SKYLARK-AIR"]


def test_seen_reads_errors_apart() -> None:
    seen = Seen([{"role": "tool", "name": "pay", "content": "X: no", "is_error": True},
                 {"role": "tool", "name": "pay", "content": "{\"status\": \"paid\"}", "is_error": False}])
    assert seen.errors("pay") == ["X: no"] and seen.ok("pay") == [{"status": "paid"}]
