"""What the spending dashboard reads from the ledger: the budgets, their figures and payments.

A budget's limits come from its stored policy (`governing_policy`, the one lookup the console
and any other reader use): a stored budget gets the ledger's full usage report (limits, what is
left, windows; a budget with sub-budgets counts theirs, and lists their payments beside its own);
a budget with no stored policy only its all-time totals per merchant and MCC. A budget frozen
before it had a row is listed too.
"""

from __future__ import annotations

import functools
from typing import Any

from amp_tools.ledger import Entry, LedgerBase
from amp_tools.ledger import _ops as ledger_ops
from amp_tools.ledger._sql import Q, Steps
from amp_tools.money import Money

from .control import list_controls

__all__ = ["budget_data", "governing_policy"]

#: Payments read per budget (the chart covers 30 days; the table shows the newest 50).
PAYMENTS_READ = 1000


def _budgets_steps() -> Steps[list[tuple[str, str]]]:
    rows = yield Q("SELECT budget_id, currency FROM budgets ORDER BY budget_id")
    return [(str(r[0]), str(r[1])) for r in rows]


def _plain_report_steps(budget_id: str, currency: str) -> Steps[dict[str, Any]]:
    """Used totals per merchant and MCC when no policy (hence no limits) was given to the server."""
    totals = yield from ledger_ops.totals_steps(budget_id)
    head = totals["budget"]
    report: dict[str, Any] = {"budget_id": budget_id, "currency": currency, "windows": {}, "merchants": {},
                              "mccs": {}, "total": {"used": Money(int(head[1]) if head else 0, currency).to_public(),
                                                    "count": int(head[2]) if head else 0}}
    for scope, key, label, minor, count, _committed in totals["scopes"]:
        figure = {"name": label, "used": Money(int(minor), currency).to_public(), "count": int(count)}
        report["merchants" if scope == "merchant" else "mccs"][str(key)] = figure
    return report


async def governing_policy(ledger: LedgerBase, budget_id: str) -> tuple[Any, tuple[str, ...]] | None:
    """(the budget's stored policy, the budget ids whose payments count toward it), or None when the
    budget has no stored policy. No file given to the server decides any budget's limits."""
    stored = await ledger.get_budget(budget_id)
    if stored is None:
        return None
    policy = stored.policy
    if not policy.agents:
        return policy, (budget_id,)
    from amp_tools.policy.subbudgets import BudgetPath

    return policy, tuple(BudgetPath.of(policy, budget_id).leaf.covers)


async def _payments(ledger: LedgerBase, covers: tuple[str, ...]) -> list[Entry]:
    """Newest first, the payments of the budget and of every sub-budget it covers (what its figures count)."""
    found: list[Entry] = []
    for budget_id in covers:
        found.extend(await ledger.entries(budget_id, limit=PAYMENTS_READ))
    found.sort(key=lambda e: (e.created_at, e.id), reverse=True)
    return found[:PAYMENTS_READ]


async def budget_data(ledger: LedgerBase) -> list[tuple[dict[str, Any], list[Entry]]]:
    """(report, newest payments first) per budget."""
    out: list[tuple[dict[str, Any], list[Entry]]] = []
    known: list[tuple[str, str | None]] = [*await ledger.run_read(_budgets_steps)]
    frozen_only = sorted(set(await list_controls(ledger)) - {b for b, _ in known})
    for budget_id, currency in [*known, *((b, None) for b in frozen_only)]:
        if currency is None:
            out.append(({"budget_id": budget_id, "currency": None, "total": {}}, []))
            continue
        governing = await governing_policy(ledger, budget_id)
        if governing is not None:
            policy, covers = governing
            report = await ledger.usage_report(policy, budget_id, covers=covers if len(covers) > 1 else None)
            out.append((report, await _payments(ledger, covers)))
            continue
        report = await ledger.run_read(functools.partial(_plain_report_steps, budget_id, currency))
        out.append((report, await ledger.entries(budget_id, limit=PAYMENTS_READ)))
    return out
