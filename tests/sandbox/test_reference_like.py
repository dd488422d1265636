"""The reference-like sandbox: no registry, no orderStatus, IDV approved after a delay on the sandbox
clock, and startPayment replays that settle a paid checkout whatever token they carry.

The delay tests run on a `ManualClock` and move it: what is pending before the delay is certainly
pending, and nothing waits in real time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from sandbox_helpers import AGENT_ID, START, Flow, agent_key, make_sandbox
from typer.testing import CliRunner

from amp_tools.clock import ManualClock, OffsetClock
from amp_tools.money import Money
from amp_tools.sandbox import Sandbox, SandboxConfig

DELAY = 0.2
STEP = 0.05


def manual(sb: Sandbox) -> ManualClock:
    assert isinstance(sb.clock, ManualClock)
    return sb.clock


def since(sb: Sandbox, start: datetime) -> float:
    return (sb.clock.now() - start).total_seconds()


async def poll(flow: Flow, path: str, body: dict[str, Any], *, until: float = 10.0) -> tuple[dict[str, Any], float]:
    """Poll `path`, moving the sandbox clock 50 ms between asks, until it answers COMPLETED (or success for a
    token list); returns (answer, seconds waited on the sandbox clock)."""
    start = flow.sb.clock.now()
    while True:
        r = await flow.post(path, body)
        if r.get("status") == "COMPLETED" or (r.get("paymentMethods") and r["success"]):
            return r, since(flow.sb, start)
        assert since(flow.sb, start) < until, r
        manual(flow.sb).advance(STEP)


async def bind_after_delay(flow: Flow) -> float:
    r = await flow.post("/credential-provider/addPaymentMethod", {"walletName": "ALIPAY_HK", "agentId": AGENT_ID})
    assert r["success"] and r["status"] == "PENDING_IDV" and r["tokenId"] is None
    assert r["idv"]["authUrl"] == "" and len(r["idv"]["authSessionId"]) == 32
    q, waited = await poll(flow, "/credential-provider/queryPaymentMethodList", {"sessionId": r["sessionId"]})
    flow.token_id, flow.l1 = q["paymentMethods"][0]["tokenId"], q["paymentMethods"][0]["l1Serialized"]
    return waited


# ------------------------------------------------------------------------------ registry / orderStatus
async def test_registry_off_answers_404_like_a_server_without_it() -> None:
    sb = make_sandbox(registry=False)
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        for path in ("/registry/merchants", "/registry/merchants?query=hotel", "/registry/merchants/SKYLARK-AIR"):
            r = await c.get(path)
            assert (r.status_code, r.json()) == (404, {"detail": "Not Found"}), path
        unknown = await c.get("/no/such/route")
        assert (unknown.status_code, unknown.json()) == (404, {"detail": "Not Found"})  # same answer
        # merchants themselves still trade
        s = (await c.post("/merchants/SUNNY-TOURS/searchProducts", json={"query": "adapter"})).json()
        assert [p["id"] for p in s["data"]] == ["SUN-ADAPTER"]
        sb.config.registry = True  # read per request
        on = (await c.get("/registry/merchants?query=hotel")).json()
        assert sorted(m["merchantId"] for m in on["data"]) == ["KL-GRAND-HOTEL", "MARINA-HOTEL"]


async def test_order_status_off_answers_404_as_the_reference_merchant(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    paid = await flow.buy(m, co)
    assert paid["success"] and paid["data"]["status"] == "PAID"
    on = await flow.post("/merchants/SUNNY-TOURS/orderStatus", {"checkoutId": co["checkoutId"]})
    assert on["data"]["status"] == "PAID" and on["data"]["transactionId"] == paid["data"]["transactionId"]
    flow.sb.config.order_status = False
    r = await flow.c.post("/merchants/SUNNY-TOURS/orderStatus", json={"checkoutId": co["checkoutId"]})
    assert (r.status_code, r.json()) == (404, {"detail": "Not Found"})
    # the other merchant routes, the registry included, are untouched
    assert (await flow.c.get("/registry/merchants")).status_code == 200
    again = await flow.start_payment(m, co, "")
    assert again.json()["data"]["transactionId"] == paid["data"]["transactionId"]


# ------------------------------------------------------------------------------ IDV delay
def test_idv_delay_is_validated() -> None:
    for bad in (-0.1, float("nan"), float("inf"), "0.5", True):
        with pytest.raises(ValueError, match="idv_delay_seconds must be a finite number of seconds >= 0"):
            SandboxConfig(idv_delay_seconds=bad)  # type: ignore[arg-type]
    assert SandboxConfig(idv_delay_seconds=1).idv_delay_seconds == 1


async def test_enrollment_completes_after_the_delay_on_the_sandbox_clock() -> None:
    sb = make_sandbox(idv_delay_seconds=DELAY)
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        r = await flow.post("/credential-provider/addPaymentMethod", {"agentId": AGENT_ID})
        assert r["status"] == "PENDING_IDV" and r["tokenId"] is None
        manual(sb).advance(DELAY - 0.001)  # just before the person answers
        q = await flow.post("/credential-provider/queryPaymentMethodList", {"sessionId": r["sessionId"]})
        assert not q["success"] and q["resultCode"] == "PENDING_IDV" and q["paymentMethods"] == []
        assert q["error"] == f"Session '{r['sessionId']}' is PENDING_IDV; IDV has not completed yet."
        auth = await flow.post("/mpp/inquiryAuthorization", {"authSessionId": r["idv"]["authSessionId"]})
        assert auth["authStatus"] == "AUTH_IN_PROCESS"
        q, _ = await poll(flow, "/credential-provider/queryPaymentMethodList", {"sessionId": r["sessionId"]})
        assert since(sb, START) == pytest.approx(DELAY - 0.001 + STEP)  # one step later the person has answered
        assert q["paymentMethods"][0]["l1Serialized"].endswith("~")
        auth = await flow.post("/mpp/inquiryAuthorization", {"authSessionId": r["idv"]["authSessionId"]})
        assert auth["authStatus"] == "SUCCESS" and auth["idvResult"] == "FACE"


async def test_on_the_wall_clock_the_delay_is_the_clocks_time() -> None:
    """The default sandbox clock is the wall clock (an `OffsetClock`): the delay passes in real time, or at
    once when the served sandbox's clock is moved forward."""
    sb = Sandbox(SandboxConfig(idv_delay_seconds=60.0, seed=7))
    assert isinstance(sb.clock, OffsetClock)
    sb.register_agent(AGENT_ID, agent_key().public_jwk())
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        r = await flow.post("/credential-provider/addPaymentMethod", {"agentId": AGENT_ID})
        q = await flow.post("/credential-provider/queryPaymentMethodList", {"sessionId": r["sessionId"]})
        assert q["resultCode"] == "PENDING_IDV"
        sb.clock.advance(60)
        q = await flow.post("/credential-provider/queryPaymentMethodList", {"sessionId": r["sessionId"]})
        assert q["success"] and q["paymentMethods"][0]["l1Serialized"].endswith("~")


async def test_autonomous_mandate_is_pending_then_completed_after_the_delay() -> None:
    sb = make_sandbox(idv_delay_seconds=DELAY)
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        await bind_after_delay(flow)
        co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
        m = await flow.create_autonomous(Money(30000, "USD"), ["Sunny Tours & Travel Gear"])
        assert (m["success"], m["status"], m["mandateId"]) == (True, "PENDING_IDV", None)
        # one inquiry straight after creation still sees PENDING_IDV, as against the reference wallet
        first = await flow.post("/credential-provider/inquiryMandateSession", {"sessionId": m["sessionId"]})
        assert (first["status"], first["mandateId"], first["l2Serialized"]) == ("PENDING_IDV", None, None)
        assert first["idv"]["authSessionId"] == m["idv"]["authSessionId"]
        early = await flow.apply({"sessionId": m["sessionId"], "l1Serialized": flow.l1, "l2Serialized": "x"}, co,
                                 l3=None)
        assert not early["success"] and early["resultCode"] == "PENDING_IDV"
        done, waited = await poll(flow, "/credential-provider/inquiryMandateSession", {"sessionId": m["sessionId"]})
        assert waited == DELAY  # approved on the first ask once the delay has passed on the sandbox clock
        assert done["mandateType"] == "AUTONOMOUS" and len(done["mandateId"]) == 32 and done["idv"] is None
        assert (await flow.buy(done, co))["success"]
        assert await flow.remaining(done["mandateId"]) == (30000 - 2999, "USD", "ACTIVE")


async def test_immediate_mandate_is_pending_then_completed_after_the_delay() -> None:
    sb = make_sandbox(idv_delay_seconds=DELAY)
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        await bind_after_delay(flow)
        co = await flow.checkout("SUNNY-TOURS", ("SUN-KL-CITY-TOUR", 1))
        m = await flow.post("/credential-provider/createMandateSession", {
            "tokenId": flow.token_id, "intentRaw": "Buy the KL city tour now", "deferIdv": False,
            "agentId": AGENT_ID, "checkout": flow.cp_checkout(co)})
        assert (m["status"], m["mandateId"]) == ("PENDING_IDV", None)
        done, waited = await poll(flow, "/credential-provider/inquiryMandateSession", {"sessionId": m["sessionId"]})
        assert waited == DELAY and done["mandateType"] == "IMMEDIATE"
        t = await flow.apply(done, co, l3=None)
        assert t["success"] and t["mandateType"] == "IMMEDIATE"
        paid = (await flow.start_payment(done, co, t["paymentToken"])).json()
        assert paid["data"]["status"] == "PAID"


async def test_person_answering_before_the_delay_wins_and_the_delay_does_not_repeat_it() -> None:
    sb = make_sandbox(idv_delay_seconds=DELAY)
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        await bind_after_delay(flow)
        sb.config.idv_delay_seconds = 1.0
        m = await flow.create_autonomous(Money(30000, "USD"), ["Sunny Tours & Travel Gear"])
        declined = await flow.post("/mpp/completeIdv", {"authSessionId": m["idv"]["authSessionId"], "approve": False})
        assert declined["idvResult"] == "FAIL"
        manual(sb).advance(1.05)  # past the delay: the scheduled approval must not overturn the answer
        q = await flow.post("/credential-provider/inquiryMandateSession", {"sessionId": m["sessionId"]})
        assert (q["status"], q["resultCode"], q["mandateId"]) == ("FAILED", "IDV_REJECTED", None)
        assert sb.state.mandates == {} and sb.state.idv_due == {}


async def test_zero_delay_keeps_completing_inside_the_call(flow: Flow) -> None:
    assert flow.sb.config.idv_delay_seconds == 0
    m = await flow.create_autonomous(Money(30000, "USD"), ["Sunny Tours & Travel Gear"])
    assert m["status"] == "COMPLETED" and len(m["mandateId"]) == 32


# ------------------------------------------------------------------------------ reference_like
def test_reference_like_settings_and_overrides() -> None:
    cfg = SandboxConfig.reference_like()
    assert (cfg.registry, cfg.order_status, cfg.idv_delay_seconds, cfg.require_chain) == (False, False, 0.5, False)
    assert (cfg.idv_mode, cfg.fx_enabled, cfg.wallet_currency) == ("auto", True, "USD")  # AMP semantics kept
    tuned = SandboxConfig.reference_like(idv_delay_seconds=0.1, order_status=True, seed=3)
    assert (tuned.idv_delay_seconds, tuned.order_status, tuned.registry, tuned.seed) == (0.1, True, False, 3)
    with pytest.raises(TypeError):
        SandboxConfig.reference_like(no_such_setting=1)


async def test_travel_purchase_against_a_reference_like_sandbox() -> None:
    sb = Sandbox(SandboxConfig.reference_like(idv_delay_seconds=DELAY, seed=7, start_time=START))
    sb.register_agent(AGENT_ID, agent_key().public_jwk())
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        assert (await c.get("/registry/merchants")).status_code == 404
        await bind_after_delay(flow)
        created = await flow.create_autonomous(Money(100000, "USD"), ["Skylark Air", "KL Grand Hotel"])
        m, _ = await poll(flow, "/credential-provider/inquiryMandateSession", {"sessionId": created["sessionId"]})
        flight = await flow.checkout("SKYLARK-AIR", ("SKY-SIN-KUL-0800", 1))  # 189.00 SGD -> 139.86 USD
        hotel = await flow.checkout("KL-GRAND-HOTEL", ("KLG-SUPERIOR-NIGHT", 1))  # 580.00 MYR -> 121.80 USD
        for co in (flight, hotel):
            t = await flow.apply(m, co)
            assert t["success"], t
            # the reference merchant takes checkoutId + paymentToken only, no chain
            r = (await c.post(f"/merchants/{co['merchantId']}/startPayment",
                              json={"checkoutId": co["checkoutId"], "paymentToken": t["paymentToken"]})).json()
            assert r["success"] and r["data"]["message"] == "Payment processed successfully"
            replay = (await c.post(f"/merchants/{co['merchantId']}/startPayment",
                                   json={"checkoutId": co["checkoutId"], "paymentToken": t["paymentToken"]})).json()
            assert replay["data"]["idempotent"] is True
            assert replay["data"]["transactionId"] == r["data"]["transactionId"]
            gone = await c.post(f"/merchants/{co['merchantId']}/orderStatus", json={"checkoutId": co["checkoutId"]})
            assert gone.status_code == 404
        assert await flow.remaining(m["mandateId"]) == (100000 - 13986 - 12180, "USD", "ACTIVE")
        assert [p["status"] for p in sb.payments()] == ["SUCCESS", "SUCCESS"]


def test_cli_reference_like_flag_serves_a_reference_like_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import amp_tools.sandbox as sandbox_pkg
    from amp_tools.cli import app

    served: list[SandboxConfig] = []
    monkeypatch.setattr(sandbox_pkg, "serve", lambda host, port, config: served.append(config))
    runner = CliRunner()
    out = runner.invoke(app, ["sandbox", "--port", "9999", "--reference-like", "--idv", "manual"])
    assert out.exit_code == 0, out.output
    assert "reference-like" in out.output
    plain = runner.invoke(app, ["sandbox", "--port", "9999"])
    assert plain.exit_code == 0, plain.output
    ref, default = served
    assert (ref.registry, ref.order_status, ref.idv_delay_seconds, ref.require_chain, ref.idv_mode) == (
        False, False, 0.5, False, "manual")
    assert (default.registry, default.order_status, default.idv_delay_seconds, default.require_chain) == (
        True, True, 0.0, True)


# ------------------------------------------------------------------------------ startPayment replays
REPLAY_MESSAGE = "Payment already completed (idempotent)"


async def test_replay_of_a_paid_checkout_returns_the_original_whatever_token_it_carries(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    other = await flow.checkout("SUNNY-TOURS", ("SUN-ESIM-ASIA", 1))
    l3 = flow.l3(m["l2Serialized"], co)
    t = await flow.apply(m, co, l3=l3)
    paid = (await flow.start_payment(m, co, t["paymentToken"], l3)).json()["data"]
    assert paid["message"] == "Payment processed successfully" and "idempotent" not in paid
    assert (await flow.buy(m, other))["success"]  # a second, unrelated payment
    fresh = await flow.apply(m, await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1)))
    flow.sb.clock.advance(seconds=601)  # the first token has long been used; the fresh one is now expired
    for token in (t["paymentToken"], fresh["paymentToken"], "28166623" + "0" * 32, ""):
        r = await flow.c.post("/merchants/SUNNY-TOURS/startPayment",
                              json={"checkoutId": co["checkoutId"], "paymentToken": token})
        assert r.status_code == 200
        assert r.json() == {"success": True, "data": {
            "success": True, "transactionId": paid["transactionId"], "message": REPLAY_MESSAGE, "status": "PAID",
            "debitedAmount": {"cent": 2999, "currency": "USD"},
            "mandateAmount": {"cent": 2999, "currency": "USD"}, "idempotent": True}}, token
    assert [p["status"] for p in flow.sb.payments()] == ["SUCCESS", "SUCCESS"]
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 2999 - 1999  # the expired token was released


async def test_unpaid_checkout_with_an_expired_token_fails_with_the_token_error_and_pays_nothing() -> None:
    sb = make_sandbox(require_chain=False)  # a reference merchant: the token is the only credential
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        await flow.bind()
        m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
        co = await flow.checkout("SUNNY-TOURS", ("SUN-KL-CITY-TOUR", 1))
        t = await flow.apply(m, co)
        assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 4500
        sb.clock.advance(seconds=601)
        r = (await c.post("/merchants/SUNNY-TOURS/startPayment",
                          json={"checkoutId": co["checkoutId"], "paymentToken": t["paymentToken"]})).json()
        assert r == {"success": False, "errorCode": "ACQUIRER_FAILED", "resultCode": "PAYMENT_TOKEN_EXPIRED",
                     "errorMessage": "A+ network processing failed: payment token expired, "
                                     f"paymentToken={t['paymentToken']}"}
        assert sb.payments() == [] and sb.state.mpp_debits == {}
        assert (await flow.remaining(m["mandateId"]))[0] == 100000  # the expired token's reservation is released
        assert sb.state.orders[co["checkoutId"]].status == "FAILED"
        assert sb.state.orders[co["checkoutId"]].transaction_id is None


async def test_unpaid_checkout_with_a_used_token_fails_with_the_token_error_and_pays_nothing(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    first = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    l3 = flow.l3(m["l2Serialized"], first)
    t = await flow.apply(m, first, l3=l3)
    assert (await flow.start_payment(m, first, t["paymentToken"], l3)).json()["success"]
    second = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    r = (await flow.start_payment(m, second, t["paymentToken"], flow.l3(m["l2Serialized"], second))).json()
    assert (r["success"], r["errorCode"], r["resultCode"]) == (False, "ACQUIRER_FAILED", "PAYMENT_TOKEN_ALREADY_USED")
    assert r["errorMessage"] == "A+ network processing failed: payment token is not valid, status=USED"
    assert [p["checkoutId"] for p in flow.sb.payments()] == [first["checkoutId"]]
    assert (await flow.remaining(m["mandateId"]))[0] == 100000 - 2999
    assert flow.sb.state.orders[second["checkoutId"]].transaction_id is None


async def test_retry_after_a_lost_acquirer_answer_is_reported_as_the_idempotent_replay(flow: Flow) -> None:
    m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
    co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
    l3 = flow.l3(m["l2Serialized"], co)
    t = await flow.apply(m, co, l3=l3)
    flow.sb.faults.arm("acquirer.pay", "timeout_after")
    lost = await flow.start_payment(m, co, t["paymentToken"], l3)
    assert lost.status_code == 504
    [p] = flow.sb.payments()
    assert p["status"] == "SUCCESS"
    retry = (await flow.start_payment(m, co, t["paymentToken"], l3)).json()["data"]
    assert (retry["idempotent"], retry["message"], retry["status"]) == (True, REPLAY_MESSAGE, "PAID")
    assert retry["transactionId"] == flow.sb.state.acquirer[co["checkoutId"]].payment_id
    assert len(flow.sb.payments()) == 1 and len(flow.sb.state.mpp_debits) == 1


# ------------------------------------------------------------------------------ reference shapes
async def test_extension_fields_off_answers_the_reference_fields_only() -> None:
    sb = make_sandbox(extension_fields=False)
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        r = await flow.post("/credential-provider/addPaymentMethod", {"walletName": "ALIPAY_HK", "agentId": AGENT_ID})
        assert list(r) == ["success", "sessionId", "status", "tokenId", "idv", "error"]  # no resultCode
        q = await flow.post("/credential-provider/queryPaymentMethodList", {"sessionId": r["sessionId"]})
        assert list(q) == ["success", "paymentMethods", "error"]
        assert set(q["paymentMethods"][0]) == {"tokenId", "walletName", "userLoginId", "l1Serialized", "gmtCreate"}
        flow.token_id, flow.l1 = q["paymentMethods"][0]["tokenId"], q["paymentMethods"][0]["l1Serialized"]
        created = await flow.create_autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
        assert list(created) == ["success", "sessionId", "status", "mandateId", "idv", "error"]
        m = await flow.mandate(created["sessionId"])
        assert list(m) == ["success", "sessionId", "status", "mandateId", "mandateType", "tokenId", "l1Serialized",
                           "l2Serialized", "error"]
        found = await flow.post("/merchants/SUNNY-TOURS/searchProducts", {"query": "adapter"})
        assert found == {"success": True, "data": [{"id": "SUN-ADAPTER", "name": found["data"][0]["name"],
                                                    "price": 2999, "currency": "USD",
                                                    "imageUrl": found["data"][0]["imageUrl"]}]}
        co = await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1))
        assert co == {"checkoutId": co["checkoutId"], "items": [{"productId": "SUN-ADAPTER", "quantity": 1}],
                      "totalAmount": {"cent": 2999, "currency": "USD"}, "merchantId": "SUNNY-TOURS"}
        # the agent knows the merchant's name and MCC from its own configuration, as with the reference
        co = {**co, "merchantName": "Sunny Tours & Travel Gear", "merchantMcc": "4722"}
        t = await flow.apply(m, co)
        assert list(t) == ["success", "paymentToken", "mandateType", "error"]
        refused = await flow.apply(m, {**co, "merchantName": "Other Store"})
        assert list(refused) == ["success", "paymentToken", "mandateType", "error"] and not refused["success"]
        paid = await flow.start_payment(m, co, t["paymentToken"], flow.l3(m["l2Serialized"], co))
        [record] = sb.payments()
        assert paid.json() == {"success": True, "data": {"success": True, "transactionId": record["transactionId"],
                                                         "message": "Payment processed successfully"}}
        replay = (await flow.start_payment(m, co, t["paymentToken"])).json()
        assert replay["data"]["idempotent"] is True and set(replay["data"]) == {"success", "transactionId", "message",
                                                                                  "idempotent"}
        bad = (await c.post("/merchants/SUNNY-TOURS/startPayment", json={"checkoutId": "CKO-NOPE",
                                                                          "paymentToken": "x"})).json()
        assert bad == {"success": False, "errorCode": "CHECKOUT_NOT_FOUND",
                       "errorMessage": "Checkout not found: CKO-NOPE"}
        # extensions keep their fields (the switch is about the reference routes)
        order = await flow.post("/merchants/SUNNY-TOURS/orderStatus", {"checkoutId": co["checkoutId"]})
        assert order["data"]["debitedAmount"] == {"cent": 2999, "currency": "USD"}


async def test_client_reads_reference_shaped_answers_without_the_extensions() -> None:
    from amp_tools.amp.client import AmpClient

    sb = make_sandbox(extension_fields=False)
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        await flow.bind()
        m = await flow.autonomous(Money(100000, "USD"), ["Sunny Tours & Travel Gear"])
        co = {**await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1)), "merchantName": "Sunny Tours & Travel Gear",
              "merchantMcc": "4722"}
        t = await flow.apply(m, co)
        async with AmpClient("http://sandbox", transport=sb.transport(), retries=0) as client:
            paid = await client.start_payment("/merchants/SUNNY-TOURS", co["checkoutId"], t["paymentToken"],
                                              l1=m["l1Serialized"], l2=m["l2Serialized"],
                                              l3=flow.l3(m["l2Serialized"], co))
            again = await client.start_payment("/merchants/SUNNY-TOURS", co["checkoutId"], t["paymentToken"])
        assert (paid.debited_amount, paid.fx_rate, paid.idempotent, paid.status) == (None, None, False, None)
        assert (again.transaction_id, again.idempotent, again.debited_amount) == (paid.transaction_id, True, None)
