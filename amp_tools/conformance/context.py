"""The state of one run: the agent, its wallet bindings, mandates, the merchant, the clock.

Checks share set-up through cached steps (enrollment, agent registration, the merchant's
cheapest product). A step that fails is cached too, so every check that needs it is SKIPPED
with the same reason, and only the check that owns the step reports it as FAIL.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from amp_tools.amp.chain import ParsedSdJwt
from amp_tools.amp.keys import AgentKey, public_jwk_equal
from amp_tools.conformance.chainread import cnf_jwk, make_l3, read
from amp_tools.conformance.model import Exchange
from amp_tools.conformance.probe import Answer, Probe
from amp_tools.conformance.shapes import obj
from amp_tools.conformance.target import Target, wallet_from_auth_url

__all__ = ["Binding", "Ctx", "Fail", "Mandate", "MerchantInfo", "Skip"]

T = TypeVar("T")


class Skip(Exception):
    """The target lacks what the check needs; the message says what."""


class Fail(Exception):
    """The target broke the rule; `exchanges` are the evidence (default: the check's own requests)."""

    def __init__(self, reason: str, *exchanges: Exchange | None) -> None:
        super().__init__(reason)
        self.exchanges = [e for e in exchanges if e is not None]


@dataclass
class Binding:
    agent_id: str
    session_id: str
    token_id: str
    l1: str
    add_answer: Answer
    list_answer: Answer


@dataclass
class Mandate:
    session_id: str
    mandate_id: str
    l1: str
    l2: str
    budget_minor: int
    create_answer: Answer
    inquiry_answer: Answer

    @property
    def parsed_l2(self) -> ParsedSdJwt:
        p, why = read(self.l2, "L2")
        if p is None:
            raise Skip(f"the mandate's L2 is not an SD-JWT ({why})")
        return p


@dataclass
class MerchantInfo:
    base: str
    merchant_id: str
    name: str
    mcc: str
    currency: str
    product_id: str
    price_minor: int
    search_answer: Answer
    checkout_answer: Answer
    first_checkout_id: str


class Ctx:
    """Everything a check may use; one per run."""

    def __init__(self, target: Target, probe: Probe) -> None:
        self.target = target
        self.probe = probe
        self.run_id = secrets.token_hex(3)
        self.agent_id = target.agent_id or f"amp-conformance-{self.run_id}"
        self.key = target.agent_key or AgentKey.generate(kid=f"amp-conformance-{self.run_id}")
        self.clock_offset = 0.0
        self._cache: dict[str, Any] = {}
        self.notes: list[str] = []
        self.wallet_found: str | None = None  # learned from the CP's idv.authUrl
        self.last_idv: tuple[str, Answer] | None = None  # the last completeIdv the checker sent, and its answer

    # ------------------------------------------------------------------ plumbing
    async def once(self, name: str, make: Callable[[], Awaitable[T]], *, owner: bool = False) -> T:
        """Run a set-up step once. Later callers get its value, or SKIP with its reason; a check that
        `owner`s the step gets its FAIL (with the evidence) when the target broke the step's contract."""
        if name not in self._cache:
            try:
                self._cache[name] = ("ok", await make())
            except (Skip, Fail) as exc:
                self._cache[name] = ("error", exc)
        kind, value = self._cache[name]
        if kind == "error":
            if owner and isinstance(value, Fail):
                raise value
            raise Skip(f"{value}" if isinstance(value, Skip) else f"set-up step {name!r} failed: {value}")
        return value  # type: ignore[no-any-return]

    def now(self) -> int:
        """The target's idea of now (epoch seconds), learned from the iat of the chains it signs."""
        return int(time.time() + self.clock_offset)

    def learn_time(self, parsed: ParsedSdJwt) -> None:
        iat = parsed.payload.get("iat")
        if isinstance(iat, int) and not isinstance(iat, bool):
            self.clock_offset = iat - time.time()

    async def cp(self, path: str, body: dict[str, Any]) -> Answer:
        return await self.probe.post(f"{self.target.cp_base}/{path}", body)

    # ------------------------------------------------------------------ agent and wallet
    async def registration(self) -> tuple[bool, str]:
        """(registered, how): registers our public key where the target offers it."""
        async def make() -> tuple[bool, str]:
            if self.target.agent_key is not None:
                return True, "the operator's agent key (--agent-key) is assumed known to the target"
            ans = await self.probe.post(f"{self.target.network_base}/agents/register",
                                        {"agentId": self.agent_id, "publicJwk": self.key.public_jwk()})
            if ans.ok:
                return True, f"registered {self.agent_id} at {self.target.network_base}/agents/register"
            return False, f"agent key registration unavailable ({ans.describe()})"
        registered, how = await self.once("registration", make)
        if how not in self.notes:
            self.notes.append(how)
        return registered, how

    def wallet_base(self, auth_url: Any = None) -> str:
        """Where the person completes identity verification: ``--wallet``, else where the CP's
        ``idv.authUrl`` points (its URL without the last path segment), else ``<cp>/mpp``."""
        if self.target.wallet:
            return self.target.wallet
        if isinstance(auth_url, str) and auth_url.startswith(("http://", "https://")):
            found = wallet_from_auth_url(auth_url, self.target.owner_confirmed)
            if found:
                self.wallet_found = found
        return self.wallet_found or self.target.wallet_base

    async def _complete_idv(self, auth_session_id: Any, auth_url: Any = None) -> None:
        if isinstance(auth_session_id, str) and auth_session_id:
            base = self.wallet_base(auth_url)
            ans = await self.probe.post(f"{base}/completeIdv", {"authSessionId": auth_session_id},
                                        note="the checker acting as the person on the wallet's trusted surface")
            self.last_idv = (base, ans)

    def idv_skip_reason(self, what: str) -> str:
        """Why a session never completed, naming the wallet the checker tried and ``--wallet``."""
        if self.last_idv is None:
            return f"{what} never completed and the CP gave no authSessionId to verify"
        base, ans = self.last_idv
        if self.target.wallet:
            return f"{what} never completed although the checker verified identity at --wallet {base} " \
                   f"({ans.describe()})"
        return (f"{what} never completed: the wallet at {base} answered completeIdv with {ans.describe()}, so "
                "identity verification happens elsewhere; pass --wallet URL of the wallet the network routes to "
                "(the AMP reference: the MPP on port 8899, http://HOST:8899/mpp)")

    async def _wait(self, poll: Callable[[], Awaitable[Answer]], done: Callable[[Answer], bool],
                    auth_session_id: Any, auth_url: Any = None) -> Answer:
        """Poll briefly (wallets that complete on their own), then act as the person, then poll to the timeout."""
        deadline = time.monotonic() + self.target.idv_timeout_seconds
        acted = False
        started = time.monotonic()
        while True:
            ans = await poll()
            if done(ans) or time.monotonic() > deadline:
                return ans
            if not acted and time.monotonic() - started >= self.target.idv_grace_seconds:
                acted = True
                await self._complete_idv(auth_session_id, auth_url)
                continue
            await asyncio.sleep(0.25)

    async def enroll(self, agent_id: str) -> Binding:
        add = await self.cp("addPaymentMethod", {"walletName": self.target.wallet_name, "agentId": agent_id})
        body = add.json
        if not add.ok or not isinstance(body.get("sessionId"), str):
            raise Fail(f"addPaymentMethod did not start a binding: {add.describe()}", add.exchange)
        sid = body["sessionId"]

        async def poll() -> Answer:
            return await self.cp("queryPaymentMethodList", {"sessionId": sid})

        def listed(a: Answer) -> bool:
            methods = a.json.get("paymentMethods")
            return a.ok and isinstance(methods, list) and len(methods) > 0

        if body.get("status") == "PENDING_IDV":
            idv = obj(body.get("idv"))
            lst = await self._wait(poll, listed, idv.get("authSessionId"), idv.get("authUrl"))
        else:
            lst = await poll()
        if not listed(lst):
            raise Skip(self.idv_skip_reason(f"the wallet binding ({lst.describe()})"))
        m = lst.json["paymentMethods"][0]
        if not isinstance(m, dict) or not isinstance(m.get("tokenId"), str) or not isinstance(
                m.get("l1Serialized"), str):
            raise Fail("queryPaymentMethodList answered without tokenId and l1Serialized", lst.exchange)
        parsed, _ = read(m["l1Serialized"], "L1")
        if parsed is not None:
            self.learn_time(parsed)
        return Binding(agent_id, sid, m["tokenId"], m["l1Serialized"], add, lst)

    async def binding(self, *, owner: bool = False) -> Binding:
        return await self.once("binding", lambda: self.enroll(self.agent_id), owner=owner)

    # ------------------------------------------------------------------ merchant
    async def search(self, *, owner: bool = False) -> Answer:
        """``searchProducts {query:"*"}`` at the merchant under test."""
        async def make() -> Answer:
            if not self.target.merchant:
                raise Skip("no merchant under test (pass --merchant URL)")
            search = await self.probe.post(f"{self.target.merchant}/searchProducts", {"query": "*"})
            if not search.ok or not isinstance(search.json.get("data"), list):
                raise Fail(f"searchProducts {{query:'*'}} did not list products: {search.describe()}",
                           search.exchange)
            return search
        return await self.once("search", make, owner=owner)

    async def merchant(self, *, owner: bool = False) -> MerchantInfo:
        async def make() -> MerchantInfo:
            search = await self.search()
            base, items = str(self.target.merchant), search.json["data"]
            priced = [i for i in items if isinstance(i, dict) and isinstance(i.get("price"), int)
                      and not isinstance(i.get("price"), bool) and i["price"] > 0 and isinstance(i.get("id"), str)
                      and (not isinstance(i.get("stock"), int) or i["stock"] >= 10)]
            if not priced:
                raise Skip("the merchant lists no product with an integer minor-unit price in stock")
            # Purchases are sized from here; the operator's cap is applied per mandate (see `mandate`),
            # so the merchant checks that buy nothing never depend on it.
            cheapest = min(priced, key=lambda i: i["price"])
            co = await self.probe.post(f"{base}/startCheckout",
                                       {"items": [{"productId": cheapest["id"], "quantity": 1}]})
            data = obj(co.json.get("data"))
            total = obj(data.get("totalAmount"))
            if not co.ok or not isinstance(data.get("checkoutId"), str) or not isinstance(total.get("cent"), int):
                raise Fail(f"startCheckout did not return a checkout: {co.describe()}", co.exchange)
            name = self.target.merchant_name or data.get("merchantName") or cheapest.get("merchantName")
            mcc = self.target.merchant_mcc or data.get("merchantMcc") or cheapest.get("merchantMcc")
            if not isinstance(name, str) or not isinstance(mcc, str) or not name or not mcc:
                raise Skip("the merchant does not state its name and MCC; pass --merchant-name and --merchant-mcc")
            return MerchantInfo(base, str(data.get("merchantId") or ""), name, mcc,
                                str(total.get("currency") or cheapest.get("currency") or ""), cheapest["id"],
                                total["cent"], search, co, data["checkoutId"])
        return await self.once("merchant", make, owner=owner)

    async def new_checkout(self) -> tuple[str, int, Answer]:
        m = await self.merchant()
        co = await self.probe.post(f"{m.base}/startCheckout", {"items": [{"productId": m.product_id, "quantity": 1}]})
        data = obj(co.json.get("data"))
        total = obj(data.get("totalAmount"))
        if not co.ok or not isinstance(data.get("checkoutId"), str) or not isinstance(total.get("cent"), int):
            raise Skip(f"could not open a checkout: {co.describe()}")
        return data["checkoutId"], total["cent"], co

    def request_checkout(self, m: MerchantInfo, amount: int, *, name: str | None = None, mcc: str | None = None,
                         checkout_id: str | None = None) -> dict[str, Any]:
        """The CP request's camelCase checkout (amp-reference-wire.md 3.7)."""
        out: dict[str, Any] = {"totalAmount": {"cent": amount, "currency": m.currency},
                               "merchant": {"merchantId": m.merchant_id, "merchantName": name or m.name,
                                            "merchantMcc": mcc or m.mcc}}
        if checkout_id:
            out["referenceCheckoutId"] = checkout_id
        return out

    @staticmethod
    def chain_checkout(request: dict[str, Any]) -> dict[str, Any]:
        """The same checkout in the chain's snake_case shape (what L3 signs)."""
        merchant = request["merchant"]
        out: dict[str, Any] = {
            "total_amount": {"currency": request["totalAmount"]["currency"], "amount": request["totalAmount"]["cent"]},
            "merchant": {"reference_merchant_id": merchant["merchantId"], "merchant_name": merchant["merchantName"],
                         "merchant_mcc": merchant["merchantMcc"]}}
        if request.get("referenceCheckoutId"):
            out["reference_checkout_id"] = request["referenceCheckoutId"]
        return out

    # ------------------------------------------------------------------ mandates and tokens
    def mandate_body(self, b: Binding, purpose: str, *, expire: datetime | None = None) -> dict[str, Any]:
        when = expire or datetime.now(UTC) + timedelta(seconds=self.clock_offset) + timedelta(days=1)
        return {"tokenId": b.token_id, "agentId": b.agent_id, "intentRaw": f"amp-tools conformance: {purpose}",
                "intentExpireTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "deferIdv": True}

    async def submit_mandate(self, body: dict[str, Any]) -> tuple[Answer, Answer | None]:
        """createMandateSession, then (as the person, if the wallet waits) poll inquiryMandateSession until
        COMPLETED or FAILED or the IDV timeout. The second answer is None when the create was refused."""
        create = await self.cp("createMandateSession", body)
        sid = create.json.get("sessionId")
        if not create.ok or not isinstance(sid, str):
            return create, None

        async def poll() -> Answer:
            return await self.cp("inquiryMandateSession", {"sessionId": sid})

        def settled(a: Answer) -> bool:
            return a.json.get("status") in ("COMPLETED", "FAILED") or not a.ok

        idv = obj(create.json.get("idv"))
        return create, await self._wait(poll, settled, idv.get("authSessionId"), idv.get("authUrl"))

    async def _settled_mandate(self, body: dict[str, Any], budget_minor: int, kind: str) -> Mandate:
        b = await self.binding()
        create, inquiry = await self.submit_mandate(body)
        if inquiry is None:
            raise Skip(f"createMandateSession refused an {kind} mandate: {create.describe()}")
        data = inquiry.json
        if data.get("status") == "PENDING_IDV":
            raise Skip(self.idv_skip_reason(f"the {kind} mandate (status 'PENDING_IDV')"))
        if data.get("status") != "COMPLETED" or not isinstance(data.get("l2Serialized"), str):
            raise Skip(f"the mandate never completed: {inquiry.describe()} (status {data.get('status')!r})")
        l1 = data["l1Serialized"] if isinstance(data.get("l1Serialized"), str) else b.l1
        out = Mandate(str(create.json["sessionId"]), str(data.get("mandateId") or ""), l1,
                      data["l2Serialized"], budget_minor, create, inquiry)
        parsed, _ = read(out.l2, "L2")
        if parsed is not None:
            self.learn_time(parsed)
        return out

    async def mandate(self, budget_minor: int, *, names: list[str] | None = None, mccs: list[str] | None = None,
                      purpose: str = "conformance check") -> Mandate:
        """A fresh AUTONOMOUS mandate for the merchant under test (one per check keeps checks independent)."""
        b = await self.binding()
        m = await self.merchant()
        await self.registration()  # the wallet binds the registered key in L2 cnf
        cap = self.target.max_amount_minor
        if cap is not None and budget_minor > cap:
            raise Skip(f"needs a mandate of {budget_minor} minor units ({budget_minor // m.price_minor}x the "
                       f"cheapest product, {m.price_minor}); --max-amount-minor is {cap}: raise it to "
                       f"{3 * m.price_minor} to run every purchase check")
        body = self.mandate_body(b, purpose)
        body["constraints"] = {"budgetAmount": {"cent": budget_minor, "currency": m.currency},
                               "merchantNameList": names if names is not None else [m.name],
                               "merchantMccList": mccs if mccs is not None else [m.mcc]}
        return await self._settled_mandate(body, budget_minor, "AUTONOMOUS")

    async def immediate_mandate(self, request: dict[str, Any], purpose: str) -> Mandate:
        """A fresh IMMEDIATE mandate bound to `request` (a checkout the person confirms as it is)."""
        b = await self.binding()
        body = self.mandate_body(b, purpose)
        body["checkout"] = request
        return await self._settled_mandate(body, int(request["totalAmount"]["cent"]), "IMMEDIATE")

    async def bound_key(self, mandate: Mandate) -> str:
        """The kid L2 cnf binds, when it is our key; otherwise SKIP (we cannot sign L3 for it)."""
        jwk = cnf_jwk(mandate.parsed_l2)
        if jwk is None:
            raise Skip("the AUTONOMOUS L2 binds no agent key in cnf.jwk, so no L3 can be signed for it")
        if not public_jwk_equal(jwk, self.key.public_jwk()):
            _, how = await self.registration()
            raise Skip(f"L2 cnf.jwk binds agent key {jwk.get('kid')!r}, not the checker's key ({how}); "
                       "pass --agent-key with the key the target has on file")
        return str(jwk["kid"])

    async def l3(self, mandate: Mandate, request: dict[str, Any], *, checkout_id: str | None = None,
                 ttl: int = 300, **wrong: Any) -> str:
        """A correct L3 over `request` (signing `checkout_id` as reference_checkout_id when given),
        unless `wrong` overrides kid, key, aud, iat or hash_over."""
        kid = await self.bound_key(mandate)
        key: AgentKey = wrong.pop("key", self.key)
        claim = self.chain_checkout(request)
        if checkout_id:
            claim["reference_checkout_id"] = checkout_id
        return make_l3(mandate.l2, claim, key, kid=wrong.pop("kid", kid), aud=wrong.pop("aud", self.target.audience),
                       iat=wrong.pop("iat", self.now()), ttl=ttl, hash_over=wrong.pop("hash_over", None))

    async def apply(self, mandate: Mandate, request: dict[str, Any], l3: str | None) -> Answer:
        body: dict[str, Any] = {"sessionId": mandate.session_id, "l1Serialized": mandate.l1,
                                "l2Serialized": mandate.l2, "checkout": request}
        if l3 is not None:
            body["l3Serialized"] = l3
        return await self.cp("applyCredential", body)

    async def token(self, mandate: Mandate, request: dict[str, Any], *, checkout_id: str | None = None,
                    ttl: int = 300) -> tuple[str, str, Answer]:
        """(payment token, the L3 used, the answer) for a correct request, or SKIP."""
        l3 = await self.l3(mandate, request, checkout_id=checkout_id, ttl=ttl)
        ans = await self.apply(mandate, request, l3)
        token = ans.json.get("paymentToken")
        if not ans.ok or not isinstance(token, str) or not token:
            raise Skip(f"a correct applyCredential request was refused, so this check cannot run: {ans.describe()}")
        return token, l3, ans

    async def pay(self, checkout_id: str, token: str, mandate: Mandate | None, l3: str | None) -> Answer:
        m = await self.merchant()
        body: dict[str, Any] = {"checkoutId": checkout_id, "paymentToken": token}
        if mandate is not None:
            body["l1Serialized"], body["l2Serialized"] = mandate.l1, mandate.l2
        if l3 is not None:
            body["l3Serialized"] = l3
        return await self.probe.post(f"{m.base}/startPayment", body)

    def expiry_wait(self) -> int:
        """Seconds after issuance by which a payment token must have expired (its lifetime plus a margin)."""
        ttl = self.target.token_ttl_seconds
        return ttl + min(10, max(1, ttl // 2))

    async def advance_clock(self, seconds: int) -> str:
        """Let `seconds` pass for the target: through its clock harness (a sandbox), or, when the operator
        allows waiting, by waiting; else SKIP. Returns how."""
        now = await self.probe.get(f"{self.target.admin_base}/now")
        if now.ok:
            moved = await self.probe.post(f"{self.target.admin_base}/advanceTime", {"seconds": seconds})
            if not moved.ok:
                raise Skip(f"the target refused to move its clock: {moved.describe()}")
            self.clock_offset += seconds
            return f"clock moved {seconds} s"
        if not self.target.allow_waiting:
            raise Skip(f"the target offers no clock control (GET {self.target.admin_base}/now: {now.describe()}); "
                       f"pass --allow-waiting to wait {seconds} s instead")
        if seconds > self.target.max_wait_seconds:
            raise Skip(f"this check would wait {seconds} s, longer than the run's limit of "
                       f"{self.target.max_wait_seconds} s")
        await asyncio.sleep(seconds)
        return f"waited {seconds} s"
