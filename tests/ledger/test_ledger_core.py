"""Reserve / commit / release / refund: amounts, states, rows and aggregates, on both engines."""

from __future__ import annotations

from datetime import timedelta

import pytest

from amp_tools.clock import ManualClock
from amp_tools.errors import ConfigError, CurrencyMismatch, InvalidArguments, NotFound, PolicyViolation
from amp_tools.ledger import LedgerBase
from amp_tools.money import Money
from tests.ledger._ledger_helpers import START, intent, policy, raw, usd


async def _usage(ledger: LedgerBase, budget: str = "b") -> tuple[int, int]:
    rows = await raw(ledger, "SELECT used_minor, used_count FROM budgets WHERE budget_id = ?", budget)
    return int(rows[0][0]), int(rows[0][1])


async def test_reserve_commit_records_everything(ledger: LedgerBase) -> None:
    pol = policy()
    res = await ledger.reserve(intent("12.34"), pol, budget_id="b", idempotency_key="k1", run_id="run-1")
    assert not res.replayed and res.status == "reserved"
    assert res.budget_left == usd("87.66") and res.approval_reasons == ()
    entry = res.entry
    assert (entry.amount, entry.budget_amount, entry.attempt, entry.run_id) == (usd("12.34"), usd("12.34"), 1, "run-1")
    assert entry.policy_hash == pol.snapshot_hash() and entry.created_at == START
    assert await _usage(ledger) == (1234, 1)

    done = await ledger.commit(res.id, external_ref="pay-1", outcome={"orderId": "o-1", "paymentToken": "tok"})
    assert done.status == "committed" and done.external_ref == "pay-1"
    assert done.outcome == {"orderId": "o-1", "paymentToken": "[redacted]"}
    assert done.audit_seq == 1 and done.last_audit_seq == 2
    assert await _usage(ledger) == (1234, 1)  # committing moves no money, it only settles
    assert (await ledger.get(res.id)).status == "committed"
    assert (await ledger.get_by_key("b", "k1")) == done
    assert await ledger.get_by_key("b", "nope") is None
    kinds = [r.kind for r in await ledger.audit.records()]
    assert kinds == ["reserve", "commit"]


async def test_idempotent_reserve_returns_the_same_entry(ledger: LedgerBase) -> None:
    pol = policy()
    first = await ledger.reserve(intent("10.00"), pol, budget_id="b", idempotency_key="k", run_id="r")
    again = await ledger.reserve(intent("10.00"), pol, budget_id="b", idempotency_key="k", run_id="r")
    assert again.replayed and again.id == first.id and again.budget_left == usd("90.00")
    await ledger.commit(first.id, external_ref="x", outcome={"orderId": "o"})
    third = await ledger.reserve(intent("10.00"), pol, budget_id="b", idempotency_key="k", run_id="r")
    assert third.replayed and third.status == "committed" and third.entry.outcome == {"orderId": "o"}
    assert await _usage(ledger) == (1000, 1)
    assert len(await ledger.entries()) == 1
    with pytest.raises(InvalidArguments, match="already belongs to entry"):
        await ledger.reserve(intent("11.00"), pol, budget_id="b", idempotency_key="k", run_id="r")
    # The same key in another budget is another payment.
    other = await ledger.reserve(intent("10.00"), pol, budget_id="b2", idempotency_key="k", run_id="r")
    assert other.id != first.id and not other.replayed


async def test_released_key_can_be_retried_and_history_stays(ledger: LedgerBase) -> None:
    pol = policy()
    first = await ledger.reserve(intent("30.00"), pol, budget_id="b", idempotency_key="k", run_id="r")
    released = await ledger.release(first.id, reason="merchant declined")
    assert released.status == "released" and released.reason == "merchant declined"
    assert released.counted == usd("0.00")
    assert await _usage(ledger) == (0, 0)
    assert (await ledger.release(first.id, reason="again")).reason == "merchant declined"  # idempotent
    with pytest.raises(InvalidArguments, match="was released"):
        await ledger.commit(first.id, external_ref="late")

    retry = await ledger.reserve(intent("30.00"), pol, budget_id="b", idempotency_key="k", run_id="r")
    assert not retry.replayed and retry.id != first.id and retry.entry.attempt == 2
    assert await _usage(ledger) == (3000, 1)
    assert (await ledger.get_by_key("b", "k")).id == retry.id  # type: ignore[union-attr]
    history = await ledger.entries("b")
    assert [(e.attempt, e.status) for e in history] == [(2, "reserved"), (1, "released")]
    committed = await ledger.commit(retry.id, external_ref="ok")
    with pytest.raises(InvalidArguments, match="refund it instead"):
        await ledger.release(committed.id, reason="too late")


async def test_refusal_writes_nothing(ledger: LedgerBase) -> None:
    pol = policy(total_budget="20.00")
    await ledger.reserve(intent("15.00"), pol, budget_id="b", idempotency_key="k1", run_id="r")
    with pytest.raises(PolicyViolation) as err:
        await ledger.reserve(intent("5.01"), pol, budget_id="b", idempotency_key="k2", run_id="r")
    assert err.value.rule == "total_budget"
    assert await ledger.get_by_key("b", "k2") is None
    assert await _usage(ledger) == (1500, 1)
    assert (await ledger.audit.head())[0] == 1
    # A refused first payment of a new budget does not even create the budget row.
    with pytest.raises(PolicyViolation):
        await ledger.reserve(intent("25.00"), pol, budget_id="fresh", idempotency_key="k", run_id="r")
    assert await raw(ledger, "SELECT budget_id FROM budgets WHERE budget_id = ?", "fresh") == []
    ok = await ledger.reserve(intent("5.00"), pol, budget_id="b", idempotency_key="k3", run_id="r")
    assert ok.budget_left == usd("0.00")


async def test_bad_input_is_refused_before_any_write(ledger: LedgerBase) -> None:
    pol = policy()
    with pytest.raises(InvalidArguments, match="idempotency_key"):
        await ledger.reserve(intent(), pol, budget_id="b", idempotency_key=" ", run_id="r")
    with pytest.raises(CurrencyMismatch):
        await ledger.reserve(intent(), policy(currency="EUR"), budget_id="b", idempotency_key="k", run_id="r")
    await ledger.reserve(intent(), pol, budget_id="b", idempotency_key="k", run_id="r")
    eur = policy(currency="EUR")
    with pytest.raises(ConfigError, match="kept in USD"):
        await ledger.reserve(intent(currency="EUR", budget_currency="EUR"), eur, budget_id="b",
                             idempotency_key="k9", run_id="r")
    with pytest.raises(NotFound):
        await ledger.commit(999, external_ref="x")
    assert len(await ledger.entries()) == 1


async def test_refund_limits_and_proportional_credit(ledger: LedgerBase) -> None:
    pol = policy()
    # 10.00 EUR at 1.1003 -> 11.01 USD (rounded up) charged to the budget.
    eur = intent("10.00", currency="EUR", rate="1.1003")
    assert eur.budget_amount == usd("11.01")
    res = await ledger.reserve(eur, pol, budget_id="b", idempotency_key="k", run_id="r")
    with pytest.raises(InvalidArguments, match="only committed"):
        await ledger.refund(res.id, Money.parse("1.00", "EUR"), external_ref="r0")
    await ledger.commit(res.id, external_ref="p")

    part = await ledger.refund(res.id, Money.parse("5.00", "EUR"), external_ref="r1")
    # Cumulative 5.00/10.00 of 11.01 USD = 5.505 -> 5.50 credited (rounded down: credit never overstated).
    assert part.refunded == Money.parse("5.00", "EUR") and part.refunded_budget == usd("5.50")
    assert part.counted == usd("5.51") and await _usage(ledger) == (551, 1)
    assert part.refundable == Money.parse("5.00", "EUR")

    same = await ledger.refund(res.id, Money.parse("5.00", "EUR"), external_ref="r1")  # retried call
    assert same.refunded == Money.parse("5.00", "EUR")
    with pytest.raises(InvalidArguments, match="already recorded"):
        await ledger.refund(res.id, Money.parse("4.00", "EUR"), external_ref="r1")
    with pytest.raises(InvalidArguments, match="exceeds"):
        await ledger.refund(res.id, Money.parse("5.01", "EUR"), external_ref="r2")
    with pytest.raises(CurrencyMismatch):
        await ledger.refund(res.id, usd("1.00"), external_ref="r3")

    full = await ledger.refund(res.id, Money.parse("5.00", "EUR"), external_ref="r4")
    assert full.refunded_budget == usd("11.01") and full.counted == usd("0.00")
    assert await _usage(ledger) == (0, 1)  # money back; the attempt still counts for velocity
    refunds = await ledger.refunds(res.id)
    assert [(r.amount.minor, r.budget_amount.minor, r.external_ref) for r in refunds] == [
        (500, 550, "r1"), (500, 551, "r4")]
    assert all(r.audit_seq > 0 for r in refunds)
    with pytest.raises(InvalidArguments, match="exceeds"):
        await ledger.refund(res.id, Money.parse("0.01", "EUR"), external_ref="r5")


async def test_windows_only_count_their_rows(ledger: LedgerBase, clock: ManualClock) -> None:
    pol = policy(windows={"day": {"limit": "30.00"}}, total_budget="100.00")
    yesterday = START - timedelta(days=1)
    await ledger.reserve(intent("25.00", at=yesterday), pol, budget_id="b", idempotency_key="y", run_id="r",
                         now=yesterday)
    today = await ledger.reserve(intent("30.00"), pol, budget_id="b", idempotency_key="t1", run_id="r")
    assert today.budget_left == usd("45.00")
    with pytest.raises(PolicyViolation) as err:
        await ledger.reserve(intent("0.01", checkout="c2"), pol, budget_id="b", idempotency_key="t2", run_id="r")
    assert err.value.rule == "windows.day"
    await ledger.release(today.id, reason="cancelled")
    again = await ledger.reserve(intent("30.00", checkout="c3"), pol, budget_id="b", idempotency_key="t3", run_id="r")
    assert again.status == "reserved"
    report = await ledger.usage_report(pol, "b")
    assert report["windows"]["day"]["used"] == {"amount": "30.00", "currency": "USD"}
    assert report["windows"]["day"]["left"] == {"amount": "0.00", "currency": "USD"}
    assert report["total"]["used"] == {"amount": "55.00", "currency": "USD"}
    assert report["total"]["left"] == {"amount": "45.00", "currency": "USD"}


async def test_merchant_mcc_caps_and_new_merchant_approval(ledger: LedgerBase) -> None:
    pol = policy(merchants={"caps": {"shop-1": "20.00"}}, mccs={"caps": {"7011": "15.00"}},
                 approval={"confirm_new_merchants": True}, velocity={"max_payments": 4, "per": "1h"})
    first = await ledger.reserve(intent("10.00"), pol, budget_id="b", idempotency_key="a", run_id="r")
    assert len(first.approval_reasons) == 1 and "first payment" in first.approval_reasons[0]
    second = await ledger.reserve(intent("5.00", checkout="c2"), pol, budget_id="b", idempotency_key="b", run_id="r")
    assert second.approval_reasons, "a merchant only counts as seen once a payment to it is committed"
    await ledger.commit(first.id, external_ref="p1")
    third = await ledger.reserve(intent("5.00", checkout="c3"), pol, budget_id="b", idempotency_key="c", run_id="r")
    assert third.approval_reasons == ()
    with pytest.raises(PolicyViolation) as err:
        await ledger.reserve(intent("0.01", checkout="c4"), pol, budget_id="b", idempotency_key="d", run_id="r")
    assert err.value.rule == "merchants.caps"
    hotel = await ledger.reserve(intent("15.00", merchant="inn", mcc=" 7011 "), pol, budget_id="b",
                                 idempotency_key="e", run_id="r")
    assert hotel.entry.mcc == "7011"
    with pytest.raises(PolicyViolation) as err:
        await ledger.reserve(intent("1.00", merchant="inn2", mcc="7011"), pol, budget_id="b",
                             idempotency_key="f", run_id="r")
    assert err.value.rule == "mccs.caps"
    with pytest.raises(PolicyViolation) as err:
        await ledger.reserve(intent("1.00", merchant="cafe", mcc="5814"), pol, budget_id="b",
                             idempotency_key="g", run_id="r")
    assert err.value.rule == "velocity"  # 4 payments in the last hour already
    report = await ledger.usage_report(pol, "b")
    assert report["merchants"]["shop-1"]["used"]["amount"] == "20.00"
    assert report["merchants"]["shop-1"]["left"]["amount"] == "0.00"
    assert report["merchants"]["shop-1"]["count"] == 3
    assert report["mccs"]["7011"] == {"used": {"amount": "15.00", "currency": "USD"}, "count": 1,
                                      "limit": {"amount": "15.00", "currency": "USD"},
                                      "left": {"amount": "0.00", "currency": "USD"}}
    assert report["velocity"]["count"] == 4 and report["velocity"]["left"] == 0
    assert report["total"]["count"] == 4 and report["total"]["committed_count"] == 1


def test_sync_twins(ledger: LedgerBase) -> None:
    pol = policy()
    res = ledger.reserve_sync(intent("2.50"), pol, budget_id="b", idempotency_key="k", run_id="r")
    assert ledger.reserve_sync(intent("2.50"), pol, budget_id="b", idempotency_key="k", run_id="r").replayed
    assert ledger.commit_sync(res.id, external_ref="p").status == "committed"
    assert ledger.refund_sync(res.id, usd("1.00"), external_ref="rf").counted == usd("1.50")
    assert ledger.get_sync(res.id).refunded == usd("1.00")
    assert ledger.get_by_key_sync("b", "k").id == res.id  # type: ignore[union-attr]
    assert ledger.usage_report_sync(pol, "b")["total"]["used"]["amount"] == "1.50"
    r2 = ledger.reserve_sync(intent("1.00", checkout="c2"), pol, budget_id="b", idempotency_key="k2", run_id="r")
    assert ledger.release_sync(r2.id, reason="no").status == "released"
    assert [e.id for e in ledger.entries_sync("b", limit=1)] == [r2.id]
    assert ledger.audit.verify_sync().records == 5
