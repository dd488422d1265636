"""PostgreSQL's reserve: one call of ``amp_reserve`` (`_reserve_sql`), planned from the policy model.

Owns the plan of that call and the reading of its answer. The plan carries no rule written twice:
each limit is a `Cap` bound from `amp_tools.policy.decide.caps` (the list `decide` itself checks),
the approval reasons are the policy's own texts for every way the levels may have seen the merchant,
and the entry's decision and the audit payload are canonical JSON with slots the server fills (the
entry id, the attempt, the figures, the reasons and the room left). The call is its own transaction
(`Q.alone`). Whatever the server answers, the pure `decide` (or `BudgetPath.decide`) then runs on the
figures it read: a refusal is raised from there (the same rule, message and details as on SQLite),
and a reservation the server made that `decide` would not give in exactly those words is released at
once (`ReserveDisagreement`: a bug, never a rule).

A plan is not made (and the statements of `_ops.reserve_steps` run instead) for a refund, a payment
the history-free rules refuse (so that the key, policy and freeze checks still come first), a policy
engine without `caps`, or a payment whose own text holds a slot marker.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from amp_tools.errors import AmpToolsError, PolicyViolation
from amp_tools.money import Money

from . import _ops
from ._engine import IntentLike, PathLike, PolicyEngine, PolicyLike
from ._sql import POSTGRES, Q, Steps, to_us
from .audit import GENESIS, _jstr, _ts, canonical_json
from .controls import refuse_if_frozen
from .records import ENTRY_COLUMNS, Reservation, entry_from_row
from .schema import DAY_US, HOUR_US

__all__ = ["ReserveDisagreement", "reserve_steps"]

_ENTRY_NAMES = tuple(ENTRY_COLUMNS.split(", "))
#: A slot in a template: a JSON string holding only NUL, the slot's name, NUL (canonical JSON escapes NUL).
_SLOT = re.compile(r'"\\u0000([a-z_0-9]+)\\u0000"')
_MOST_CANDIDATES = 4  # levels whose new-merchant reason may differ: 2 ** 4 reason texts at most
_ZERO_FIGURE = {"minor": 0, "count": 0}


def _slot(name: str) -> str:
    return f"\0{name}\0"


def _template(value: Any, slots: int) -> dict[str, list[str]] | None:
    """`value` as canonical JSON split at its slots; None when its text holds another slot marker."""
    pieces = _SLOT.split(canonical_json(value))
    if len(pieces) != 2 * slots + 1:
        return None
    return {"parts": pieces[0::2], "slots": pieces[1::2]}


class _Level:
    __slots__ = ("budget_id", "caps", "names", "policy")

    def __init__(self, budget_id: str, policy: Any) -> None:
        self.budget_id, self.policy = budget_id, policy
        self.names: dict[str, int | None] = {}  # query name -> figure index (None: answered 0, 0 without a read)
        self.caps: list[Any] = []


def reserve_steps(engine: PolicyEngine, policy: PolicyLike, intent: IntentLike, *, budget_id: str,
                  idempotency_key: str, run_id: str, now: datetime, owner: str | None = None,
                  lease_until: datetime | None = None, path: PathLike | None = None) -> Steps[Reservation]:
    """`_ops.reserve_steps` on PostgreSQL: the same checks, writes and answers, in one call to the server."""
    _ops._text("budget_id", budget_id)
    _ops._text("idempotency_key", idempotency_key)
    _ops._text("run_id", run_id, allow_empty=True)
    _ops._validate_intent(intent, policy)
    built = _plan(engine, policy, intent, budget_id, idempotency_key, run_id, now, owner, lease_until, path)
    if built is None:
        return (yield from _ops.reserve_steps(POSTGRES, engine, policy, intent, budget_id=budget_id,
                                              idempotency_key=idempotency_key, run_id=run_id, now=now, owner=owner,
                                              lease_until=lease_until, path=path))
    arg, levels, fields = built
    # One statement, its own transaction when it is the first (see `Q.alone`); the backend sets `durable`.
    rows = yield Q("SELECT amp_reserve(?, ?, ?)", (arg, True, False), alone=True)
    answer = json.loads(rows[0][0])
    state = answer["s"]
    if state == "existing":
        existing = entry_from_row(tuple(answer["row"]))
        _ops._same_payment(existing, intent)
        return Reservation(existing, replayed=True)
    if state == "mine":  # sent again after a cut-off: the first one had committed this very reservation
        entry = entry_from_row(tuple(answer["row"]))
        verdict_type: Any = getattr(engine, "Verdict")  # noqa: B009 - not part of the engine protocol
        left = Money(int(entry.decision["budget_left"]["minor"]), policy.currency)
        return Reservation(entry, replayed=False, verdict=verdict_type(
            tuple(entry.decision["approval_reasons"]), left, tuple(entry.decision["checked_rules"])))
    if state == "currency":
        _ops._check_currency(levels[answer["level"]].budget_id, policy.currency, [(answer["stored"], None)])
    if state == "policy":
        level = levels[answer["level"]]
        _ops._refuse_other_policy(level.budget_id, answer["stored"], _ops._policy_hash(level.policy))
    if state == "frozen":
        refuse_if_frozen(levels[answer["level"]].budget_id, [(answer["reason"], answer["by"])])
    if state not in ("refused", "ok"):
        raise AmpToolsError(f"the ledger's reserve function answered {state!r}", code="LEDGER_INTERNAL")
    usages = [_usage(engine, policy.currency, level, answer, seen) for level, seen in zip(levels, answer["seen"],
                                                                                          strict=True)]
    # The one decision, on the figures the server read: a refusal raises here, as on SQLite.
    try:
        verdict = engine.decide(policy, intent, usages[0]) if path is None else path.decide(intent, usages)
    except PolicyViolation:
        if state == "refused":
            raise
        raise ReserveDisagreement(int(answer["id"])) from None
    if state == "refused":
        raise AmpToolsError("the ledger's reserve function refused a payment the policy allows; nothing was "
                            "reserved", code="LEDGER_INTERNAL")
    if canonical_json(_ops._decision(verdict)) != answer["decision"]:
        raise ReserveDisagreement(int(answer["id"]))
    fields.update(id=answer["id"], attempt=answer["attempt"], decision=answer["decision"], audit_seq=answer["seq"],
                  last_audit_seq=answer["seq"])
    entry = entry_from_row(tuple(fields.get(name) for name in _ENTRY_NAMES))
    return Reservation(entry, replayed=False, verdict=verdict)


class ReserveDisagreement(AmpToolsError):
    """The server reserved a payment whose decision the policy's `decide` does not give on the same figures.
    Nothing was paid; the backend releases the entry when the reservation was already committed."""

    def __init__(self, entry_id: int) -> None:
        super().__init__(f"the ledger's reserve function and the policy disagree on reservation {entry_id}; it is "
                         "released and nothing is paid", code="LEDGER_INTERNAL", details={"entry_id": entry_id})
        self.entry_id = entry_id


def _usage(engine: PolicyEngine, currency: str, level: _Level, answer: dict[str, Any], seen: bool) -> Any:
    minor, count = answer["m"], answer["c"]
    figures = {name: engine.UsageFigure(name=name, amount=Money(0 if at is None else int(minor[at]), currency),
                                        count=0 if at is None else int(count[at]))
               for name, at in level.names.items()}
    return engine.Usage(figures=figures, merchant_seen=bool(seen))


def _plan(engine: PolicyEngine, policy: PolicyLike, intent: IntentLike, budget_id: str, key: str, run_id: str,
          now: datetime, owner: str | None, lease_until: datetime | None, path: PathLike | None
          ) -> tuple[str, list[_Level], dict[str, Any]] | None:
    """The argument of ``amp_reserve``, the levels (root first) and the entry's fields; None: not planned."""
    caps_of: Any = getattr(engine, "caps", None)
    reasons_of: Any = getattr(engine, "approval_reasons", None)
    checked_of: Any = getattr(engine, "checked_rules", None)
    static_of: Any = getattr(engine, "static_check", None) if path is None else getattr(path, "static_check", None)
    path_reasons: Any = getattr(path, "approval_reasons", None)
    needs = (caps_of, reasons_of, checked_of, static_of, getattr(engine, "Verdict", None))
    if intent.action != "pay" or any(need is None for need in needs):
        return None
    # The history-free rules, before anything is written: a payment they refuse takes the general path,
    # which refuses it after the key, policy and freeze checks, in the order SQLite gives.
    try:
        if path is None:
            static_of(policy, intent)
        else:
            static_of(intent)
    except PolicyViolation:
        return None
    if path is None:
        specs: list[tuple[str, str | None, Any, Sequence[str], str]] = [(budget_id, None, policy, (budget_id,), "")]
    else:
        if path.budget_id != budget_id or path_reasons is None:
            return None  # the general path reports the mismatch
        specs = [(lv.budget_id, lv.parent, lv.policy, tuple(lv.covers), str(getattr(lv, "rule_prefix", "")))
                 for lv in path.levels]
    currency, now_us = policy.currency, to_us(now)
    levels: list[_Level] = []
    figures: list[list[Any]] = []
    bounds: list[list[Any]] = []
    left: list[list[int]] = []
    checked: list[str] = []
    candidates: list[int] = []
    for index, (level_id, _parent, level_policy, _covers, prefix) in enumerate(specs):
        level = _Level(level_id, level_policy)
        idents: dict[tuple[str, str | None, datetime | None], int] = {}
        for query in engine.usage_queries(level_policy, intent):
            if query.scope != "all" and query.key is None:
                level.names[query.name] = None
                continue
            ident = (query.scope, query.key, query.since)
            if ident not in idents:
                idents[ident] = len(figures)
                if query.since is None:
                    figures.append([index, query.scope, query.key, None, None, None])
                else:
                    since = to_us(query.since)
                    figures.append([index, query.scope, query.key, since, -(-since // HOUR_US) * HOUR_US,
                                    -(-since // DAY_US) * DAY_US])
            level.names[query.name] = idents[ident]
        level.caps = list(caps_of(level_policy, intent))
        for cap in level.caps:
            at = level.names.get(cap.figure)
            if at is None:
                return None
            bounds.append([at, "c" if cap.kind == "count" else "m", cap.bound])
        total = next((cap for cap in level.caps if cap.figure == "total_budget"), None)
        total_at = level.names.get("total_budget")
        if total is None or total_at is None:
            return None
        left.append([total_at, total.bound])  # room left: total - used - needed
        checked.extend(prefix + rule for rule in checked_of(level_policy, level.caps))
        if reasons_of(level_policy, intent, True) != reasons_of(level_policy, intent, False):
            candidates.append(index)
        levels.append(level)
    if len(candidates) > _MOST_CANDIDATES:
        return None
    reasons: list[str] = []
    for mask in range(1 << len(candidates)):
        unseen = {level for bit, level in enumerate(candidates) if mask >> bit & 1}
        if path is None:
            texts = reasons_of(policy, intent, not unseen)
        else:
            texts = path_reasons(intent, [i not in unseen for i in range(len(specs))])
        reasons.append(canonical_json(list(texts)))

    leaf = levels[-1]
    parents = tuple(level.budget_id for level in levels[:-1])
    mcc = (intent.mcc or "").strip() or None
    decision = _template({"approval_reasons": _slot("reasons"), "checked_rules": checked,
                          "budget_left": {"minor": _slot("left"), "currency": currency}}, 2)
    policy_hash = _ops._policy_hash(policy)
    usage_of = {name: _ZERO_FIGURE if at is None else _slot(f"f{at}") for name, at in leaf.names.items()}
    payload: dict[str, Any] = {
        "entry_id": _slot("entry_id"), "idempotency_key": key, "attempt": _slot("attempt"), "run_id": run_id,
        "action": intent.action, "merchant_id": intent.merchant_id, "mcc": mcc, "amount": intent.amount,
        "budget_amount": intent.budget_amount, "fx_rate": intent.fx_rate, "checkout_id": intent.checkout_id,
        "policy_hash": policy_hash, "decision": "allow", "decision_detail": _slot("decision"), "owner": owner,
        "usage": usage_of}
    slots = 3 + sum(at is not None for at in leaf.names.values())
    if path is not None:
        payload["levels"] = {level.budget_id: {name: _ZERO_FIGURE if at is None else _slot(f"f{at}")
                                               for name, at in level.names.items()} for level in levels[:-1]}
        slots += sum(at is not None for level in levels[:-1] for at in level.names.values())
    record = _template(payload, slots)
    if decision is None or record is None:
        return None
    fields: dict[str, Any] = {
        "budget_id": budget_id, "idempotency_key": key, "run_id": run_id,
        "action": intent.action, "merchant_id": intent.merchant_id, "merchant_name": intent.merchant_name,
        "mcc": mcc, "amount_minor": intent.amount.minor, "currency": intent.amount.currency,
        "budget_minor": intent.budget_amount.minor, "budget_currency": currency,
        "fx_rate": None if intent.fx_rate is None else str(intent.fx_rate), "checkout_id": intent.checkout_id,
        "status": "reserved", "counts": 1, "counted_minor": intent.budget_amount.minor, "refunded_minor": 0,
        "refunded_budget_minor": 0, "policy_hash": policy_hash, "created_at": now_us, "updated_at": now_us,
        "phase": "reserved", "owner": owner, "lease_until": None if lease_until is None else to_us(lease_until),
        "reserved_minor": intent.budget_amount.minor, "parents": json.dumps(list(parents)) if parents else None,
        "root_id": parents[0] if parents else None}
    ts = _ts(now)
    arg = json.dumps({
        "ids": [spec[0] for spec in specs], "parents": [spec[1] for spec in specs], "tree": path is not None,
        "currency": currency, "now": now_us, "merchant_id": intent.merchant_id,
        "merchant_name": intent.merchant_name, "mcc": mcc, "counted": intent.budget_amount.minor, "key": key,
        "amount_minor": intent.amount.minor, "amount_currency": intent.amount.currency,
        "checkout_id": intent.checkout_id,
        "hashes": [_ops._policy_hash(spec[2]) if spec[1] is None else None for spec in specs],
        "covers": [list(spec[3]) for spec in specs], "figures": figures, "bounds": bounds,
        "reason_levels": candidates, "reasons": reasons, "left": left, "genesis": GENESIS,
        "decision": decision, "payload": record, "entry": fields,
        "hour": now_us - now_us % HOUR_US, "day": now_us - now_us % DAY_US, "ts": ts,
        "body_post": f',"ts":{_jstr(ts)}}}'},
        separators=(",", ":"), ensure_ascii=False)
    return arg, levels, fields

