"""What the spending dashboard reads from the ledger: the budgets, their figures and payments.

With the owner's policy, a budget in the policy's currency gets the ledger's full usage report
(limits, what is left, windows); otherwise the all-time totals per merchant and MCC. A budget
frozen before its first payment (no ledger row yet) is listed too.
"""

from __future__ import annotations

import functools
from typing import Any

from amp_tools.ledger import Entry, LedgerBase
from amp_tools.ledger import _ops as ledger_ops
from amp_tools.ledger._sql import Q, Steps
from amp_tools.money import Money

from .control import list_controls

__all__ = ["budget_data"]

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


async def budget_data(ledger: LedgerBase, policy: Any) -> list[tuple[dict[str, Any], list[Entry]]]:
    """(report, newest payments first) per budget."""
    out: list[tuple[dict[str, Any], list[Entry]]] = []
    known: list[tuple[str, str | None]] = [*await ledger.run_read(_budgets_steps)]
    frozen_only = sorted(set(await list_controls(ledger)) - {b for b, _ in known})
    currency_of_policy = str(policy.currency) if policy is not None else None
    for budget_id, currency in [*known, *((b, currency_of_policy) for b in frozen_only)]:
        if currency is None:
            out.append(({"budget_id": budget_id, "currency": None, "total": {}}, []))
            continue
        if policy is not None and str(policy.currency) == currency:
            report = await ledger.usage_report(policy, budget_id)
        else:
            report = await ledger.run_read(functools.partial(_plain_report_steps, budget_id, currency))
        out.append((report, await ledger.entries(budget_id, limit=PAYMENTS_READ)))
    return out
