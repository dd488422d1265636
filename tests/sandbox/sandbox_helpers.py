"""Flow helpers for the sandbox tests: an agent key, a seeded sandbox, and the reference call
sequences (bind, mandate, L3, token, pay) written once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from amp_tools.amp.chain import build_l3
from amp_tools.amp.keys import AgentKey
from amp_tools.money import Money
from amp_tools.sandbox import Sandbox, SandboxConfig

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
AGENT_ID = "agent-test-001"

_KEY: AgentKey | None = None


def agent_key() -> AgentKey:
    global _KEY
    if _KEY is None:
        _KEY = AgentKey.generate(kid="agent-key-test")
    return _KEY


def make_sandbox(**cfg: Any) -> Sandbox:
    cfg.setdefault("seed", 7)
    cfg.setdefault("start_time", START)
    sb = Sandbox(SandboxConfig(**cfg))
    sb.register_agent(AGENT_ID, agent_key().public_jwk())
    return sb


class Flow:
    """The Buyer Agent's calls, step by step, against one sandbox."""

    def __init__(self, sb: Sandbox, c: httpx.AsyncClient) -> None:
        self.sb, self.c = sb, c
        self.token_id = ""
        self.l1 = ""

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await self.c.post(path, json=body or {})
        assert r.status_code == 200, (path, r.status_code, r.text)
        out: dict[str, Any] = r.json()
        return out

    async def get(self, path: str) -> dict[str, Any]:
        r = await self.c.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text)
        out: dict[str, Any] = r.json()
        return out

    async def bind(self) -> None:
        r = await self.post("/credential-provider/addPaymentMethod", {"walletName": "ALIPAY_HK", "agentId": AGENT_ID})
        assert r["success"] and r["status"] == "COMPLETED", r
        q = await self.post("/credential-provider/queryPaymentMethodList", {"sessionId": r["sessionId"]})
        self.token_id, self.l1 = q["paymentMethods"][0]["tokenId"], q["paymentMethods"][0]["l1Serialized"]

    def expiry(self, days: int = 7) -> str:
        return (self.sb.clock.now() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def create_autonomous(self, budget: Money, names: list[str] | None = None,
                                mccs: list[str] | None = None, *, expiry: str | None = "default",
                                defer: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "tokenId": self.token_id, "agentId": AGENT_ID, "intentRaw": "Book my KL trip", "deferIdv": defer,
            "constraints": {"budgetAmount": budget.to_cent(), "merchantNameList": names or [],
                            "merchantMccList": mccs or []}}
        if expiry == "default":
            body["intentExpireTime"] = self.expiry()
        elif expiry is not None:
            body["intentExpireTime"] = expiry
        return await self.post("/credential-provider/createMandateSession", body)

    async def mandate(self, session_id: str) -> dict[str, Any]:
        r = await self.post("/credential-provider/inquiryMandateSession", {"sessionId": session_id})
        assert r["status"] == "COMPLETED", r
        return r

    async def autonomous(self, budget: Money, names: list[str] | None = None,
                         mccs: list[str] | None = None) -> dict[str, Any]:
        r = await self.create_autonomous(budget, names, mccs)
        assert r["success"], r
        return await self.mandate(r["sessionId"])

    async def checkout(self, merchant_id: str, *items: tuple[str, int]) -> dict[str, Any]:
        r = await self.post(f"/merchants/{merchant_id}/startCheckout",
                            {"items": [{"productId": p, "quantity": q} for p, q in items]})
        assert r["success"], r
        data: dict[str, Any] = r["data"]
        return data

    @staticmethod
    def cp_checkout(co: dict[str, Any]) -> dict[str, Any]:
        return {"totalAmount": co["totalAmount"],
                "merchant": {"merchantId": co["merchantId"], "merchantName": co["merchantName"],
                             "merchantMcc": co["merchantMcc"]}}

    def l3(self, l2: str, co: dict[str, Any], *, key: AgentKey | None = None, aud: str = "alipayplus.com") -> str:
        claim = {"total_amount": {"currency": co["totalAmount"]["currency"], "amount": co["totalAmount"]["cent"]},
                 "merchant": {"reference_merchant_id": co["merchantId"], "merchant_name": co["merchantName"],
                              "merchant_mcc": co["merchantMcc"]},
                 "reference_checkout_id": co["checkoutId"]}
        return build_l3(l2, claim, key or agent_key(), aud=aud, now=self.sb.clock.now())

    async def apply(self, m: dict[str, Any], co: dict[str, Any], *, l3: str | bool | None = True,
                    **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"sessionId": m["sessionId"], "l1Serialized": m["l1Serialized"],
                                "l2Serialized": m["l2Serialized"], "checkout": self.cp_checkout(co), **extra}
        if l3 is True:
            body["l3Serialized"] = self.l3(m["l2Serialized"], co)
        elif isinstance(l3, str):
            body["l3Serialized"] = l3
        return await self.post("/credential-provider/applyCredential", body)

    async def start_payment(self, m: dict[str, Any], co: dict[str, Any], token: str,
                            l3: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"checkoutId": co["checkoutId"], "paymentToken": token,
                                "l1Serialized": m["l1Serialized"], "l2Serialized": m["l2Serialized"]}
        if l3:
            body["l3Serialized"] = l3
        return await self.c.post(f"/merchants/{co['merchantId']}/startPayment", json=body)

    async def buy(self, m: dict[str, Any], co: dict[str, Any]) -> dict[str, Any]:
        """applyCredential + startPayment for an AUTONOMOUS mandate; returns the payment answer."""
        l3 = self.l3(m["l2Serialized"], co)
        t = await self.apply(m, co, l3=l3)
        assert t["success"], t
        r = await self.start_payment(m, co, t["paymentToken"], l3)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    async def remaining(self, mandate_id: str) -> tuple[int, str, str]:
        v = (await self.get(f"/network/mandate/{mandate_id}"))["data"]
        return v["budget"]["remainingAmount"]["cent"], v["budget"]["remainingAmount"]["currency"], v["mandateStatus"]
