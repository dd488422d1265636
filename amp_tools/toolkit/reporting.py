"""The read-only status tools: budget, mandate and order status.

`order_status` also settles a payment whose outcome was unknown (a timeout after the request
left): the merchant's answer commits or releases the held reservation, so the budget figures
are right again without ever paying twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from amp_tools.errors import AmpError, NotFound
from amp_tools.ledger import Entry, ReconcileReport, Resolution
from amp_tools.toolkit.paying import _complete_mandate, mandate_public
from amp_tools.toolkit.toolkit import AmpToolkit
from amp_tools.tools.args import BudgetStatusArgs, MandateStatusArgs, OrderStatusArgs
from amp_tools.tools.bound import first_of

__all__ = ["budget_status", "mandate_status", "order_status", "reconcile", "settle_unknown"]

_SHOWN_MANDATES = 5
_SHOWN_MERCHANTS = 20


async def budget_status(tk: AmpToolkit, args: BudgetStatusArgs) -> dict[str, Any]:
    report = await tk.ledger.usage_report(tk.policy, tk.budget_id, tk.clock.now())
    out: dict[str, Any] = {"currency": report["currency"], "total": report["total"], "windows": report["windows"]}
    if report.get("velocity"):
        out["velocity"] = report["velocity"]
    if report.get("merchants"):
        shown, more = first_of(list(report["merchants"].items()), _SHOWN_MERCHANTS, "merchant(s)")
        out["merchants"] = dict(shown)
        if more:
            out["merchants_not_shown"] = more
    if tk.policy.expires_at is not None:
        out["policy_expires_at"] = tk.policy.expires_at.isoformat()
    # The most recent active mandates only: a long session must not grow this result without bound.
    active = [m for m in reversed(tk.state.mandates) if m.status == "ACTIVE"]
    if active:
        shown_mandates, more = first_of(active, _SHOWN_MANDATES, "active mandate(s); ask mandate_status by id")
        out["mandates"] = [mandate_public(m) for m in shown_mandates]
        if more:
            out["mandates_not_shown"] = more
    return out


async def mandate_status(tk: AmpToolkit, args: MandateStatusArgs) -> dict[str, Any]:
    if not tk.state.mandates:
        raise NotFound("no mandate has been requested in this session", hint="Call request_mandate first.")
    chosen = tk.state.mandates[-1]
    if args.mandate_id:
        matches = [m for m in tk.state.mandates if args.mandate_id in (m.mandate_id, m.session_id)]
        if not matches:
            raise NotFound(f"mandate {args.mandate_id!r} is unknown")
        chosen = matches[0]
    if chosen.status == "PENDING_IDV":
        await _complete_mandate(tk, chosen)
    if chosen.status == "ACTIVE" and chosen.expires_at is not None and chosen.expires_at <= tk.clock.now():
        chosen.status = "EXPIRED"
    return mandate_public(chosen)


async def order_status(tk: AmpToolkit, args: OrderStatusArgs) -> dict[str, Any]:
    ck = tk.state.checkouts.get(args.checkout_id)
    if ck is None:
        raise NotFound(f"checkout {args.checkout_id!r} is unknown")
    info = await tk.merchant(ck.merchant_id)
    # Under the checkout's lock: a pay still in flight holds a live reservation that the merchant
    # cannot know about yet (it says CREATED); settling it now would release money being charged.
    async with tk.lock(f"checkout:{ck.checkout_id}"):
        status = await tk.client.order_status(tk.merchant_base(info), ck.checkout_id)
        settled = await settle_unknown(tk, ck.checkout_id, status.status, status.transaction_id)
    out: dict[str, Any] = {"checkout_id": ck.checkout_id, "merchant": ck.merchant_name, "status": status.status,
                           "amount": ck.amount.to_public()}
    if status.transaction_id:
        out["transaction_id"] = status.transaction_id
    if status.refunded_amount and status.refunded_amount.cent:
        out["refunded"] = status.refunded_amount.money.to_public()
    if settled:
        out["ledger"] = settled
    return out


async def settle_unknown(tk: AmpToolkit, checkout_id: str, status: str, transaction_id: str | None) -> str | None:
    """Commit or release a reservation left open by an unknown outcome, from the merchant's answer."""
    # Every open reservation up to now (inclusive), not only stale ones: the caller asked about this order.
    for entry in await tk.ledger.open_reservations(tk.clock.now() + timedelta(seconds=1), limit=1000):
        if entry.checkout_id != checkout_id or entry.budget_id != tk.budget_id:
            continue
        if status in ("PAID", "REFUNDED", "PARTIALLY_REFUNDED"):
            await tk.ledger.commit(entry.id, external_ref=transaction_id, outcome={"reconciled": True})
            ck = tk.state.checkouts.get(checkout_id)
            if ck is not None:
                ck.entry_id, ck.transaction_id = entry.id, transaction_id
            return "the payment went through; the ledger now records it as paid"
        if status in ("FAILED", "CREATED"):
            await tk.ledger.release(entry.id, reason=f"reconciled: merchant reports {status}")
            return "the payment did not go through; the reserved amount was released"
    return None


async def reconcile(tk: AmpToolkit, *, timeout: timedelta = timedelta(minutes=2)) -> ReconcileReport:
    """Settle reservations left open (a crash, a timeout) by asking each merchant what happened.

    Run it when an agent process starts: a payment the merchant reports PAID is committed with its
    transaction id, one it reports FAILED or never paid is released, and anything the merchant
    cannot answer stays reserved (the budget is not freed on a guess).
    """

    async def resolver(entry: Entry) -> Resolution:
        try:
            info = await tk.merchant(entry.merchant_id)
            status = await tk.client.order_status(tk.merchant_base(info), entry.checkout_id)
        except AmpError as exc:
            if exc.code == "CHECKOUT_NOT_FOUND":
                return Resolution("released", reason="the merchant has no such order")
            return Resolution("unknown", reason=f"{exc.code}: {exc.message}")
        if status.status in ("PAID", "REFUNDED", "PARTIALLY_REFUNDED"):
            return Resolution("committed", external_ref=status.transaction_id,
                              outcome={"merchant_status": status.status})
        if status.status in ("FAILED", "CREATED"):
            return Resolution("released", reason=f"merchant reports {status.status}")
        return Resolution("unknown", reason=f"merchant reports {status.status}")

    return await tk.ledger.reconcile(resolver, timeout=timeout, now=tk.clock.now())
