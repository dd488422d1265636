"""PostgreSQL's commit and lifecycle moves: one call of ``amp_commit`` or ``amp_transition`` (`_commit_sql`),
each its own transaction.

Owns the argument of that call and the reading of its answer. Which commits go ahead is decided by
`_ops.committed_already`, `_ops.commit_refusal` and `_ops.commit_checks`, the one copy of those rules:
the server writes only for a reserved payment in an allowed phase whose merchant transaction id is
free and whose debit is in the budget currency, and otherwise answers the entry as it locked it, for
those checks to raise, to hand back an entry already committed, or (a move the transition table
refuses) to record the refusal through the general path. A commit with a debit that is not positive
keeps the general path, which reports it after the entry's own checks, as SQLite does. A move's rule
(`_ops.transition_refused`) is kept the same way: the server moves only a reserved entry in an allowed
phase.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from amp_tools.errors import AmpToolsError, NotFound
from amp_tools.money import Money

from . import _ops
from ._reserve_fn import _slot, _template
from ._sql import POSTGRES, Q, Steps, StepsFactory, to_us
from .audit import GENESIS, _jstr, _ts, canonical_json, redact
from .records import Entry, InvalidTransition, entry_from_row

__all__ = ["GeneralPath", "commit_steps", "transition_steps"]


class GeneralPath(AmpToolsError):
    """The call changed nothing and the move is one the transition table refuses: the backend runs `steps`
    (the general path, which records the refusal) as a transaction of its own."""

    def __init__(self, steps: StepsFactory[Entry | InvalidTransition]) -> None:
        super().__init__("a refused move must be recorded in a transaction of its own; it cannot be composed "
                         "into a larger one", code="LEDGER_INTERNAL")
        self.steps = steps


def commit_steps(entry_id: int, *, external_ref: str | None, outcome: Mapping[str, Any] | None, now: datetime,
                 debited: Money | None = None, allowed_from: tuple[str, ...] | None = None
                 ) -> Steps[Entry | InvalidTransition]:
    """`_ops.commit_steps` on PostgreSQL: the same checks, writes and answers, in one call to the server."""
    arg = _plan(entry_id, external_ref, outcome, now, debited, allowed_from)
    if arg is None:
        return (yield from _ops.commit_steps(POSTGRES, entry_id, external_ref=external_ref, outcome=outcome,
                                             now=now, debited=debited, allowed_from=allowed_from))
    rows = yield Q("SELECT amp_commit(?, ?, ?)", (arg, True, False), alone=True)
    answer = json.loads(rows[0][0])
    if answer["s"] == "missing":
        raise NotFound(f"ledger entry {entry_id} does not exist; use an id returned by reserve")
    entry = entry_from_row(tuple(answer["row"]))
    if answer["s"] == "ok" or _ops.committed_already(entry, external_ref):
        return entry  # committed (by this call, its first sending, or another one)
    if _ops.commit_refusal(entry, allowed_from) is not None:
        # The general path records the refusal in the entry's chain (its own transaction; a refused commit
        # is rare) and hands it back for the ledger to raise.
        raise GeneralPath(lambda: _ops.commit_steps(POSTGRES, entry_id, external_ref=external_ref, outcome=outcome,
                                                    now=now, debited=debited, allowed_from=allowed_from))
    _ops.commit_checks(entry, external_ref, answer.get("dup"), debited)
    raise AmpToolsError(f"the ledger's commit function left entry {entry_id} as it was although it may be "
                        "committed; nothing was written", code="LEDGER_INTERNAL")


def _plan(entry_id: int, external_ref: str | None, outcome: Mapping[str, Any] | None, now: datetime,
          debited: Money | None, allowed_from: tuple[str, ...] | None) -> str | None:
    if debited is not None and not debited.is_positive():
        return None
    clean = redact(dict(outcome or {}))
    base: dict[str, Any] = {"entry_id": entry_id, "idempotency_key": _slot("key"), "external_ref": external_ref,
                            "outcome": clean, "amount": _slot("amount")}
    plain = _template({**base, "budget_amount": _slot("budget")}, 3)
    if plain is None:
        return None
    plan: dict[str, Any] = {"id": entry_id, "external_ref": external_ref, "outcome": canonical_json(clean),
                            "now": to_us(now), "ts": _ts(now), "allowed": None if allowed_from is None else
                            list(allowed_from), "genesis": GENESIS, "payload_plain": plain,
                            "body_post": f',"ts":{_jstr(_ts(now))}}}'}
    if debited is not None:
        held = {**base, "budget_amount": debited, "reserved": _slot("budget"), "debited": debited}
        plan.update(payload=_template(held, 3), payload_over=_template({**held, "over_reservation": _slot("over")}, 4),
                    debited=debited.minor, debited_currency=debited.currency)
        if plan["payload"] is None or plan["payload_over"] is None:
            return None
    return json.dumps(plan, separators=(",", ":"), ensure_ascii=False)


def transition_steps(entry_id: int, *, allowed_from: tuple[str, ...], to_phase: str, owner: str | None,
                     lease_until: datetime | None, resume: str | None, keep_resume: bool, reason: str,
                     now: datetime) -> Steps[Entry | InvalidTransition]:
    """`_ops.transition_steps` on PostgreSQL, in one call to the server."""
    payload = _template({"entry_id": entry_id, "idempotency_key": _slot("key"), "from": _slot("from"),
                         "to": to_phase, "owner": owner, "reason": reason}, 2)
    if payload is None:
        return (yield from _ops._transition_steps(POSTGRES, entry_id, allowed_from=allowed_from, to_phase=to_phase,
                                                 owner=owner, lease_until=lease_until, resume=resume,
                                                 keep_resume=keep_resume, reason=reason, now=now))
    ts = _ts(now)
    arg = json.dumps({"id": entry_id, "allowed": list(allowed_from), "to": to_phase, "owner": owner,
                      "lease_until": None if lease_until is None else to_us(lease_until), "now": to_us(now),
                      "resume": resume, "keep_resume": keep_resume, "genesis": GENESIS, "payload": payload, "ts": ts,
                      "body_post": f',"ts":{_jstr(ts)}}}'}, separators=(",", ":"), ensure_ascii=False)
    rows = yield Q("SELECT amp_transition(?, ?, ?)", (arg, True, False), alone=True)
    answer = json.loads(rows[0][0])
    if answer["s"] == "missing":
        raise NotFound(f"ledger entry {entry_id} does not exist; use an id returned by reserve")
    entry = entry_from_row(tuple(answer["row"]))
    if answer["s"] != "ok":
        if _ops.transition_refused(entry, allowed_from):
            # Recorded by the general path, as for a commit.
            raise GeneralPath(lambda: _ops._transition_steps(
                POSTGRES, entry_id, allowed_from=allowed_from, to_phase=to_phase, owner=owner,
                lease_until=lease_until, resume=resume, keep_resume=keep_resume, reason=reason, now=now))
        raise AmpToolsError(f"the ledger's transition function left entry {entry_id} as it was although it may "
                            "move; nothing was written", code="LEDGER_INTERNAL")
    return entry
