"""The one guarded path for every action that can move money.

A payment: validate -> static policy rules -> atomic ledger reservation (which re-checks every
windowed limit inside its transaction) -> human approval where the policy asks -> execute (a
callable the AMP layer supplies, given a `PaymentHandle`) -> commit or release -> audit. A refund:
the payment's state and refundable amount -> approval where the policy asks -> execute -> the
lifecycle's refund move.

Whatever framework called the tool, a payment reaches the AMP wire only through `Guard.pay`,
and each of its states is written through `Lifecycle`. The idempotency key comes from the
payment (merchant, checkout, amount, currency), so a repeated or retried call from any process
returns the first result instead of paying twice. While the payment is in flight a heartbeat
renews this process's lease on it, so recovery elsewhere leaves it alone; once the charge
request may have left (`sending`), an unclear outcome keeps the money reserved (`unknown`)
until the merchant's record or a person settles it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from amp_tools import telemetry
from amp_tools.approvals import ApprovalDecision, ApprovalRequest, Approver, DenyApprover
from amp_tools.approvals.approvers import ask
from amp_tools.approvals.request import make_request
from amp_tools.clock import SYSTEM_CLOCK, Clock
from amp_tools.errors import (
    AmpError,
    ApprovalDenied,
    ApprovalPending,
    ConfigError,
    InvalidArguments,
    PaymentInProgress,
    PolicyViolation,
    ToolError,
)
from amp_tools.ledger import AlreadyCommitted, Entry, InvalidTransition, LedgerBase, Reservation
from amp_tools.ledger.controls import refuse_if_frozen_steps
from amp_tools.money import Money
from amp_tools.owner.enforce import OwnerAuthority, usage_days
from amp_tools.policy import BudgetPolicy, SpendIntent, Verdict
from amp_tools.policy.decide import static_check
from amp_tools.policy.subbudgets import BudgetPath

from .keys import payment_key
from .lifecycle import DEFAULT_LEASE, Lifecycle
from .states import PaymentState, state_of

__all__ = ["UNKNOWN_OUTCOME_CODES", "Execute", "ExecuteRefund", "ExecutionOutcome", "Guard", "GuardResult",
           "PaymentHandle"]

log = logging.getLogger(__name__)

#: AMP codes after which we cannot know whether money moved (once the request may have left).
UNKNOWN_OUTCOME_CODES = frozenset({"OUTCOME_UNKNOWN", "TIMEOUT", "NETWORK_ERROR", "BAD_RESPONSE"})


@dataclass(frozen=True)
class ExecutionOutcome:
    """What the AMP layer reports after executing a payment or refund.

    `debited` is what the network reports it took, in the budget currency (None when it does not
    say): the ledger then counts it instead of the amount held.
    """

    external_ref: str
    detail: dict[str, Any] = field(default_factory=dict)  # public, secret-free
    debited: Money | None = None


@dataclass(frozen=True)
class GuardResult:
    status: Literal["paid", "already_paid"]
    entry_id: int
    idempotency_key: str
    amount: Money
    budget_amount: Money
    external_ref: str
    approved_by: str | None
    budget_left: Money | None
    detail: dict[str, Any]
    reserved: Money | None = None

    def to_public(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "amount": self.amount.to_public(),
            "transaction_id": self.external_ref,
        }
        if self.budget_amount != self.amount:
            out["budget_amount"] = self.budget_amount.to_public()
        if self.reserved is not None and self.budget_amount > self.reserved:
            out["debited_above_reservation"] = (self.budget_amount - self.reserved).to_public()
        if self.approved_by:
            out["approved_by"] = self.approved_by
        if self.budget_left is not None:
            out["budget_left"] = self.budget_left.to_public()
        out.update(self.detail)
        return out


class PaymentHandle:
    """Given to `execute`: it must call `sending()` right before the charge request leaves."""

    def __init__(self, lifecycle: Lifecycle, entry_id: int, key: str) -> None:
        self._lifecycle, self.entry_id, self.idempotency_key = lifecycle, entry_id, key
        self.sent = False

    async def sending(self, resume: str | None = None) -> None:
        """Record that the charge may now reach the network; `resume` (sealed) lets recovery ask again."""
        if not self.sent:
            await self._lifecycle.sending(self.entry_id, resume=resume)
            self.sent = True


#: Performs one payment with the handle it is given, calling ``await handle.sending(resume)`` right before
#: the charge request leaves (the one contract of every payment's `execute`).
Execute = Callable[[PaymentHandle], Awaitable[ExecutionOutcome]]
#: Asks the merchant for one refund of the paid entry it is given (as the Guard read it, before any refund).
ExecuteRefund = Callable[[Entry], Awaitable[ExecutionOutcome]]


class Guard:
    """Holds one user's policy, budget, ledger and approver; every money move goes through `pay` or `refund`."""

    def __init__(self, policy: BudgetPolicy, ledger: LedgerBase, *, approver: Approver | None = None,
                 clock: Clock = SYSTEM_CLOCK, budget_id: str,
                 approval_ttl: timedelta = timedelta(minutes=15), lease: timedelta = DEFAULT_LEASE,
                 path: BudgetPath | None = None, owner: OwnerAuthority | None = None) -> None:
        if not isinstance(budget_id, str) or not budget_id.strip():
            raise ConfigError(f"budget_id {budget_id!r}: name the budget this Guard spends from; there is no "
                              "default budget, so two programs share a budget only when they name the same one")
        self.policy = policy
        # With the owner's key pinned, every payment first checks the owner's signed authority.
        self.owner = owner
        # A budget with sub-budgets: every level is checked (statically here, with usage in the ledger).
        self.path = path
        self.ledger = ledger
        self.approver: Approver = approver if approver is not None else DenyApprover()
        self.clock = clock
        self.budget_id = budget_id
        self.approval_ttl = approval_ttl
        self.lifecycle = Lifecycle(ledger, clock=clock, lease=lease)
        self._policy_hash = policy.snapshot_hash()

    # ------------------------------------------------------------------ payments
    async def pay(self, intent: SpendIntent, execute: Execute, *, run_id: str = "") -> GuardResult:
        """Run one payment. `execute(handle)` performs it, calling `await handle.sending(resume)` right before
        the charge request leaves (an outcome returned without that call is recorded as sent, then committed)."""
        with telemetry.span("amp.pay", {"amp.budget_id": self.budget_id, "amp.merchant_id": intent.merchant_id,
                                        "amp.checkout_id": intent.checkout_id, "amp.amount_minor": intent.amount.minor,
                                        "amp.currency": intent.amount.currency}):
            try:
                result = await self._pay(intent, execute, run_id)
            except PolicyViolation as exc:
                telemetry.record_refusal(exc.rule)
                telemetry.record_payment("refused", currency=intent.budget_amount.currency)
                raise
            except ToolError as exc:
                telemetry.record_payment(str(exc.code).lower(), currency=intent.budget_amount.currency)
                raise
            telemetry.record_payment(result.status, currency=result.budget_amount.currency,
                                     spent_minor=result.budget_amount.minor if result.status == "paid" else 0)
            return result

    async def _pay(self, intent: SpendIntent, execute: Execute, run_id: str) -> GuardResult:
        self._validate(intent)
        key = payment_key(intent)
        try:
            with telemetry.span("amp.decide", {"amp.rules": "static"}):
                if self.path is None:
                    static_check(self.policy, intent)
                else:
                    self.path.static_check(intent)
        except PolicyViolation as exc:
            await self._audit("refusal", intent, key, rule=exc.rule, reason=exc.message)
            raise

        if self.owner is not None:
            await self._check_owner(intent, key)
        # One ledger round trip both looks the key up and reserves: a live key answers with the existing entry.
        try:
            with telemetry.span("amp.reserve", {"amp.budget_id": self.budget_id}):
                reservation = await self.lifecycle.reserve(intent, self.policy, budget_id=self.budget_id, key=key,
                                                           run_id=run_id, path=self.path)
        except PolicyViolation as exc:
            await self._audit("refusal", intent, key, rule=exc.rule, reason=exc.message)
            raise
        resumed = False
        if reservation.replayed:
            # A repeated call, from here or another process: never run the payment twice.
            paid = self.already_paid(reservation.entry)
            if paid is not None:
                return paid
            state = state_of(reservation.entry)
            if state == PaymentState.AWAITING_APPROVAL and await self._reclaim(reservation.entry):
                # The same payment asked again while a person decides: its reservation is reused (one
                # payment, one row), and the person is asked again (or their answer taken). The owner's
                # kill switch still stops it: a frozen budget releases the parked payment and refuses.
                try:
                    await self.ledger.run_read(lambda: refuse_if_frozen_steps(self.budget_id))
                except PolicyViolation as exc:
                    await self.lifecycle.release(reservation.entry.id, f"refused on retry: {exc.message}")
                    await self._audit("refusal", intent, key, rule=exc.rule, reason=exc.message)
                    raise
                resumed = True
                reservation = Reservation(entry=reservation.entry, replayed=True, verdict=Verdict(
                    approval_reasons=reservation.approval_reasons or ("a person is asked",),
                    budget_left=reservation.budget_left or self.policy.zero(),
                    checked_rules=reservation.checked_rules))
        if reservation.replayed and not resumed:
            state = state_of(reservation.entry)
            raise PaymentInProgress(
                f"this payment (checkout {intent.checkout_id}) is already {_describe(state)}; it will not be sent "
                "twice", hint="Call order_status for this checkout instead of paying again.")
        entry_id = reservation.entry.id
        handle = PaymentHandle(self.lifecycle, entry_id, key)
        beat = asyncio.ensure_future(self._heartbeat(entry_id))
        try:
            return await self._run(intent, reservation.verdict, execute, handle, key, resumed=resumed)
        finally:
            beat.cancel()
            with contextlib.suppress(BaseException):
                await beat

    async def _reclaim(self, entry: Entry) -> bool:
        """True when this process parked `entry` waiting for a person and still holds it (lease renewed)."""
        if entry.owner != self.lifecycle.owner:
            return False
        return bool(await self.lifecycle.heartbeat((entry.id,)))

    def already_paid(self, entry: Entry | None) -> GuardResult | None:
        """The one "already paid" check: the first result when `entry` (the latest of a payment's key, read by
        the reserve or by a caller's read for its reply) was committed by any toolkit or process, else None.
        The reserve's answer is what protects the money; a caller's read only saves it the walk."""
        if entry is None or entry.status != "committed":
            return None
        return GuardResult(status="already_paid", entry_id=entry.id, idempotency_key=entry.idempotency_key,
                           amount=entry.amount, budget_amount=entry.budget_amount,
                           external_ref=entry.external_ref or "", approved_by=None, budget_left=None,
                           detail=dict(entry.outcome or {}), reserved=entry.reserved)

    async def _run(self, intent: SpendIntent, verdict: Verdict, execute: Execute, handle: PaymentHandle,
                   key: str, *, resumed: bool = False) -> GuardResult:
        entry_id = handle.entry_id
        approved_by: str | None = None
        try:
            if verdict.approval_reasons:
                if not resumed:
                    await self.lifecycle.awaiting_approval(entry_id)
                asked_at = time.monotonic()
                with telemetry.span("amp.approval", {"amp.entry_id": entry_id}):
                    decision = await self._ask(intent, verdict)
                if decision.approved and self.owner is not None:
                    decision = await self._signed(decision, intent, verdict, key, entry_id)
                telemetry.record_approval_wait(time.monotonic() - asked_at, approved=decision.approved)
                await self._audit("approval", intent, key, entry_id=entry_id, approved=decision.approved,
                                  approver=decision.approver, reason=decision.reason,
                                  rules=list(verdict.approval_reasons))
                if not decision.approved:
                    raise ApprovalDenied(
                        f"the payment of {intent.amount} to {intent.merchant_name} was declined"
                        + (f": {decision.reason}" if decision.reason else ""),
                        hint="Do not retry this payment; tell the user it was declined.")
                approved_by = decision.approver or "approver"
            outcome = await execute(handle)
            if not handle.sent:
                await handle.sending()  # an execute that never said so: record it before posting
        except AmpError as exc:
            if handle.sent and exc.code in UNKNOWN_OUTCOME_CODES and exc.details.get("sent", True) is not False:
                await self.lifecycle.unknown(entry_id, f"{exc.code}: {exc.message}")
                raise AmpError(
                    f"the outcome of the payment for checkout {intent.checkout_id} is unknown ({exc.message}); "
                    "the amount stays reserved until it is settled",
                    code="OUTCOME_UNKNOWN", retryable=False,
                    hint="Do not pay again; call order_status for this checkout.") from exc
            await self.lifecycle.release(entry_id, f"{exc.code}: {exc.message}")
            if exc.code in UNKNOWN_OUTCOME_CODES:
                # Lost before the charge request was sent (e.g. while the payment token was issued): no money
                # can have moved, so the hold is already given back and the model may simply try again.
                raise AmpError(
                    f"the payment for checkout {intent.checkout_id} was not sent ({exc.message}); nothing was "
                    "charged and the reserved amount was released", code="PAYMENT_NOT_SENT", retryable=True,
                    hint="You may call pay again for this checkout.") from exc
            raise
        except ApprovalPending as exc:
            # The payment stays parked, held, waiting for the person; a retry reuses it. Each ask is in its
            # history (the audit trail), so the console shows one row with every attempt.
            with contextlib.suppress(Exception):
                await self._audit("approval_pending", intent, key, entry_id=entry_id, resumed=resumed,
                                  approval_id=exc.details.get("approval_id"))
            raise
        except InvalidTransition:
            raise  # another worker moved this payment on: it is not ours to release
        except BaseException as exc:
            if handle.sent and not isinstance(exc, ToolError):
                # Cancelled (a framework's tool timeout), stopping, or an unexpected error after the request may
                # have left: the outcome is unknown; the amount stays reserved until it is settled.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.lifecycle.unknown(entry_id, f"interrupted: {type(exc).__name__}"))
                raise
            # Declined, pending approval, a framework interrupt, a bug before sending: nothing left, free the budget.
            reason = exc.code if isinstance(exc, ToolError) else type(exc).__name__
            with contextlib.suppress(Exception):
                await asyncio.shield(self.lifecycle.release(entry_id, str(reason)))
            raise
        try:
            entry = await self.lifecycle.commit(entry_id, external_ref=outcome.external_ref, outcome=outcome.detail,
                                                debited=outcome.debited)
        except AlreadyCommitted as exc:
            # Another budget already recorded this very charge: it is never counted twice.
            await self.lifecycle.release(entry_id, f"already recorded as paid by entry {exc.other_id}")
            raise
        left = verdict.budget_left
        if left is not None and entry.budget_amount != intent.budget_amount:
            left = left - (entry.budget_amount - intent.budget_amount)
        return GuardResult(status="paid", entry_id=entry.id, idempotency_key=key, amount=intent.amount,
                           budget_amount=entry.budget_amount, external_ref=outcome.external_ref,
                           approved_by=approved_by, budget_left=left, detail=dict(outcome.detail),
                           reserved=intent.budget_amount)

    async def _heartbeat(self, entry_id: int) -> None:
        period = max(1.0, self.lifecycle.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(period)
            try:
                if not await self.lifecycle.heartbeat((entry_id,)):
                    return  # no longer in flight under this owner
            except Exception as exc:  # a missed beat is retried; the lease has slack for two
                log.warning("lease renewal of payment %s failed: %s", entry_id, exc)

    # ------------------------------------------------------------------ refunds
    async def refund(self, entry_id: int, amount: Money, execute: ExecuteRefund, *, merchant_name: str,
                     reason: str = "") -> ExecutionOutcome:
        """Refund part or all of a committed payment, as a move of its lifecycle (committed -> refunded).

        The state and the refundable amount are checked before the merchant is asked (a refusal by the
        transition table is recorded); a person confirms where the policy says so (`approval.confirm_refunds`,
        audited as a payment's approval is); `execute(entry)` asks the merchant; the lifecycle records the
        refund, which the ledger applies only from a state the table allows.
        """
        entry = await self.ledger.get(entry_id)
        await self.lifecycle.check_move(entry, PaymentState.REFUNDED, "only a completed payment is refunded")
        if amount > entry.refundable:
            raise InvalidArguments(f"refund {amount} is more than what can still be refunded ({entry.refundable})")
        intent = _refund_intent(entry, amount, merchant_name, self.clock)
        if self.policy.approval.confirm_refunds:
            key = payment_key(intent)
            report = await self.ledger.usage_report(self.policy, self.budget_id, self.clock.now())
            left = Money.parse(report["total"]["left"]["amount"], self.policy.currency)
            verdict = Verdict(approval_reasons=("the policy asks a person to confirm every refund",),
                              budget_left=left + intent.budget_amount, checked_rules=("approval.confirm_refunds",))
            decision = await self._ask(intent, verdict)
            await self._audit("approval", intent, key, entry_id=entry_id, approved=decision.approved,
                              approver=decision.approver, reason=decision.reason, rules=list(verdict.approval_reasons))
            if not decision.approved:
                raise ApprovalDenied(f"the refund of {amount} was declined"
                                     + (f": {decision.reason}" if decision.reason else ""))
        outcome = await execute(entry)
        await self.lifecycle.refund(entry_id, amount, external_ref=outcome.external_ref, reason=reason)
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

    async def _check_owner(self, intent: SpendIntent, key: str) -> None:
        """The owner's signed policy, controls and the usage figures, before anything is reserved."""
        assert self.owner is not None
        owner, root = self.owner, self.path.levels[0] if self.path is not None else None
        policy_budget = root.budget_id if root is not None else self.budget_id
        enforced = root.policy.snapshot_hash() if root is not None else self._policy_hash
        now = self.clock.now()
        # Every level's usage decides a sub-budget's payment: each is checked against the entries it covers.
        levels = self.path.levels if self.path is not None else ()
        covers = tuple((level.budget_id, tuple(level.covers)) for level in levels)
        days = max((usage_days(level.policy) for level in levels), default=usage_days(self.policy))
        try:
            await self.ledger.run_read(lambda: owner.check_steps(
                policy_budget=policy_budget, budget_id=self.budget_id, enforced_hash=enforced,
                merchant_id=intent.merchant_id, mcc=intent.mcc, now=now,
                levels=tuple(level.budget_id for level in levels), days=days, covers=covers))
        except ToolError as exc:
            await self._audit("owner_authority_refused", intent, key, code=exc.code, reason=exc.message)
            raise

    async def owner_signed(self) -> bool:
        """True when an owner key is pinned and the policy in force (and any unfreeze) carry its valid
        signatures; False without a pinned key (local development: nothing is signed-checked)."""
        owner = self.owner
        if owner is None:
            return False
        root = self.path.levels[0] if self.path is not None else None
        policy_budget = root.budget_id if root is not None else self.budget_id
        enforced = root.policy.snapshot_hash() if root is not None else self._policy_hash
        return await self.ledger.run_read(lambda: owner.signed_steps(
            policy_budget=policy_budget, budget_id=self.budget_id, enforced_hash=enforced))

    async def _signed(self, decision: ApprovalDecision, intent: SpendIntent, verdict: Verdict, key: str,
                      entry_id: int) -> ApprovalDecision:
        """The approval, if the owner signed it for exactly this payment; else refused (and audited)."""
        assert self.owner is not None
        request = make_request(intent, verdict, budget_id=self.budget_id, ttl=self.approval_ttl, clock=self.clock)
        try:
            self.owner.check_approval(decision, request, self.budget_id)
        except ToolError as exc:
            await self._audit("owner_authority_refused", intent, key, entry_id=entry_id, code=exc.code,
                              reason=exc.message, approval_id=decision.approval_id)
            raise
        return decision

    async def _ask(self, intent: SpendIntent, verdict: Verdict) -> ApprovalDecision:
        request: ApprovalRequest = make_request(intent, verdict, budget_id=self.budget_id, ttl=self.approval_ttl,
                                                clock=self.clock)
        return await ask(self.approver, request)



def _describe(state: PaymentState) -> str:
    return {PaymentState.RESERVED: "being prepared", PaymentState.AWAITING_APPROVAL: "waiting for a person's approval",
            PaymentState.SENDING: "being sent", PaymentState.UNKNOWN: "sent, with its outcome not yet known"
            }.get(state, str(state))


def _refund_intent(entry: Any, amount: Money, merchant_name: str, clock: Clock) -> SpendIntent:
    # The share of the original budget amount this refund gives back (rounded down: never overstated).
    budget = Money(entry.budget_amount.minor * amount.minor // entry.amount.minor, entry.budget_amount.currency)
    return SpendIntent(action="refund", merchant_id=entry.merchant_id, merchant_name=merchant_name,
                       mcc=entry.mcc, amount=amount, budget_amount=budget, fx_rate=None, items=(),
                       human_present=False, checkout_id=entry.checkout_id, at=clock.now())
