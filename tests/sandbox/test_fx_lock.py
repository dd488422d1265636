"""FX at the token's locked rate: quotes with ids, fxQuoteId at applyCredential, the debit the
merchant reports (debitedAmount, fxRate) on payment, replay and order status."""

from __future__ import annotations

from typing import Any

import httpx

from amp_tools.money import Money
from tests.sandbox.sandbox_helpers import Flow, make_sandbox

# SKY-SIN-KUL-1900 costs 149.00 SGD. SGD->USD 0.74: 110.26 USD; after the move to 0.90: 134.10 USD.
FLIGHT = ("SKY-SIN-KUL-1900", 1)
AT_QUOTE, AFTER_MOVE = 11026, 13410


async def quote(flow: Flow, src: str = "SGD", dst: str = "USD") -> dict[str, Any]:
    r = await flow.get(f"/network/fxRate?from={src}&to={dst}")
    assert r["success"], r
    data: dict[str, Any] = r["data"]
    return data


async def move_sgd(flow: Flow, usd_rate: str = "0.90") -> None:
    assert (await flow.post("/_admin/setFxRate", {"currency": "SGD", "usdRate": usd_rate}))["success"]


async def pay(flow: Flow, m: dict[str, Any], co: dict[str, Any], **extra: Any) -> tuple[dict[str, Any], ...]:
    """applyCredential (with `extra` fields) + startPayment; returns (token answer, payment data)."""
    l3 = flow.l3(m["l2Serialized"], co)
    t = await flow.apply(m, co, l3=l3, **extra)
    assert t["success"], t
    r = await flow.start_payment(m, co, t["paymentToken"], l3)
    assert r.json()["success"], r.text
    return t, r.json()["data"], l3


async def test_fx_quotes_carry_an_id_and_are_kept(flow: Flow) -> None:
    q1, q2 = await quote(flow), await quote(flow)
    assert q1["quoteId"].startswith("FXQ-") and len(q1["quoteId"]) == 20 and q1["quoteId"] != q2["quoteId"]
    assert (q1["from"], q1["to"], q1["rate"], q1["expiresAt"]) == ("SGD", "USD", "0.74000000", "2026-03-02T09:15:00Z")
    kept = flow.sb.state.fx_quotes[q1["quoteId"]]
    assert (kept.src, kept.dst, str(kept.rate)) == ("SGD", "USD", "0.74000000")
    lower = await quote(flow, "sgd", "usd")
    assert (lower["from"], lower["to"]) == ("SGD", "USD")


async def test_debit_uses_the_quoted_rate_after_the_rate_moved(flow: Flow) -> None:
    m = await flow.autonomous(Money(50000, "USD"), ["Skylark Air"])
    co = await flow.checkout("SKYLARK-AIR", FLIGHT)
    q = await quote(flow)
    await move_sgd(flow)
    t, paid, l3 = await pay(flow, m, co, fxQuoteId=q["quoteId"])
    assert (t["fxQuoteId"], t["fxRate"]) == (q["quoteId"], "0.74000000")
    assert paid["debitedAmount"] == {"cent": AT_QUOTE, "currency": "USD"} and paid["fxRate"] == "0.74000000"
    assert await flow.remaining(m["mandateId"]) == (50000 - AT_QUOTE, "USD", "ACTIVE")
    # the replay and the order status report the same debit
    again = (await flow.start_payment(m, co, t["paymentToken"], l3)).json()["data"]
    assert again["idempotent"] is True and again["transactionId"] == paid["transactionId"]
    assert (again["debitedAmount"], again["fxRate"]) == ({"cent": AT_QUOTE, "currency": "USD"}, "0.74000000")
    order = (await flow.post("/merchants/SKYLARK-AIR/orderStatus", {"checkoutId": co["checkoutId"]}))["data"]
    assert (order["debitedAmount"], order["fxRate"]) == ({"cent": AT_QUOTE, "currency": "USD"}, "0.74000000")
    [p] = flow.sb.payments()
    assert (p["walletAmount"], p["mandateAmount"], p["walletFxRate"], p["fxQuoteId"]) == (
        {"cent": AT_QUOTE, "currency": "USD"}, {"cent": AT_QUOTE, "currency": "USD"}, "0.74000000", q["quoteId"])


async def test_without_the_quote_id_the_debit_uses_the_current_rate(flow: Flow) -> None:
    m = await flow.autonomous(Money(50000, "USD"), ["Skylark Air"])
    co = await flow.checkout("SKYLARK-AIR", FLIGHT)
    await quote(flow)  # quoted at 0.74 but not named
    await move_sgd(flow)
    t, paid, _ = await pay(flow, m, co)
    assert (t["fxQuoteId"], t["fxRate"]) == (None, "0.90000000")
    assert paid["debitedAmount"] == {"cent": AFTER_MOVE, "currency": "USD"} and paid["fxRate"] == "0.90000000"
    assert await flow.remaining(m["mandateId"]) == (50000 - AFTER_MOVE, "USD", "ACTIVE")


async def test_a_quote_expired_before_the_token_request_is_not_honoured(flow: Flow) -> None:
    m = await flow.autonomous(Money(50000, "USD"), ["Skylark Air"])
    co = await flow.checkout("SKYLARK-AIR", FLIGHT)
    q = await quote(flow)
    flow.sb.clock.advance(seconds=900)  # expiresAt is exclusive
    await move_sgd(flow)
    t, paid, _ = await pay(flow, m, co, fxQuoteId=q["quoteId"])
    assert (t["fxQuoteId"], t["fxRate"]) == (None, "0.90000000")
    assert paid["debitedAmount"] == {"cent": AFTER_MOVE, "currency": "USD"}


async def test_a_quote_expiring_between_token_and_payment_leaves_the_debit_at_the_current_rate(flow: Flow) -> None:
    m = await flow.autonomous(Money(50000, "USD"), ["Skylark Air"])
    co = await flow.checkout("SKYLARK-AIR", FLIGHT)
    q = await quote(flow)
    flow.sb.clock.advance(seconds=800)
    l3 = flow.l3(m["l2Serialized"], co)
    t = await flow.apply(m, co, l3=l3, fxQuoteId=q["quoteId"])
    assert (t["fxQuoteId"], t["fxRate"]) == (q["quoteId"], "0.74000000")
    assert (await flow.remaining(m["mandateId"]))[0] == 50000 - AT_QUOTE  # reserved at the locked rate
    await move_sgd(flow)
    flow.sb.clock.advance(seconds=100)  # the quote ended at +900 s; the token lives until +1400 s
    paid = (await flow.start_payment(m, co, t["paymentToken"], l3)).json()["data"]
    assert paid["debitedAmount"] == {"cent": AFTER_MOVE, "currency": "USD"} and paid["fxRate"] == "0.90000000"
    # the mandate (in the wallet currency) is charged the debit, not the smaller reservation
    assert await flow.remaining(m["mandateId"]) == (50000 - AFTER_MOVE, "USD", "ACTIVE")
    again = (await flow.start_payment(m, co, t["paymentToken"], l3)).json()["data"]
    assert again["debitedAmount"] == {"cent": AFTER_MOVE, "currency": "USD"} and again["idempotent"] is True


async def test_a_rate_move_the_budget_cannot_cover_is_refused_at_s4(flow: Flow) -> None:
    m = await flow.autonomous(Money(12000, "USD"), ["Skylark Air"])
    co = await flow.checkout("SKYLARK-AIR", FLIGHT)
    q = await quote(flow)
    flow.sb.clock.advance(seconds=800)
    l3 = flow.l3(m["l2Serialized"], co)
    t = await flow.apply(m, co, l3=l3, fxQuoteId=q["quoteId"])  # 110.26 USD reserved under a 120.00 budget
    assert t["fxQuoteId"] == q["quoteId"]
    await move_sgd(flow)
    flow.sb.clock.advance(seconds=100)  # past the quote's lock, not past the token
    r = (await flow.start_payment(m, co, t["paymentToken"], l3)).json()
    assert (r["errorCode"], r["resultCode"]) == ("ACQUIRER_FAILED", "MANDATE_BALANCE_INSUFFICIENT")
    assert "needs 134.10 USD of the mandate, 23.84 USD more than the 110.26 USD reserved" in r["errorMessage"]
    assert flow.sb.state.mpp_debits == {}
    assert await flow.remaining(m["mandateId"]) == (12000, "USD", "ACTIVE")


async def test_a_quote_for_another_pair_or_an_unknown_id_falls_back_to_the_current_rate(flow: Flow) -> None:
    m = await flow.autonomous(Money(50000, "USD"), ["Skylark Air"])
    wrong_pair = await quote(flow, "SGD", "EUR")
    await move_sgd(flow)
    for quote_id in (wrong_pair["quoteId"], "FXQ-DOESNOTEXIST0000"):
        co = await flow.checkout("SKYLARK-AIR", FLIGHT)
        t, paid, _ = await pay(flow, m, co, fxQuoteId=quote_id)
        assert (t["fxQuoteId"], t["fxRate"]) == (None, "0.90000000")
        assert paid["debitedAmount"] == {"cent": AFTER_MOVE, "currency": "USD"}
    bad = await flow.apply(m, await flow.checkout("SKYLARK-AIR", FLIGHT), fxQuoteId=42)
    assert not bad["success"] and bad["resultCode"] == "PARAM_ILLEGAL" and "fxQuoteId" in bad["error"]
    assert (bad["paymentToken"], bad["fxQuoteId"], bad["fxRate"]) == (None, None, None)


async def test_same_currency_payment_reports_the_debit_without_a_rate(flow: Flow) -> None:
    m = await flow.autonomous(Money(50000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    t, paid, _ = await pay(flow, m, co)
    assert (t["fxQuoteId"], t["fxRate"]) == (None, None)
    assert paid["debitedAmount"] == {"cent": 2999, "currency": "USD"} and "fxRate" not in paid
    order = (await flow.post("/merchants/SUNNY-TOURS/orderStatus", {"checkoutId": co["checkoutId"]}))["data"]
    assert (order["debitedAmount"], order["fxRate"]) == ({"cent": 2999, "currency": "USD"}, None)
    unpaid = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    order = (await flow.post("/merchants/SUNNY-TOURS/orderStatus", {"checkoutId": unpaid["checkoutId"]}))["data"]
    assert (order["status"], order["debitedAmount"], order["fxRate"]) == ("CREATED", None, None)


async def test_idempotent_token_request_keeps_its_quote_and_a_different_quote_is_inconsistent(flow: Flow) -> None:
    m = await flow.autonomous(Money(50000, "USD"), ["Skylark Air"])
    co = await flow.checkout("SKYLARK-AIR", FLIGHT)
    q = await quote(flow)
    l3 = flow.l3(m["l2Serialized"], co)
    first = await flow.apply(m, co, l3=l3, fxQuoteId=q["quoteId"], idempotencyKey="k1")
    await move_sgd(flow)
    again = await flow.apply(m, co, l3=l3, fxQuoteId=q["quoteId"], idempotencyKey="k1")
    assert (again["paymentToken"], again["fxQuoteId"], again["fxRate"]) == (
        first["paymentToken"], q["quoteId"], "0.74000000")
    other = await flow.apply(m, co, l3=l3, fxQuoteId=(await quote(flow))["quoteId"], idempotencyKey="k1")
    assert other["resultCode"] == "REPEAT_REQ_INCONSISTENT"


async def test_network_apply_credential_takes_fx_quote_id_too() -> None:
    sb = make_sandbox()
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        await flow.bind()
        m = await flow.autonomous(Money(50000, "USD"), ["Skylark Air"])
        co = await flow.checkout("SKYLARK-AIR", FLIGHT)
        q = await quote(flow)
        await move_sgd(flow)
        r = await flow.post("/network/applyCredential", {
            "tokenId": flow.token_id, "mandateId": m["mandateId"], "l1Serialized": m["l1Serialized"],
            "l2Serialized": m["l2Serialized"], "l3Serialized": flow.l3(m["l2Serialized"], co),
            "checkout": flow.cp_checkout(co), "fxQuoteId": q["quoteId"]})
        d = r["data"]
        assert (d["fxQuoteId"], d["fxRate"], d["fxRateLockedUntil"]) == (q["quoteId"], "0.74000000",
                                                                         "2026-03-02T09:15:00Z")
        assert d["deductedAmount"] == {"cent": AT_QUOTE, "currency": "USD"}


async def test_wallet_in_another_currency_than_the_mandate_debits_at_the_locked_wallet_rate() -> None:
    sb = make_sandbox(wallet_currency="SGD")
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        await flow.bind()
        m = await flow.autonomous(Money(1000000, "JPY"), ["KL Grand Hotel"])
        co = await flow.checkout("KL-GRAND-HOTEL", ("KLG-SUPERIOR-NIGHT", 1))  # 580.00 MYR
        q = await quote(flow, "MYR", "SGD")  # 0.28378378
        assert (await flow.post("/_admin/setFxRate", {"currency": "MYR", "usdRate": "0.30"}))["success"]
        t, paid, _ = await pay(flow, m, co, fxQuoteId=q["quoteId"])
        assert (t["fxQuoteId"], t["fxRate"]) == (q["quoteId"], "0.28378378")
        # 580.00 * 0.28378378 = 164.5945924 -> 164.60 SGD (rounded up), the rate of the quote
        assert paid["debitedAmount"] == {"cent": 16460, "currency": "SGD"} and paid["fxRate"] == "0.28378378"
        # the JPY mandate reserves at its own table rate of the moment: 580.00 * 0.30/0.0067 = 25970.15 -> 25971
        assert (await flow.remaining(m["mandateId"]))[0] == 1000000 - 25971
