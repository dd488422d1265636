"""What the ledger hands back: entries, reservations, refunds and reconciliation results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from amp_tools.errors import InvalidArguments
from amp_tools.money import Money

from ._sql import Row, from_us

__all__ = ["ENTRY_COLUMNS", "MOVE_REFUSED", "AlreadyCommitted", "Entry", "InvalidTransition", "Refund", "Reservation",
           "Status", "entry_from_row"]

Status = Literal["reserved", "committed", "released"]

ENTRY_COLUMNS = ("id, budget_id, idempotency_key, attempt, run_id, action, merchant_id, merchant_name, mcc, "
                 "amount_minor, currency, budget_minor, budget_currency, fx_rate, checkout_id, status, "
                 "refunded_minor, refunded_budget_minor, external_ref, outcome, reason, decision, policy_hash, "
                 "created_at, updated_at, audit_seq, last_audit_seq, phase, owner, lease_until, reserved_minor, "
                 "resume, dup_of, parents")


class InvalidTransition(InvalidArguments):
    """A payment asked to move to a state its current state does not lead to (the ledger records the
    refusal in the audit trail, kind `MOVE_REFUSED`, before it raises this)."""

    def __init__(self, entry_id: int, current: str, wanted: str, why: str = "") -> None:
        super().__init__(f"payment {entry_id} is {current}; it cannot move to {wanted}" + (f": {why}" if why else ""),
                         code="INVALID_TRANSITION",
                         hint="Call order_status for this checkout to see where the payment stands.")
        self.entry_id, self.current, self.wanted = entry_id, current, wanted


#: The audit kind of a move the ledger refused (from a state the transition table does not allow).
MOVE_REFUSED = "move_refused"


class AlreadyCommitted(InvalidArguments):
    """A merchant transaction id is committed once: another entry already holds it."""

    def __init__(self, other_id: int, external_ref: str) -> None:
        super().__init__(f"the merchant's transaction {external_ref} is already recorded as paid by ledger entry "
                         f"{other_id}; it is never counted twice", code="ALREADY_PAID")
        self.other_id, self.external_ref = other_id, external_ref


@dataclass(frozen=True)
class Entry:
    """One payment attempt. `attempt` counts retries of a released idempotency key (1 first)."""

    id: int
    budget_id: str
    idempotency_key: str
    attempt: int
    run_id: str
    action: str
    merchant_id: str
    merchant_name: str
    mcc: str | None
    amount: Money
    budget_amount: Money
    fx_rate: Decimal | None
    checkout_id: str
    status: Status
    refunded: Money
    refunded_budget: Money
    external_ref: str | None
    outcome: dict[str, Any] | None
    reason: str | None
    decision: dict[str, Any]
    policy_hash: str
    created_at: datetime
    updated_at: datetime
    audit_seq: int
    last_audit_seq: int
    #: While reserved: where the payment is in its life (see `amp_tools.payments.states`).
    phase: str | None = None
    owner: str | None = None
    lease_until: datetime | None = None
    #: What was held at reserve (budget currency); `budget_amount` is what counts (the debit once committed).
    reserved: Money | None = None
    #: Sealed secrets for recovery (never shown; opened only with the agent key).
    resume: str | None = field(default=None, repr=False)
    dup_of: int | None = None
    #: The ancestors' budget ids (root first) of an entry of a sub-budget; empty for a single-level budget.
    parents: tuple[str, ...] = ()

    @property
    def legs(self) -> dict[str, Any] | None:
        """The payment's legs as the network reported them (checkout, mandate charge, wallet debit, the
        locked rate and quote, what counted and why), kept with its outcome; None before it is committed."""
        legs = (self.outcome or {}).get("legs")
        return dict(legs) if isinstance(legs, dict) else None

    @property
    def refundable(self) -> Money:
        """What may still be refunded (merchant currency); zero unless committed."""
        if self.status != "committed":
            return Money.zero(self.amount.currency)
        return self.amount - self.refunded

    @property
    def counted(self) -> Money:
        """What this entry currently adds to the budget's usage (budget currency)."""
        if self.status == "released" or self.action != "pay":
            return Money.zero(self.budget_amount.currency)
        return self.budget_amount - self.refunded_budget

    def to_public(self) -> dict[str, Any]:
        """A secret-free summary for tool results and reports."""
        return {"id": self.id, "budget_id": self.budget_id, "status": self.status, "action": self.action,
                "merchant_id": self.merchant_id, "merchant_name": self.merchant_name, "mcc": self.mcc,
                "amount": self.amount.to_public(), "budget_amount": self.budget_amount.to_public(),
                "refunded": self.refunded.to_public(), "checkout_id": self.checkout_id,
                "external_ref": self.external_ref, "created_at": self.created_at.isoformat(),
                "phase": self.phase, "legs": self.legs}


def entry_from_row(row: Row) -> Entry:
    currency, budget_currency = str(row[10]), str(row[12])
    return Entry(
        id=int(row[0]), budget_id=str(row[1]), idempotency_key=str(row[2]), attempt=int(row[3]),
        run_id=str(row[4]), action=str(row[5]), merchant_id=str(row[6]), merchant_name=str(row[7]),
        mcc=None if row[8] is None else str(row[8]),
        amount=Money(int(row[9]), currency), budget_amount=Money(int(row[11]), budget_currency),
        fx_rate=None if row[13] is None else Decimal(str(row[13])), checkout_id=str(row[14]),
        status=row[15], refunded=Money(int(row[16]), currency), refunded_budget=Money(int(row[17]), budget_currency),
        external_ref=row[18], outcome=None if row[19] is None else json.loads(row[19]), reason=row[20],
        decision=json.loads(row[21]) if row[21] else {}, policy_hash=str(row[22] or ""),
        created_at=from_us(int(row[23])), updated_at=from_us(int(row[24])),
        audit_seq=int(row[25] or 0), last_audit_seq=int(row[26] or 0),
        phase=row[27], owner=row[28], lease_until=None if row[29] is None else from_us(int(row[29])),
        reserved=Money(int(row[30]), budget_currency) if row[30] is not None else None,
        resume=row[31], dup_of=None if row[32] is None else int(row[32]),
        parents=tuple(json.loads(row[33])) if row[33] else ())


@dataclass(frozen=True)
class Reservation:
    """The answer of `reserve`: the entry, and whether it is a replay of an earlier reserve.

    On a replay `verdict` is None and the approval reasons / budget left come from the decision
    stored with the entry, so a repeated call sees what the first call saw.
    """

    entry: Entry
    replayed: bool
    verdict: Any = None

    @property
    def id(self) -> int:
        return self.entry.id

    @property
    def status(self) -> Status:
        return self.entry.status

    @property
    def approval_reasons(self) -> tuple[str, ...]:
        return tuple(self.entry.decision.get("approval_reasons", ()))

    @property
    def checked_rules(self) -> tuple[str, ...]:
        return tuple(self.entry.decision.get("checked_rules", ()))

    @property
    def budget_left(self) -> Money | None:
        left = self.entry.decision.get("budget_left")
        return None if left is None else Money(int(left["minor"]), str(left["currency"]))


@dataclass(frozen=True)
class Refund:
    id: int
    entry_id: int
    amount: Money
    budget_amount: Money
    external_ref: str
    created_at: datetime
    audit_seq: int
