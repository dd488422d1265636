"""What ``amp-tools ledger show`` reads: the budgets a ledger holds, and one budget's recent entries.

Read-only, on either engine (one read transaction each); the ledger must already exist
(`_paths.existing_ledger` names it when it does not).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from amp_tools.ledger._sql import Q, Row, from_us
from amp_tools.money import Money

__all__ = ["BudgetRow", "list_budgets", "read_entries"]


@dataclass(frozen=True)
class BudgetRow:
    budget_id: str
    used: Money  # held and spent, net of refunds, in the budget's currency
    count: int  # payments recorded against it
    created_at: str  # first use, UTC


def _budgets_steps() -> Generator[Q, list[Row], list[BudgetRow]]:
    rows = yield Q("SELECT budget_id, currency, used_minor, used_count, created_at FROM budgets ORDER BY budget_id")
    return [BudgetRow(str(r[0]), Money(int(r[2]), str(r[1])), int(r[3]),
                      from_us(int(r[4])).strftime("%Y-%m-%d %H:%M")) for r in rows]


def list_budgets(target: str) -> list[BudgetRow]:
    """Every budget in the ledger at `target`, by id."""
    from amp_tools.ledger import open_ledger

    led = open_ledger(target)
    try:
        return led.run_read_sync(_budgets_steps)
    finally:
        led.close_sync()


def read_entries(target: str, budget_id: str, limit: int) -> list[Any]:
    """The `limit` most recent entries of `budget_id`, newest first."""
    from amp_tools.ledger import open_ledger

    led = open_ledger(target)
    try:
        return list(led.entries_sync(budget_id, limit=limit))
    finally:
        led.close_sync()
