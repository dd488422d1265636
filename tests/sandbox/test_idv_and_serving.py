"""Manual IDV (PENDING_IDV, polling, the person's side), concurrency, OpenAPI, and the served app."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from datetime import timedelta

import httpx

from amp_tools.money import Money
from amp_tools.sandbox import build_server
from tests.sandbox.sandbox_helpers import AGENT_ID, Flow, make_sandbox


async def test_manual_idv_enrollment_and_mandate_with_polling() -> None:
    sb = make_sandbox(idv_mode="manual")
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        r = await flow.post("/credential-provider/addPaymentMethod", {"agentId": AGENT_ID})
        assert r["status"] == "PENDING_IDV" and r["tokenId"] is None and len(r["idv"]["authSessionId"]) == 32
        q = await flow.post("/credential-provider/queryPaymentMethodList", {"sessionId": r["sessionId"]})
        assert not q["success"] and q["resultCode"] == "PENDING_IDV"
        assert q["error"] == f"Session '{r['sessionId']}' is PENDING_IDV; IDV has not completed yet."
        auth = await flow.post("/mpp/inquiryAuthorization", {"authSessionId": r["idv"]["authSessionId"]})
        assert auth["authStatus"] == "AUTH_IN_PROCESS" and auth["authId"].startswith("mpp-auth-")
        assert sb.complete_idv(r["idv"]["authSessionId"]) == "SUCCESS"
        q = await flow.post("/credential-provider/queryPaymentMethodList", {"sessionId": r["sessionId"]})
        flow.token_id, flow.l1 = q["paymentMethods"][0]["tokenId"], q["paymentMethods"][0]["l1Serialized"]
        assert flow.l1.endswith("~") and flow.l1.count("~") == 1
        m = await flow.create_autonomous(Money(20000, "USD"), ["Zoom Car Rental"])
        assert m["status"] == "PENDING_IDV" and m["mandateId"] is None
        polled = await flow.post("/credential-provider/inquiryMandateSession", {"sessionId": m["sessionId"]})
        assert polled["status"] == "PENDING_IDV" and polled["l2Serialized"] is None
        done = await flow.post("/mpp/completeIdv", {"authSessionId": m["idv"]["authSessionId"]})
        assert done["result"]["resultStatus"] == "S" and done["idvResult"] == "PASS"
        again = await flow.post("/mpp/completeIdv", {"authSessionId": m["idv"]["authSessionId"]})
        assert again["result"]["resultCode"] == "PARAM_ILLEGAL"
        mandate = await flow.mandate(m["sessionId"])
        assert mandate["mandateType"] == "AUTONOMOUS" and len(mandate["mandateId"]) == 32
        co = await flow.checkout("ZOOM-CARS", ("ZOOM-SUV-DAY", 1))  # 15400 JPY -> 103.18 USD
        assert (await flow.buy(mandate, co))["success"]
        assert await flow.remaining(mandate["mandateId"]) == (20000 - 10318, "USD", "ACTIVE")


async def test_mandate_expiring_while_the_person_waits_is_not_activated() -> None:
    sb = make_sandbox(idv_mode="manual")
    async with httpx.AsyncClient(transport=sb.transport(), base_url="http://sandbox") as c:
        flow = Flow(sb, c)
        sb.idv_mode = "auto"
        await flow.bind()
        sb.idv_mode = "manual"
        soon = (sb.clock.now() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        m = await flow.create_autonomous(Money(20000, "USD"), ["Zoom Car Rental"], expiry=soon)
        sb.clock.advance(seconds=600)
        sb.complete_idv(m["idv"]["authSessionId"])
        q = await flow.post("/credential-provider/inquiryMandateSession", {"sessionId": m["sessionId"]})
        assert q["status"] == "FAILED" and q["resultCode"] == "MANDATE_EXPIRED"
        assert sb.state.mandates == {}


async def test_concurrent_token_requests_cannot_overspend(flow: Flow) -> None:
    m = await flow.autonomous(Money(10000, "USD"), ["Sunny Tours & Travel Gear"])
    cos = [await flow.checkout("SUNNY-TOURS", ("SUN-ADAPTER", 1)) for _ in range(5)]  # 5 x 29.99 > 100.00
    results = await asyncio.gather(*(flow.apply(m, co) for co in cos))
    assert sum(1 for r in results if r["success"]) == 3
    assert sorted(r["resultCode"] for r in results if not r["success"]) == ["CHECKOUT_AMOUNT_EXCEEDS_BUDGET"] * 2
    assert (await flow.remaining(m["mandateId"]))[0] == 10000 - 3 * 2999


async def test_openapi_tags(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    tags = {path: {t for op in ops.values() for t in op.get("tags", [])} for path, ops in spec["paths"].items()}
    assert "extension" in tags["/registry/merchants"]
    assert "extension" in tags["/merchants/{merchant_id}/quotes"]
    assert "extension" in tags["/network/fxRate"]
    assert tags["/_admin/advanceTime"] == {"admin"}
    assert "/credential-provider/applyCredential" in spec["paths"]
    assert "/merchants/{merchant_id}/startPayment" in spec["paths"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_served_over_tcp() -> None:
    port = _free_port()
    _, server = build_server("127.0.0.1", port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        r = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5)
        assert r.status_code == 200 and r.json()["info"]["title"] == "amp-tools AMP sandbox"
        moved = httpx.post(f"http://127.0.0.1:{port}/_admin/advanceTime", json={"seconds": 3600}, timeout=5)
        assert moved.json()["success"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()
