"""FX, S3/S4 at the wallet, injected faults, refunds and limit adjustment, asserted in amounts."""

from __future__ import annotations

from typing import Any

import httpx

from amp_tools.money import Money
from tests.sandbox.sandbox_helpers import Flow, make_sandbox


async def admin(flow: Flow, path: str, body: dict[str, Any]) -> None:
    r = await flow.post(f"/_admin/{path}", body)
    assert r["success"], r


async def token_status(flow: Flow, mandate_id: str) -> list[str]:
    v = (await flow.get(f"/network/mandate/{mandate_id}"))["data"]
    return [t["status"] for t in v["paymentTokens"]]


# ------------------------------------------------------------------------------------- FX
async def test_fx_rate_endpoint(flow: Flow) -> None:
    r = (await flow.get("/network/fxRate?from=SGD&to=USD"))["data"]
    assert (r["from"], r["to"], r["rate"], r["rounding"]) == ("SGD", "USD", "0.74000000", "UP")
    assert r["quotedAt"] == "2026-03-02T09:00:00Z" and r["expiresAt"] == "2026-03-02T09:15:00Z"
    assert (await flow.get("/network/fxRate?from=MYR&to=SGD"))["data"]["rate"] == "0.28378378"
    bad = await flow.get("/network/fxRate?from=CHF&to=USD")
    assert not bad["success"] and bad["resultCode"] == "CHECKOUT_CURRENCY_MISMATCH"


async def test_sgd_checkout_on_usd_mandate_deducts_rounded_up(flow: Flow) -> None:
    await admin(flow, "setPrice", {"merchantId": "SKYLARK-AIR", "productId": "SKY-SIN-KUL-1900", "cent": 14999})
    m = await flow.autonomous(Money(50000, "USD"), ["Skylark Air"])
    co = await flow.checkout("SKYLARK-AIR", ("SKY-SIN-KUL-1900", 1))
    assert (await flow.buy(m, co))["success"]
    # 149.99 SGD * 0.74 = 110.9926 USD -> 111.00 (never understated)
    assert await flow.remaining(m["mandateId"]) == (50000 - 11100, "USD", "ACTIVE")
    [p] = flow.sb.payments()
    assert (p["amount"], p["mandateAmount"], p["walletAmount"], p["fxRate"]) == (
        {"cent": 14999, "currency": "SGD"}, {"cent": 11100, "currency": "USD"},
        {"cent": 11100, "currency": "USD"}, "0.74000000")


async def test_wallet_currency_differs_from_mandate_currency() -> None:
    sb = make_sandbox(wallet_currency="SGD")
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        await flow.bind()
        m = await flow.autonomous(Money(1000000, "JPY"), ["KL Grand Hotel"])
        co = await flow.checkout("KL-GRAND-HOTEL", ("KLG-SUPERIOR-NIGHT", 1))  # 580.00 MYR
        assert (await flow.buy(m, co))["success"]
        # MYR->JPY: 0.21/0.0067 = 31.34328358; 580.00 * that = 18179.10 -> 18180 JPY (rounded up)
        assert (await flow.remaining(m["mandateId"]))[0] == 1000000 - 18180
        # MYR->SGD: 0.21/0.74 = 0.28378378; 580.00 * that = 164.5945924 -> 164.60 SGD
        assert sb.payments()[0]["walletAmount"] == {"cent": 16460, "currency": "SGD"}


# ------------------------------------------------------------------------------------- S3 / S4
async def test_s3_token_paid_against_another_checkout_is_declined_and_released() -> None:
    sb = make_sandbox(require_chain=False)  # a reference-style merchant that does not verify the chain
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        await flow.bind()
        m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
        cheap = await flow.checkout("SUNNY-TOURS", ("SUN-ESIM-ASIA", 1))  # 19.99
        dear = await flow.checkout("SUNNY-TOURS", ("SUN-KL-CITY-TOUR", 2))  # 90.00
        t = await flow.apply(m, cheap)
        assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 1999
        r = (await c.post("/merchants/SUNNY-TOURS/startPayment",
                          json={"checkoutId": dear["checkoutId"], "paymentToken": t["paymentToken"]})).json()
        assert r["errorCode"] == "ACQUIRER_FAILED" and r["resultCode"] == "ORDER_INCONSISTENT"
        assert "amount 90.00 USD != bound 19.99 USD" in r["errorMessage"]
        assert await flow.remaining(m["mandateId"]) == (100000, "USD", "ACTIVE")
        assert await token_status(flow, m["mandateId"]) == ["FAILED"]
        assert [p["status"] for p in sb.payments()] == ["FAIL"]
        order = await flow.post("/merchants/SUNNY-TOURS/orderStatus", {"checkoutId": dear["checkoutId"]})
        assert order["data"]["status"] == "FAILED"


async def test_s4_daily_limit_at_debit_declines_and_releases(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-KL-CITY-TOUR", 2))  # 90.00
    l3 = flow.l3(m["l2Serialized"], co)
    t = await flow.apply(m, co, l3=l3)
    await flow.post("/network/limits", {"dailyLimit": {"cent": 5000, "currency": "USD"}})
    r = (await flow.start_payment(m, co, t["paymentToken"], l3)).json()
    assert r["resultCode"] == "DAILY_LIMIT_EXCEEDED"
    assert await flow.remaining(m["mandateId"]) == (100000, "USD", "ACTIVE")
    limits = (await flow.get("/network/limits"))["data"]
    assert limits["debitedToday"] == {"cent": 0, "currency": "USD"}


async def test_budget_exhausted_closes_an_autonomous_mandate(flow: Flow) -> None:
    m = await flow.autonomous(Money(2999, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    assert (await flow.buy(m, co))["success"]
    v = (await flow.get(f"/network/mandate/{m['mandateId']}"))["data"]
    assert (v["mandateStatus"], v["statusReason"], v["budget"]["remainingAmount"]["cent"]) == \
        ("CLOSED", "budget exhausted", 0)


# ------------------------------------------------------------------------------------- faults
async def test_decline_releases_budget_and_a_new_token_pays(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    await admin(flow, "fault", {"target": "mpp.pay", "mode": "decline"})
    l3 = flow.l3(m["l2Serialized"], co)
    t = await flow.apply(m, co, l3=l3)
    r = (await flow.start_payment(m, co, t["paymentToken"], l3)).json()
    assert r["errorCode"] == "ACQUIRER_FAILED" and r["resultCode"] == "PAYMENT_FAILED"
    assert await flow.remaining(m["mandateId"]) == (100000, "USD", "ACTIVE")
    assert await token_status(flow, m["mandateId"]) == ["FAILED"]
    assert (await flow.buy(m, co))["success"]
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 2999
    assert [p["status"] for p in flow.sb.payments()] == ["FAIL", "SUCCESS"]
    order = await flow.post("/merchants/SUNNY-TOURS/orderStatus", {"checkoutId": co["checkoutId"]})
    assert order["data"]["status"] == "PAID"


async def test_timeout_after_the_charge_is_recorded_and_retry_is_idempotent(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    l3 = flow.l3(m["l2Serialized"], co)
    t = await flow.apply(m, co, l3=l3)
    await admin(flow, "fault", {"target": "merchant.startPayment", "mode": "timeout_after"})
    lost = await flow.start_payment(m, co, t["paymentToken"], l3)
    assert lost.status_code == 504 and lost.headers["X-Sandbox-Fault"] == "timeout_after"
    [p] = (await flow.get("/_admin/payments"))["data"]
    assert (p["status"], p["checkoutId"], p["amount"]) == ("SUCCESS", co["checkoutId"],
                                                          {"cent": 2999, "currency": "USD"})
    retry = (await flow.start_payment(m, co, t["paymentToken"], l3)).json()["data"]
    assert retry["idempotent"] is True and retry["transactionId"] == p["transactionId"]
    assert len(flow.sb.payments()) == 1
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 2999


async def test_timeout_before_leaves_nothing_and_retry_pays(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    l3 = flow.l3(m["l2Serialized"], co)
    t = await flow.apply(m, co, l3=l3)
    await admin(flow, "fault", {"target": "merchant.startPayment", "mode": "timeout_before"})
    assert (await flow.start_payment(m, co, t["paymentToken"], l3)).status_code == 504
    assert flow.sb.payments() == []
    ok = (await flow.start_payment(m, co, t["paymentToken"], l3)).json()["data"]
    assert ok["success"] and "idempotent" not in ok


async def test_wallet_timeout_after_debit_settles_on_retry_without_a_second_debit(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    l3 = flow.l3(m["l2Serialized"], co)
    t = await flow.apply(m, co, l3=l3)
    await admin(flow, "fault", {"target": "mpp.pay", "mode": "timeout_after"})
    assert (await flow.start_payment(m, co, t["paymentToken"], l3)).status_code == 504
    assert [p["status"] for p in flow.sb.payments()] == ["PENDING"]
    order = await flow.post("/merchants/SUNNY-TOURS/orderStatus", {"checkoutId": co["checkoutId"]})
    assert order["data"]["status"] == "PENDING"
    ok = (await flow.start_payment(m, co, t["paymentToken"], l3)).json()["data"]
    assert ok["status"] == "PAID"
    assert [p["status"] for p in flow.sb.payments()] == ["SUCCESS"]
    assert len(flow.sb.state.mpp_debits) == 1
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 2999


async def test_network_500_fails_the_attempt_and_keeps_the_token_usable(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    l3 = flow.l3(m["l2Serialized"], co)
    t = await flow.apply(m, co, l3=l3)
    await admin(flow, "fault", {"target": "network.pay", "mode": "http_500"})
    r = (await flow.start_payment(m, co, t["paymentToken"], l3)).json()
    assert r["errorCode"] == "ACQUIRER_FAILED" and "HTTP 500" in r["errorMessage"]
    assert await token_status(flow, m["mandateId"]) == ["ISSUED"]
    assert (await flow.start_payment(m, co, t["paymentToken"], l3)).json()["success"]
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 2999


async def test_cp_faults(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    l3 = flow.l3(m["l2Serialized"], co)
    await admin(flow, "fault", {"target": "cp.applyCredential", "mode": "timeout_after"})
    body = {"sessionId": m["sessionId"], "l1Serialized": m["l1Serialized"], "l2Serialized": m["l2Serialized"],
            "l3Serialized": l3, "checkout": flow.cp_checkout(co), "idempotencyKey": "k-1"}
    lost = await flow.c.post("/credential-provider/applyCredential", json=body)
    assert lost.status_code == 504
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 2999  # the token was issued
    again = await flow.post("/credential-provider/applyCredential", body)
    assert again["success"] and (await flow.remaining(m["mandateId"]))[0] == 100000 - 2999
    await admin(flow, "fault", {"target": "cp.applyCredential", "mode": "http_500", "count": 2})
    assert (await flow.c.post("/credential-provider/applyCredential", json=body)).status_code == 500
    await admin(flow, "fault", {"target": "cp.applyCredential", "mode": "reset"})
    assert (await flow.post("/credential-provider/applyCredential", body))["paymentToken"] == again["paymentToken"]
    bad = await flow.post("/_admin/fault", {"target": "nowhere", "mode": "decline"})
    assert bad["errorCode"] == "INVALID_PARAM"


# ------------------------------------------------------------------------------------- refunds
async def test_partial_then_full_refund_credits_the_mandate(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["KL Grand Hotel"])
    co = await flow.checkout("KL-GRAND-HOTEL", ("KLG-SUPERIOR-NIGHT", 1))  # 580.00 MYR -> 121.80 USD
    assert (await flow.buy(m, co))["success"]
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 12180
    r = await flow.post("/merchants/KL-GRAND-HOTEL/refund", {"checkoutId": co["checkoutId"],
                                                            "amount": {"cent": 10000, "currency": "MYR"},
                                                            "reason": "late check-in"})
    assert r["data"]["status"] == "PARTIALLY_REFUNDED" and r["data"]["refundedAmount"]["cent"] == 10000
    # proportional credit, rounded down: 10000 * 12180 // 58000 = 2100
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 12180 + 2100
    replay = await flow.post("/merchants/KL-GRAND-HOTEL/refund", {"checkoutId": co["checkoutId"],
                                                                 "amount": {"cent": 10000, "currency": "MYR"},
                                                                 "idempotencyKey": "rf-1"})
    again = await flow.post("/merchants/KL-GRAND-HOTEL/refund", {"checkoutId": co["checkoutId"],
                                                                "amount": {"cent": 10000, "currency": "MYR"},
                                                                "idempotencyKey": "rf-1"})
    assert again["data"]["idempotent"] is True and again["data"]["refundId"] == replay["data"]["refundId"]
    assert replay["data"]["refundedAmount"]["cent"] == 20000  # the keyed refund counted once
    over = await flow.post("/merchants/KL-GRAND-HOTEL/refund", {"checkoutId": co["checkoutId"],
                                                               "amount": {"cent": 38001, "currency": "MYR"}})
    assert over["errorCode"] == "REFUND_EXCEEDS_PAYMENT"
    rest = await flow.post("/merchants/KL-GRAND-HOTEL/refund", {"checkoutId": co["checkoutId"]})
    assert rest["data"]["status"] == "REFUNDED" and rest["data"]["refundAmount"]["cent"] == 38000
    v = (await flow.get(f"/network/mandate/{m['mandateId']}"))["data"]
    assert v["budget"]["remainingAmount"]["cent"] == 100000 and v["budget"]["refundedAmount"]["cent"] == 12180
    [p] = flow.sb.payments()
    assert p["refunded"] == {"cent": 58000, "currency": "MYR"}
    order = await flow.post("/merchants/KL-GRAND-HOTEL/orderStatus", {"checkoutId": co["checkoutId"]})
    assert order["data"]["status"] == "REFUNDED" and order["data"]["refundedAmount"]["cent"] == 58000


async def test_refund_of_a_closed_immediate_mandate_keeps_it_closed(flow: Flow) -> None:
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    r = await flow.post("/credential-provider/createMandateSession", {
        "tokenId": flow.token_id, "intentRaw": "buy the adapter", "checkout": flow.cp_checkout(co)})
    m = await flow.mandate(r["sessionId"])
    t = await flow.apply(m, co, l3=None)
    assert (await flow.start_payment(m, co, t["paymentToken"])).json()["success"]
    pid = flow.sb.payments()[0]["paymentId"]
    ref = await flow.post("/network/refund", {"paymentId": pid, "reason": "changed my mind"})
    assert ref["success"] and ref["data"]["mandateCredit"] == {"cent": 2999, "currency": "USD"}
    v = (await flow.get(f"/network/mandate/{m['mandateId']}"))["data"]
    assert v["mandateStatus"] == "CLOSED" and v["budget"]["refundedAmount"]["cent"] == 2999
    assert (await flow.apply(m, co, l3=None))["resultCode"] == "MANDATE_STATUS_INVALID"
    dispute = await flow.post("/network/dispute", {"paymentId": pid, "reason": "not delivered"})
    assert dispute["data"]["status"] == "OPEN" and dispute["data"]["evidence"]["l2Retained"] is True


# ------------------------------------------------------------------------------------- limits
async def test_adjust_limit(flow: Flow) -> None:
    m = await flow.autonomous(Money(5000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-KL-CITY-TOUR", 2))  # 90.00 > 50.00
    assert (await flow.apply(m, co))["resultCode"] == "CHECKOUT_AMOUNT_EXCEEDS_BUDGET"
    up = await flow.post("/network/mandate/adjustLimit", {"mandateId": m["mandateId"],
                                                          "budgetAmount": {"cent": 12000, "currency": "USD"}})
    assert up["data"]["budget"]["totalBudgetAmount"]["cent"] == 12000
    assert (await flow.buy(m, co))["success"]
    assert (await flow.remaining(m["mandateId"]))[0] == 3000
    down = await flow.post("/network/mandate/adjustLimit", {"mandateId": m["mandateId"],
                                                            "budgetAmount": {"cent": 8000, "currency": "USD"}})
    assert down["resultCode"] == "PARAM_ILLEGAL" and "below" in down["resultMessage"]
    await flow.post("/network/limits", {"perMandateLimit": {"cent": 15000, "currency": "USD"}})
    too_high = await flow.post("/network/mandate/adjustLimit", {"mandateId": m["mandateId"],
                                                                "budgetAmount": {"cent": 20000, "currency": "USD"}})
    assert too_high["resultCode"] == "PER_TASK_LIMIT_EXCEEDED"
    exact = await flow.post("/network/mandate/adjustLimit", {"mandateId": m["mandateId"],
                                                             "budgetAmount": {"cent": 9000, "currency": "USD"}})
    assert exact["data"]["mandateStatus"] == "CLOSED"  # nothing left: finished
    wrong = await flow.post("/network/limits", {"dailyLimit": {"cent": 100, "currency": "SGD"}})
    assert wrong["resultCode"] == "PARAM_ILLEGAL"
