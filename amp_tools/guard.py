"""The one guarded path for every action that can move money.

validate -> static policy rules -> atomic ledger reservation (which re-checks every windowed
limit inside its transaction) -> human approval where the policy asks -> execute (a callable
the AMP layer supplies) -> commit or release -> audit.

Whatever framework called the tool, a payment reaches the AMP wire only through `Guard.pay`.
The idempotency key is derived from the intent (run, checkout, merchant, amount), so a
repeated or retried tool call returns the first result instead of paying twice. When the
outcome of an execution is unknown (a timeout after the request left), the reservation stays
held, so the budget is never overspent while the outcome is reconciled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from amp_tools.approvals import ApprovalDecision, ApprovalRequest, Approver, DenyApprover, ask, make_request
from amp_tools.clock import SYSTEM_CLOCK, Clock
from amp_tools.errors import (
    AmpError,
    ApprovalDenied,
    InvalidArguments,
    PaymentInProgress,
    PolicyViolation,
    ToolError,
)
from amp_tools.ledger import Ledger
from amp_tools.money import Money
from amp_tools.policy import BudgetPolicy, SpendIntent, Verdict, static_check

__all__ = ["ExecutionOutcome", "Guard", "GuardResult", "idempotency_key"]

#: AMP codes after which we cannot know whether money moved: keep the reservation held.
UNKNOWN_OUTCOME_CODES = frozenset({"OUTCOME_UNKNOWN", "TIMEOUT", "NETWORK_ERROR", "BAD_RESPONSE"})


def idempotency_key(run_id: str, intent: SpendIntent) -> str:
    """A key derived from the intent: same run, checkout, merchant and amount => same key."""
    raw = "|".join([intent.action, run_id, intent.checkout_id, intent.merchant_id,
                    str(intent.amount.minor), intent.amount.currency])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ExecutionOutcome:
    """What the AMP layer reports after executing a payment or refund."""

    external_ref: str
    detail: dict[str, Any] = field(default_factory=dict)  # public, secret-free


@dataclass(frozen=True)
class GuardResult:
    status: Literal["paid", "already_paid", "refunded"]
    entry_id: int
    idempotency_key: str
    amount: Money
    budget_amount: Money
    external_ref: str
    approved_by: str | None
    budget_left: Money | None
    detail: dict[str, Any]

    def to_public(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "amount": self.amount.to_public(),
            "transaction_id": self.external_ref,
        }
        if self.budget_amount != self.amount:
            out["budget_amount"] = self.budget_amount.to_public()
        if self.approved_by:
            out["approved_by"] = self.approved_by
        if self.budget_left is not None:
            out["budget_left"] = self.budget_left.to_public()
        out.update(self.detail)
        return out


Execute = Callable[[], Awaitable[ExecutionOutcome]]


class Guard:
    """Holds one user's policy, ledger and approver; every money move goes through `pay`."""

    def __init__(self, policy: BudgetPolicy, ledger: Ledger, *, approver: Approver | None = None,
                 clock: Clock = SYSTEM_CLOCK, budget_id: str = "default",
                 approval_ttl: timedelta = timedelta(minutes=15)) -> None:
        self.policy = policy
        self.ledger = ledger
        self.approver: Approver = approver if approver is not None else DenyApprover()
        self.clock = clock
        self.budget_id = budget_id
        self.approval_ttl = approval_ttl
        self._policy_hash = policy.snapshot_hash()

    # ------------------------------------------------------------------ payments
    async def pay(self, intent: SpendIntent, execute: Execute, *, run_id: str) -> GuardResult:
        self._validate(intent)
        key = idempotency_key(run_id, intent)
        try:
            static_check(self.policy, intent)
        except PolicyViolation as exc:
            await self._audit("refusal", intent, key, rule=exc.rule, reason=exc.message)
            raise

        # No separate look-up of the key first: `reserve` answers a live key with the existing entry
        # (replayed) before any policy check, in the same transaction, so one ledger round trip does both.
        try:
            reservation = await self.ledger.reserve(intent, self.policy, budget_id=self.budget_id,
                                                    idempotency_key=key, run_id=run_id, now=self.clock.now())
        except PolicyViolation as exc:
            await self._audit("refusal", intent, key, rule=exc.rule, reason=exc.message)
            raise
        if reservation.replayed:
            # A repeated call, or a concurrent one that won the race: never run the payment twice.
            if reservation.entry.status == "committed":
                return self._result_from_entry(reservation.entry, "already_paid")
            raise PaymentInProgress(
                f"this payment (checkout {intent.checkout_id}) is already being processed; it will not be sent twice",
                hint="Call order_status for this checkout instead of paying again.")
        entry_id = reservation.entry.id
        approved_by: str | None = None
        executing = False
        try:
            if reservation.verdict.approval_reasons:
                decision = await self._ask(intent, reservation.verdict)
                await self._audit("approval", intent, key, entry_id=entry_id, approved=decision.approved,
                                  approver=decision.approver, reason=decision.reason,
                                  rules=list(reservation.verdict.approval_reasons))
                if not decision.approved:
                    raise ApprovalDenied(
                        f"the payment of {intent.amount} to {intent.merchant_name} was declined"
                        + (f": {decision.reason}" if decision.reason else ""),
                        hint="Do not retry this payment; tell the user it was declined.")
                approved_by = decision.approver or "approver"
            executing = True
            outcome = await execute()
        except AmpError as exc:
            if exc.code in UNKNOWN_OUTCOME_CODES and exc.details.get("sent", True) is not False:
                # The request may have reached the wallet: keep the money reserved until reconciled.
                raise AmpError(
                    f"the outcome of the payment for checkout {intent.checkout_id} is unknown ({exc.message}); "
                    "the amount stays reserved until it is reconciled",
                    code="OUTCOME_UNKNOWN", retryable=False,
                    hint="Do not pay again; call order_status for this checkout.") from exc
            await self.ledger.release(entry_id, reason=f"{exc.code}: {exc.message}")
            raise
        except BaseException as exc:
            if executing and not isinstance(exc, ToolError):
                # Cancelled (a framework's tool timeout), stopping, or an unexpected error while the request
                # may be out: the outcome is unknown, so the amount stays reserved until order_status or
                # reconcile settles it. (ToolErrors are raised by our own code before anything is sent.)
                raise
            # Declined, pending approval, a framework interrupt, a bug: nothing was sent, free the budget.
            reason = exc.code if isinstance(exc, ToolError) else type(exc).__name__
            await self.ledger.release(entry_id, reason=str(reason))
            raise
        entry = await self.ledger.commit(entry_id, external_ref=outcome.external_ref, outcome=outcome.detail)
        return GuardResult(status="paid", entry_id=entry.id, idempotency_key=key, amount=intent.amount,
                           budget_amount=intent.budget_amount, external_ref=outcome.external_ref,
                           approved_by=approved_by, budget_left=reservation.verdict.budget_left,
                           detail=dict(outcome.detail))

    # ------------------------------------------------------------------ refunds
    async def refund(self, entry_id: int, amount: Money, execute: Execute, *,
                     merchant_name: str, reason: str = "") -> ExecutionOutcome:
        """Refund part or all of a committed payment; asks for approval when the policy says so."""
        entry = await self.ledger.get(entry_id)
        if entry is None or entry.status != "committed":
            raise InvalidArguments(f"there is no completed payment {entry_id} to refund")
        if self.policy.approval.confirm_refunds:
            intent = _refund_intent(entry, amount, merchant_name, self.clock)
            report = await self.ledger.usage_report(self.policy, self.budget_id, self.clock.now())
            left = Money.parse(report["total"]["left"]["amount"], self.policy.currency)
            verdict = Verdict(approval_reasons=("the policy asks a person to confirm every refund",),
                              budget_left=left + intent.budget_amount, checked_rules=("approval.confirm_refunds",))
            decision = await self._ask(intent, verdict)
            if not decision.approved:
                raise ApprovalDenied(f"the refund of {amount} was declined"
                                     + (f": {decision.reason}" if decision.reason else ""))
        outcome = await execute()
        await self.ledger.refund(entry_id, amount, external_ref=outcome.external_ref)
        return outcome

    # ------------------------------------------------------------------ helpers
    def _validate(self, intent: SpendIntent) -> None:
        if not intent.amount.is_positive():
            raise InvalidArguments(f"payment amount {intent.amount} must be positive")
        if intent.budget_amount.currency != self.policy.currency:
            raise InvalidArguments(
                f"budget amount {intent.budget_amount} is not in the policy currency {self.policy.currency}")

    async def _audit(self, kind: str, intent: SpendIntent, key: str, **facts: Any) -> None:
        payload = {"action": intent.action, "merchant_id": intent.merchant_id, "checkout_id": intent.checkout_id,
                   "amount": intent.amount.to_public(), "budget_amount": intent.budget_amount.to_public(),
                   "idempotency_key": key, "policy_hash": self._policy_hash, **facts}
        await self.ledger.audit.append(kind, payload, budget_id=self.budget_id)

    async def _ask(self, intent: SpendIntent, verdict: Verdict) -> ApprovalDecision:
        request: ApprovalRequest = make_request(intent, verdict, ttl=self.approval_ttl, clock=self.clock)
        return await ask(self.approver, request)

    def _result_from_entry(self, entry: Any, status: Literal["paid", "already_paid"]) -> GuardResult:
        return GuardResult(status=status, entry_id=entry.id, idempotency_key=entry.idempotency_key,
                           amount=entry.amount, budget_amount=entry.budget_amount,
                           external_ref=entry.external_ref or "", approved_by=None, budget_left=None,
                           detail=dict(entry.outcome or {}))


def _refund_intent(entry: Any, amount: Money, merchant_name: str, clock: Clock) -> SpendIntent:
    # The share of the original budget amount this refund gives back (rounded down: never overstated).
    budget = Money(entry.budget_amount.minor * amount.minor // entry.amount.minor, entry.budget_amount.currency)
    return SpendIntent(action="refund", merchant_id=entry.merchant_id, merchant_name=merchant_name,
                       mcc=entry.mcc, amount=amount, budget_amount=budget, fx_rate=None, items=(),
                       human_present=False, checkout_id=entry.checkout_id, at=clock.now())
