"""The payment lifecycle: states and transitions, the Guard, ownership, settlement and recovery.

A newcomer's map: `states` (the state machine, one table), `lifecycle` (the only writer of a
payment's state), `guard` (the one guarded path), `owner` (who holds a payment in flight),
`recovery` (settle one payment, settle the abandoned ones, a person's resolution), `keys` (the idempotency key).
"""

from __future__ import annotations

from .guard import UNKNOWN_OUTCOME_CODES, Execute, ExecuteRefund, ExecutionOutcome, Guard, GuardResult, PaymentHandle
from .keys import checkout_key, payment_key
from .lifecycle import DEFAULT_LEASE, Lifecycle
from .owner import current_owner, owner_alive
from .recovery import Ask, ReconcileReport, Resolution, in_flight, resolve, settle, settle_abandoned, unresolved
from .states import DURABILITY, HELD, LIVE, TRANSITIONS, PaymentState, allowed_from, can_move, must_flush, state_of

__all__ = ["DEFAULT_LEASE", "DURABILITY", "HELD", "LIVE", "TRANSITIONS", "UNKNOWN_OUTCOME_CODES", "Ask", "Execute",
           "ExecuteRefund", "ExecutionOutcome", "Guard", "GuardResult", "Lifecycle", "PaymentHandle", "PaymentState",
           "ReconcileReport", "Resolution", "allowed_from", "can_move", "checkout_key", "current_owner", "in_flight",
           "must_flush", "owner_alive", "payment_key", "resolve", "settle", "settle_abandoned", "state_of",
           "unresolved"]
