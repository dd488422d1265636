"""The payment state machine: every state a payment can be in and every move between them.

This module is the one place that says which moves exist; the ledger applies a move (a transition,
a commit, a release or a refund) only when the payment is in one of the states this table allows it
from (atomically, in one transaction, with an audit record), refuses and records any other, and
nothing but `lifecycle` writes a payment's state.

::

    reserved ──────────────────────> sending ─────────────────> committed ──> refunded ─┐
      │  │                           ^  │  │                     ^              ^       │ each further refund
      │  └──> awaiting_approval ─────┘  │  └──> unknown ─────────┘              └───────┘
      │             │                   │       │   (settled by the merchant's record or a person)
      v             v                   v       v
    released <──────┴───────────────────┴───────┘

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

__all__ = ["DURABILITY", "HELD", "LIVE", "TRANSITIONS", "PaymentState", "allowed_from", "can_move", "must_flush",
           "state_of"]


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

#: Must the write that enters a state be on disk (flushed) before the payment takes its next step?
#: A write that need not be flushed still commits, in order: SQLite in WAL mode appends it to the log
#: without an fsync (``synchronous=NORMAL`` for that transaction), PostgreSQL commits it with
#: ``SET LOCAL synchronous_commit = off``. Both engines write their log in commit order, and a later
#: flushed commit syncs the log up to itself, so once a flushed write has returned, every unflushed
#: write before it is on disk too. What an unflushed write risks is only being lost in an OS crash
#: or power loss *before* the next flushed write; a ``kill -9`` of the process loses nothing.
#:
#: * ``reserved``: unflushed. Nothing that could move money has left the process; the next step
#:   that could (``sending``) is a flushed write, which carries the reservation to disk first. Lost
#:   in a power cut, the payment never existed, and no request for it was ever sent.
#: * ``awaiting_approval``: unflushed. A person is asked; their answer reaches the payment only
#:   through flushed writes (the approval row, then ``sending``). Lost, the approval finds no
#:   payment and nothing is paid.
#: * ``sending``: flushed. The charge request leaves only after this returns: recovery must find
#:   the payment in flight and never free its money on a guess.
#: * ``unknown``, ``committed``, ``refunded``: flushed. Each records what the network may have done or
#:   did; a result is returned to the caller only once it is on disk.
#: * ``released``: flushed (the ledger does not tell a release after ``sending`` from one before it
#:   until it holds the row; releases are rare, so all of them wait for the flush).
#:
#: Every owner action (approvals, resolutions, freezes, policy changes) and every other ledger write
#: is flushed: the ledger's writes flush unless the caller names one of the states below.
DURABILITY: dict[PaymentState, bool] = {
    S.RESERVED: False,
    S.AWAITING_APPROVAL: False,
    S.SENDING: True,
    S.UNKNOWN: True,
    S.COMMITTED: True,
    S.REFUNDED: True,
    S.RELEASED: True,
}

#: States that hold budget without being posted.
HELD = frozenset({S.RESERVED, S.AWAITING_APPROVAL, S.SENDING, S.UNKNOWN})
#: States in which a live owner is working on the payment (recovery leaves them alone while it lives).
LIVE = frozenset({S.RESERVED, S.AWAITING_APPROVAL, S.SENDING})


def can_move(current: PaymentState, to: PaymentState) -> bool:
    return to in TRANSITIONS[current]


def must_flush(to: PaymentState) -> bool:
    """Whether the write that moves a payment to `to` waits for the disk flush (see `DURABILITY`)."""
    return DURABILITY[to]


def allowed_from(to: PaymentState) -> tuple[str, ...]:
    """The states a payment may be in to move to `to`: what the lifecycle hands the ledger with every
    move (transitions, commit, release, refund), which checks it atomically and refuses anything else."""
    return tuple(sorted(str(s) for s, targets in TRANSITIONS.items() if to in targets))


def state_of(entry: Any) -> PaymentState:
    """The state of a ledger entry (anything with ``status``, ``phase`` and ``refunded``)."""
    if entry.status == "committed":
        refunded = getattr(entry, "refunded", None)
        return S.REFUNDED if refunded is not None and refunded.minor > 0 else S.COMMITTED
    if entry.status == "released":
        return S.RELEASED
    return PaymentState(entry.phase or "reserved")
