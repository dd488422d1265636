"""Malformed and hostile answers from AMP peers.

Every `AmpClient` method faces generated answers (garbage bytes, HTML, random JSON, envelopes
with wrong types or missing fields, secret-looking extras, truncated and oversized bodies, 4xx
and 5xx) and must return a typed result or raise `AmpError`, never leaking a planted chain
string. Through the toolkit, the payment path faces the same answers from the CP's
applyCredential and the merchant's startPayment, either instead of the real call or after the
sandbox really processed it, and the ledger must stay truthful: an unreadable answer never
commits and never releases (the reservation stays held); a second `pay` never charges twice;
`order_status` then settles the entry to what the sandbox really did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amp_tools.amp.client import AmpClient
from amp_tools.amp.models import Constraints, CpCheckout
from amp_tools.amp.secret import Secret
from amp_tools.approvals import CallbackApprover
from amp_tools.errors import AmpError, ToolError
from amp_tools.ledger import open_ledger
from amp_tools.money import Money
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit
from tests.reliability.fuzz_support import AGENT_KEY, fuzz_policy

PLANTED_JWT = "eyJhbGciOiJFUzI1NiIsImtpZCI6InBsYW50ZWQifQ.eyJzdWIiOiJwbGFudGVkLXNlY3JldCJ9.c2lnbmF0dXJlcGxhbnRlZA~"
HUGE_BODY = b'{"success": true, "data": "' + b"x" * 2_100_000 + b'"}'

SETTINGS = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])

scalar = st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=True),
                   st.text(max_size=20), st.just(PLANTED_JWT), st.just(-500))
value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=10), inner, max_size=3)),
                     max_leaves=6)
FIELDS = ["success", "data", "error", "errorCode", "errorMessage", "resultCode", "sessionId", "status", "tokenId",
          "paymentMethods", "l1Serialized", "l2Serialized", "paymentToken", "mandateId", "idv", "checkoutId",
          "transactionId", "totalAmount", "cent", "currency", "quoteId", "rate", "from", "to", "privateKey", "d",
          "merchantId", "name", "price", "id", "result", "refundId", "items", "message", "idempotent"]
envelope = st.dictionaries(st.sampled_from(FIELDS), value, max_size=8)
nested = st.fixed_dictionaries({"success": st.one_of(st.just(True), scalar)},
                               optional={"data": st.one_of(envelope, st.lists(envelope, max_size=2), value),
                                         "error": st.one_of(st.text(max_size=30), st.just(f"bad {PLANTED_JWT} x"))})


@st.composite
def responses(draw: st.DrawFn) -> tuple[int, bytes, str]:
    """(status, body, kind) of one hostile answer."""
    status = draw(st.sampled_from([200, 200, 200, 200, 201, 400, 404, 409, 422, 429, 500, 502, 503]))
    kind = draw(st.sampled_from(["bytes", "html", "json", "envelope", "nested", "truncated", "huge", "empty"]))
    if kind == "bytes":
        body = draw(st.binary(max_size=64))
    elif kind == "html":
        body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    elif kind == "json":
        body = json.dumps(draw(value)).encode()
    elif kind == "envelope":
        body = json.dumps(draw(envelope)).encode()
    elif kind == "nested":
        body = json.dumps(draw(nested)).encode()
    elif kind == "truncated":
        full = json.dumps(draw(nested)).encode()
        body = full[: draw(st.integers(0, max(0, len(full) - 1)))]
    elif kind == "huge":
        body = HUGE_BODY
    else:
        body = b""
    return status, body, kind


def readable_success(status: int, body: bytes) -> bool:
    """Whether an answer could honestly be read as 'paid' (a transaction id under success)."""
    if status != 200 and status != 201:
        return False
    try:
        data = json.loads(body)
    except ValueError:
        return False
    inner = data.get("data") if isinstance(data, dict) else None
    return (isinstance(data, dict) and data.get("success") is True and isinstance(inner, dict)
            and inner.get("success") is True and isinstance(inner.get("transactionId"), str)
            and bool(inner.get("transactionId")))


def _enveloped(body: bytes) -> bool:
    """A JSON object whose `success` is a boolean: something the client can read as an answer."""
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("success"), bool)


# ---------------------------------------------------------------------------------- the client alone
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHECKOUT = CpCheckout.build(Money(1999, "USD"), merchant_id="SUNNY-TOURS", merchant_name="Sunny", merchant_mcc="4722")
Call = Callable[[AmpClient], Awaitable[Any]]
CALLS: dict[str, Call] = {
    "add_payment_method": lambda c: c.add_payment_method(),
    "query_payment_methods": lambda c: c.query_payment_methods(session_id="S-1"),
    "create_mandate_session": lambda c: c.create_mandate_session(
        Secret("TOKEN-1"), "trip", constraints=Constraints.build(Money(1000, "USD"), merchant_names=["Sunny"]),
        intent_expire_time=datetime(2099, 1, 1, tzinfo=UTC)),
    "inquiry_mandate_session": lambda c: c.inquiry_mandate_session("S-1"),
    "apply_credential": lambda c: c.apply_credential("S-1", l1="a.b.c~", l2="a.b.c~", checkout=CHECKOUT,
                                                     mandate_type="IMMEDIATE"),
    "complete_idv": lambda c: c.complete_idv("AUTH-1"),
    "search_products": lambda c: c.search_products("/merchants/M", "tour"),
    "start_checkout": lambda c: c.start_checkout("/merchants/M", [{"productId": "P", "quantity": 1}]),
    "start_payment": lambda c: c.start_payment("/merchants/M", "CKO-1", Secret("PT-1")),
    "list_merchants": lambda c: c.list_merchants(),
    "request_quote": lambda c: c.request_quote("/merchants/M", [{"productId": "P", "quantity": 1}]),
    "counter_offer": lambda c: c.counter_offer("/merchants/M", "Q-1", Money(100, "USD")),
    "accept_quote": lambda c: c.accept_quote("/merchants/M", "Q-1"),
    "reject_quote": lambda c: c.reject_quote("/merchants/M", "Q-1"),
    "order_status": lambda c: c.order_status("/merchants/M", "CKO-1"),
    "refund": lambda c: c.refund("/merchants/M", "CKO-1", Money(100, "USD")),
    "fx_rate": lambda c: c.fx_rate("SGD", "USD"),
}


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


@pytest.mark.parametrize("method", sorted(CALLS))
def test_every_client_method_survives_hostile_answers(method: str, loop: asyncio.AbstractEventLoop) -> None:
    queue: list[tuple[int, bytes, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        status, body, _ = queue[0]
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    client = AmpClient("http://peer", transport=httpx.MockTransport(answer), retries=1, backoff=0)
    seen = {"cases": 0, "errors": 0}

    @settings(SETTINGS, max_examples=40)
    @given(batch=st.lists(responses(), min_size=5, max_size=5))
    def check(batch: list[tuple[int, bytes, str]]) -> None:
        for item in batch:
            queue[:] = [item]
            seen["cases"] += 1
            try:
                result = loop.run_until_complete(CALLS[method](client))
            except AmpError as exc:
                seen["errors"] += 1
                text = str(exc)
                assert text.strip() and len(text) <= 1000, text[:200]
                assert PLANTED_JWT[:40] not in text and "planted-secret" not in text
                assert "Traceback" not in text
                continue
            # A typed result never shows a planted chain string in its repr.
            assert PLANTED_JWT[:40] not in repr(result)

    check()
    assert seen["cases"] == 200 and seen["errors"] >= 120, seen


# ---------------------------------------------------------------------------------- through the toolkit
class Mangler(httpx.AsyncBaseTransport):
    """Forwards to the sandbox, but answers one operation with a hostile response.

    `after=True` forwards the request first (the sandbox acts) and then lies about the outcome.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.target: str | None = None
        self.answer: tuple[int, bytes, str] = (200, b"", "empty")
        self.after = False
        self.hits = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.target is None or not request.url.path.endswith(self.target):
            return await self.inner.handle_async_request(request)
        self.hits += 1
        if self.after:
            real = await self.inner.handle_async_request(request)
            await real.aread()
        status, body, _ = self.answer
        return httpx.Response(status, content=body)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, loop: asyncio.AbstractEventLoop) -> Any:
    sb = Sandbox(SandboxConfig(seed=5))
    mangler = Mangler(sb.transport())
    sb.register_agent("fuzz-agent", AGENT_KEY.public_jwk())
    client = AmpClient("http://sandbox", transport=mangler, agent_id="fuzz-agent", clock=sb.clock, backoff=0)
    folder = Path(tmp_path_factory.mktemp("fuzz-pay"))
    tk = AmpToolkit(client, fuzz_policy(), ledger=open_ledger(str(folder / "l.db"), clock=sb.clock),
                    approver=CallbackApprover(lambda r: True), agent_key=AGENT_KEY, clock=sb.clock,
                    run_id="fuzz-pay", agent_id="fuzz-agent", budget_id="default")
    specs = {s.name: s for s in tk.specs()}
    loop.run_until_complete(specs["discover_merchants"].ainvoke({}))
    loop.run_until_complete(specs["search_offers"].ainvoke({"query": "eSIM", "merchant_ids": ["SUNNY-TOURS"]}))
    until = (sb.clock.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    mandate = loop.run_until_complete(specs["request_mandate"].ainvoke(
        {"purpose": "buy eSIMs for the trip", "expires_at": until, "merchant_ids": ["SUNNY-TOURS"],
         "budget": "5000.00"}))
    assert mandate["status"] == "ACTIVE"
    return sb, tk, specs, mangler


@pytest.mark.parametrize("target", ["/credential-provider/applyCredential", "/startPayment"])
def test_hostile_answers_on_the_payment_path_keep_the_ledger_truthful(
        target: str, shop: Any, loop: asyncio.AbstractEventLoop) -> None:
    sb, tk, specs, mangler = shop
    seen = {"held": 0, "released": 0, "committed": 0}

    @settings(SETTINGS, max_examples=40)
    @given(answer=responses(), after=st.booleans())
    def check(answer: tuple[int, bytes, str], after: bool) -> None:
        ck = loop.run_until_complete(specs["checkout"].ainvoke({"offer_id": "SUNNY-TOURS:SUN-ESIM-ASIA"}))
        cid = ck["checkout_id"]
        mangler.target, mangler.answer, mangler.after = target, answer, after
        with contextlib.suppress(ToolError):
            loop.run_until_complete(specs["pay"].ainvoke({"checkout_id": cid}))
        mangler.target = None
        entries = [e for e in tk.ledger.entries_sync(limit=10_000) if e.checkout_id == cid]
        assert len(entries) == 1
        entry = entries[0]
        status, body, kind = answer
        lie = readable_success(status, body) and target.endswith("/startPayment")
        if entry.status == "committed":
            assert lie, f"committed on {kind} {status} {body[:80]!r}"
        unreadable = status >= 500 or status == 429 or (status < 400 and not _enveloped(body))
        if unreadable and target.endswith("/startPayment"):
            assert entry.status == "reserved", f"{entry.status} after an unreadable {kind} {status} answer"
        elif unreadable:
            # Only the token request was garbled: the charge request never left, so nothing can have moved.
            assert entry.status == "released", f"{entry.status} after an unreadable {kind} {status} token answer"
        seen[{"reserved": "held", "released": "released", "committed": "committed"}[entry.status]] += 1
        # A second pay never charges twice, and order_status settles the entry to the sandbox's truth.
        with contextlib.suppress(ToolError):  # a released entry may be retried, a held one never is
            loop.run_until_complete(specs["pay"].ainvoke({"checkout_id": cid}))
        settled = loop.run_until_complete(specs["order_status"].ainvoke({"checkout_id": cid}))
        charged = [p for p in sb.payments() if p.get("checkoutId") == cid and p.get("status") == "SUCCESS"]
        assert len(charged) <= 1
        rows = [e.status for e in tk.ledger.entries_sync(limit=10_000) if e.checkout_id == cid]
        assert "reserved" not in rows, rows  # order_status settled whatever was held
        if settled["status"] == "PAID":
            assert rows.count("committed") == 1, (rows, settled)
        elif not lie:
            assert rows.count("committed") == 0, (rows, settled)

    check()
    if target.endswith("/startPayment"):
        assert seen["held"] > 0, seen  # some answers were unclear after the charge request left
    else:
        assert seen["held"] == 0 and seen["released"] > 0, seen  # before it left, nothing is ever held
