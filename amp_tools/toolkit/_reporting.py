"""The status tools: budget, mandate and order status.

`order_status` also settles a payment whose outcome was unknown (a timeout after the request
left) or whose process is gone, through the payment lifecycle (`amp_tools.payments`): the
merchant's answer commits or releases the held reservation; no answer leaves it held.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from amp_tools.errors import AmpError, NotFound
from amp_tools.payments import PaymentState, state_of
from amp_tools.toolkit._args import ID_PATTERN, ToolArgs
from amp_tools.toolkit._bound import first_of
from amp_tools.toolkit._core import ToolkitCore
from amp_tools.toolkit._mandates import refresh_mandate, refresh_mandates
from amp_tools.toolkit._outputs import BUDGET, MANDATE, ORDER
from amp_tools.toolkit._paying import _complete_mandate, mandate_public, person_wait
from amp_tools.toolkit._settling import settle_entry
from amp_tools.toolkit._specs import tool
from amp_tools.toolkit.legs import summarise_legs
from amp_tools.untrusted import clean_text

__all__ = ["BudgetStatusArgs", "MandateStatusArgs", "OrderStatusArgs", "budget_status", "mandate_status",
           "order_status"]

#: What order_status says from our own ledger when the merchant has no order-status extension.
_FROM_LEDGER = {PaymentState.COMMITTED: "PAID", PaymentState.REFUNDED: "REFUNDED", PaymentState.RELEASED: "NOT_PAID",
                PaymentState.UNKNOWN: "UNKNOWN"}

_SHOWN_MANDATES = 5
_SHOWN_MERCHANTS = 20
_LEGS_WINDOW = 500  # recent entries summarised by budget_status's `legs`


class BudgetStatusArgs(ToolArgs):
    pass


@tool("budget_status", "Show what is spent and left of the budget: in total, per time window and per merchant.",
      BudgetStatusArgs, output=BUDGET, read_only=True)
async def budget_status(tk: ToolkitCore, args: BudgetStatusArgs) -> dict[str, Any]:
    levels = await tk.level_reports()
    report = levels[-1][1] if levels else await tk.ledger.usage_report(tk.policy, tk.budget_id, tk.clock.now())
    out: dict[str, Any] = {"currency": report["currency"], "total": report["total"], "windows": report["windows"]}
    if levels:
        # A sub-budget: its own room, each enclosing budget's room, and what it can really spend (the least).
        out["budget"] = tk.budget_id
        out["parents"] = [{"budget": level.budget_id, "agent": level.agent or None, "total": rep["total"],
                           "windows": rep["windows"]} for level, rep in levels[:-1]]
        out["can_spend"] = (await tk.budget_left()).to_public()
    if report.get("velocity"):
        out["velocity"] = report["velocity"]
    if report.get("merchants"):
        shown, more = first_of(list(report["merchants"].items()), _SHOWN_MERCHANTS, "merchant(s)")
        out["merchants"] = dict(shown)
        if more:
            out["merchants_not_shown"] = more
    if tk.policy.expires_at is not None:
        out["policy_expires_at"] = tk.policy.expires_at.isoformat()
    out.update(await _held_by_owner(tk))
    # `signed`: the owner's signatures were checked against the pinned owner key and hold; without a
    # pinned key nothing is checked, so the budget reads as unsigned whatever the rows carry.
    out["signed"] = await tk.guard.owner_signed()
    legs = summarise_legs(await tk.ledger.entries(tk.budget_id, limit=_LEGS_WINDOW))
    if legs["payments_by_basis"]:
        # How the recent payments were counted: from the checkout, the mandate's charge, the wallet's
        # debit (each the network's own figure) or the quote locked for the payment.
        out["legs"] = legs
    # The most recent active mandates only: a long session must not grow this result without bound.
    active = [m for m in reversed(tk.state.mandates) if m.status == "ACTIVE"]
    if active:
        shown_mandates, more = first_of(active, _SHOWN_MANDATES, "active mandate(s); ask mandate_status by id")
        out["mandates"] = [mandate_public(m) for m in shown_mandates]
        if more:
            out["mandates_not_shown"] = more
    return out


async def _held_by_owner(tk: ToolkitCore) -> dict[str, Any]:
    """What the owner decided, read fresh from the ledger: frozen (and why), the policy version in force,
    whether it is signed, and whether this process still enforces it."""
    governing = await tk.ledger.get_budget(tk.crew_budget_id)
    if governing is None:  # not a stored budget (a ledger written by hand): say so rather than guess
        return {"frozen": False, "policy_version": None, "signed": False}
    frozen_levels = []
    for budget_id in dict.fromkeys([tk.crew_budget_id, *(tk.path.parents if tk.path else ()), tk.budget_id]):
        level = governing if budget_id == tk.crew_budget_id else await tk.ledger.get_budget(budget_id)
        if level is not None and level.frozen:
            frozen_levels.append({"budget": budget_id, "reason": clean_text(level.frozen_reason or "no reason given")})
    out: dict[str, Any] = {"frozen": bool(frozen_levels), "policy_version": governing.policy_version,
                           "signed": governing.signed}
    if frozen_levels:
        out["frozen_by_owner"] = frozen_levels
        out["frozen_note"] = "No payment can be made until the owner unfreezes the budget; tell the user."
    if governing.policy_hash != tk.crew_policy.snapshot_hash():
        out["policy_changed"] = ("the owner changed this budget's policy since this agent started; payments are "
                                 "refused until the agent is restarted")
    return out


class MandateStatusArgs(ToolArgs):
    mandate_id: str | None = Field(default=None, pattern=ID_PATTERN,
                                   description="A mandate_id from request_mandate; defaults to the current one.")


@tool("mandate_status",
      "Show whether the user's authorization (mandate) is active, its budget left and its expiry.",
      MandateStatusArgs, output=MANDATE, read_only=True)
async def mandate_status(tk: ToolkitCore, args: MandateStatusArgs) -> dict[str, Any]:
    if not tk.state.mandates:
        raise NotFound("no mandate has been requested in this session", hint="Call request_mandate first.")
    chosen = tk.state.mandates[-1]
    if args.mandate_id:
        matches = [m for m in tk.state.mandates if args.mandate_id in (m.mandate_id, m.session_id)]
        if not matches:
            raise NotFound(f"mandate {args.mandate_id!r} is unknown")
        chosen = matches[0]
    if chosen.status == "PENDING_IDV":
        await _complete_mandate(tk, chosen, wait=person_wait(tk))
    await refresh_mandate(tk, chosen)
    if chosen.status == "ACTIVE" and chosen.expires_at is not None and chosen.expires_at <= tk.clock.now():
        chosen.status = "EXPIRED"
    return mandate_public(chosen)


class OrderStatusArgs(ToolArgs):
    checkout_id: str = Field(pattern=ID_PATTERN, description="The checkout_id of the order.")


@tool("order_status", "Show the status of an order (checkout): paid, failed or refunded.", OrderStatusArgs,
      output=ORDER, read_only=True)
async def order_status(tk: ToolkitCore, args: OrderStatusArgs) -> dict[str, Any]:
    ck = tk.state.checkouts.get(args.checkout_id)
    if ck is None:
        raise NotFound(f"checkout {args.checkout_id!r} is unknown")
    info = await tk.merchant(ck.merchant_id)
    # Under the checkout's lock: this session's own pay cannot be in flight meanwhile; one in flight in
    # another live process is left alone by the lifecycle (it is never settled while its owner works on it).
    async with tk.lock(f"checkout:{ck.checkout_id}"):
        entry = await tk.checkout_entry(ck.merchant_id, ck.checkout_id, ck.amount)
        settled = None
        if entry is not None:
            entry, settled = await settle_entry(tk, entry)
        await refresh_mandates(tk)
        merchant_status = None
        try:
            merchant_status = await tk.client.order_status(tk.merchant_base(info), ck.checkout_id)
        except AmpError as exc:
            if exc.code != "NOT_FOUND":
                raise
    out: dict[str, Any] = {"checkout_id": ck.checkout_id, "merchant": ck.merchant_name, "amount": ck.amount.to_public()}
    state = state_of(entry) if entry is not None else None
    if merchant_status is not None:
        out["status"] = merchant_status.status
        if merchant_status.transaction_id:
            out["transaction_id"] = merchant_status.transaction_id
        if merchant_status.refunded_amount and merchant_status.refunded_amount.cent:
            out["refunded"] = merchant_status.refunded_amount.money.to_public()
    else:
        out["status"] = _FROM_LEDGER.get(state, "PENDING") if state is not None else "NOT_PAID"
        out["source"] = "this agent's ledger (the merchant offers no order status)"
        if entry is not None and entry.external_ref:
            out["transaction_id"] = entry.external_ref
    if state is not None:
        out["payment"] = str(state)
    if settled:
        out["ledger"] = settled
    return out
