"""The end-to-end matrix of amp-protocol.md 8.4, cases 1-14, with states and amounts asserted."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from amp_tools.amp.chain import _sign_sd_jwt, sd_hash
from amp_tools.amp.keys import AgentKey
from amp_tools.money import Money
from amp_tools.sandbox import Sandbox
from tests.sandbox.sandbox_helpers import AGENT_ID, Flow, make_sandbox


def payload(sd_jwt: str) -> dict[str, Any]:
    part = sd_jwt.split("~")[0].split(".")[1]
    out: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return out


async def mandate_view(flow: Flow, mandate_id: str) -> dict[str, Any]:
    return (await flow.get(f"/network/mandate/{mandate_id}"))["data"]


async def immediate(flow: Flow, co: dict[str, Any]) -> dict[str, Any]:
    r = await flow.post("/credential-provider/createMandateSession", {
        "tokenId": flow.token_id, "agentId": AGENT_ID, "intentRaw": "Rent this car now", "deferIdv": False,
        "checkout": flow.cp_checkout(co)})
    assert r["success"] and r["status"] == "COMPLETED", r
    m = await flow.mandate(r["sessionId"])
    assert m["mandateType"] == "IMMEDIATE"
    return m


# 1 ------------------------------------------------------------------------------------------
async def test_1_immediate_happy_path_closes_the_mandate(flow: Flow) -> None:
    co = await flow.checkout("ZOOM-CARS", ("ZOOM-COMPACT-DAY", 2))
    assert co["totalAmount"] == {"cent": 17600, "currency": "JPY"}
    m = await immediate(flow, co)
    # the signed mandate id is the operational one (the reference diverges here)
    l2_claims = payload(m["l2Serialized"])
    assert l2_claims["mode"] == "IMMEDIATE" and "cnf" not in l2_claims
    t = await flow.apply(m, co, l3=None)
    assert t["success"] and t["mandateType"] == "IMMEDIATE" and t["paymentToken"].startswith("28166623")
    assert len(t["paymentToken"]) == 40
    r = await flow.start_payment(m, co, t["paymentToken"])
    assert r.json()["success"] and r.json()["data"]["status"] == "PAID", r.text
    v = await mandate_view(flow, m["mandateId"])
    assert v["mandateStatus"] == "CLOSED" and v["specStatus"] == "finished"
    assert v["budget"]["remainingAmount"]["cent"] == 0 and v["budget"]["spentAmount"]["cent"] == 17600
    assert [t["status"] for t in v["paymentTokens"]] == ["USED"]
    order = await flow.post("/merchants/ZOOM-CARS/orderStatus", {"checkoutId": co["checkoutId"]})
    assert order["data"]["status"] == "PAID"
    # single use: a second token is refused, and the state stays CLOSED
    again = await flow.apply(m, co, l3=None)
    assert not again["success"] and again["resultCode"] == "MANDATE_STATUS_INVALID"
    assert again["error"] == f"mandate status is not ACTIVE, mandateId={m['mandateId']}"
    # the wallet debited the JPY price converted to USD, rounded up: 17600 * 0.0067 = 117.92
    [p] = flow.sb.payments()
    assert p["walletAmount"] == {"cent": 11792, "currency": "USD"} and p["status"] == "SUCCESS"


async def test_1b_immediate_l2_mandate_info_is_the_operational_id(flow: Flow) -> None:
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    m = await immediate(flow, co)
    discs = [json.loads(base64.urlsafe_b64decode(d + "=" * (-len(d) % 4))) for d in m["l2Serialized"].split("~")[1:-1]]
    info = {d[1]: d[2] for d in discs}
    assert info["mandate_info"]["mandate_id"] == m["mandateId"]
    assert info["checkout"]["total_amount"] == {"currency": "USD", "amount": 2999}
    assert info["token_info"]["token_unique_reference"] == flow.token_id


# 2 ------------------------------------------------------------------------------------------
async def test_2_autonomous_two_tokens_from_one_mandate(flow: Flow) -> None:
    m = await flow.autonomous(Money(150000, "USD"), ["Skylark Air", "KL Grand Hotel"])
    assert payload(m["l2Serialized"])["cnf"]["jwk"]["kid"] == "agent-key-test"
    flight = await flow.checkout("SKYLARK-AIR", ("SKY-SIN-KUL-0800", 1))  # 189.00 SGD
    hotel = await flow.checkout("KL-GRAND-HOTEL", ("KLG-SUPERIOR-NIGHT", 3))  # 1740.00 MYR
    l3a = flow.l3(m["l2Serialized"], flight)
    ta = await flow.apply(m, flight, l3=l3a)
    assert ta["success"], ta
    assert (await flow.remaining(m["mandateId"]))[0] == 150000 - 13986  # reserved at issuance
    ra = await flow.start_payment(m, flight, ta["paymentToken"], l3a)
    assert ra.json()["success"], ra.text
    l3b = flow.l3(m["l2Serialized"], hotel)
    assert payload(l3a)["nonce"] != payload(l3b)["nonce"]
    tb = await flow.apply(m, hotel, l3=l3b)
    assert tb["success"] and tb["paymentToken"] != ta["paymentToken"]
    rb = await flow.start_payment(m, hotel, tb["paymentToken"], l3b)
    assert rb.json()["success"], rb.text
    # 174000 MYR minor * 0.21 = 36540 USD minor
    remaining, cur, status = await flow.remaining(m["mandateId"])
    assert (remaining, cur, status) == (150000 - 13986 - 36540, "USD", "ACTIVE")
    v = await mandate_view(flow, m["mandateId"])
    assert [p["status"] for p in v["payments"]] == ["SUCCESS", "SUCCESS"]
    assert v["budget"]["reservedAmount"]["cent"] == 0


# 3 ------------------------------------------------------------------------------------------
async def test_3_over_budget_is_refused_and_nothing_reserved(flow: Flow) -> None:
    m = await flow.autonomous(Money(10000, "USD"), ["Skylark Air"])
    co = await flow.checkout("SKYLARK-AIR", ("SKY-SIN-KUL-0800", 1))  # 139.86 USD > 100.00
    t = await flow.apply(m, co)
    assert not t["success"] and t["resultCode"] == "CHECKOUT_AMOUNT_EXCEEDS_BUDGET"
    assert t["error"] == "AUTONOMOUS budget exceeded: checkout=13986 > remaining=10000"
    assert await flow.remaining(m["mandateId"]) == (10000, "USD", "ACTIVE")


# 4 ------------------------------------------------------------------------------------------
async def test_4_merchant_or_mcc_outside_constraints(flow: Flow) -> None:
    by_name = await flow.autonomous(Money(100000, "USD"), ["Marina Bay Hotel"])
    co = await flow.checkout("SKYLARK-AIR", ("SKY-SIN-KUL-0800", 1))
    t = await flow.apply(by_name, co)
    assert t["resultCode"] == "MERCHANT_NOT_IN_CONSTRAINTS"
    assert t["error"] == "merchant not in constraints: name=Skylark Air, mcc=3011"
    by_mcc = await flow.autonomous(Money(100000, "USD"), [], ["7011"])
    t2 = await flow.apply(by_mcc, co)
    assert t2["resultCode"] == "MERCHANT_NOT_IN_CONSTRAINTS"
    hotel = await flow.checkout("MARINA-HOTEL", ("MBH-DELUXE-NIGHT", 1))
    assert (await flow.apply(by_mcc, hotel))["success"]
    # a checkout that lies about the merchant's name is caught against the registry
    forged = dict(co, merchantName="Marina Bay Hotel")
    t3 = await flow.apply(by_name, forged)
    assert t3["resultCode"] == "MERCHANT_INFO_MISMATCH"
    assert (await flow.remaining(by_name["mandateId"]))[0] == 100000


# 5 ------------------------------------------------------------------------------------------
async def test_5_currency_mismatch_when_fx_is_off() -> None:
    sb = make_sandbox(fx_enabled=False)
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        await flow.bind()
        m = await flow.autonomous(Money(100000, "USD"), ["Skylark Air"])
        co = await flow.checkout("SKYLARK-AIR", ("SKY-SIN-KUL-0800", 1))
        t = await flow.apply(m, co)
        assert t["resultCode"] == "CHECKOUT_CURRENCY_MISMATCH"
        assert t["error"] == "currency mismatch: mandate=USD, checkout=SGD"
        assert await flow.remaining(m["mandateId"]) == (100000, "USD", "ACTIVE")


async def test_5b_a_budget_the_wallet_cannot_value_is_refused_at_s1(flow: Flow) -> None:
    r = await flow.create_autonomous(Money(100000, "CHF"), ["Skylark Air"])
    assert not r["success"] and r["resultCode"] == "PARAM_ILLEGAL"
    assert "no FX rate for CHF" in r["error"]
    assert flow.sb.state.mandates == {}


# 6 ------------------------------------------------------------------------------------------
async def test_6_immediate_price_change_breaks_the_checkout_hash(flow: Flow) -> None:
    co = await flow.checkout("MARINA-HOTEL", ("MBH-DELUXE-NIGHT", 1))
    m = await immediate(flow, co)
    await flow.post("/_admin/setPrice", {"merchantId": "MARINA-HOTEL", "productId": "MBH-DELUXE-NIGHT",
                                         "cent": 45000})
    new = await flow.checkout("MARINA-HOTEL", ("MBH-DELUXE-NIGHT", 1))
    assert new["totalAmount"]["cent"] == 45000
    t = await flow.apply(m, new, l3=None)
    assert t["resultCode"] == "CHECKOUT_HASH_INCONSISTENT"
    assert t["error"] == "checkout hash does not match mandate checkout_hash"
    # the old checkout no longer holds at the merchant either: the agent must re-authorize
    t_old = await flow.apply(m, co, l3=None)
    assert t_old["success"]
    r = await flow.start_payment(m, co, t_old["paymentToken"])
    assert r.json()["errorCode"] == "PRICE_CHANGED"
    v = await mandate_view(flow, m["mandateId"])
    assert v["mandateStatus"] == "ACTIVE" and v["budget"]["reservedAmount"]["cent"] == 42000
    flow.sb.clock.advance(seconds=601)  # the unused token expires and gives its reservation back
    v = await mandate_view(flow, m["mandateId"])
    assert v["budget"]["reservedAmount"]["cent"] == 0 and v["paymentTokens"][0]["status"] == "EXPIRED"


# 7 ------------------------------------------------------------------------------------------
async def test_7_expired_mandate(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Skylark Air"])
    co = await flow.checkout("SKYLARK-AIR", ("SKY-SIN-KUL-0800", 1))
    early = await flow.apply(m, co)  # a token issued before expiry, never paid
    assert early["success"]
    await flow.post("/_admin/advanceTime", {"seconds": 7 * 24 * 3600 + 1})
    t = await flow.apply(m, co)
    assert t["resultCode"] == "MANDATE_EXPIRED" and t["error"] == f"mandate expired, mandateId={m['mandateId']}"
    v = await mandate_view(flow, m["mandateId"])
    assert v["mandateStatus"] == "EXPIRED" and v["specStatus"] == "expired"
    assert v["budget"]["reservedAmount"]["cent"] == 0 and v["budget"]["remainingAmount"]["cent"] == 100000
    # terminal: later requests keep failing and the state never reverts
    assert (await flow.apply(m, co))["resultCode"] == "MANDATE_EXPIRED"
    revoke = await flow.post("/network/mandate/revoke", {"mandateId": m["mandateId"]})
    assert revoke["resultCode"] == "MANDATE_EXPIRED"
    assert (await mandate_view(flow, m["mandateId"]))["mandateStatus"] == "EXPIRED"


# 8 ------------------------------------------------------------------------------------------
async def test_8_revoked_mandate_issues_nothing_and_pays_nothing(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Skylark Air"])
    co = await flow.checkout("SKYLARK-AIR", ("SKY-SIN-KUL-0800", 1))
    l3 = flow.l3(m["l2Serialized"], co)
    t = await flow.apply(m, co, l3=l3)
    r = await flow.post("/network/mandate/revoke", {"mandateId": m["mandateId"]})
    assert r["success"] and r["data"]["mandateStatus"] == "REVOKED" and r["data"]["walletLabel"] == "Cancelled"
    assert r["data"]["budget"]["reservedAmount"]["cent"] == 0  # the outstanding token was released
    again = await flow.apply(m, co)
    assert again["resultCode"] == "MANDATE_STATUS_INVALID"
    pay = await flow.start_payment(m, co, t["paymentToken"], l3)
    assert pay.json()["errorCode"] == "ACQUIRER_FAILED"
    assert pay.json()["resultCode"] == "PAYMENT_TOKEN_INVALID"
    assert (await flow.post("/network/mandate/revoke", {"mandateId": m["mandateId"]}))["resultCode"] == \
        "MANDATE_STATUS_INVALID"
    assert await flow.remaining(m["mandateId"]) == (100000, "USD", "REVOKED")


# 9 ------------------------------------------------------------------------------------------
async def test_9_payment_token_reuse_and_expiry(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    a = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    b = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    l3a = flow.l3(m["l2Serialized"], a)
    t = await flow.apply(m, a, l3=l3a)
    assert (await flow.start_payment(m, a, t["paymentToken"], l3a)).json()["success"]
    reuse = (await flow.start_payment(m, b, t["paymentToken"], flow.l3(m["l2Serialized"], b))).json()
    assert reuse["errorCode"] == "ACQUIRER_FAILED" and reuse["resultCode"] == "PAYMENT_TOKEN_ALREADY_USED"
    assert reuse["errorMessage"] == "A+ network processing failed: payment token is not valid, status=USED"
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 2999
    # a token older than 10 minutes
    l3b = flow.l3(m["l2Serialized"], b)
    t2 = await flow.apply(m, b, l3=l3b)
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 2 * 2999
    flow.sb.clock.advance(seconds=601)
    late = (await flow.start_payment(m, b, t2["paymentToken"], l3b)).json()
    assert late["resultCode"] == "PAYMENT_TOKEN_EXPIRED"
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 2999  # reservation released
    order = await flow.post("/merchants/SUNNY-TOURS/orderStatus", {"checkoutId": b["checkoutId"]})
    assert order["data"]["status"] == "FAILED"


async def test_9b_unknown_and_non_cgcp_tokens(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    l3 = flow.l3(m["l2Serialized"], co)
    bad = (await flow.start_payment(m, co, "12345678" + "0" * 32, l3)).json()
    assert bad["errorCode"] == "ACQUIRER_FAILED" and bad["resultCode"] == "UNKNOWN_NETWORK"
    assert "does not match A+ routing rule" in bad["errorMessage"]
    unknown = (await flow.start_payment(m, co, "28166623" + "f" * 32, l3)).json()
    assert unknown["resultCode"] == "PAYMENT_TOKEN_INVALID"


# 10 -----------------------------------------------------------------------------------------
def _tamper_disclosure(l2: str) -> str:
    parts = l2.split("~")
    salt, name, value = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    if isinstance(value, dict) and "raw" in value:
        value["raw"] = "Spend everything"
    forged = base64.urlsafe_b64encode(json.dumps([salt, name, value]).encode()).rstrip(b"=").decode()
    return "~".join([parts[0], forged, *parts[2:]])


async def test_10_tampering(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Skylark Air"])
    other = await flow.autonomous(Money(50000, "USD"), ["Skylark Air"])
    co = await flow.checkout("SKYLARK-AIR", ("SKY-SIN-KUL-0800", 1))
    # an L2 differing from the stored copy
    stripped = await flow.post("/credential-provider/applyCredential", {
        "sessionId": m["sessionId"], "l1Serialized": m["l1Serialized"], "l2Serialized": m["l2Serialized"][:-1],
        "l3Serialized": flow.l3(m["l2Serialized"], co), "checkout": flow.cp_checkout(co)})
    assert stripped["error"] == "L2 in request does not match stored mandate record"
    bad_l1 = await flow.post("/credential-provider/applyCredential", {
        "sessionId": m["sessionId"], "l1Serialized": m["l1Serialized"] + "x", "l2Serialized": m["l2Serialized"],
        "l3Serialized": flow.l3(m["l2Serialized"], co), "checkout": flow.cp_checkout(co)})
    assert bad_l1["error"] == "L1 in request does not match stored token record"
    # an L3 signed by another key under the bound kid
    intruder = AgentKey.generate(kid="agent-key-test")
    claim = {"total_amount": {"currency": "SGD", "amount": 18900},
             "merchant": {"reference_merchant_id": "SKYLARK-AIR", "merchant_name": "Skylark Air",
                          "merchant_mcc": "3011"}}
    now = int(flow.sb.clock.now().timestamp())
    forged = _sign_sd_jwt(intruder, kid="agent-key-test", claims={
        "nonce": "n" * 22, "aud": "alipayplus.com", "iat": now, "exp": now + 300,
        "sd_hash": sd_hash(m["l2Serialized"])}, disclosures=[("checkout", claim)])
    t = await flow.apply(m, co, l3=forged)
    assert t["resultCode"] == "CHAIN_INVALID"
    assert t["error"].startswith("chain verification failed: L3 signature verification failed")
    # an L3 bound to another mandate's L2
    t = await flow.apply(m, co, l3=flow.l3(other["l2Serialized"], co))
    assert t["error"] == "chain verification failed: L3 sd_hash does not match the hash of L2"
    # the wrong audience
    t = await flow.apply(m, co, l3=flow.l3(m["l2Serialized"], co, aud="example.com"))
    assert t["error"] == ("chain verification failed: L3 standard claims verification failed: audience mismatch "
                          "(expected 'alipayplus.com', got 'example.com')")
    # no L3 at all for an AUTONOMOUS mandate (the reference accepts this)
    t = await flow.apply(m, co, l3=None)
    assert t["resultCode"] == "CHAIN_INVALID" and "without L3" in t["error"]
    # an L3 replayed for a second token
    l3 = flow.l3(m["l2Serialized"], co)
    assert (await flow.apply(m, co, l3=l3))["success"]
    t = await flow.apply(m, co, l3=l3)
    assert t["resultCode"] == "CHAIN_INVALID" and "replay" in t["error"]
    # an L3 whose signed checkout differs from the request checkout
    cheaper = dict(co, totalAmount={"cent": 100, "currency": "SGD"})
    t = await flow.apply(m, cheaper, l3=flow.l3(m["l2Serialized"], co))
    assert t["resultCode"] == "CHAIN_INVALID" and "differs from the request" in t["error"]
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 13986  # only the one good token


async def test_10b_merchant_verifies_the_chain(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Skylark Air"])
    co = await flow.checkout("SKYLARK-AIR", ("SKY-SIN-KUL-0800", 1))
    l3 = flow.l3(m["l2Serialized"], co)
    t = await flow.apply(m, co, l3=l3)
    bad = (await flow.start_payment(dict(m, l2Serialized=_tamper_disclosure(m["l2Serialized"])), co,
                                    t["paymentToken"], l3)).json()
    assert bad["errorCode"] == "CHAIN_INVALID" and "not bound to signed _sd whitelist" in bad["errorMessage"]
    missing = (await flow.c.post("/merchants/SKYLARK-AIR/startPayment",
                                 json={"checkoutId": co["checkoutId"], "paymentToken": t["paymentToken"]})).json()
    assert missing["errorCode"] == "CHAIN_INVALID"
    # an L3 for another checkout of the same merchant at another price
    dear = await flow.checkout("SKYLARK-AIR", ("SKY-SIN-KUL-0800", 2))
    wrong = (await flow.start_payment(m, dear, t["paymentToken"], l3)).json()
    assert wrong["errorCode"] == "CHAIN_INVALID" and "differs from the request" in wrong["errorMessage"]
    ok = (await flow.start_payment(m, co, t["paymentToken"], l3)).json()
    assert ok["success"]
    assert [p["status"] for p in flow.sb.payments()] == ["SUCCESS"]


# 11 -----------------------------------------------------------------------------------------
async def test_11_idempotency_on_every_hop(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-KL-CITY-TOUR", 2))  # 90.00 USD
    l3 = flow.l3(m["l2Serialized"], co)
    t1 = await flow.apply(m, co, l3=l3, idempotencyKey="run1-cko")
    t2 = await flow.apply(m, co, l3=l3, idempotencyKey="run1-cko")
    assert t1["paymentToken"] == t2["paymentToken"]
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 9000  # deducted once
    other = await flow.apply(m, dict(co, totalAmount={"cent": 4500, "currency": "USD"}), l3=l3,
                             idempotencyKey="run1-cko")
    assert other["resultCode"] == "REPEAT_REQ_INCONSISTENT"
    r1 = (await flow.start_payment(m, co, t1["paymentToken"], l3)).json()["data"]
    r2 = (await flow.start_payment(m, co, t1["paymentToken"], l3)).json()["data"]
    assert r1["transactionId"] == r2["transactionId"] and r2["idempotent"] is True and "idempotent" not in r1
    assert r2["message"] == "Payment already completed (idempotent)"
    assert len(flow.sb.payments()) == 1
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 9000


async def test_11b_network_pay_replays_on_payment_request_id(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    t = await flow.apply(m, co)
    body = {"paymentRequestId": "PR-" + "a" * 32,
            "order": {"referenceOrderId": co["checkoutId"], "orderAmount": {"currency": "USD", "value": "2999"},
                      "merchant": {"referenceMerchantId": "SUNNY-TOURS"}},
            "paymentAmount": {"currency": "USD", "value": "2999"},
            "paymentMethod": {"paymentMethodType": "CONNECT_WALLET", "paymentMethodId": t["paymentToken"]}}
    first = await flow.post("/network/pay", body)
    second = await flow.post("/network/pay", body)
    assert first["success"] and first["data"]["status"] == "SUCCESS" and "idempotent" not in first["data"]
    assert second["data"]["paymentId"] == first["data"]["paymentId"] and second["data"]["idempotent"] is True
    assert first["data"]["paymentId"].startswith("pay-20260302")
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 2999
    assert len(flow.sb.payments()) == 1


# 12 -----------------------------------------------------------------------------------------
async def test_12_idv_declined_fails_the_session(flow: Flow) -> None:
    flow.sb.idv_mode = "reject"
    r = await flow.create_autonomous(Money(100000, "USD"), ["Skylark Air"])
    assert not r["success"] and r["status"] == "FAILED" and r["resultCode"] == "IDV_REJECTED"
    q = await flow.post("/credential-provider/inquiryMandateSession", {"sessionId": r["sessionId"]})
    assert q["status"] == "FAILED" and q["mandateId"] is None and q["l2Serialized"] is None
    assert flow.sb.state.mandates == {}
    # manual mode: the person declines on the trusted surface
    flow.sb.idv_mode = "manual"
    r = await flow.create_autonomous(Money(100000, "USD"), ["Skylark Air"])
    assert r["status"] == "PENDING_IDV" and r["idv"]["authUrl"] == ""
    pending = await flow.post("/credential-provider/applyCredential", {"sessionId": r["sessionId"]})
    assert not pending["success"] and pending["resultCode"] == "PENDING_IDV"
    done = await flow.post("/mpp/completeIdv", {"authSessionId": r["idv"]["authSessionId"], "approve": False})
    assert done["idvResult"] == "FAIL"
    q = await flow.post("/credential-provider/inquiryMandateSession", {"sessionId": r["sessionId"]})
    assert q["status"] == "FAILED" and q["error"] == "IDV failed: the user declined identity verification"
    assert flow.sb.state.mandates == {}


async def test_12b_enrollment_declined() -> None:
    sb = make_sandbox(idv_mode="reject")
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        r = (await c.post("/credential-provider/addPaymentMethod", json={"agentId": AGENT_ID})).json()
        assert not r["success"] and r["status"] == "FAILED" and r["tokenId"] is None
        q = (await c.post("/credential-provider/queryPaymentMethodList", json={"sessionId": r["sessionId"]})).json()
        assert not q["success"] and q["paymentMethods"] == []
        assert sb.state.binding_tokens == {}


# 13 -----------------------------------------------------------------------------------------
async def test_13_delegation_limits_at_creation(flow: Flow) -> None:
    lim = await flow.post("/network/limits", {"perMandateLimit": {"cent": 50000, "currency": "USD"},
                                              "dailyLimit": {"cent": 80000, "currency": "USD"}})
    assert lim["data"]["perMandateLimit"] == {"cent": 50000, "currency": "USD"}
    r = await flow.create_autonomous(Money(60000, "USD"), ["Skylark Air"])
    assert not r["success"] and r["resultCode"] == "PER_TASK_LIMIT_EXCEEDED" and r["sessionId"] is None
    assert "per-task budget limit of 500.00 USD" in r["error"]
    # converted to the wallet currency: 700.00 SGD = 518.00 USD > 500.00
    r = await flow.create_autonomous(Money(70000, "SGD"), ["Skylark Air"])
    assert r["resultCode"] == "PER_TASK_LIMIT_EXCEEDED"
    ok = await flow.create_autonomous(Money(45000, "USD"), ["Skylark Air"])
    assert ok["success"]
    r = await flow.create_autonomous(Money(40000, "USD"), ["Skylark Air"])  # 450 + 400 > 800 today
    assert r["resultCode"] == "DAILY_LIMIT_EXCEEDED"
    flow.sb.clock.advance(seconds=24 * 3600)
    assert (await flow.create_autonomous(Money(40000, "USD"), ["Skylark Air"]))["success"]
    assert len(flow.sb.state.mandates) == 2


# 14 -----------------------------------------------------------------------------------------
async def test_14_autonomous_needs_a_stated_future_expiry_and_a_scope(flow: Flow) -> None:
    r = await flow.create_autonomous(Money(10000, "USD"), ["Skylark Air"], expiry=None)
    assert not r["success"] and r["error"] == "intentExpireTime is required for an AUTONOMOUS mandate"
    assert r["resultCode"] == "PARAM_ILLEGAL"
    r = await flow.create_autonomous(Money(10000, "USD"), ["Skylark Air"], expiry="2020-01-01T00:00:00Z")
    assert r["error"] == "intent.expireTime has already passed"
    r = await flow.create_autonomous(Money(10000, "USD"), [], [])
    assert r["resultCode"] == "PARAM_ILLEGAL" and "at least one merchant" in r["error"]
    r = await flow.post("/credential-provider/createMandateSession", {
        "tokenId": flow.token_id, "agentId": AGENT_ID, "intentRaw": "anything", "intentExpireTime": flow.expiry()})
    assert r["error"] == "constraints cannot be null for AUTONOMOUS"
    r = await flow.post("/credential-provider/createMandateSession", {"intentRaw": "x"})
    assert r["error"].startswith("Missing required field: token_id.")
    assert flow.sb.state.mandates == {} and flow.sb.state.aplus_sessions.keys() <= {
        s.aplus_session_id for s in flow.sb.state.cp_sessions.values()}


async def test_14b_unregistered_agent_cannot_hold_an_autonomous_mandate(sandbox: Sandbox,
                                                                       flow: Flow) -> None:
    r = await flow.post("/credential-provider/createMandateSession", {
        "tokenId": flow.token_id, "agentId": "agent-unknown", "intentRaw": "x", "intentExpireTime": flow.expiry(),
        "constraints": {"budgetAmount": {"cent": 100, "currency": "USD"}, "merchantNameList": ["Skylark Air"]}})
    assert r["resultCode"] == "AGENT_NOT_REGISTERED"
