"""Moving one payment through its states: the only code that writes a payment's state.

Each method names the state it moves the payment to, refunds included; the allowed starting
states come from `states.TRANSITIONS` and the ledger applies the move only if the payment is in
one of them, in one transaction, with an audit record, waiting for the disk flush or not as
`states.DURABILITY` declares. A move the table does not allow is refused (`InvalidTransition`) and
the refusal is recorded too. The owner (this process) and its lease are written with every move
into a state where a live owner works on the payment (`states.LIVE`), and cleared by every other
move: a commit, a release, an unknown outcome; a refund moves a payment already out of flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from amp_tools import telemetry
from amp_tools.clock import SYSTEM_CLOCK, Clock
from amp_tools.ledger import Entry, InvalidTransition, LedgerBase, Reservation
from amp_tools.ledger.records import MOVE_REFUSED
from amp_tools.money import Money

from .owner import current_owner
from .states import LIVE, PaymentState, allowed_from, can_move, must_flush, state_of

__all__ = ["DEFAULT_LEASE", "Lifecycle"]

S = PaymentState
DEFAULT_LEASE = timedelta(seconds=90)


class Lifecycle:
    """The state moves of payments in one ledger, on behalf of this process."""

    def __init__(self, ledger: LedgerBase, *, clock: Clock = SYSTEM_CLOCK, lease: timedelta = DEFAULT_LEASE,
                 owner: str | None = None) -> None:
        self.ledger, self.clock, self.lease = ledger, clock, lease
        self._owner = owner

    @property
    def owner(self) -> str:
        return self._owner or current_owner()

    def lease_until(self) -> datetime:
        return self.clock.now() + self.lease

    async def reserve(self, intent: Any, policy: Any, *, budget_id: str, key: str, run_id: str = "",
                      path: Any = None) -> Reservation:
        return await self.ledger.reserve(intent, policy, budget_id=budget_id, idempotency_key=key, run_id=run_id,
                                         now=self.clock.now(), owner=self.owner, lease_until=self.lease_until(),
                                         path=path, flush=must_flush(S.RESERVED))

    async def awaiting_approval(self, entry_id: int) -> Entry:
        return await self._move(entry_id, S.AWAITING_APPROVAL, "a person is asked")

    async def sending(self, entry_id: int, *, resume: str | None = None) -> Entry:
        """Before the charge request leaves: from here on, money is never freed on a guess."""
        return await self._move(entry_id, S.SENDING, "the charge request is being sent", resume=resume)

    async def unknown(self, entry_id: int, reason: str) -> Entry:
        """The request may have arrived and its answer was lost; no owner works on it any more."""
        return await self._move(entry_id, S.UNKNOWN, reason)

    async def commit(self, entry_id: int, *, external_ref: str | None, outcome: Mapping[str, Any] | None = None,
                     debited: Money | None = None) -> Entry:
        with telemetry.span("amp.commit", {"amp.entry_id": entry_id}):
            return await self.ledger.commit(entry_id, external_ref=external_ref, outcome=outcome, debited=debited,
                                            allowed_from=allowed_from(S.COMMITTED))

    async def release(self, entry_id: int, reason: str) -> Entry:
        with telemetry.span("amp.release", {"amp.entry_id": entry_id}):
            return await self.ledger.release(entry_id, reason=reason, allowed_from=allowed_from(S.RELEASED))

    async def refund(self, entry_id: int, amount: Money, *, external_ref: str, reason: str = "") -> Entry:
        """Record a refund the merchant made (idempotent per its `external_ref`): committed -> refunded."""
        with telemetry.span("amp.refund", {"amp.entry_id": entry_id, "amp.amount_minor": amount.minor}):
            return await self.ledger.refund(entry_id, amount, external_ref=external_ref, reason=reason,
                                            allowed_from=allowed_from(S.REFUNDED))

    async def check_move(self, entry: Entry, to: PaymentState, why: str = "") -> None:
        """Refuse, before anything is sent, a move whose request leaves before the ledger records it (a refund
        is asked of the merchant first): recorded and raised as the ledger refuses a move the table forbids."""
        current = state_of(entry)
        if can_move(current, to):
            return
        await self.ledger.audit.append(MOVE_REFUSED, {
            "entry_id": entry.id, "idempotency_key": entry.idempotency_key, "from": str(current), "to": str(to),
            "reason": why}, budget_id=entry.budget_id)
        raise InvalidTransition(entry.id, str(current), str(to), why)

    async def heartbeat(self, entry_ids: tuple[int, ...]) -> int:
        return await self.ledger.heartbeat(entry_ids, owner=self.owner, lease_until=self.lease_until())

    async def _move(self, entry_id: int, to: PaymentState, reason: str, *, resume: str | None = None) -> Entry:
        own = to in LIVE  # a live owner works on it: this process, under a lease its heartbeat renews
        return await self.ledger.transition(
            entry_id, allowed_from=allowed_from(to), to_phase=str(to), owner=self.owner if own else None,
            lease_until=self.lease_until() if own else None, reason=reason, resume=resume,
            keep_resume=resume is None, flush=must_flush(to))
