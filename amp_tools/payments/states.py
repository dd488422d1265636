"""The payment state machine: every state a payment can be in and every move between them.

This module is the one place that says which moves exist; the ledger applies a move only when
the payment is in one of the states this table allows it from (atomically, in one transaction),
and nothing else writes a payment's state.

::

    reserved ──> awaiting_approval ──> sending ──> committed ──> refunded (partly or fully)
       │               │                  │
       └──> released <─┘                  └──> unknown ──(counterparty or a person)──> committed | released

* **reserved**: the budget is held; nothing that could move money has left the process.
* **awaiting_approval**: held while a person is asked.
* **sending**: the charge request may be on the wire. From here money is never freed on a guess.
* **unknown**: the request may have arrived but its answer was lost; held until the merchant's
  record (order status, or a replayed idempotent ``startPayment``) or a person settles it.
* **committed**: paid; counts what the network debited. **refunded**: committed, with refunds.
* **released**: not paid; the hold is given back.

The ledger keeps two columns: ``status`` (reserved | committed | released: what counts, as in a
two-phase transfer) and ``phase`` (where a reserved payment is in its life). `state_of` reads both.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = ["HELD", "LIVE", "TRANSITIONS", "PaymentState", "allowed_from", "can_move", "state_of"]


class PaymentState(StrEnum):
    RESERVED = "reserved"
    AWAITING_APPROVAL = "awaiting_approval"
    SENDING = "sending"
    UNKNOWN = "unknown"
    COMMITTED = "committed"
    REFUNDED = "refunded"
    RELEASED = "released"


S = PaymentState

#: Every allowed move: state -> the states it may go to.
TRANSITIONS: dict[PaymentState, frozenset[PaymentState]] = {
    S.RESERVED: frozenset({S.AWAITING_APPROVAL, S.SENDING, S.RELEASED}),
    S.AWAITING_APPROVAL: frozenset({S.SENDING, S.RELEASED}),
    S.SENDING: frozenset({S.COMMITTED, S.RELEASED, S.UNKNOWN}),
    S.UNKNOWN: frozenset({S.COMMITTED, S.RELEASED}),
    S.COMMITTED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset({S.REFUNDED}),
    S.RELEASED: frozenset(),
}

#: States that hold budget without being posted.
HELD = frozenset({S.RESERVED, S.AWAITING_APPROVAL, S.SENDING, S.UNKNOWN})
#: States in which a live owner is working on the payment (recovery leaves them alone while it lives).
LIVE = frozenset({S.RESERVED, S.AWAITING_APPROVAL, S.SENDING})


def can_move(current: PaymentState, to: PaymentState) -> bool:
    return to in TRANSITIONS[current]


def allowed_from(to: PaymentState) -> tuple[str, ...]:
    """The phases a reserved entry may be in to move to `to` (what the ledger checks atomically)."""
    return tuple(sorted(str(s) for s, targets in TRANSITIONS.items() if to in targets and s in HELD))


def state_of(entry: Any) -> PaymentState:
    """The state of a ledger entry (anything with ``status``, ``phase`` and ``refunded``)."""
    if entry.status == "committed":
        refunded = getattr(entry, "refunded", None)
        return S.REFUNDED if refunded is not None and refunded.minor > 0 else S.COMMITTED
    if entry.status == "released":
        return S.RELEASED
    return PaymentState(entry.phase or "reserved")
