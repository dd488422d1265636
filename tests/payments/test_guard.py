"""The Guard: the one path money moves through. Amounts, ledger rows and audit records are asserted."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amp_tools.approvals import (
    ApprovalDecision,
    ApprovalStore,
    CallbackApprover,
    OutOfBandApprover,
)
from amp_tools.clock import ManualClock
from amp_tools.errors import AmpError, ApprovalDenied, ApprovalPending, PaymentInProgress, PolicyViolation
from amp_tools.ledger import Entry, open_ledger
from amp_tools.money import Money
from amp_tools.payments import ExecutionOutcome, Guard, PaymentHandle
from amp_tools.payments.keys import payment_key
from amp_tools.policy import Item, SpendIntent, parse_policy

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def policy(**extra: Any) -> Any:
    data: dict[str, Any] = {"currency": "USD", "total_budget": "500.00", "per_transaction_max": "300.00",
                            "windows": {"day": {"limit": "400.00"}}, "approval": {"confirm_above": "200.00"}}
    data.update(extra)
    return parse_policy(data)


def intent(amount: str = "50.00", checkout: str = "CKO-1", merchant: str = "HOTEL-1",
           clock: ManualClock | None = None) -> SpendIntent:
    money = usd(amount)
    return SpendIntent(action="pay", merchant_id=merchant, merchant_name=merchant.title(), mcc="7011",
                       amount=money, budget_amount=money, fx_rate=None,
                       items=(Item(product_id="ROOM", name="Room", quantity=1, unit_amount=money),),
                       human_present=False, checkout_id=checkout, at=(clock.now() if clock else START))


class Charges:
    """A stand-in payment network that records every charge it accepts."""

    def __init__(self) -> None:
        self.calls = 0
        self.refunded: list[int] = []
        self.sending = asyncio.Event()  # set once a charge is on its way (the payment is in flight)

    def execute(self, ref: str = "TX-1", fail: AmpError | None = None, gate: asyncio.Event | None = None) -> Any:
        async def run(handle: PaymentHandle) -> ExecutionOutcome:
            await handle.sending()
            self.calls += 1
            self.sending.set()
            if gate is not None:
                await gate.wait()
            if fail is not None:
                raise fail
            return ExecutionOutcome(external_ref=ref, detail={"mode": "delegated"})

        return run

    def refund(self, ref: str) -> Any:
        async def run(entry: Entry) -> ExecutionOutcome:
            self.refunded.append(entry.id)
            return ExecutionOutcome(external_ref=ref)

        return run


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def ledger(tmp_path: Path, clock: ManualClock) -> Any:
    led = open_ledger(tmp_path / "ledger.db", clock=clock)
    yield led
    await led.close()


async def test_pay_commits_and_repeat_returns_first_result(ledger: Any, clock: ManualClock) -> None:
    guard, net = Guard(policy(), ledger, clock=clock, budget_id="default"), Charges()
    first = await guard.pay(intent(), net.execute("TX-1"), run_id="run-a")
    again = await guard.pay(intent(), net.execute("TX-2"), run_id="run-a")
    assert first.status == "paid" and first.external_ref == "TX-1"
    assert first.budget_left == usd("450.00")
    assert again.status == "already_paid" and again.external_ref == "TX-1"
    assert net.calls == 1
    rows = await ledger.entries("default")
    assert [(r.status, r.amount) for r in rows] == [("committed", usd("50.00"))]


async def test_idempotency_key_depends_on_checkout_merchant_and_amount_only() -> None:
    base = payment_key(intent())
    assert base == payment_key(intent())  # from the payment alone: no run or session in it
    assert len({base, payment_key(intent(checkout="CKO-2")), payment_key(intent(amount="51.00")),
                payment_key(intent(merchant="X"))}) == 4


async def test_concurrent_duplicate_is_refused_while_first_in_flight(ledger: Any, clock: ManualClock) -> None:
    guard, net, gate = Guard(policy(), ledger, clock=clock, budget_id="default"), Charges(), asyncio.Event()
    first = asyncio.create_task(guard.pay(intent(), net.execute(gate=gate), run_id="r"))
    await asyncio.wait_for(net.sending.wait(), 10)  # the first is in flight: its charge is on its way
    with pytest.raises(PaymentInProgress):
        await guard.pay(intent(), net.execute(), run_id="r")
    gate.set()
    assert (await first).status == "paid"
    assert net.calls == 1


async def test_policy_refusal_names_rule_writes_no_entry_and_is_audited(ledger: Any, clock: ManualClock) -> None:
    guard, net = Guard(policy(), ledger, clock=clock, budget_id="default"), Charges()
    with pytest.raises(PolicyViolation) as caught:
        await guard.pay(intent("350.00"), net.execute(), run_id="r")
    assert caught.value.rule == "per_transaction_max"
    assert net.calls == 0 and await ledger.entries("default") == []
    records = await ledger.audit.records()
    assert [r.kind for r in records] == ["refusal"]
    assert (await ledger.audit.verify()).ok


async def test_windowed_limit_checked_inside_the_reservation(ledger: Any, clock: ManualClock) -> None:
    guard, net = Guard(policy(approval={}), ledger, clock=clock, budget_id="default"), Charges()
    await guard.pay(intent("250.00", "CKO-1"), net.execute("A"), run_id="r")
    with pytest.raises(PolicyViolation) as caught:
        await guard.pay(intent("200.00", "CKO-2"), net.execute("B"), run_id="r")
    assert caught.value.rule == "windows.day"
    assert "150.00 USD left" in caught.value.message
    clock.advance(days=1)  # a new calendar day: the day cap resets, the total does not
    ok = await guard.pay(intent("200.00", "CKO-2", clock=clock), net.execute("B"), run_id="r")
    assert ok.budget_left == usd("50.00")


async def test_decline_releases_and_budget_is_free_again(ledger: Any, clock: ManualClock) -> None:
    guard, net = Guard(policy(), ledger, clock=clock, budget_id="default"), Charges()
    with pytest.raises(AmpError):
        await guard.pay(intent("150.00"), net.execute(fail=AmpError("declined", code="PAYMENT_FAILED")), run_id="r")
    assert [r.status for r in await ledger.entries("default")] == ["released"]
    paid = await guard.pay(intent("150.00"), net.execute("TX-9"), run_id="r")
    assert paid.status == "paid" and paid.budget_left == usd("350.00")


async def test_unknown_outcome_keeps_money_reserved(ledger: Any, clock: ManualClock) -> None:
    guard, net = Guard(policy(), ledger, clock=clock, budget_id="default"), Charges()
    with pytest.raises(AmpError) as caught:
        await guard.pay(intent("100.00"), net.execute(fail=AmpError("timeout", code="TIMEOUT")), run_id="r")
    assert caught.value.code == "OUTCOME_UNKNOWN"
    rows = await ledger.entries("default")
    assert [r.status for r in rows] == ["reserved"]
    report = await ledger.usage_report(guard.policy, "default")
    assert report["total"]["used"] == {"amount": "100.00", "currency": "USD"}
    with pytest.raises(PaymentInProgress):  # a retry never sends a second charge
        await guard.pay(intent("100.00"), net.execute(), run_id="r")
    assert net.calls == 1


async def test_approval_asked_above_threshold_and_audited(ledger: Any, clock: ManualClock) -> None:
    asked: list[Any] = []

    def person(request: Any) -> ApprovalDecision:
        asked.append(request)
        return ApprovalDecision(approved=True, approver="alice")

    guard, net = Guard(policy(), ledger, approver=CallbackApprover(person), clock=clock, budget_id="default"), Charges()
    small = await guard.pay(intent("50.00", "CKO-1"), net.execute("A"), run_id="r")
    big = await guard.pay(intent("250.00", "CKO-2"), net.execute("B"), run_id="r")
    assert small.approved_by is None and big.approved_by == "alice"
    assert len(asked) == 1 and asked[0].amount == usd("250.00")
    assert any("200.00" in rule for rule in asked[0].rules)
    kinds = [r.kind for r in await ledger.audit.records()]
    assert "approval" in kinds and (await ledger.audit.verify()).ok


async def test_default_approver_denies_and_releases(ledger: Any, clock: ManualClock) -> None:
    guard, net = Guard(policy(), ledger, clock=clock, budget_id="default"), Charges()
    with pytest.raises(ApprovalDenied):
        await guard.pay(intent("250.00"), net.execute(), run_id="r")
    assert net.calls == 0
    assert [r.status for r in await ledger.entries("default")] == ["released"]
    report = await ledger.usage_report(guard.policy, "default")
    assert report["total"]["used"]["amount"] == "0.00"


async def test_out_of_band_approval_is_bound_single_use(ledger: Any, clock: ManualClock, tmp_path: Path) -> None:
    store = ApprovalStore(open_ledger(tmp_path / "approvals.db"), clock=clock)
    roomy = policy(total_budget="1000.00", windows={"day": {"limit": "1000.00"}})  # room for both held amounts
    guard = Guard(roomy, ledger, approver=OutOfBandApprover(store, clock=clock), clock=clock, budget_id="default")
    net = Charges()
    with pytest.raises(ApprovalPending) as pending:
        await guard.pay(intent("250.00", "CKO-7"), net.execute(), run_id="r")
    # Held while the person decides (issue 20: one payment, one row, retries reuse it).
    [parked] = await ledger.entries("default")
    assert net.calls == 0 and (parked.status, parked.phase) == ("reserved", "awaiting_approval")
    [record] = store.list("pending")
    assert record.id in pending.value.message
    store.approve(record.id, "bob")
    # A different amount is not covered by the grant.
    with pytest.raises(ApprovalPending):
        await guard.pay(intent("260.00", "CKO-7"), net.execute(), run_id="r")
    paid = await guard.pay(intent("250.00", "CKO-7"), net.execute("TX-OK"), run_id="r")
    assert paid.status == "paid" and net.calls == 1 and paid.entry_id == parked.id
    assert store.consume(record.request.binding) is None  # used up


async def test_exception_from_approver_releases(ledger: Any, clock: ManualClock) -> None:
    class Interrupt(Exception):  # what LangGraph's interrupt() raises to pause a run
        pass

    def pause(request: Any) -> bool:
        raise Interrupt

    guard, net = Guard(policy(), ledger, approver=CallbackApprover(pause), clock=clock, budget_id="default"), Charges()
    with pytest.raises(Interrupt):
        await guard.pay(intent("250.00"), net.execute(), run_id="r")
    assert [r.status for r in await ledger.entries("default")] == ["released"]


async def test_refund_credits_budget_and_asks_when_policy_says(ledger: Any, clock: ManualClock) -> None:
    seen: list[Any] = []
    approver = CallbackApprover(lambda r: (seen.append(r), True)[1])
    guard = Guard(policy(approval={"confirm_refunds": True}), ledger, approver=approver, clock=clock,
                  budget_id="default")
    net = Charges()
    paid = await guard.pay(intent("120.00"), net.execute("TX"), run_id="r")
    await guard.refund(paid.entry_id, usd("20.00"), net.refund("RF-1"), merchant_name="Hotel")
    assert len(seen) == 1 and seen[0].action == "refund" and seen[0].amount == usd("20.00")
    entry = await ledger.get(paid.entry_id)
    assert entry.refunded == usd("20.00")
    report = await ledger.usage_report(guard.policy, "default")
    assert report["total"]["used"]["amount"] == "100.00"


async def test_expired_policy_refuses(ledger: Any, clock: ManualClock) -> None:
    guard = Guard(policy(expires_at=(START + timedelta(hours=1)).isoformat()), ledger, clock=clock, budget_id="default")
    clock.advance(hours=2)
    with pytest.raises(PolicyViolation) as caught:
        await guard.pay(intent(clock=clock), Charges().execute(), run_id="r")
    assert caught.value.rule == "expires_at"


async def test_a_request_that_never_left_frees_the_budget_at_once(ledger: Any, clock: ManualClock) -> None:
    guard, net = Guard(policy(), ledger, clock=clock, budget_id="default"), Charges()
    never_sent = AmpError("could not connect", code="NETWORK_ERROR", details={"sent": False})
    with pytest.raises(AmpError) as caught:
        await guard.pay(intent("100.00", "CKO-A"), net.execute(fail=never_sent), run_id="r")
    assert caught.value.code == "PAYMENT_NOT_SENT" and caught.value.retryable
    maybe_sent = AmpError("read timeout", code="TIMEOUT", details={"sent": True})
    with pytest.raises(AmpError) as held:
        await guard.pay(intent("100.00", "CKO-B"), net.execute(fail=maybe_sent), run_id="r")
    assert held.value.code == "OUTCOME_UNKNOWN"
    by_checkout = {e.checkout_id: e.status for e in await ledger.entries("default")}
    assert by_checkout == {"CKO-A": "released", "CKO-B": "reserved"}


async def test_unexpected_error_during_execution_keeps_the_money_held(ledger: Any, clock: ManualClock) -> None:
    guard = Guard(policy(), ledger, clock=clock, budget_id="default")

    async def charged_then_crashed(handle: PaymentHandle) -> ExecutionOutcome:
        await handle.sending()
        raise RuntimeError("bug after the charge went out")

    with pytest.raises(RuntimeError):
        await guard.pay(intent("80.00"), charged_then_crashed, run_id="r")
    assert [e.status for e in await ledger.entries("default")] == ["reserved"]
