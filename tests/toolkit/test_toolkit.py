"""The toolkit's tools end to end against the in-process sandbox: amounts, states, ledger and network agree."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from amp_tools.approvals import ApprovalDecision, CallbackApprover
from amp_tools.errors import AmpError, InvalidArguments, NotFound, PolicyViolation, ToolError
from amp_tools.ledger import open_ledger
from amp_tools.money import Money
from amp_tools.policy import parse_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit, WalletAction

BASE_POLICY: dict[str, Any] = {
    "currency": "USD", "total_budget": "1200.00", "per_transaction_max": "600.00",
    "mccs": {"allow": ["3000-3299", "7011", "7512"]}, "negotiation": {"max_rounds": 2},
}


class Harness:
    def __init__(self, tmp: Path, policy: dict[str, Any] | None = None, *, person: bool = True,
                 approve: bool = True) -> None:
        self.sandbox = Sandbox(SandboxConfig(idv_mode="manual", seed=11))
        self.asked: list[Any] = []
        self.wallet: list[WalletAction] = []

        async def wallet(action: WalletAction) -> None:
            self.wallet.append(action)
            self.sandbox.complete_idv(action.auth_session_id)

        def approver(request: Any) -> ApprovalDecision:
            self.asked.append(request)
            return ApprovalDecision(approved=approve, approver="tester")

        self.toolkit = AmpToolkit.for_sandbox(
            self.sandbox, parse_policy({**BASE_POLICY, **(policy or {})}),
            ledger=open_ledger(tmp / "ledger.db", clock=self.sandbox.clock),
            approver=CallbackApprover(approver), wallet_prompt=wallet if person else None, budget_id="default")
        self.tools = {s.name: s for s in self.toolkit.specs()}

    async def call(self, name: str, **args: Any) -> dict[str, Any]:
        return await self.tools[name].ainvoke(args)

    def until(self, days: int = 7) -> str:
        return (self.sandbox.clock.now() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def offer(self, query: str, category: str, words: str) -> str:
        found = await self.call("search_offers", query=query, category=category)
        return next(o["offer_id"] for o in found["offers"] if words in o["name"])

    async def entries(self) -> list[Any]:
        return list(await self.toolkit.ledger.entries("default"))

    async def close(self) -> None:
        await self.toolkit.aclose()
        await self.toolkit.ledger.close()


@pytest.fixture
async def h(tmp_path: Path) -> Any:
    harness = Harness(tmp_path)
    yield harness
    await harness.close()


async def test_discovery_hides_merchants_the_policy_cannot_pay(h: Harness) -> None:
    found = await h.call("discover_merchants")
    ids = {m["merchant_id"] for m in found["merchants"]}
    assert "SUNNY-TOURS" not in ids  # MCC 4722 is outside the allow list
    assert {"SKYLARK-AIR", "KL-GRAND-HOTEL", "ZOOM-CARS"} <= ids
    assert "not shown" in found["note"]


async def test_search_converts_rounding_up_and_sorts_by_budget_price(h: Harness) -> None:
    found = await h.call("search_offers", query="hotel", category="hotel")
    prices = [Money.parse(o["price_in_budget_currency"]["amount"], "USD") for o in found["offers"]]
    assert prices == sorted(prices)
    superior = next(o for o in found["offers"] if "Superior" in o["name"])
    assert superior["price"] == {"amount": "580.00", "currency": "MYR"}
    rate = await h.toolkit.fx_rate("MYR", "USD")
    exact = Money.parse("580.00", "MYR").to_decimal() * rate
    shown = Money.parse(superior["price_in_budget_currency"]["amount"], "USD").to_decimal()
    assert exact <= shown < exact + Money(1, "USD").to_decimal()
    capped = await h.call("search_offers", query="hotel", category="hotel", max_price="130.00")
    assert all(Money.parse(o["price_in_budget_currency"]["amount"], "USD") <= Money.parse("130.00", "USD")
               for o in capped["offers"]) and len(capped["offers"]) < len(found["offers"])


async def test_delegated_payment_ledger_matches_network(h: Harness) -> None:
    await h.call("discover_merchants", region="MY")
    mandate = await h.call("request_mandate", purpose="KL trip", expires_at=h.until())
    assert mandate["status"] == "ACTIVE" and mandate["budget"] == {"amount": "1200.00", "currency": "USD"}
    assert [a.kind for a in h.wallet] == ["bind_wallet", "confirm_mandate"]
    ck = await h.call("checkout", offer_id=await h.offer("flight Kuala Lumpur", "flight", "08:00"))
    paid = await h.call("pay", checkout_id=ck["checkout_id"])
    assert paid["status"] == "paid" and paid["mode"] == "delegated"
    [entry] = await h.entries()
    [record] = h.sandbox.payments()
    assert record["checkoutId"] == ck["checkout_id"] and record["status"] == "SUCCESS"
    assert entry.amount == Money.from_wire(record["amount"])
    assert entry.budget_amount == Money.from_wire(record["walletAmount"])  # same rate, same rounding
    assert paid["mandate_remaining"] == (Money.parse("1200.00", "USD") - entry.budget_amount).to_public()
    view = h.sandbox.mandate(mandate["mandate_id"])
    assert Money.from_wire(view["budget"]["remainingAmount"]) == Money.parse("1200.00", "USD") - entry.budget_amount


async def test_human_present_purchase_confirmed_in_wallet(h: Harness) -> None:
    ck = await h.call("checkout", offer_id=await h.offer("car", "car", "Compact"), quantity=2)
    paid = await h.call("pay", checkout_id=ck["checkout_id"])
    assert paid["mode"] == "human_present"
    assert [a.kind for a in h.wallet] == ["bind_wallet", "confirm_purchase"]
    assert "17600 JPY" in h.wallet[-1].summary
    [record] = h.sandbox.payments()
    assert Money.from_wire(record["amount"]) == Money.parse("17600", "JPY")


async def test_wallet_pending_without_a_person_then_resumed(tmp_path: Path) -> None:
    h = Harness(tmp_path, person=False)
    try:
        ck = await h.call("checkout", offer_id=await h.offer("car", "car", "Compact"))
        with pytest.raises(ToolError) as caught:
            await h.call("pay", checkout_id=ck["checkout_id"])
        assert caught.value.code == "WALLET_CONFIRMATION_REQUIRED"
        assert [e.status for e in await h.entries()] == ["released"]
        # The person links the wallet in the wallet app (never through a tool) and the agent retries.
        h.sandbox.complete_idv(h.toolkit.state.wallet.auth_session_id or "")
        with pytest.raises(ToolError) as again:
            await h.call("pay", checkout_id=ck["checkout_id"])
        assert again.value.code == "WALLET_CONFIRMATION_REQUIRED"  # now the purchase itself awaits the person
        state = h.toolkit.state.checkouts[ck["checkout_id"]]
        h.sandbox.complete_idv(state.immediate_auth_session or "")
        paid = await h.call("pay", checkout_id=ck["checkout_id"])
        assert paid["status"] == "paid" and len(h.sandbox.payments()) == 1
        assert sorted(e.status for e in await h.entries()) == ["committed", "released", "released"]
    finally:
        await h.close()


async def test_mandate_needs_user_stated_expiry_and_fits_the_policy(h: Harness) -> None:
    with pytest.raises(InvalidArguments) as no_expiry:
        await h.call("request_mandate", purpose="trip")
    assert "never invent" in no_expiry.value.hint
    with pytest.raises(PolicyViolation) as too_big:
        await h.call("request_mandate", purpose="trip", budget="5000.00", expires_at=h.until())
    assert too_big.value.rule == "total_budget"
    with pytest.raises(InvalidArguments):
        await h.call("request_mandate", purpose="trip", expires_at="2001-01-01T00:00:00Z")


async def test_negotiation_limits_come_from_the_policy(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"negotiation": {"max_rounds": 1}})
    try:
        quote = await h.call("request_quote", offer_id=await h.offer("hotel", "hotel", "Superior"), quantity=2)
        assert quote["negotiation_rounds_left"] == 1
        with pytest.raises(InvalidArguments):
            await h.call("negotiate", quote_id=quote["quote_id"], offer_amount="1160.00")  # not below the quote
        countered = await h.call("negotiate", quote_id=quote["quote_id"], offer_amount="900.00")
        assert Money.parse(countered["total"]["amount"], "MYR") < Money.parse("1160.00", "MYR")
        with pytest.raises(PolicyViolation) as caught:
            await h.call("negotiate", quote_id=quote["quote_id"], offer_amount="1000.00")
        assert caught.value.rule == "negotiation.max_rounds"
        ck = await h.call("accept_quote", quote_id=quote["quote_id"])
        assert ck["total"]["amount"] == countered["total"]["amount"]
    finally:
        await h.close()


async def test_offer_above_policy_max_offer_is_refused(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"negotiation": {"max_rounds": 3, "max_offer": "100.00"}})
    try:
        quote = await h.call("request_quote", offer_id=await h.offer("hotel", "hotel", "Superior"), quantity=2)
        with pytest.raises(PolicyViolation) as caught:
            await h.call("negotiate", quote_id=quote["quote_id"], offer_amount="1000.00")  # ~210 USD
        assert caught.value.rule == "negotiation.max_offer"
    finally:
        await h.close()


async def test_timeout_after_charge_is_settled_by_order_status_never_paid_twice(h: Harness) -> None:
    await h.call("discover_merchants", region="MY")
    await h.call("request_mandate", purpose="trip", expires_at=h.until())
    ck = await h.call("checkout", offer_id=await h.offer("flight Kuala Lumpur", "flight", "08:00"))
    h.sandbox.faults.arm("merchant.startPayment", "timeout_after", count=3)
    with pytest.raises(AmpError) as caught:
        await h.call("pay", checkout_id=ck["checkout_id"])
    assert caught.value.code == "OUTCOME_UNKNOWN"
    assert [e.status for e in await h.entries()] == ["reserved"]  # the money stays held
    status = await h.call("order_status", checkout_id=ck["checkout_id"])
    assert status["status"] == "PAID" and "now records it as paid" in status["ledger"]
    again = await h.call("pay", checkout_id=ck["checkout_id"])
    assert again["status"] == "already_paid"
    assert len(h.sandbox.payments()) == 1 and [e.status for e in await h.entries()] == ["committed"]


async def test_declined_payment_releases_then_retry_pays_once(h: Harness) -> None:
    await h.call("discover_merchants", region="MY")
    await h.call("request_mandate", purpose="trip", expires_at=h.until())
    ck = await h.call("checkout", offer_id=await h.offer("flight Kuala Lumpur", "flight", "08:00"))
    h.sandbox.faults.arm("mpp.pay", "decline")
    with pytest.raises(AmpError):
        await h.call("pay", checkout_id=ck["checkout_id"])
    assert [e.status for e in await h.entries()] == ["released"]
    paid = await h.call("pay", checkout_id=ck["checkout_id"])
    assert paid["status"] == "paid"
    assert [p["status"] for p in h.sandbox.payments()].count("SUCCESS") == 1


async def test_refund_returns_money_to_the_budget(h: Harness) -> None:
    ck = await h.call("checkout", offer_id=await h.offer("car", "car", "Compact"), quantity=3)
    await h.call("pay", checkout_id=ck["checkout_id"])
    before = await h.call("budget_status")
    refunded = await h.call("refund", checkout_id=ck["checkout_id"], amount="8800", reason="one day less")
    assert refunded["total_refunded"] == {"amount": "8800", "currency": "JPY"}
    after = await h.call("budget_status")
    assert Money.parse(after["total"]["used"]["amount"], "USD") < Money.parse(before["total"]["used"]["amount"], "USD")
    with pytest.raises(InvalidArguments):
        await h.call("refund", checkout_id=ck["checkout_id"], amount="90000")
    status = await h.call("order_status", checkout_id=ck["checkout_id"])
    assert status["status"] == "PARTIALLY_REFUNDED" and status["refunded"]["amount"] == "8800"


async def test_unknown_ids_and_bad_arguments_change_nothing(h: Harness) -> None:
    with pytest.raises(NotFound):
        await h.call("pay", checkout_id="CKO-NOPE")
    with pytest.raises(InvalidArguments) as caught:
        await h.call("search_offers", query="hotel", max_price=12.5)
    assert "max_price" in caught.value.message
    with pytest.raises(InvalidArguments):
        await h.call("pay", checkout_id="CKO-1", approved=True)  # no tool accepts an approval
    assert await h.entries() == [] and h.sandbox.payments() == []


async def test_reconcile_after_a_crash_commits_what_the_merchant_charged(h: Harness) -> None:
    await h.call("discover_merchants", region="MY")
    await h.call("request_mandate", purpose="trip", expires_at=h.until())
    paid_ck = await h.call("checkout", offer_id=await h.offer("flight Kuala Lumpur", "flight", "08:00"))
    lost_ck = await h.call("checkout", offer_id=await h.offer("hotel", "hotel", "Superior"))
    h.sandbox.faults.arm("merchant.startPayment", "timeout_after", count=3)
    with pytest.raises(AmpError):
        await h.call("pay", checkout_id=paid_ck["checkout_id"])
    h.sandbox.faults.arm("merchant.startPayment", "timeout_before", count=3)
    with pytest.raises(AmpError):
        await h.call("pay", checkout_id=lost_ck["checkout_id"])
    assert sorted(e.status for e in await h.entries()) == ["reserved", "reserved"]
    h.sandbox.clock.advance(minutes=5)
    report = await h.toolkit.reconcile()
    assert len(report.committed) == 1 and len(report.released) == 1 and not report.unknown
    by_checkout = {e.checkout_id: e for e in await h.entries()}
    assert by_checkout[paid_ck["checkout_id"]].status == "committed"
    assert by_checkout[lost_ck["checkout_id"]].status == "released"
    assert [p["checkoutId"] for p in h.sandbox.payments() if p["status"] == "SUCCESS"] == [paid_ck["checkout_id"]]


async def test_accepted_quote_must_match_the_checkout_price(h: Harness) -> None:
    quote = await h.call("request_quote", offer_id=await h.offer("hotel", "hotel", "Superior"), quantity=2)
    h.toolkit.state.quotes[quote["quote_id"]].total = Money.parse("1.00", "MYR")  # what the model agreed to
    with pytest.raises(AmpError) as caught:
        await h.call("accept_quote", quote_id=quote["quote_id"])
    assert caught.value.code == "QUOTE_MISMATCH"
    assert not h.toolkit.state.checkouts


async def test_tampered_mandate_chain_is_refused_end_to_end(h: Harness) -> None:
    import base64
    import json

    from amp_tools.amp.secret import Secret

    await h.call("discover_merchants", region="MY")
    await h.call("request_mandate", purpose="trip", expires_at=h.until())
    mandate = h.toolkit.state.mandates[-1]
    assert mandate.l2 is not None
    parts = mandate.l2.reveal().split("~")
    # Raise the budget inside the signed intent disclosure: the digest no longer matches the signed _sd.
    for i, part in enumerate(parts[1:-1], start=1):
        salt, name, value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        if name == "intent":
            value["constraints"]["budget_amount"]["amount"] = 99_999_999
            parts[i] = base64.urlsafe_b64encode(json.dumps([salt, name, value]).encode()).decode().rstrip("=")
    mandate.l2 = Secret("~".join(parts))
    ck = await h.call("checkout", offer_id=await h.offer("flight Kuala Lumpur", "flight", "08:00"))
    with pytest.raises(AmpError) as caught:
        await h.call("pay", checkout_id=ck["checkout_id"])
    assert caught.value.code in ("CHAIN_INVALID", "PARAM_ILLEGAL")
    assert [e.status for e in await h.entries()] == ["released"]
    assert h.sandbox.payments() == []
