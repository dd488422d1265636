"""The payment lifecycle: states and transitions, the Guard, ownership, settlement and recovery.

A newcomer's map: `states` (the state machine, one table), `lifecycle` (the only writer of a
payment's state), `guard` (the one guarded path), `owner` (who holds a payment in flight),
`recovery` (settle one payment, settle the abandoned ones, a person's resolution), `keys` (the idempotency key).
"""

from __future__ import annotations

# What a program that pays, or a developer writing their own execute or recovery, touches. The
# lifecycle's internals (leases, held/live sets, idempotency keys, owners) stay in their modules.
from .guard import Execute, ExecuteRefund, ExecutionOutcome, Guard, GuardResult, PaymentHandle
from .lifecycle import Lifecycle
from .recovery import Ask, ReconcileReport, Resolution, resolve, settle, settle_abandoned, unresolved
from .states import DURABILITY, TRANSITIONS, PaymentState, allowed_from, state_of

__all__ = ["DURABILITY", "TRANSITIONS", "Ask", "Execute", "ExecuteRefund", "ExecutionOutcome", "Guard", "GuardResult",
           "Lifecycle", "PaymentHandle", "PaymentState", "ReconcileReport", "Resolution", "allowed_from", "resolve",
           "settle", "settle_abandoned", "state_of", "unresolved"]
