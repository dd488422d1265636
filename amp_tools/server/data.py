"""What a budget's page and the JSON API read from the ledger for one budget.

`report` is the `budget_status` report of the budget under the limits `policy_for` gives (its
sub-budgets' spending counted, as `budget_status` counts it); without limits, the used totals
per merchant and MCC. `detail` adds the payments (the budget's and its sub-budgets'), their
refunds and state history, the approvals asked for them and the budget's audit records in time
order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from amp_tools.approvals import ApprovalRecord, ApprovalStore
from amp_tools.ledger import AuditRecord, Entry, LedgerBase, Refund
from amp_tools.ledger import _ops as ledger_ops
from amp_tools.ledger._sql import Q, Steps
from amp_tools.ledger.audit import _COLS as AUDIT_COLS
from amp_tools.ledger.audit import _record as audit_record
from amp_tools.money import Money

from .budgets import Limits

__all__ = ["Detail", "decisions_of", "detail", "paid_under", "report"]

#: Payments and audit records read for one budget's page (newest first, then shown in time order).
PAYMENTS_READ = 200
AUDIT_READ = 300


def _plain_report_steps(budget_id: str, currency: str) -> Steps[dict[str, Any]]:
    """Used totals per merchant and MCC when no limits are known for the budget."""
    totals = yield from ledger_ops.totals_steps(budget_id)
    head = totals["budget"]
    out: dict[str, Any] = {"budget_id": budget_id, "currency": currency, "windows": {}, "merchants": {},
                           "mccs": {}, "total": {"used": Money(int(head[1]) if head else 0, currency).to_public(),
                                                 "count": int(head[2]) if head else 0}}
    for scope, key, label, minor, count, _committed in totals["scopes"]:
        figure = {"name": label, "used": Money(int(minor), currency).to_public(), "count": int(count)}
        out["merchants" if scope == "merchant" else "mccs"][str(key)] = figure
    return out


async def report(ledger: LedgerBase, budget_id: str, currency: str | None, limits: Limits,
                 covers: tuple[str, ...]) -> dict[str, Any]:
    if limits.policy is not None:
        return await ledger.usage_report(limits.policy, budget_id, covers=covers if len(covers) > 1 else None)
    if currency is None:
        return {"budget_id": budget_id, "currency": None, "total": {}, "windows": {}, "merchants": {}, "mccs": {}}
    return await ledger.run_read(functools.partial(_plain_report_steps, budget_id, currency))


@dataclass
class Detail:
    """Everything a budget's page shows beside its figures."""

    entries: list[Entry]
    refunds: dict[int, list[Refund]] = field(default_factory=dict)
    history: dict[int, list[AuditRecord]] = field(default_factory=dict)
    approvals: list[tuple[ApprovalRecord, Entry | None]] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)


def _audit_steps(ids: tuple[str, ...], limit: int) -> Steps[list[AuditRecord]]:
    rows = yield Q(f"SELECT {AUDIT_COLS} FROM audit WHERE budget_id IN ({', '.join('?' * len(ids))}) "
                   "ORDER BY seq DESC LIMIT ?", (*ids, limit))
    return sorted((audit_record(r) for r in rows), key=lambda r: r.seq)


def decisions(records: list[AuditRecord]) -> dict[str, int]:
    """approval id -> the audit seq of the owner's answer."""
    return {str(r.payload["approval_id"]): r.seq for r in records
            if r.kind == "approval_decision" and "approval_id" in r.payload}


def paid_under(rec: ApprovalRecord, entries: list[Entry], decided_seq: int | None) -> Entry | None:
    """The payment an approval allowed: the first of the same action, merchant and amount reserved
    after the owner's answer (a grant is single-use and bound to exactly these); the audit order
    says "after" even when both happened within the same clock tick."""
    if rec.status != "consumed" or rec.decided_at is None:
        return None
    req = rec.request
    found = [e for e in entries if e.action == req.action and e.merchant_id == req.merchant_id
             and e.amount == req.amount and (e.audit_seq > decided_seq if decided_seq is not None
                                             else e.created_at > rec.decided_at)]
    return min(found, key=lambda e: e.id) if found else None


async def decisions_of(ledger: LedgerBase, budget_ids: tuple[str, ...]) -> dict[str, int]:
    if not budget_ids:
        return {}
    return decisions(await ledger.run_read(lambda: _audit_steps(budget_ids, AUDIT_READ)))


async def detail(ledger: LedgerBase, store: ApprovalStore, covers: tuple[str, ...]) -> Detail:
    entries: list[Entry] = []
    for budget_id in covers:
        entries.extend(await ledger.entries(budget_id, limit=PAYMENTS_READ))
    entries = sorted(entries, key=lambda e: e.id, reverse=True)[:PAYMENTS_READ]
    out = Detail(entries)
    for entry in entries:
        if entry.refunded.minor:
            out.refunds[entry.id] = await ledger.refunds(entry.id)
    out.audit = await ledger.run_read(lambda: _audit_steps(covers, AUDIT_READ))
    shown = {e.id for e in entries}
    for record in out.audit:
        entry_id = record.payload.get("entry_id")
        if isinstance(entry_id, int) and entry_id in shown:
            out.history.setdefault(entry_id, []).append(record)
    records = [r for r in await store.alist(limit=500) if r.budget_id in covers]
    seqs = decisions(out.audit)
    out.approvals = [(r, paid_under(r, entries, seqs.get(r.id))) for r in records]
    return out
