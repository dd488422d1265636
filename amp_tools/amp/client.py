"""`AmpClient`: the async HTTP client for the CP, merchant and extension contracts.

One seam to the network: an optional `httpx.AsyncBaseTransport` (the sandbox runs
in-process through `httpx.ASGITransport`; the same client talks TCP to real services).

What it guarantees:

* Requests the spec forbids are refused before anything is sent, even where the reference
  services would accept them (amp-reference-wire.md 5.9, 9): AUTONOMOUS without L3, without
  a user-stated future expiry or with no merchant scope; camelCase IMMEDIATE goods;
  non-positive amounts.
* Every failure is an `AmpError` with an AMP code and a hint: business errors (HTTP 200 +
  ``success:false``) mapped from the peer's text, 422 as ``SCHEMA_VIOLATION``, unreadable
  bodies as ``BAD_RESPONSE``.
* Retries (same body, same idempotency key) only where repeating cannot double an effect.
  `apply_credential` consumes budget at the network, so after a request may have left it is
  never repeated: the caller gets ``OUTCOME_UNKNOWN`` and reconciles.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar
from urllib.parse import quote, urljoin

import httpx
from pydantic import BaseModel, ValidationError

from amp_tools import telemetry
from amp_tools.amp.chain import normalize_checkout
from amp_tools.amp.codes import RETRYABLE, hint_for, map_cp_error, redact_text
from amp_tools.amp.models import (
    AddPaymentMethodResult,
    ApplyCredentialResult,
    Checkout,
    CheckoutItem,
    Constraints,
    CpCheckout,
    FxRate,
    IdvCompletion,
    MandateSession,
    MandateSessionStatus,
    MerchantInfo,
    OrderStatus,
    PaymentMethodList,
    PaymentResult,
    Product,
    Quote,
    RefundResult,
)
from amp_tools.amp.secret import Secret
from amp_tools.clock import SYSTEM_CLOCK, Clock, utc
from amp_tools.errors import AmpError, MoneyError
from amp_tools.money import Money

__all__ = ["AmpClient", "Retry"]

M = TypeVar("M", bound=BaseModel)
_MAX_BODY = 2_000_000
# Response fields whose validation message is safe and useful to show (amounts and rates, never secrets).
_EXPLAINED_FIELDS = frozenset({"debitedAmount", "fxRate"})


class Retry(Enum):
    """How a call may be repeated after a failure."""

    SAFE = "safe"            # idempotent: retry on 5xx, timeouts and connection errors
    BEFORE_SEND = "before"   # retry only when the request certainly never left (connect errors)


def _refuse(message: str, *, code: str = "PARAM_ILLEGAL", field: str | None = None) -> AmpError:
    details = {"refused_before_send": True, **({"field": field} if field else {})}
    return AmpError(message, code=code, hint=hint_for(code), retryable=False, details=details)


def _reveal(value: Secret | str, what: str) -> str:
    text = value.reveal() if isinstance(value, Secret) else value
    if not isinstance(text, str) or not text:
        raise _refuse(f"{what} is empty; expected the value returned by the AMP service", field=what)
    return text


def _positive(money: Money, what: str) -> Money:
    if not isinstance(money, Money):
        raise _refuse(f"{what} must be a Money, got {type(money).__name__}", field=what)
    if money.minor <= 0:
        raise _refuse(f"{what} is {money}; expected a positive amount", field=what)
    return money


def _l2_mode(l2: str) -> str | None:
    """The `mode` claim of an L2 (unverified read; the network verifies)."""
    try:
        seg = l2.split("~", 1)[0].split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
        mode = payload.get("mode") if isinstance(payload, dict) else None
        return mode if isinstance(mode, str) else None
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def _l3_checkout(l3: str) -> Any:
    try:
        for disc in l3.rstrip("~").split("~")[1:]:
            item = json.loads(base64.urlsafe_b64decode(disc + "=" * (-len(disc) % 4)))
            if isinstance(item, list) and len(item) == 3 and item[1] == "checkout":
                return item[2]
    except (ValueError, UnicodeDecodeError):
        return None
    return None


def _summarise_422(body: Any) -> str:
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, list):
        return "the request did not match the service's schema"
    parts = []
    for err in detail[:5]:
        if not isinstance(err, dict):
            continue
        loc = ".".join(str(p) for p in err.get("loc", []) if p != "body") or "(body)"
        parts.append(f"{loc}: {str(err.get('msg', 'invalid'))[:120]}")
    return "; ".join(parts) or "the request did not match the service's schema"


class AmpClient:
    """Async client for a Credential Provider, merchants and the sandbox extensions."""

    def __init__(self, cp_url: str, *, network_url: str | None = None, mpp_url: str | None = None,
                 registry_url: str | None = None, base_url: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, timeout: float = 10.0, retries: int = 2,
                 backoff: float = 0.05, agent_id: str | None = None, clock: Clock | None = None) -> None:
        root = cp_url.rstrip("/")
        if root.endswith("/credential-provider"):
            root = root[: -len("/credential-provider")]
        self._cp = root + "/credential-provider"
        self._base = (base_url or root).rstrip("/")
        self._network = (network_url or self._base).rstrip("/")
        self._mpp = (mpp_url or self._base).rstrip("/")
        self._registry = (registry_url or self._base).rstrip("/")
        self._transport = transport
        self._timeout = timeout
        self._retries = max(0, int(retries))
        self._backoff = max(0.0, backoff)  # seconds between retries, not money
        self.agent_id = agent_id
        self._clock = clock or SYSTEM_CLOCK
        # One httpx client per event loop: tools get called from different threads and loops,
        # and an AsyncClient's connection pool belongs to the loop that opened it.
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AmpClient(cp={self._cp!r}, base={self._base!r})"

    # ----------------------------------------------------------------- plumbing
    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            for dead in [lp for lp in self._clients if lp.is_closed()]:
                del self._clients[dead]  # its pool died with its loop
            client = self._clients.get(loop)
            if client is None or client.is_closed:
                client = httpx.AsyncClient(transport=self._transport, timeout=self._timeout)
                self._clients[loop] = client
            return client

    async def aclose(self) -> None:
        """Close this loop's connection pool; pools of other live loops are closed on their loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            items = list(self._clients.items())
            self._clients.clear()
        for owner, client in items:
            if owner is loop:
                await client.aclose()
            elif not owner.is_closed() and owner.is_running():
                asyncio.run_coroutine_threadsafe(client.aclose(), owner)

    async def __aenter__(self) -> AmpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def merchant_url(self, merchant: str) -> str:
        """An absolute merchant base URL, or one relative to `base_url` ("/merchants/SKYLARK-AIR")."""
        if merchant.startswith(("http://", "https://")):
            return merchant.rstrip("/")
        return urljoin(self._base + "/", merchant.lstrip("/")).rstrip("/")

    async def _send(self, method: str, url: str, *, op: str, body: Mapping[str, Any] | None = None,
                    params: Mapping[str, str] | None = None, retry: Retry = Retry.SAFE) -> dict[str, Any]:
        """One AMP call (a span when telemetry is on: the operation, not its body)."""
        with telemetry.span(f"amp.call.{op}", {"amp.operation": op, "http.request.method": method}):
            return await self._send_once(method, url, op=op, body=body, params=params, retry=retry)

    async def _send_once(self, method: str, url: str, *, op: str, body: Mapping[str, Any] | None = None,
                         params: Mapping[str, str] | None = None, retry: Retry = Retry.SAFE) -> dict[str, Any]:
        """One call with the retry rule of `retry`; returns the decoded JSON object of a 2xx answer."""
        last: AmpError | None = None
        may_have_arrived = False
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(self._backoff * (2 ** (attempt - 1)))
            try:
                resp = await self._client().request(method, url, json=body, params=params)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # The request never left: safe to repeat whatever the operation.
                code = "TIMEOUT" if isinstance(exc, httpx.TimeoutException) else "NETWORK_ERROR"
                last = AmpError(f"{op}: could not connect to {url} ({type(exc).__name__})", code=code,
                                hint=hint_for(code), retryable=True, details={"operation": op})
                continue
            except Exception as exc:  # httpx errors, and whatever an in-process (ASGI) transport raises
                may_have_arrived = True
                code = "TIMEOUT" if isinstance(exc, httpx.TimeoutException) else "NETWORK_ERROR"
                if retry is Retry.BEFORE_SEND:
                    raise self._unknown(op, f"{type(exc).__name__} after the request was sent") from None
                last = AmpError(f"{op}: {type(exc).__name__} talking to {url}", code=code, hint=hint_for(code),
                                retryable=True, details={"operation": op})
                continue
            if resp.status_code >= 500 or resp.status_code in (408, 429):
                may_have_arrived = True
                if retry is Retry.BEFORE_SEND:
                    raise self._unknown(op, f"HTTP {resp.status_code} from the service")
                last = AmpError(f"{op}: HTTP {resp.status_code} from {url}", code="NETWORK_ERROR",
                                hint=hint_for("NETWORK_ERROR"), retryable=True, status=resp.status_code,
                                details={"operation": op})
                continue
            return self._decode(resp, op)
        assert last is not None
        last.details["attempts"] = self._retries + 1
        # Whether any attempt could have reached the service: callers holding money on this call
        # (the Guard) free it at once when none did, and keep it reserved otherwise.
        last.details["sent"] = may_have_arrived
        raise last

    @staticmethod
    def _unknown(op: str, why: str) -> AmpError:
        return AmpError(f"{op}: outcome unknown ({why}); it was not repeated because it may already have taken "
                        "effect", code="OUTCOME_UNKNOWN", hint=hint_for("OUTCOME_UNKNOWN"), retryable=False,
                        details={"operation": op})

    @staticmethod
    def _decode(resp: httpx.Response, op: str) -> dict[str, Any]:
        if len(resp.content) > _MAX_BODY:
            raise AmpError(f"{op}: response body of {len(resp.content)} bytes is too large", code="BAD_RESPONSE",
                           hint=hint_for("BAD_RESPONSE"), retryable=True, status=resp.status_code)
        try:
            data = json.loads(resp.content) if resp.content else None
        except (ValueError, RecursionError):
            data = None
            parsed = False
        else:
            parsed = True
        if resp.status_code == 422:
            summary = _summarise_422(data)
            raise AmpError(f"{op}: request rejected by schema: {redact_text(summary)}", code="SCHEMA_VIOLATION",
                           hint=hint_for("SCHEMA_VIOLATION"), status=422, details={"operation": op})
        if resp.status_code >= 400 and isinstance(data, dict) and data.get("success") is False:
            err = AmpClient._business_error(data, op)
            err.status = resp.status_code
            raise err
        if resp.status_code >= 400:
            text = ""
            if isinstance(data, dict):
                text = str(data.get("detail") or data.get("error") or data.get("errorMessage") or "")
            code = "NOT_FOUND" if resp.status_code == 404 else f"HTTP_{resp.status_code}"
            raise AmpError(f"{op}: HTTP {resp.status_code} {redact_text(text)}".rstrip(), code=code,
                           status=resp.status_code, details={"operation": op})
        if not parsed or not isinstance(data, dict):
            raise AmpError(f"{op}: response is not a JSON object", code="BAD_RESPONSE",
                           hint=hint_for("BAD_RESPONSE"), retryable=True, status=resp.status_code,
                           details={"operation": op})
        return data

    @staticmethod
    def _business_error(data: dict[str, Any], op: str) -> AmpError:
        text = data.get("error") or data.get("errorMessage") or data.get("resultMessage")
        if isinstance(data.get("result"), dict):  # MPP / Alipay+ style envelope
            text = text or data["result"].get("resultMessage")
        text = text if isinstance(text, str) else ""
        result_code = data.get("resultCode")
        if isinstance(data.get("result"), dict):
            result_code = result_code or data["result"].get("resultCode")
        peer_code = data.get("errorCode")
        code = map_cp_error(text, result_code if isinstance(result_code, str) else None,
                            peer_code if isinstance(peer_code, str) else None)
        details: dict[str, Any] = {"operation": op}
        if isinstance(peer_code, str):
            details["peer_code"] = peer_code
        shown = redact_text(text) or "no reason given"
        return AmpError(f"{op} refused: {shown}", code=code, hint=hint_for(code), retryable=code in RETRYABLE,
                        status=200, details=details)

    def _check(self, data: dict[str, Any], op: str) -> None:
        ok = data.get("success")
        if ok is True:
            return
        if ok is False:
            raise self._business_error(data, op)
        raise AmpError(f"{op}: response has no boolean 'success'", code="BAD_RESPONSE",
                       hint=hint_for("BAD_RESPONSE"), retryable=True, details={"operation": op})

    @staticmethod
    def _model(model: type[M], data: Any, op: str) -> M:
        try:
            return model.model_validate(data)
        except (ValidationError, MoneyError, ValueError, TypeError) as exc:
            where = ""
            if isinstance(exc, ValidationError) and exc.errors():
                first = exc.errors()[0]
                loc = first.get("loc", ())
                where = " at " + ".".join(str(p) for p in loc)
                if loc and loc[-1] in _EXPLAINED_FIELDS and first.get("type") == "value_error":
                    where += ": " + str(first.get("msg", "")).removeprefix("Value error, ")
            raise AmpError(f"{op}: response does not have the expected shape{where}", code="BAD_RESPONSE",
                           hint=hint_for("BAD_RESPONSE"), retryable=True, details={"operation": op}) from None

    async def _cp_call(self, op: str, body: dict[str, Any], model: type[M], retry: Retry) -> M:
        data = await self._send("POST", f"{self._cp}/{op}", op=op, body=body, retry=retry)
        self._check(data, op)
        return self._model(model, data, op)

    async def _merchant_call(self, merchant: str, path: str, op: str, body: dict[str, Any], retry: Retry) -> Any:
        data = await self._send("POST", f"{self.merchant_url(merchant)}/{path}", op=op, body=body, retry=retry)
        self._check(data, op)
        return data.get("data")

    # ----------------------------------------------------------------- CP: wallet binding
    async def add_payment_method(self, wallet_name: str = "ALIPAY_HK", *,
                                 agent_id: str | None = None) -> AddPaymentMethodResult:
        body = {"walletName": wallet_name}
        if agent_id or self.agent_id:
            body["agentId"] = agent_id or self.agent_id or ""
        # A repeat would start a second binding (and a second IDV prompt): only before send.
        return await self._cp_call("addPaymentMethod", body, AddPaymentMethodResult, Retry.BEFORE_SEND)

    async def query_payment_methods(self, *, session_id: str | None = None, token_id: Secret | str | None = None,
                                    wallet_name: str | None = None) -> PaymentMethodList:
        body: dict[str, Any] = {}
        if session_id:
            body["sessionId"] = session_id
        if token_id is not None:
            body["tokenId"] = _reveal(token_id, "token_id")
        if wallet_name:
            body["walletName"] = wallet_name
        if not body:
            # The reference answers {} with every user's tokens; never ask for that.
            raise _refuse("query_payment_methods needs session_id, token_id or wallet_name", field="session_id")
        return await self._cp_call("queryPaymentMethodList", body, PaymentMethodList, Retry.SAFE)

    # ----------------------------------------------------------------- CP: mandates
    async def create_mandate_session(self, token_id: Secret | str, intent_raw: str, *,
                                     checkout: CpCheckout | None = None, constraints: Constraints | None = None,
                                     intent_expire_time: datetime | None = None, defer_idv: bool = True,
                                     agent_id: str | None = None) -> MandateSessionStatus:
        """IMMEDIATE (`checkout`, no constraints) or AUTONOMOUS (`constraints` + a user-stated expiry)."""
        token = _reveal(token_id, "token_id")
        if not isinstance(intent_raw, str) or not intent_raw.strip():
            raise _refuse("intent_raw is empty; pass the user's request in their words", field="intent_raw")
        if (checkout is None) == (constraints is None):
            raise _refuse("pass exactly one of checkout (IMMEDIATE) or constraints (AUTONOMOUS); the reference CP "
                          "silently turns anything else into an AUTONOMOUS mandate with demo defaults",
                          field="checkout")
        body: dict[str, Any] = {"tokenId": token, "intentRaw": intent_raw, "deferIdv": bool(defer_idv)}
        if agent_id or self.agent_id:
            body["agentId"] = agent_id or self.agent_id
        if intent_expire_time is not None:
            expiry = utc(intent_expire_time)
            if expiry <= self._clock.now():
                raise _refuse(f"intent_expire_time {expiry.isoformat()} is not in the future; ask the user for a "
                              "validity that has not passed", field="intent_expire_time")
            body["intentExpireTime"] = expiry.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if constraints is not None:
            if intent_expire_time is None:
                raise _refuse("an AUTONOMOUS mandate needs the expiry the user stated; none was given and no default "
                              "is allowed", code="MANDATE_EXPIRY_REQUIRED", field="intent_expire_time")
            _positive(constraints.budget_amount.money, "constraints.budget_amount")
            names = [n for n in constraints.merchant_name_list if n.strip()]
            mccs = [m for m in constraints.merchant_mcc_list if m.strip()]
            if not names and not mccs:
                raise _refuse("an AUTONOMOUS mandate needs at least one merchant name or MCC in its scope; the "
                              "wallet never completes a mandate with both lists empty", field="constraints")
            body["constraints"] = constraints.wire()
        if checkout is not None:
            _positive(checkout.total_amount.money, "checkout.total_amount")
            bad = checkout.camel_keys_in_goods()
            if bad:
                raise _refuse(f"checkout goods use camelCase keys {sorted(set(bad))}; send goods with snake_case "
                              "keys (camelCase breaks the mandate's checkout hash)", field="checkout.goods")
            body["checkout"] = checkout.wire()
        return await self._cp_call("createMandateSession", body, MandateSessionStatus, Retry.BEFORE_SEND)

    async def inquiry_mandate_session(self, session_id: str) -> MandateSession:
        if not session_id:
            raise _refuse("session_id is empty", field="session_id")
        return await self._cp_call("inquiryMandateSession", {"sessionId": session_id}, MandateSession, Retry.SAFE)

    async def wait_for_mandate(self, session_id: str, timeout: float, interval: float = 0.25) -> MandateSession:
        """Poll until the wallet completes the mandate; `IDV_TIMEOUT` if it does not within `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            session = await self.inquiry_mandate_session(session_id)
            if session.status == "COMPLETED":
                if session.l2_serialized is None or session.l1_serialized is None:
                    raise AmpError(f"inquiryMandateSession: session {session_id} is COMPLETED without L1/L2",
                                   code="BAD_RESPONSE", hint=hint_for("BAD_RESPONSE"), retryable=True)
                return session
            if session.status == "FAILED":
                raise AmpError(f"mandate session {session_id} failed at the wallet (declined or timed out)",
                               code="IDV_FAILED", hint=hint_for("IDV_FAILED"))
            if loop.time() + interval > deadline:
                raise AmpError(f"mandate session {session_id} is still {session.status} after {timeout:g}s",
                               code="IDV_TIMEOUT", hint=hint_for("PENDING_IDV"), retryable=True,
                               details={"session_id": session_id, "status": session.status})
            await asyncio.sleep(interval)

    async def apply_credential(self, session_id: str, *, l1: Secret | str, l2: Secret | str, checkout: CpCheckout,
                               l3: Secret | str | None = None, mandate_type: str | None = None,
                               fx_quote_id: str | None = None) -> ApplyCredentialResult:
        """Ask for a payment token. Never repeated once the request may have left (budget is consumed).

        `fx_quote_id` (the `quote_id` of `fx_rate`, a sandbox extension) asks the network to debit
        at that quote's rate while it is valid; the result's `fx_quote_id` says whether it did.
        """
        if not session_id:
            raise _refuse("session_id is empty; use the mandate session id", field="session_id")
        if fx_quote_id is not None and (not isinstance(fx_quote_id, str) or not fx_quote_id.strip()):
            raise _refuse(f"fx_quote_id {fx_quote_id!r} is not a quote id; pass the quote_id of fx_rate() or None",
                          field="fx_quote_id")
        l1s, l2s = _reveal(l1, "l1"), _reveal(l2, "l2")
        mode = mandate_type or _l2_mode(l2s)
        if mode not in ("IMMEDIATE", "AUTONOMOUS"):
            raise _refuse("cannot tell the mandate type: pass mandate_type or the L2 exactly as the CP returned it",
                          field="mandate_type")
        _positive(checkout.total_amount.money, "checkout.total_amount")
        body: dict[str, Any] = {"sessionId": session_id, "l1Serialized": l1s, "l2Serialized": l2s}
        if mode == "AUTONOMOUS":
            if l3 is None:
                raise _refuse("an AUTONOMOUS payment credential needs L3 signed by the agent key; the reference "
                              "network would issue one without it, the spec does not allow that", field="l3")
            l3s = _reveal(l3, "l3")
            signed = _l3_checkout(l3s)
            try:
                same = signed is not None and normalize_checkout(signed) == normalize_checkout(checkout.wire())
            except MoneyError:
                same = False
            if not same:
                raise _refuse("the L3 checkout differs from the checkout sent with it; build L3 from this checkout",
                              field="l3")
            body["l3Serialized"] = l3s
        elif l3 is not None:
            raise _refuse("an IMMEDIATE mandate takes no L3", field="l3")
        else:
            bad = checkout.camel_keys_in_goods()
            if bad:
                raise _refuse(f"checkout goods use camelCase keys {sorted(set(bad))}; send the checkout exactly as "
                              "at mandate creation, with snake_case goods", field="checkout.goods")
        body["checkout"] = checkout.wire()
        if fx_quote_id is not None:
            body["fxQuoteId"] = fx_quote_id
        return await self._cp_call("applyCredential", body, ApplyCredentialResult, Retry.BEFORE_SEND)

    async def complete_idv(self, auth_session_id: str, approve: bool = True) -> IdvCompletion:
        """The person's side of IDV (sandbox ``/mpp/completeIdv``). Test harness only; never a model tool."""
        body: dict[str, Any] = {"authSessionId": auth_session_id}
        if not approve:
            body["approve"] = False
        data = await self._send("POST", f"{self._mpp}/mpp/completeIdv", op="completeIdv", body=body,
                                retry=Retry.BEFORE_SEND)
        result = data.get("result")
        if not isinstance(result, dict) or result.get("resultStatus") != "S":
            raise self._business_error(data, "completeIdv")
        return self._model(IdvCompletion, data, "completeIdv")

    # ----------------------------------------------------------------- merchant
    async def search_products(self, merchant: str, query: str) -> list[Product]:
        if not isinstance(query, str) or not query.strip():
            raise _refuse("query is empty; pass keywords, or '*' for everything", field="query")
        data = await self._merchant_call(merchant, "searchProducts", "searchProducts", {"query": query}, Retry.SAFE)
        if data is None:
            return []
        if not isinstance(data, list):
            raise AmpError("searchProducts: data is not a list", code="BAD_RESPONSE", hint=hint_for("BAD_RESPONSE"),
                           retryable=True)
        return [self._model(Product, item, "searchProducts") for item in data]

    @staticmethod
    def _items(items: Sequence[CheckoutItem | Mapping[str, Any]]) -> list[dict[str, Any]]:
        if not items:
            raise _refuse("items is empty; pass at least one {productId, quantity}", field="items")
        out = []
        for i, raw in enumerate(items):
            try:
                item = raw if isinstance(raw, CheckoutItem) else CheckoutItem.model_validate(raw)
            except ValidationError:
                raise _refuse(f"items[{i}] must be {{productId: str, quantity: int}}", field=f"items[{i}]") from None
            if item.quantity < 1:
                raise _refuse(f"items[{i}].quantity is {item.quantity}; expected at least 1", field=f"items[{i}]")
            out.append({"productId": item.product_id, "quantity": item.quantity})
        return out

    async def start_checkout(self, merchant: str, items: Sequence[CheckoutItem | Mapping[str, Any]]) -> Checkout:
        body = {"items": self._items(items)}
        # A repeat makes a second (unpaid, harmless) checkout; still, only before send.
        data = await self._merchant_call(merchant, "startCheckout", "startCheckout", body, Retry.BEFORE_SEND)
        return self._model(Checkout, data, "startCheckout")

    async def start_payment(self, merchant: str, checkout_id: str, payment_token: Secret | str, *,
                            l1: Secret | str | None = None, l2: Secret | str | None = None,
                            l3: Secret | str | None = None, idempotency_key: str | None = None) -> PaymentResult:
        """Pay a checkout with a payment token; idempotent per checkoutId, so retried with the same body."""
        if not checkout_id:
            raise _refuse("checkout_id is empty", field="checkout_id")
        body: dict[str, Any] = {"checkoutId": checkout_id, "paymentToken": _reveal(payment_token, "payment_token"),
                                "idempotencyKey": idempotency_key or f"pay:{checkout_id}"}
        for name, value in (("l1Serialized", l1), ("l2Serialized", l2), ("l3Serialized", l3)):
            if value is not None:
                body[name] = _reveal(value, name)
        data = await self._merchant_call(merchant, "startPayment", "startPayment", body, Retry.SAFE)
        result = self._model(PaymentResult, data, "startPayment")
        if not result.success or not result.transaction_id:
            raise AmpError(f"startPayment: payment not completed: {redact_text(result.message or 'no message')}",
                           code=map_cp_error(result.message, fallback="PAYMENT_FAILED"),
                           hint=hint_for("OUTCOME_UNKNOWN"), details={"checkout_id": checkout_id})
        return result

    # ----------------------------------------------------------------- extensions
    async def list_merchants(self, *, query: str | None = None, category: str | None = None,
                             region: str | None = None, currency: str | None = None) -> list[MerchantInfo]:
        params = {k: v for k, v in (("query", query), ("category", category), ("region", region),
                                    ("currency", currency)) if v}
        data = await self._send("GET", f"{self._registry}/registry/merchants", op="listMerchants", params=params)
        self._check(data, "listMerchants")
        items = data.get("data") or []
        if not isinstance(items, list):
            raise AmpError("listMerchants: data is not a list", code="BAD_RESPONSE", hint=hint_for("BAD_RESPONSE"),
                           retryable=True)
        return [self._model(MerchantInfo, m, "listMerchants") for m in items]

    async def request_quote(self, merchant: str, items: Sequence[CheckoutItem | Mapping[str, Any]]) -> Quote:
        data = await self._merchant_call(merchant, "quotes", "requestQuote", {"items": self._items(items)},
                                         Retry.SAFE)
        return self._model(Quote, data, "requestQuote")

    @staticmethod
    def _quote_path(quote_id: str, action: str) -> str:
        if not quote_id:
            raise _refuse("quote_id is empty", field="quote_id")
        return f"quotes/{quote(quote_id, safe='')}/{action}"

    async def counter_offer(self, merchant: str, quote_id: str, offer: Money) -> Quote:
        body = {"offerAmount": {"cent": _positive(offer, "offer").minor, "currency": offer.currency}}
        # Each counter uses up a negotiation round; never repeat one that may have arrived.
        data = await self._merchant_call(merchant, self._quote_path(quote_id, "counter"), "counterOffer", body,
                                         Retry.BEFORE_SEND)
        return self._model(Quote, data, "counterOffer")

    async def accept_quote(self, merchant: str, quote_id: str) -> Checkout:
        data = await self._merchant_call(merchant, self._quote_path(quote_id, "accept"), "acceptQuote", {},
                                         Retry.BEFORE_SEND)
        return self._model(Checkout, data, "acceptQuote")

    async def reject_quote(self, merchant: str, quote_id: str) -> Quote:
        data = await self._merchant_call(merchant, self._quote_path(quote_id, "reject"), "rejectQuote", {},
                                         Retry.SAFE)
        return self._model(Quote, data, "rejectQuote")

    async def order_status(self, merchant: str, checkout_id: str) -> OrderStatus:
        if not checkout_id:
            raise _refuse("checkout_id is empty", field="checkout_id")
        data = await self._merchant_call(merchant, "orderStatus", "orderStatus", {"checkoutId": checkout_id},
                                         Retry.SAFE)
        return self._model(OrderStatus, data, "orderStatus")

    async def refund(self, merchant: str, checkout_id: str, amount: Money, reason: str = "", *,
                     idempotency_key: str | None = None) -> RefundResult:
        if not checkout_id:
            raise _refuse("checkout_id is empty", field="checkout_id")
        body: dict[str, Any] = {"checkoutId": checkout_id,
                                "amount": {"cent": _positive(amount, "amount").minor, "currency": amount.currency},
                                "reason": reason}
        if idempotency_key:
            body["idempotencyKey"] = idempotency_key
        # Money moves back: never repeat a refund that may have arrived.
        data = await self._merchant_call(merchant, "refund", "refund", body, Retry.BEFORE_SEND)
        return self._model(RefundResult, data, "refund")

    async def fx_rate(self, from_currency: str, to_currency: str) -> FxRate:
        params = {"from": from_currency, "to": to_currency}
        data = await self._send("GET", f"{self._network}/network/fxRate", op="fxRate", params=params)
        self._check(data, "fxRate")
        return self._model(FxRate, data.get("data"), "fxRate")
