"""FAULTS through the real toolkit and an in-process sandbox: timeouts before and after the charge,
HTTP 5xx, connection resets, duplicated tool calls, declines, cancellation and a status query racing
a payment. Every test asserts the sandbox's own payment record, the ledger rows and the budget used.

Ledger rows are (attempt, status, amount minor, external ref). The client retries startPayment
twice (it is idempotent per checkout), so a fault armed for 3 requests outlasts its retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from amp_tools.errors import AmpError, PaymentInProgress, ToolError
from amp_tools.ledger import Entry
from amp_tools.payments import Lifecycle, Resolution, settle_abandoned
from tests.reliability._shop import PRICE, Rule, Shop


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    s = await Shop(tmp_path).start()
    yield s
    await s.close()


async def test_timeout_before_charge_retried_by_client_pays_once(shop: Shop) -> None:
    cid = await shop.checkout()
    shop.sandbox.faults.arm("merchant.startPayment", "timeout_before", 1)
    paid = await shop.pay(cid)
    assert paid["status"] == "paid"
    assert [p["transactionId"] for p in await shop.payments(cid)] == [paid["transaction_id"]]
    assert await shop.rows(cid) == [(1, "committed", PRICE, paid["transaction_id"])]
    assert await shop.used() == PRICE


async def test_timeout_before_charge_holds_until_status_releases_then_retry_pays_once(shop: Shop) -> None:
    cid = await shop.checkout()
    shop.sandbox.faults.arm("merchant.startPayment", "timeout_before", 3)
    with pytest.raises(AmpError) as lost:
        await shop.pay(cid)
    assert lost.value.code == "OUTCOME_UNKNOWN"
    # A 504 cannot say whether the charge happened: the amount stays reserved, nothing was charged.
    assert await shop.rows(cid) == [(1, "reserved", PRICE, None)]
    assert await shop.used() == PRICE and await shop.payments(cid) == []
    status = await shop.call("order_status", checkout_id=cid)
    assert status["status"] == "CREATED" and "released" in status["ledger"]
    assert await shop.used() == 0
    paid = await shop.pay(cid)
    assert [p["transactionId"] for p in await shop.payments(cid)] == [paid["transaction_id"]]
    assert await shop.rows(cid) == [(1, "released", PRICE, None), (2, "committed", PRICE, paid["transaction_id"])]
    assert await shop.used() == PRICE


@pytest.mark.parametrize("settle", ["order_status", "reconcile"])
async def test_timeout_after_charge_keeps_budget_held_and_never_pays_twice(shop: Shop, settle: str) -> None:
    cid = await shop.checkout()
    other = await shop.checkout()
    shop.sandbox.faults.arm("merchant.startPayment", "timeout_after", 3)
    with pytest.raises(AmpError) as lost:
        await shop.pay(cid)
    assert lost.value.code == "OUTCOME_UNKNOWN"
    charged = await shop.payments(cid)
    assert len(charged) == 1  # the money moved; only the answer was lost
    assert await shop.rows(cid) == [(1, "reserved", PRICE, None)]
    assert await shop.used() == PRICE  # the budget is not freed while the outcome is unknown
    with pytest.raises(PaymentInProgress):
        await shop.pay(cid)  # the model retries: refused, nothing sent
    assert len(await shop.payments(cid)) == 1

    if settle == "order_status":
        status = await shop.call("order_status", checkout_id=cid)
        assert status["status"] == "PAID" and "paid" in status["ledger"]
    else:
        async def resolver(entry: Entry) -> Resolution:
            found = await shop.payments(entry.checkout_id)
            return Resolution("committed", found[0]["transactionId"]) if found else Resolution("released")

        # A recovery job: the payment's outcome is unknown and nobody works on it any more, so it is settled.
        report = await settle_abandoned(Lifecycle(shop.ledger, clock=shop.sandbox.clock), resolver)
        assert len(report.committed) == 1 and not report.released and not report.failed
    assert await shop.rows(cid) == [(1, "committed", PRICE, charged[0]["transactionId"])]
    again = await shop.pay(cid)
    assert again["status"] == "already_paid" and again["transaction_id"] == charged[0]["transactionId"]
    assert len(await shop.payments(cid)) == 1
    # Other payments carry on against the right figure.
    assert (await shop.pay(other))["status"] == "paid"
    assert await shop.used() == 2 * PRICE


async def test_http_500_retried_then_outlasting_retries_is_reconciled(shop: Shop) -> None:
    cid = await shop.checkout()
    shop.sandbox.faults.arm("merchant.startPayment", "http_500", 2)
    paid = await shop.pay(cid)  # two 500s, the third try goes through
    assert len(await shop.payments(cid)) == 1 and await shop.used() == PRICE

    cid2 = await shop.checkout()
    shop.sandbox.faults.arm("merchant.startPayment", "http_500", 3)
    with pytest.raises(AmpError):
        await shop.pay(cid2)
    assert await shop.rows(cid2) == [(1, "reserved", PRICE, None)] and await shop.payments(cid2) == []
    await shop.call("order_status", checkout_id=cid2)
    assert await shop.rows(cid2) == [(1, "released", PRICE, None)]
    assert await shop.used() == PRICE
    assert paid["status"] == "paid"


async def test_connection_reset_before_send_is_retried_and_pays_once(shop: Shop) -> None:
    cid = await shop.checkout()
    shop.transport.rules.append(Rule("/startPayment", "reset_before", 2))
    paid = await shop.pay(cid)
    assert shop.transport.sent.count("/merchants/SUNNY-TOURS/startPayment") == 1
    assert [p["transactionId"] for p in await shop.payments(cid)] == [paid["transaction_id"]]
    assert await shop.rows(cid) == [(1, "committed", PRICE, paid["transaction_id"])]


async def test_connection_reset_after_charge_is_retried_idempotently(shop: Shop) -> None:
    cid = await shop.checkout()
    shop.transport.rules.append(Rule("/startPayment", "reset_after", 1))
    paid = await shop.pay(cid)
    # Sent twice (the first answer was lost), charged once: startPayment is idempotent per checkout.
    assert shop.transport.sent.count("/merchants/SUNNY-TOURS/startPayment") == 2
    assert [p["transactionId"] for p in await shop.payments(cid)] == [paid["transaction_id"]]
    assert await shop.rows(cid) == [(1, "committed", PRICE, paid["transaction_id"])]


async def test_connection_reset_after_apply_credential_is_not_repeated(shop: Shop) -> None:
    cid = await shop.checkout()
    shop.transport.rules.append(Rule("/applyCredential", "reset_after", 1))
    with pytest.raises(AmpError) as lost:
        await shop.pay(cid)
    # The token request may have arrived, but the charge request never left: no money can have moved, so the
    # hold is released at once (the lifecycle never reached `sending`) and the model is told it may retry.
    assert lost.value.code == "PAYMENT_NOT_SENT" and lost.value.retryable
    assert shop.transport.sent.count("/credential-provider/applyCredential") == 1  # never repeated
    assert shop.transport.sent.count("/merchants/SUNNY-TOURS/startPayment") == 0
    assert await shop.rows(cid) == [(1, "released", PRICE, None)] and await shop.used() == 0
    paid = await shop.pay(cid)
    assert [p["transactionId"] for p in await shop.payments(cid)] == [paid["transaction_id"]]
    assert await shop.rows(cid) == [(1, "released", PRICE, None), (2, "committed", PRICE, paid["transaction_id"])]


async def test_duplicated_tool_calls_charge_once(shop: Shop) -> None:
    cid = await shop.checkout()
    first, second = await asyncio.gather(shop.pay(cid), shop.pay(cid))
    assert sorted([first["status"], second["status"]]) == ["already_paid", "paid"]
    third = await shop.pay(cid)
    assert third["status"] == "already_paid"
    assert first["transaction_id"] == second["transaction_id"] == third["transaction_id"]
    assert len(await shop.payments(cid)) == 1
    assert await shop.rows(cid) == [(1, "committed", PRICE, first["transaction_id"])]
    assert await shop.used() == PRICE


@pytest.mark.parametrize(("target", "code"), [("merchant.startPayment", "MERCHANT_DECLINED"),
                                              ("cp.applyCredential", None)])
async def test_decline_releases_the_reservation(shop: Shop, target: str, code: str | None) -> None:
    cid = await shop.checkout()
    shop.sandbox.faults.arm(target, "decline", 1)
    with pytest.raises(ToolError) as declined:
        await shop.pay(cid)
    assert code is None or declined.value.code == code
    assert declined.value.code not in ("OUTCOME_UNKNOWN", "TIMEOUT", "NETWORK_ERROR")
    assert await shop.payments(cid) == []
    assert await shop.rows(cid) == [(1, "released", PRICE, None)]
    assert await shop.used() == 0
    paid = await shop.pay(cid)  # the retry pays, once
    assert len(await shop.payments(cid)) == 1 and paid["status"] == "paid"


async def test_cancelled_after_the_charge_keeps_the_reservation(shop: Shop) -> None:
    """A framework timeout cancels the tool call while the merchant has already charged."""
    cid = await shop.checkout()
    stall = Rule("/startPayment", "stall_after", 1)
    shop.transport.rules.append(stall)
    task = asyncio.create_task(shop.pay(cid))
    await asyncio.wait_for(stall.reached.wait(), 10)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    charged = await shop.payments(cid)
    assert len(charged) == 1
    # Released here would let the budget be spent twice; the outcome is unknown, so it stays held.
    assert await shop.rows(cid) == [(1, "reserved", PRICE, None)]
    assert await shop.used() == PRICE
    await shop.call("order_status", checkout_id=cid)
    assert await shop.rows(cid) == [(1, "committed", PRICE, charged[0]["transactionId"])]
    assert (await shop.pay(cid))["status"] == "already_paid" and len(await shop.payments(cid)) == 1


async def test_order_status_during_an_in_flight_payment_does_not_release_it(shop: Shop) -> None:
    cid = await shop.checkout()
    stall = Rule("/startPayment", "stall_before", 1)
    shop.transport.rules.append(stall)
    task = asyncio.create_task(shop.pay(cid))
    await asyncio.wait_for(stall.reached.wait(), 10)
    # The model asks for the status while the payment is on its way (merchant still says CREATED).
    status_task = asyncio.create_task(shop.call("order_status", checkout_id=cid))
    await asyncio.sleep(0.05)
    stall.gate.set()
    paid = await task
    status = await status_task
    assert paid["status"] == "paid"
    assert status["status"] == "PAID"
    assert [p["transactionId"] for p in await shop.payments(cid)] == [paid["transaction_id"]]
    assert await shop.rows(cid) == [(1, "committed", PRICE, paid["transaction_id"])]
    assert await shop.used() == PRICE
