"""AmpClient against httpx.MockTransport serving the reference services' bodies verbatim."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from amp_tools.amp import chain as c
from amp_tools.amp.client import AmpClient
from amp_tools.amp.codes import hint_for, map_cp_error
from amp_tools.amp.keys import AgentKey
from amp_tools.amp.models import Constraints, CpCheckout
from amp_tools.amp.secret import Secret
from amp_tools.clock import ManualClock
from amp_tools.errors import AmpError
from amp_tools.money import Money

NOW = datetime(2026, 11, 22, 14, 53, 23, tzinfo=UTC)
TOKEN_ID = "79b20889b38448b598970c89a0b25799"
PAY_TOKEN = "28166623916435fb93c74a40b88e3c06947dd26f"
CP = "http://cp.test"
MERCHANT = "http://merchant.test"

Handler = Callable[[httpx.Request], httpx.Response]


class Peer:
    """A scripted peer: answers per path from a queue (or one fixed answer) and records requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[str, list[Any]] = {}

    def on(self, path: str, *answers: Any) -> None:
        self.routes[path] = list(answers)

    def bodies(self, path: str | None = None) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests
                if path is None or r.url.path == path]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes.get(request.url.path)
        if not queue:
            return httpx.Response(404, json={"detail": "Not Found"})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        if isinstance(answer, tuple):
            status, body = answer
            return httpx.Response(status, content=body if isinstance(body, bytes) else json.dumps(body).encode())
        return httpx.Response(200, content=answer.encode() if isinstance(answer, str) else json.dumps(answer).encode())


@pytest.fixture()
def peer() -> Peer:
    return Peer()


@pytest.fixture()
def client(peer: Peer) -> AmpClient:
    return AmpClient(CP, transport=httpx.MockTransport(peer), retries=2, backoff=0, agent_id="ext-buyer-agent-007",
                     clock=ManualClock(NOW))


def cp_checkout(cent: int = 12999, goods: list[dict[str, Any]] | None = None) -> CpCheckout:
    return CpCheckout.build(Money(cent, "USD"), merchant_id="MERCHANT-DEMO-001", merchant_name="UGG Demo Store",
                            merchant_mcc="5411", goods=goods)


def constraints(cent: int = 30000, names: list[str] | None = None, mccs: list[str] | None = None) -> Constraints:
    return Constraints.build(Money(cent, "USD"), merchant_names=["UGG Demo Store"] if names is None else names,
                             merchant_mccs=["5411"] if mccs is None else mccs)


@pytest.fixture(scope="module")
def chain_strings() -> dict[str, str]:
    aplus, isp, agent = AgentKey.generate("aplus-key-1"), AgentKey.generate("mpp-key-1"), AgentKey.generate("a-1")
    l1 = c.build_l1(aplus, sub="user-mock-001", isp_public_jwk=isp.public_jwk(), now=NOW)
    intent = {"raw": "gear", "desc": "User authorized payment", "expiry_time": "2026-11-29T14:53:23Z",
              "constraints": {"budget_amount": {"currency": "USD", "amount": 30000},
                              "merchant_name_list": ["UGG Demo Store"], "merchant_mcc_list": ["5411"]}}
    l2 = c.build_l2(isp, l1=l1, mode="AUTONOMOUS", intent=intent, token_info={}, mandate_info={},
                    agent_public_jwk=agent.public_jwk(), idv_time=NOW, now=NOW, exp=NOW + timedelta(days=7))
    l3 = c.build_l3(l2, cp_checkout().to_chain("CKO-22D33C74"), agent, now=NOW)
    l3_other = c.build_l3(l2, cp_checkout(100).to_chain(), agent, now=NOW)
    imm_l2 = c.build_l2(isp, l1=l1, mode="IMMEDIATE", intent={"raw": "trek", "desc": ""}, token_info={},
                        mandate_info={}, checkout=cp_checkout(4500).to_chain(), idv_time=NOW, now=NOW,
                        exp=NOW + timedelta(seconds=600))
    return {"l1": l1, "l2": l2, "l3": l3, "l3_other": l3_other, "imm_l2": imm_l2}


# ----------------------------------------------------------------------------- CP: binding
async def test_add_payment_method_auto_and_deferred(client: AmpClient, peer: Peer) -> None:
    peer.on("/credential-provider/addPaymentMethod",
            '{"success":true,"sessionId":"cps-56369fc1d2b8","status":"COMPLETED",'
            '"tokenId":"79b20889b38448b598970c89a0b25799","idv":null,"error":null}',
            '{"success":true,"sessionId":"cps-34076eb5b3e8","status":"PENDING_IDV","tokenId":null,'
            '"idv":{"authUrl":"","authSessionId":"914008bfa395440ab7554c1219f9706f"},"error":null}')
    done = await client.add_payment_method()
    assert peer.bodies() == [{"walletName": "ALIPAY_HK", "agentId": "ext-buyer-agent-007"}]
    assert done.status == "COMPLETED" and done.token_id == Secret(TOKEN_ID)
    assert TOKEN_ID not in repr(done) and TOKEN_ID not in str(done) and TOKEN_ID not in done.model_dump_json()
    pending = await client.add_payment_method()
    assert pending.status == "PENDING_IDV" and pending.token_id is None
    assert pending.idv is not None and pending.idv.auth_session_id == "914008bfa395440ab7554c1219f9706f"


async def test_query_payment_methods(client: AmpClient, peer: Peer, chain_strings: dict[str, str]) -> None:
    l1 = chain_strings["l1"]
    peer.on("/credential-provider/queryPaymentMethodList",
            {"success": True, "paymentMethods": [{"tokenId": TOKEN_ID, "walletName": "ALIPAY_HK",
                                                  "userLoginId": "user-demo", "l1Serialized": l1,
                                                  "gmtCreate": "2026-11-22T14:53:23+00:00"}], "error": None},
            {"success": False, "paymentMethods": [],
             "error": "Session 'cps-34076eb5b3e8' is PENDING_IDV; IDV has not completed yet."})
    result = await client.query_payment_methods(session_id="cps-56369fc1d2b8")
    assert peer.bodies() == [{"sessionId": "cps-56369fc1d2b8"}]
    (pm,) = result.payment_methods
    assert pm.token_id.reveal() == TOKEN_ID and pm.l1_serialized is not None and pm.l1_serialized.reveal() == l1
    assert l1 not in repr(result) and TOKEN_ID not in repr(result)
    with pytest.raises(AmpError) as exc:
        await client.query_payment_methods(session_id="cps-34076eb5b3e8")
    assert exc.value.code == "PENDING_IDV" and exc.value.retryable is True
    before = len(peer.requests)
    with pytest.raises(AmpError, match="needs session_id"):
        await client.query_payment_methods()  # {} would list every user's tokens
    assert len(peer.requests) == before


# ----------------------------------------------------------------------------- CP: mandates
async def test_create_autonomous_mandate_body(client: AmpClient, peer: Peer) -> None:
    peer.on("/credential-provider/createMandateSession",
            '{"success":true,"sessionId":"cps-b25f7017f1a5","status":"PENDING_IDV","mandateId":null,'
            '"idv":{"authUrl":"","authSessionId":"d65d115d"},"error":null}')
    res = await client.create_mandate_session(
        Secret(TOKEN_ID), "Buy travel gear and tours for me, up to USD 300, valid 7 days",
        constraints=constraints(), intent_expire_time=NOW + timedelta(days=7))
    assert peer.bodies() == [{
        "tokenId": TOKEN_ID, "intentRaw": "Buy travel gear and tours for me, up to USD 300, valid 7 days",
        "deferIdv": True, "agentId": "ext-buyer-agent-007", "intentExpireTime": "2026-11-29T14:53:23Z",
        "constraints": {"budgetAmount": {"cent": 30000, "currency": "USD"}, "merchantNameList": ["UGG Demo Store"],
                        "merchantMccList": ["5411"]}}]
    assert res.session_id == "cps-b25f7017f1a5" and res.status == "PENDING_IDV" and res.mandate_id is None


async def test_create_immediate_mandate_body(client: AmpClient, peer: Peer) -> None:
    peer.on("/credential-provider/createMandateSession",
            '{"success":true,"sessionId":"cps-3ea009a6e89a","status":"COMPLETED",'
            '"mandateId":"721080bf1cdc41479ca4bce62979785f","idv":null,"error":null}')
    goods = [{"goods_name": "Bali trek", "goods_quantity": "1"}]
    res = await client.create_mandate_session(TOKEN_ID, "Buy the Bali sunrise trek now", checkout=cp_checkout(
        4500, goods), defer_idv=False)
    (body,) = peer.bodies()
    assert body["checkout"] == {"totalAmount": {"cent": 4500, "currency": "USD"},
                                "merchant": {"merchantId": "MERCHANT-DEMO-001", "merchantName": "UGG Demo Store",
                                             "merchantMcc": "5411"}, "goods": goods}
    assert "constraints" not in body and body["deferIdv"] is False
    assert res.mandate_id == "721080bf1cdc41479ca4bce62979785f"


@pytest.mark.parametrize("kwargs, code, text", [
    ({"constraints": constraints()}, "MANDATE_EXPIRY_REQUIRED", "needs the expiry the user stated"),
    ({"constraints": constraints(), "intent_expire_time": NOW - timedelta(seconds=1)}, "PARAM_ILLEGAL",
     "not in the future"),
    ({"constraints": constraints(names=[], mccs=[]), "intent_expire_time": NOW + timedelta(days=1)},
     "PARAM_ILLEGAL", "at least one merchant name or MCC"),
    ({"constraints": constraints(cent=0), "intent_expire_time": NOW + timedelta(days=1)}, "PARAM_ILLEGAL",
     "expected a positive amount"),
    ({"checkout": cp_checkout(goods=[{"goodsName": "x", "goodsUnitAmount": {"value": "1"}}])}, "PARAM_ILLEGAL",
     "camelCase keys"),
    ({"checkout": cp_checkout(0)}, "PARAM_ILLEGAL", "expected a positive amount"),
    ({"checkout": cp_checkout(), "constraints": constraints(), "intent_expire_time": NOW + timedelta(days=1)},
     "PARAM_ILLEGAL", "exactly one of checkout"),
    ({}, "PARAM_ILLEGAL", "exactly one of checkout"),
])
async def test_mandate_refused_before_send(client: AmpClient, peer: Peer, kwargs: dict[str, Any], code: str,
                                           text: str) -> None:
    with pytest.raises(AmpError, match=text) as exc:
        await client.create_mandate_session(TOKEN_ID, "book me a trip", **kwargs)
    assert exc.value.code == code and exc.value.details["refused_before_send"] is True
    assert peer.requests == []


async def test_float_and_negative_amounts(client: AmpClient, peer: Peer) -> None:
    with pytest.raises(ValidationError):
        CpCheckout.model_validate({"totalAmount": {"cent": 129.99, "currency": "USD"},
                                   "merchant": {"merchantId": "m", "merchantName": "n", "merchantMcc": "1"}})
    with pytest.raises(AmpError, match=r"is -1\.00 USD; expected a positive amount"):
        await client.create_mandate_session(TOKEN_ID, "buy", checkout=cp_checkout(-100))
    assert peer.requests == []


async def test_inquiry_and_wait_for_mandate(client: AmpClient, peer: Peer, chain_strings: dict[str, str]) -> None:
    pending = ('{"success":true,"sessionId":"cps-b25f7017f1a5","status":"PENDING_IDV","mandateId":null,'
               '"mandateType":null,"tokenId":null,"l1Serialized":null,"l2Serialized":null,"error":null}')
    completed = {"success": True, "sessionId": "cps-b25f7017f1a5", "status": "COMPLETED",
                 "mandateId": "5f9560288aa94e61bff8c7c3cb6659f3", "mandateType": "AUTONOMOUS", "tokenId": TOKEN_ID,
                 "l1Serialized": chain_strings["l1"], "l2Serialized": chain_strings["l2"], "error": None}
    peer.on("/credential-provider/inquiryMandateSession", pending, pending, completed)
    session = await client.wait_for_mandate("cps-b25f7017f1a5", timeout=5, interval=0)
    assert len(peer.requests) == 3
    assert session.mandate_type == "AUTONOMOUS" and session.mandate_id == "5f9560288aa94e61bff8c7c3cb6659f3"
    assert session.l2_serialized is not None and session.l2_serialized.reveal() == chain_strings["l2"]
    assert chain_strings["l2"] not in repr(session) and chain_strings["l1"] not in str(session)


async def test_wait_for_mandate_failed_timeout_and_unknown(client: AmpClient, peer: Peer) -> None:
    peer.on("/credential-provider/inquiryMandateSession", {"success": True, "sessionId": "s", "status": "FAILED"})
    with pytest.raises(AmpError) as exc:
        await client.wait_for_mandate("s", timeout=1, interval=0)
    assert exc.value.code == "IDV_FAILED"
    peer.on("/credential-provider/inquiryMandateSession", {"success": True, "sessionId": "s", "status": "PENDING_IDV"})
    with pytest.raises(AmpError) as exc:
        await client.wait_for_mandate("s", timeout=0.02, interval=0.01)
    assert exc.value.code == "IDV_TIMEOUT" and exc.value.details["status"] == "PENDING_IDV"
    peer.on("/credential-provider/inquiryMandateSession",
            {"success": False, "sessionId": None, "status": None, "mandateId": None, "mandateType": None,
             "tokenId": None, "l1Serialized": None, "l2Serialized": None,
             "error": "Session 'cps-doesnotexist' not found."})
    with pytest.raises(AmpError) as exc:
        await client.inquiry_mandate_session("cps-doesnotexist")
    assert exc.value.code == "SESSION_NOT_FOUND"


# ----------------------------------------------------------------------------- CP: credential
async def test_apply_credential_autonomous(client: AmpClient, peer: Peer, chain_strings: dict[str, str]) -> None:
    peer.on("/credential-provider/applyCredential",
            '{"success":true,"paymentToken":"28166623916435fb93c74a40b88e3c06947dd26f",'
            '"mandateType":"AUTONOMOUS","error":null}')
    res = await client.apply_credential("cps-b25f7017f1a5", l1=Secret(chain_strings["l1"]),
                                        l2=Secret(chain_strings["l2"]), l3=Secret(chain_strings["l3"]),
                                        checkout=cp_checkout())
    assert peer.bodies() == [{
        "sessionId": "cps-b25f7017f1a5", "l1Serialized": chain_strings["l1"], "l2Serialized": chain_strings["l2"],
        "l3Serialized": chain_strings["l3"],
        "checkout": {"totalAmount": {"cent": 12999, "currency": "USD"},
                     "merchant": {"merchantId": "MERCHANT-DEMO-001", "merchantName": "UGG Demo Store",
                                  "merchantMcc": "5411"}}}]
    assert res.payment_token == Secret(PAY_TOKEN) and res.mandate_type == "AUTONOMOUS"
    assert PAY_TOKEN not in repr(res) and PAY_TOKEN not in res.model_dump_json()


async def test_apply_credential_refusals(client: AmpClient, peer: Peer, chain_strings: dict[str, str]) -> None:
    s = chain_strings
    with pytest.raises(AmpError, match="needs L3 signed by the agent key"):
        await client.apply_credential("cps-1", l1=s["l1"], l2=s["l2"], checkout=cp_checkout())
    with pytest.raises(AmpError, match="L3 checkout differs"):
        await client.apply_credential("cps-1", l1=s["l1"], l2=s["l2"], l3=s["l3_other"], checkout=cp_checkout())
    with pytest.raises(AmpError, match="takes no L3"):
        await client.apply_credential("cps-1", l1=s["l1"], l2=s["imm_l2"], l3=s["l3"], checkout=cp_checkout(4500))
    with pytest.raises(AmpError, match="positive"):
        await client.apply_credential("cps-1", l1=s["l1"], l2=s["imm_l2"], checkout=cp_checkout(0))
    with pytest.raises(AmpError, match="camelCase"):
        await client.apply_credential("cps-1", l1=s["l1"], l2=s["imm_l2"],
                                      checkout=cp_checkout(4500, [{"goodsName": "x"}]))
    with pytest.raises(AmpError, match="cannot tell the mandate type"):
        await client.apply_credential("cps-1", l1=s["l1"], l2="garbage~", checkout=cp_checkout())
    assert peer.requests == []


CP_ERRORS = [
    ("AUTONOMOUS budget exceeded: checkout=19900 > remaining=12501", "CHECKOUT_AMOUNT_EXCEEDS_BUDGET"),
    ("merchant not in constraints: name=Other Store, mcc=5411", "MERCHANT_NOT_IN_CONSTRAINTS"),
    ("currency mismatch: mandate=USD, checkout=HKD", "CHECKOUT_CURRENCY_MISMATCH"),
    ("chain verification failed: L3 signature verification failed: Verification failed for all "
     "signatures[\"Failed: [InvalidJWSSignature('Verification failed')]\"]", "PARAM_ILLEGAL"),
    ("chain verification failed: L3 standard claims verification failed: audience mismatch (expected "
     "'alipayplus.com', got 'example.com')", "PARAM_ILLEGAL"),
    ("chain verification failed: L3 standard claims verification failed: token expired (exp=1795359803, "
     "now=1795359900)", "PARAM_ILLEGAL"),
    ("L2 in request does not match stored mandate record", "PARAM_ILLEGAL"),
    ("checkout hash does not match mandate checkout_hash", "CHECKOUT_HASH_INCONSISTENT"),
    ("IMMEDIATE budget mismatch: total_budget=4500 != checkout=0", "CHECKOUT_AMOUNT_EXCEEDS_BUDGET"),
    ("mandate status is not ACTIVE, mandateId=721080bf1cdc41479ca4bce62979785f", "MANDATE_STATUS_INVALID"),
    ("Missing required field: token_id. Call /addPaymentMethod + /queryPaymentMethodList first.", "TOKEN_REQUIRED"),
    ("Timed out waiting for mandate callback (session cps-3ea009a6e89a)", "IDV_TIMEOUT"),
    ("Session 'cps-doesnotexist' not found.", "SESSION_NOT_FOUND"),
    ("Session 'cps-1' is PENDING_IDV; IDV has not completed yet.", "PENDING_IDV"),
    ("constraints cannot be null for AUTONOMOUS", "PARAM_ILLEGAL"),
    ("mandate expired, mandateId=721080bf1cdc41479ca4bce62979785f", "MANDATE_EXPIRED"),
    ("mandate balance insufficient", "MANDATE_BALANCE_INSUFFICIENT"),
]


@pytest.mark.parametrize("text, code", CP_ERRORS)
async def test_cp_error_texts_map_to_codes(client: AmpClient, peer: Peer, chain_strings: dict[str, str], text: str,
                                           code: str) -> None:
    peer.on("/credential-provider/applyCredential",
            {"success": False, "paymentToken": None, "mandateType": None, "error": text})
    with pytest.raises(AmpError) as exc:
        await client.apply_credential("cps-1", l1=chain_strings["l1"], l2=chain_strings["l2"],
                                      l3=chain_strings["l3"], checkout=cp_checkout())
    err = exc.value
    assert err.code == code and err.status == 200 and err.hint
    assert "mandateId=721080bf1cdc41479ca4bce62979785f" not in err.message  # 32-hex ids are shortened
    assert len(peer.requests) == 1


async def test_result_code_extension_wins(client: AmpClient, peer: Peer, chain_strings: dict[str, str]) -> None:
    peer.on("/credential-provider/applyCredential",
            {"success": False, "paymentToken": None, "error": "revoked by user",
             "resultCode": "MANDATE_STATUS_INVALID"})
    with pytest.raises(AmpError) as exc:
        await client.apply_credential("cps-1", l1=chain_strings["l1"], l2=chain_strings["l2"],
                                      l3=chain_strings["l3"], checkout=cp_checkout())
    assert exc.value.code == "MANDATE_STATUS_INVALID"
    assert exc.value.hint.startswith("the mandate is no longer active")
    assert map_cp_error("mandate expired", None) == "MANDATE_EXPIRED"
    assert hint_for("MANDATE_EXPIRED") == ("the user's authorization has expired; ask the user to authorize a new "
                                           "mandate")


async def test_apply_credential_is_not_repeated_after_send(client: AmpClient, peer: Peer,
                                                           chain_strings: dict[str, str]) -> None:
    s = chain_strings
    kw: dict[str, Any] = {"l1": s["l1"], "l2": s["l2"], "l3": s["l3"], "checkout": cp_checkout()}
    peer.on("/credential-provider/applyCredential", (500, b"Internal Server Error"))
    with pytest.raises(AmpError) as exc:
        await client.apply_credential("cps-1", **kw)
    assert exc.value.code == "OUTCOME_UNKNOWN" and exc.value.retryable is False and len(peer.requests) == 1
    peer.requests.clear()
    peer.on("/credential-provider/applyCredential", httpx.ReadTimeout("slow"))
    with pytest.raises(AmpError) as exc:
        await client.apply_credential("cps-1", **kw)
    assert exc.value.code == "OUTCOME_UNKNOWN" and len(peer.requests) == 1
    peer.requests.clear()
    ok = {"success": True, "paymentToken": PAY_TOKEN, "mandateType": "AUTONOMOUS", "error": None}
    peer.on("/credential-provider/applyCredential", httpx.ConnectError("refused"), ok)
    res = await client.apply_credential("cps-1", **kw)
    assert res.payment_token is not None and res.payment_token.reveal() == PAY_TOKEN
    assert len(peer.requests) == 2 and peer.bodies()[0] == peer.bodies()[1]


# ----------------------------------------------------------------------------- merchant
async def test_search_checkout_and_pay(client: AmpClient, peer: Peer) -> None:
    peer.on("/searchProducts", '{"success":true,"data":[{"id":"PROD-007","name":"AirBuds Pro","price":12999,'
                               '"currency":"USD","imageUrl":"https://img.test/a.png"}]}')
    peer.on("/startCheckout", '{"success":true,"data":{"checkoutId":"CKO-22D33C74","items":[{"productId":"PROD-007",'
                              '"quantity":1}],"totalAmount":{"cent":12999,"currency":"USD"},'
                              '"merchantId":"MERCHANT-DEMO-001"}}')
    peer.on("/startPayment",
            '{"success":true,"data":{"success":true,"transactionId":"359be058356d4b90965c3db7eec6a8d0",'
            '"message":"Payment processed successfully"}}',
            '{"success":true,"data":{"success":true,"transactionId":"359be058356d4b90965c3db7eec6a8d0",'
            '"message":"Payment already completed (idempotent)","idempotent":true}}')
    (product,) = await client.search_products(MERCHANT, "earbuds")
    assert product.price_money == Money(12999, "USD") and product.id == "PROD-007"
    checkout = await client.start_checkout(MERCHANT, [{"productId": "PROD-007", "quantity": 1}])
    assert checkout.total == Money(12999, "USD") and checkout.merchant_name is None
    first = await client.start_payment(MERCHANT, checkout.checkout_id, Secret(PAY_TOKEN), l1="L1~", l2="L2~",
                                       l3="L3~", idempotency_key="run-1:CKO-22D33C74")
    again = await client.start_payment(MERCHANT, checkout.checkout_id, Secret(PAY_TOKEN),
                                       idempotency_key="run-1:CKO-22D33C74")
    assert first.transaction_id == again.transaction_id == "359be058356d4b90965c3db7eec6a8d0"
    assert first.idempotent is False and again.idempotent is True
    bodies = peer.bodies("/startPayment")
    assert bodies[0] == {"checkoutId": "CKO-22D33C74", "paymentToken": PAY_TOKEN,
                         "idempotencyKey": "run-1:CKO-22D33C74", "l1Serialized": "L1~", "l2Serialized": "L2~",
                         "l3Serialized": "L3~"}
    assert peer.bodies("/searchProducts") == [{"query": "earbuds"}]
    assert peer.bodies("/startCheckout") == [{"items": [{"productId": "PROD-007", "quantity": 1}]}]


MERCHANT_ERRORS = [
    ("ACQUIRER_FAILED", "A+ network processing failed: payment token is not valid, status=USED",
     "PAYMENT_TOKEN_ALREADY_USED"),
    ("ACQUIRER_FAILED", f"A+ network processing failed: payment token not found, paymentToken={PAY_TOKEN}",
     "PAYMENT_TOKEN_INVALID"),
    ("ACQUIRER_FAILED", "CGCP: token '12345678...' FixedPrefix='12' version='3' institution='456' businessType='78' "
                        "does not match A+ routing rule (FixedPrefix='28' + version='1' + institution='666' + "
                        "businessType='23')", "UNKNOWN_NETWORK"),
    ("CHECKOUT_NOT_FOUND", "Checkout not found: CKO-22D33C7X", "CHECKOUT_NOT_FOUND"),
    ("ACQUIRER_FAILED", "A+ network processing failed: payment token expired", "PAYMENT_TOKEN_EXPIRED"),
]


@pytest.mark.parametrize("peer_code, text, code", MERCHANT_ERRORS)
async def test_merchant_errors(client: AmpClient, peer: Peer, peer_code: str, text: str, code: str) -> None:
    peer.on("/startPayment", {"success": False, "errorCode": peer_code, "errorMessage": text})
    with pytest.raises(AmpError) as exc:
        await client.start_payment(MERCHANT, "CKO-22D33C74", PAY_TOKEN)
    assert exc.value.code == code and exc.value.details["peer_code"] == peer_code
    assert PAY_TOKEN not in str(exc.value) and PAY_TOKEN not in json.dumps(exc.value.to_dict())
    assert len(peer.requests) == 1  # a business error is an answer, not a transport failure


async def test_422_is_summarised(client: AmpClient, peer: Peer) -> None:
    peer.on("/startCheckout", (422, {"detail": [{"type": "greater_than_equal", "loc": ["body", "items", 0, "quantity"],
                                                 "msg": "Input should be greater than or equal to 1", "input": 0,
                                                 "ctx": {"ge": 1}}]}))
    with pytest.raises(AmpError) as exc:
        await client.start_checkout(MERCHANT, [{"productId": "PROD-007", "quantity": 1}])
    assert exc.value.code == "SCHEMA_VIOLATION" and exc.value.status == 422
    assert "items.0.quantity: Input should be greater than or equal to 1" in exc.value.message
    assert len(peer.requests) == 1


async def test_quantity_zero_refused_before_send(client: AmpClient, peer: Peer) -> None:
    with pytest.raises(AmpError, match=r"items\[0\].quantity is 0"):
        await client.start_checkout(MERCHANT, [{"productId": "PROD-007", "quantity": 0}])
    with pytest.raises(AmpError, match="items is empty"):
        await client.start_checkout(MERCHANT, [])
    with pytest.raises(AmpError, match="query is empty"):
        await client.search_products(MERCHANT, " ")
    assert peer.requests == []


async def test_start_payment_retries_with_same_body(client: AmpClient, peer: Peer) -> None:
    ok = {"success": True, "data": {"success": True, "transactionId": "t" * 32, "message": "ok"}}
    peer.on("/startPayment", (503, b"busy"), httpx.ReadTimeout("slow"), ok)
    res = await client.start_payment(MERCHANT, "CKO-1", PAY_TOKEN, idempotency_key="k-1")
    assert res.transaction_id == "t" * 32
    bodies = peer.bodies("/startPayment")
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]
    assert {b["idempotencyKey"] for b in bodies} == {"k-1"}


async def test_retries_exhausted(client: AmpClient, peer: Peer) -> None:
    peer.on("/searchProducts", (500, b"oops"))
    with pytest.raises(AmpError) as exc:
        await client.search_products(MERCHANT, "x")
    assert exc.value.code == "NETWORK_ERROR" and exc.value.retryable and exc.value.details["attempts"] == 3
    assert len(peer.requests) == 3
    peer.requests.clear()
    peer.on("/searchProducts", httpx.ReadTimeout("slow"))
    with pytest.raises(AmpError) as exc:
        await client.search_products(MERCHANT, "x")
    assert exc.value.code == "TIMEOUT" and len(peer.requests) == 3


@pytest.mark.parametrize("body", [
    b"<html>502 Bad Gateway</html>", b"[1, 2, 3]", b'{"data": []}', b"", b"[" * 100_000 + b"]" * 100_000,
    b'{"success": true, "data": [{"id": "P", "name": "n", "price": 12.99, "currency": "USD"}]}',
    b'{"success": true, "data": {"not": "a list"}}', b'{"success": "yes"}',
    b'{"success": true, "data": [{"id": "P", "name": "n", "price": 1, "currency": "XXX1"}]}',
])
async def test_malformed_responses_are_bad_response(client: AmpClient, peer: Peer, body: bytes) -> None:
    peer.on("/searchProducts", httpx.Response(200, content=body))
    with pytest.raises(AmpError) as exc:
        await client.search_products(MERCHANT, "x")
    assert exc.value.code == "BAD_RESPONSE"


async def test_relative_merchant_url(peer: Peer) -> None:
    client = AmpClient("http://sandbox/credential-provider", transport=httpx.MockTransport(peer))
    peer.on("/merchants/SKYLARK-AIR/searchProducts", {"success": True, "data": []})
    assert await client.search_products("/merchants/SKYLARK-AIR", "*") == []
    assert str(peer.requests[0].url) == "http://sandbox/merchants/SKYLARK-AIR/searchProducts"
    await client.aclose()


# ----------------------------------------------------------------------------- extensions
async def test_extensions(client: AmpClient, peer: Peer) -> None:
    quote = {"quoteId": "Q-1", "merchantId": "SKYLARK-AIR", "items": [{"productId": "F-1", "quantity": 1}],
             "totalAmount": {"cent": 45000, "currency": "SGD"}, "listAmount": {"cent": 45000, "currency": "SGD"},
             "expiresAt": "2026-11-22T15:03:23Z", "round": 0, "maxRounds": 3, "status": "OPEN"}
    peer.on("/registry/merchants", {"success": True, "data": [
        {"merchantId": "SKYLARK-AIR", "name": "Skylark Air", "mcc": "4511", "categories": ["flight"],
         "regions": ["SG"], "currencies": ["SGD"], "baseUrl": "/merchants/SKYLARK-AIR", "description": "Flights"}]})
    peer.on("/merchants/SKYLARK-AIR/quotes", {"success": True, "data": quote})
    peer.on("/merchants/SKYLARK-AIR/quotes/Q-1/counter", {"success": True, "data": {
        **quote, "status": "OPEN", "round": 1, "totalAmount": {"cent": 43000, "currency": "SGD"},
        "lastOffer": {"cent": 40000, "currency": "SGD"}, "message": "we can do 430.00"}})
    peer.on("/merchants/SKYLARK-AIR/quotes/Q-1/accept", {"success": True, "data": {
        "checkoutId": "CKO-AAAA0001", "items": [{"productId": "F-1", "quantity": 1}],
        "totalAmount": {"cent": 43000, "currency": "SGD"}, "merchantId": "SKYLARK-AIR", "merchantName": "Skylark Air",
        "merchantMcc": "4511", "expiresAt": "2026-11-22T15:13:23Z"}})
    peer.on("/merchants/SKYLARK-AIR/quotes/Q-1/reject", {"success": True, "data": {**quote, "status": "REJECTED"}})
    peer.on("/merchants/SKYLARK-AIR/orderStatus", {"success": True, "data": {
        "checkoutId": "CKO-AAAA0001", "status": "PAID", "transactionId": "t1",
        "amount": {"cent": 43000, "currency": "SGD"}, "refundedAmount": {"cent": 0, "currency": "SGD"}}})
    peer.on("/merchants/SKYLARK-AIR/refund", {"success": True, "data": {
        "refundId": "R-1", "checkoutId": "CKO-AAAA0001", "status": "PARTIALLY_REFUNDED",
        "refundedAmount": {"cent": 1000, "currency": "SGD"}}})
    peer.on("/network/fxRate", {"success": True, "data": {"from": "SGD", "to": "USD", "rate": "0.7400",
                                                          "quotedAt": "x", "expiresAt": "y"}})
    m = "/merchants/SKYLARK-AIR"
    (info,) = await client.list_merchants(category="flight", currency="SGD")
    assert info.base_url == m and peer.requests[-1].url.params["category"] == "flight"
    q = await client.request_quote(m, [{"productId": "F-1", "quantity": 1}])
    assert q.total == Money(45000, "SGD") and q.status == "OPEN"
    countered = await client.counter_offer(m, "Q-1", Money(40000, "SGD"))
    assert countered.total == Money(43000, "SGD") and countered.last_offer is not None
    assert peer.bodies("/merchants/SKYLARK-AIR/quotes/Q-1/counter") == [{"offerAmount": {"cent": 40000,
                                                                                         "currency": "SGD"}}]
    co = await client.accept_quote(m, "Q-1")
    assert co.total == Money(43000, "SGD") and co.merchant_mcc == "4511"
    assert (await client.reject_quote(m, "Q-1")).status == "REJECTED"
    st = await client.order_status(m, "CKO-AAAA0001")
    assert st.status == "PAID" and st.amount is not None and st.amount.money == Money(43000, "SGD")
    rf = await client.refund(m, "CKO-AAAA0001", Money(1000, "SGD"), "seat change")
    assert rf.refunded_amount is not None and rf.refunded_amount.money == Money(1000, "SGD")
    fx = await client.fx_rate("SGD", "USD")
    assert fx.rate == Decimal("0.7400") and fx.from_currency == "SGD"
    with pytest.raises(AmpError, match="positive"):
        await client.refund(m, "CKO-AAAA0001", Money(0, "SGD"))
    with pytest.raises(AmpError, match="positive"):
        await client.counter_offer(m, "Q-1", Money(0, "SGD"))


async def test_fx_rate_as_float_is_refused(client: AmpClient, peer: Peer) -> None:
    peer.on("/network/fxRate", {"success": True, "data": {"from": "SGD", "to": "USD", "rate": 0.74}})
    with pytest.raises(AmpError) as exc:
        await client.fx_rate("SGD", "USD")
    assert exc.value.code == "BAD_RESPONSE"


async def test_one_http_client_per_event_loop(client: AmpClient, peer: Peer) -> None:
    peer.on("/searchProducts", {"success": True, "data": []})
    await client.search_products(MERCHANT, "a")
    results: list[Any] = []

    def other_thread() -> None:
        results.append(asyncio.run(client.search_products(MERCHANT, "b")))

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert results == [[]]
    await client.search_products(MERCHANT, "c")
    assert len(peer.requests) == 3
    # The other loop is closed; its entry is dropped on the next use, ours is reused.
    assert len(client._clients) == 1
    await client.aclose()
    assert client._clients == {}


async def test_transport_crash_is_an_amp_error(client: AmpClient, peer: Peer, chain_strings: dict[str, str]) -> None:
    peer.on("/searchProducts", RuntimeError("app blew up"))
    with pytest.raises(AmpError) as exc:
        await client.search_products(MERCHANT, "x")
    assert exc.value.code == "NETWORK_ERROR" and len(peer.requests) == 3
    peer.requests.clear()
    peer.on("/credential-provider/applyCredential", RuntimeError("app blew up"))
    with pytest.raises(AmpError) as exc:
        await client.apply_credential("cps-1", l1=chain_strings["l1"], l2=chain_strings["l2"],
                                      l3=chain_strings["l3"], checkout=cp_checkout())
    assert exc.value.code == "OUTCOME_UNKNOWN" and len(peer.requests) == 1


async def test_4xx_with_business_envelope(client: AmpClient, peer: Peer) -> None:
    peer.on("/merchants/NOPE/searchProducts",
            (404, {"success": False, "errorCode": "MERCHANT_NOT_FOUND", "errorMessage": "Merchant not found: NOPE"}))
    with pytest.raises(AmpError) as exc:
        await client.search_products("/merchants/NOPE", "x")
    assert exc.value.code == "MERCHANT_NOT_FOUND" and exc.value.status == 404 and len(peer.requests) == 1


async def test_failures_say_whether_the_request_may_have_arrived(client: AmpClient, peer: Peer) -> None:
    peer.on("/searchProducts", httpx.ConnectError("refused"))
    with pytest.raises(AmpError) as never:
        await client.search_products(MERCHANT, "x")
    assert never.value.code == "NETWORK_ERROR" and never.value.details["sent"] is False
    peer.on("/searchProducts", httpx.ConnectError("refused"), (503, b"busy"), httpx.ConnectError("refused"))
    with pytest.raises(AmpError) as maybe:
        await client.search_products(MERCHANT, "x")
    assert maybe.value.details["sent"] is True
