"""The payments room keeps its promises (issue 26), on both engines.

Every change of a payment's state, refunds and releases included, goes through the lifecycle and
the transition table, and a move the table forbids is refused with an audit record; `execute` has
one contract; "already paid" is checked once per walk; a Guard names its budget.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from amp_tools.approvals import CallbackApprover
from amp_tools.clock import ManualClock
from amp_tools.errors import ApprovalDenied, ConfigError
from amp_tools.ledger import Entry, InvalidTransition, LedgerBase
from amp_tools.ledger._ops import state_of_entry
from amp_tools.money import Money
from amp_tools.payments import (
    TRANSITIONS,
    ExecutionOutcome,
    Guard,
    Lifecycle,
    PaymentHandle,
    PaymentState,
    state_of,
)
from tests.ledger._ledger_helpers import START, intent, open_backend, policy
from tests.payments._support import Lab, budget_policy

S = PaymentState


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def ledger(engine_name: str, ledger_target: str, clock: ManualClock) -> Any:
    made = open_backend(engine_name, ledger_target, clock)
    yield made
    await made.close()


def charge(ref: str, calls: list[str] | None = None) -> Any:
    async def run(handle: PaymentHandle) -> ExecutionOutcome:
        await handle.sending()
        if calls is not None:
            calls.append(ref)
        return ExecutionOutcome(external_ref=ref)

    return run


def merchant_refund(ref: str, calls: list[int]) -> Any:
    async def run(entry: Entry) -> ExecutionOutcome:
        calls.append(entry.id)
        return ExecutionOutcome(external_ref=ref)

    return run


async def refusals(ledger: LedgerBase) -> list[tuple[str, str]]:
    return [(r.payload["from"], r.payload["to"]) for r in await ledger.audit.records() if r.kind == "move_refused"]


# ------------------------------------------------------------------------------------------ refunds
async def test_a_refund_moves_through_the_lifecycle_with_its_approval_audited(
        ledger: LedgerBase, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Any] = []
    guard = Guard(policy(approval={"confirm_refunds": True}), ledger, clock=clock, budget_id="b",
                  approver=CallbackApprover(lambda request: (asked.append(request), True)[1]))
    paid = await guard.pay(intent("30.00"), charge("TX-1"), run_id="r")
    moves: list[int] = []
    lifecycle_refund = guard.lifecycle.refund

    async def spy(entry_id: int, amount: Money, **kwargs: Any) -> Entry:
        moves.append(entry_id)
        return await lifecycle_refund(entry_id, amount, **kwargs)

    monkeypatch.setattr(guard.lifecycle, "refund", spy)
    sent: list[int] = []
    await guard.refund(paid.entry_id, usd("10.00"), merchant_refund("RF-1", sent), merchant_name="Shop",
                       reason="changed plans")
    await guard.refund(paid.entry_id, usd("5.00"), merchant_refund("RF-2", sent), merchant_name="Shop")
    assert moves == sent == [paid.entry_id, paid.entry_id]
    assert [(r.action, r.amount) for r in asked] == [("refund", usd("10.00")), ("refund", usd("5.00"))]

    entry = await ledger.get(paid.entry_id)
    assert state_of(entry) == S.REFUNDED and entry.refunded == usd("15.00")
    assert entry.owner is None and entry.lease_until is None  # out of flight: nobody holds a lease on it
    records = await ledger.audit.records()
    approvals = [r for r in records if r.kind == "approval" and r.payload["action"] == "refund"]
    assert [(r.payload["entry_id"], r.payload["approved"]) for r in approvals] == [(paid.entry_id, True)] * 2
    refunds = [r for r in records if r.kind == "refund"]
    assert [(r.payload["from"], r.payload["to"], r.payload["reason"]) for r in refunds] == [
        ("committed", "refunded", "changed plans"), ("refunded", "refunded", "")]
    assert approvals[0].seq < refunds[0].seq < approvals[1].seq < refunds[1].seq  # asked before each refund
    report = await ledger.usage_report(guard.policy, "b")
    assert report["total"]["used"]["amount"] == "15.00"
    assert (await ledger.audit.verify()).ok


async def test_a_declined_refund_is_audited_and_never_reaches_the_merchant(ledger: LedgerBase,
                                                                          clock: ManualClock) -> None:
    guard = Guard(policy(approval={"confirm_refunds": True}), ledger, clock=clock, budget_id="b",
                  approver=CallbackApprover(lambda request: False))
    paid = await guard.pay(intent("30.00"), charge("TX-1"), run_id="r")
    sent: list[int] = []
    with pytest.raises(ApprovalDenied):
        await guard.refund(paid.entry_id, usd("10.00"), merchant_refund("RF-1", sent), merchant_name="Shop")
    assert sent == [] and (await ledger.get(paid.entry_id)).refunded == usd("0.00")
    [approval] = [r for r in await ledger.audit.records() if r.kind == "approval"]
    assert approval.payload["action"] == "refund" and approval.payload["approved"] is False


async def test_a_refund_or_release_the_table_forbids_is_refused_and_audited(ledger: LedgerBase,
                                                                           clock: ManualClock) -> None:
    life = Lifecycle(ledger, clock=clock, lease=timedelta(seconds=60))
    res = await life.reserve(intent("5.00"), policy(), budget_id="b", key="k1")
    with pytest.raises(InvalidTransition) as early:
        await life.refund(res.id, usd("1.00"), external_ref="RF-0")  # nothing was paid yet
    assert (early.value.current, early.value.wanted) == ("reserved", "refunded")
    await life.sending(res.id)
    await life.commit(res.id, external_ref="TX")
    with pytest.raises(InvalidTransition) as late:
        await life.release(res.id, "too late")  # paid money is refunded, never released
    assert (late.value.current, late.value.wanted) == ("committed", "released")

    entry = await ledger.get(res.id)
    assert (entry.status, entry.refunded, entry.counted) == ("committed", usd("0.00"), usd("5.00"))
    assert await ledger.refunds(res.id) == []
    assert await refusals(ledger) == [("reserved", "refunded"), ("committed", "released")]
    assert (await ledger.audit.verify()).ok


async def test_the_ledger_follows_the_transition_table_for_refunds_and_releases(
        ledger: LedgerBase, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    life = Lifecycle(ledger, clock=clock)
    paid = await life.reserve(intent("5.00", checkout="co-paid"), policy(), budget_id="b", key="k-paid")
    await life.sending(paid.id)
    await life.commit(paid.id, external_ref="TX-1")
    lost = await life.reserve(intent("6.00", checkout="co-lost"), policy(), budget_id="b", key="k-lost")
    await life.sending(lost.id)
    await life.unknown(lost.id, "answer lost")
    # A table without these moves: the ledger refuses them, though its own rules alone would allow both.
    monkeypatch.setitem(TRANSITIONS, S.COMMITTED, frozenset())
    monkeypatch.setitem(TRANSITIONS, S.UNKNOWN, frozenset({S.COMMITTED}))
    with pytest.raises(InvalidTransition):
        await life.refund(paid.id, usd("1.00"), external_ref="RF-1")
    with pytest.raises(InvalidTransition):
        await life.release(lost.id, "not paid")
    assert await refusals(ledger) == [("committed", "refunded"), ("unknown", "released")]
    assert (await ledger.get(paid.id)).refunded == usd("0.00")
    assert state_of(await ledger.get(lost.id)) == S.UNKNOWN


async def test_the_guard_refuses_a_refund_of_an_unpaid_payment_before_asking_the_merchant(
        ledger: LedgerBase, clock: ManualClock) -> None:
    guard = Guard(policy(), ledger, clock=clock, budget_id="b")
    held = await guard.lifecycle.reserve(intent("5.00"), policy(), budget_id="b", key="k1")
    sent: list[int] = []
    with pytest.raises(InvalidTransition):
        await guard.refund(held.id, usd("5.00"), merchant_refund("RF-1", sent), merchant_name="Shop")
    assert sent == []
    assert await refusals(ledger) == [("reserved", "refunded")]


def test_the_ledger_names_states_as_the_payments_table_does() -> None:
    base = {"status": "reserved", "phase": None, "refunded": usd("0.00")}
    cases = [{}, {"phase": "awaiting_approval"}, {"phase": "sending"}, {"phase": "unknown"},
             {"status": "committed"}, {"status": "committed", "refunded": usd("1.00")}, {"status": "released"}]
    for case in cases:
        entry: Any = type("E", (), {**base, **case})()
        assert state_of_entry(entry) == str(state_of(entry))


# ------------------------------------------------------------------------------------------ execute, checks
async def test_execute_takes_the_handle_and_one_without_it_sends_nothing(ledger: LedgerBase,
                                                                        clock: ManualClock) -> None:
    guard = Guard(policy(), ledger, clock=clock, budget_id="b")
    calls: list[str] = []

    async def no_handle() -> ExecutionOutcome:
        calls.append("charged")
        return ExecutionOutcome(external_ref="TX")

    with pytest.raises(TypeError):
        await guard.pay(intent("5.00"), no_handle, run_id="r")  # type: ignore[arg-type]
    assert calls == [] and [e.status for e in await ledger.entries("b")] == ["released"]
    paid = await guard.pay(intent("5.00"), charge("TX", calls), run_id="r")
    assert paid.status == "paid" and calls == ["TX"]


async def test_a_second_guard_pay_of_a_paid_payment_meets_the_check_once(
        ledger: LedgerBase, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    guard = Guard(policy(), ledger, clock=clock, budget_id="b")
    checks = _spy(monkeypatch, guard, "already_paid")
    calls: list[str] = []
    first = await guard.pay(intent("5.00"), charge("TX-1", calls), run_id="r")
    assert first.status == "paid" and checks == []  # a fresh reservation is no repeat: nothing to check
    again = await guard.pay(intent("5.00"), charge("TX-2", calls), run_id="r")
    assert again.status == "already_paid" and again.external_ref == "TX-1" and calls == ["TX-1"]
    assert len(checks) == 1


async def test_a_second_pay_of_a_paid_checkout_meets_one_check_and_no_reserve(
        engine_name: str, ledger_target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = Lab(engine_name, ledger_target)
    try:
        agent = lab.agent(budget_policy("100.00"), CallbackApprover(lambda request: True), budget_id="shop")
        checkout = await agent.buy()
        tk = agent.toolkit
        checks = _spy(monkeypatch, tk.guard, "already_paid")
        reads = _spy(monkeypatch, lab.ledger, "get_by_key")
        reserves = _spy(monkeypatch, lab.ledger, "reserve")
        first = await agent.call("pay", checkout_id=checkout)
        assert first["status"] == "paid"
        assert (len(checks), len(reads), len(reserves)) == (1, 1, 1)  # the reply's read found nothing: reserved
        checks.clear(), reads.clear(), reserves.clear()
        again = await agent.call("pay", checkout_id=checkout)
        assert again["status"] == "already_paid" and again["transaction_id"] == first["transaction_id"]
        assert (len(checks), len(reads), len(reserves)) == (1, 1, 0)
        assert len(lab.charges(checkout)) == 1
    finally:
        await lab.close()


def _spy(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[Any]:
    """Record each call of `owner.name` (sync or async) and pass it through."""
    seen: list[Any] = []
    original = getattr(owner, name)

    if name == "already_paid":
        def sync_spy(*args: Any, **kwargs: Any) -> Any:
            seen.append(args)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, sync_spy)
        return seen

    async def async_spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(args)
        return await original(*args, **kwargs)

    monkeypatch.setattr(owner, name, async_spy)
    return seen


# ------------------------------------------------------------------------------------------ the Guard's budget
def test_a_guard_names_its_budget(tmp_path: Any) -> None:
    from amp_tools.ledger import open_ledger

    led = open_ledger(tmp_path / "ledger.db")
    try:
        with pytest.raises(TypeError):
            Guard(policy(), led)  # type: ignore[call-arg]
        for bad in ("", "   "):
            with pytest.raises(ConfigError, match="no default budget"):
                Guard(policy(), led, budget_id=bad)
        assert Guard(policy(), led, budget_id="alice").budget_id == "alice"
    finally:
        led.close_sync()


def test_the_moves_table_in_the_docs_is_the_transition_table() -> None:
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "PAYMENTS.md").read_text()
    table = text[text.index("| from | may move to |"):].split("\n\n")[0].splitlines()[2:]
    documented = {}
    for row in table:
        source, targets = (cell.strip() for cell in row.strip("|").split("|"))
        documented[PaymentState(source.strip("`"))] = frozenset(
            PaymentState(word.strip("`,")) for word in targets.split() if word.startswith("`"))
    assert documented == TRANSITIONS
