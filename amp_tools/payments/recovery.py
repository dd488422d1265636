"""Settling payments whose process is gone or whose outcome is unknown, and what a person decides.

`settle` looks at one held payment (`settle_abandoned` at every held payment of a ledger or budget):

* in flight under a live owner (reserved, awaiting approval, sending): left alone, whatever its age;
* reserved or awaiting approval, owner gone: nothing was sent, so the hold is released;
* sending with its owner gone, or unknown: the counterparty is asked, first by its order status
  (where the merchant offers that extension), else by replaying the idempotent ``startPayment``
  for the checkout (AMP's own answer: a paid checkout returns its original transaction id). A
  clear answer commits or releases; anything else leaves the money reserved for a person
  (`unresolved`, then `resolve` as paid or not paid, audited). Money is never freed on a guess.
  A replay refused for a business reason by a merchant idempotent per checkout is a clear answer
  (not paid); each unclear attempt is audited with its answer, which `unresolved` shows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from amp_tools.clock import SYSTEM_CLOCK, Clock
from amp_tools.errors import InvalidArguments
from amp_tools.ledger import Entry, LedgerBase
from amp_tools.money import Money

from .lifecycle import Lifecycle
from .owner import owner_alive
from .states import HELD, LIVE, PaymentState, state_of

__all__ = ["ATTEMPT", "Ask", "Attempt", "ReconcileReport", "Resolution", "in_flight", "last_attempts", "resolve",
           "settle", "settle_abandoned", "unresolved"]

S = PaymentState
#: The audit kind of a recovery attempt that could not settle a payment (its answer is kept).
ATTEMPT = "recovery_attempt"


@dataclass(frozen=True)
class Resolution:
    """What the counterparty (or a person) says happened to one payment."""

    status: Literal["committed", "released", "unknown"]
    external_ref: str | None = None
    outcome: dict[str, Any] | None = None
    reason: str = ""
    debited: Money | None = None


@dataclass
class ReconcileReport:
    committed: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


#: Asks the AMP side what happened to a payment that may have been sent.
Ask = Callable[[Entry], Awaitable[Resolution]]


def in_flight(entry: Entry, now: datetime) -> bool:
    """True while a live owner is working on the payment (recovery must not touch it)."""
    return state_of(entry) in LIVE and owner_alive(entry.owner, entry.lease_until, now)


async def settle(lifecycle: Lifecycle, entry: Entry, ask: Ask) -> Literal["committed", "released", "unknown",
                                                                          "in_flight", "settled"]:
    state = state_of(entry)
    if state not in HELD:
        return "settled"
    if in_flight(entry, lifecycle.clock.now()):
        return "in_flight"
    if state in (S.RESERVED, S.AWAITING_APPROVAL):
        await lifecycle.release(entry.id, "its process stopped before the charge request was sent")
        return "released"
    if state == S.SENDING:
        entry = await lifecycle.unknown(entry.id, "its process stopped while the charge request was being sent")
    found = await ask(entry)
    if found.status == "committed":
        await lifecycle.commit(entry.id, external_ref=found.external_ref,
                               outcome={**(found.outcome or {}), "reconciled": True}, debited=found.debited)
        return "committed"
    if found.status == "released":
        await lifecycle.release(entry.id, found.reason or "reconciled: not paid on the AMP side")
        return "released"
    # Left for a person: keep what was asked and what came back, for `payments unresolved`.
    await lifecycle.ledger.audit.append(ATTEMPT, {"entry_id": entry.id, "checkout_id": entry.checkout_id,
                                                  "answer": found.reason or "no answer"}, budget_id=entry.budget_id)
    return "unknown"


async def settle_abandoned(lifecycle: Lifecycle, ask: Ask, *, budget_id: str | None = None,
                           limit: int = 1000) -> ReconcileReport:
    """Settle every held payment that no live process is working on (start-up recovery); the ones a live
    process works on are counted in `in_flight` and left alone."""
    report = ReconcileReport()
    for entry in await lifecycle.ledger.reserved_entries(limit=limit):
        if budget_id is not None and entry.budget_id != budget_id:
            continue
        try:
            result = await settle(lifecycle, entry, ask)
        except Exception as exc:  # one bad entry must not stop recovery of the others
            report.failed[entry.id] = f"{type(exc).__name__}: {exc}"
            continue
        if result in ("committed", "released", "unknown", "in_flight"):
            getattr(report, result).append(entry.id)
    return report


async def unresolved(ledger: LedgerBase, *, clock: Clock = SYSTEM_CLOCK, budget_id: str | None = None,
                     limit: int = 1000) -> list[Entry]:
    """Held payments that no live process is working on: recovery could not settle them; a person decides."""
    now = clock.now()
    return [e for e in await ledger.reserved_entries(limit=limit)
            if (budget_id is None or e.budget_id == budget_id) and not in_flight(e, now)]


@dataclass(frozen=True)
class Attempt:
    """Recovery's latest try at settling a payment: when, and what the counterparty answered."""

    at: str
    answer: str


async def last_attempts(ledger: LedgerBase, entries: list[Entry], *, scan: int = 20000) -> dict[int, Attempt]:
    """The latest recovery attempt of each of `entries` (from the audit trail); an entry never tried is absent."""
    if not entries:
        return {}
    wanted = {e.id for e in entries}
    found: dict[int, Attempt] = {}
    since = max(0, min(e.audit_seq for e in entries) - 1)
    for record in await ledger.audit.records(since_seq=since, limit=scan):
        entry_id = record.payload.get("entry_id") if record.kind == ATTEMPT else None
        if isinstance(entry_id, int) and entry_id in wanted:
            found[entry_id] = Attempt(at=record.ts, answer=str(record.payload.get("answer", "")))
    return found


async def resolve(lifecycle: Lifecycle, entry_id: int, *, paid: bool, by: str, reason: str,
                  transaction_id: str | None = None) -> Entry:
    """A person settles a payment whose outcome is unknown: paid (with the merchant's transaction id) or not."""
    if not by.strip():
        raise InvalidArguments("say who resolves the payment (by), for the audit trail")
    if paid and not (transaction_id or "").strip():
        raise InvalidArguments("a payment resolved as paid needs the merchant's transaction id",
                               hint="Find it in the merchant's records or the wallet's statement.")
    entry = await lifecycle.ledger.get(entry_id)
    state = state_of(entry)
    if state not in HELD:
        raise InvalidArguments(f"payment {entry_id} is {state}; only a held payment can be resolved")
    if in_flight(entry, lifecycle.clock.now()):
        raise InvalidArguments(f"payment {entry_id} is {state} in a live process ({entry.owner}); wait for it")
    if state in (S.RESERVED, S.AWAITING_APPROVAL) and paid:
        # Recorded as never sent, yet a person found the charge: their evidence wins, through the same moves.
        await lifecycle.sending(entry_id)
        state = S.SENDING
    if state == S.SENDING:
        await lifecycle.unknown(entry_id, "its process is gone; a person resolves it")
    await lifecycle.ledger.audit.append("resolution", {
        "entry_id": entry_id, "paid": paid, "transaction_id": transaction_id, "by": by, "reason": reason},
        budget_id=entry.budget_id)
    if paid:
        return await lifecycle.commit(entry_id, external_ref=transaction_id,
                                      outcome={"resolved_by": by, "reason": reason})
    return await lifecycle.release(entry_id, f"resolved as not paid by {by}: {reason}")
