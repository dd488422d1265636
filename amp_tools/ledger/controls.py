"""The budget owner's kill switch: freeze and unfreeze a budget, in the ledger's database.

Owns the ``budget_controls`` table (one row per budget that was ever frozen), created by
`ensure_steps` whenever a ledger opens (idempotent, outside the versioned schema). The ledger's
reserve transaction runs `refuse_if_frozen_steps` right after it locks the budget row, so a
frozen budget refuses every payment at once with the rule ``budget.frozen``. `freeze_steps`
takes the same budget row lock first: once a freeze has returned, no reservation that started
before it can still slip through, and every later one sees it.

Freezing and unfreezing append an audit record in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amp_tools.errors import InvalidArguments, PolicyViolation
from amp_tools.untrusted import one_line

from ._sql import Dialect, Q, Row, Steps, from_us, to_us
from .audit import append_steps

__all__ = ["FROZEN_RULE", "BudgetControl", "controls_steps", "ensure_steps", "freeze_steps", "frozen_query",
           "refuse_if_frozen", "refuse_if_frozen_steps"]

FROZEN_RULE = "budget.frozen"
_MAX_REASON = 500

_TABLE = """CREATE TABLE IF NOT EXISTS budget_controls (
    budget_id TEXT PRIMARY KEY,
    frozen INTEGER NOT NULL CHECK (frozen IN (0, 1)),
    reason TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at BIGINT NOT NULL)"""


@dataclass(frozen=True)
class BudgetControl:
    """Whether a budget is frozen, why, by whom and since when."""

    budget_id: str
    frozen: bool
    reason: str
    changed_by: str
    changed_at: datetime

    def to_public(self) -> dict[str, Any]:
        return {"budget_id": self.budget_id, "frozen": self.frozen, "reason": self.reason,
                "changed_by": self.changed_by, "changed_at": self.changed_at.isoformat()}


def ensure_steps(dialect: Dialect) -> Steps[None]:
    """Create the table if it is missing (runs on every ledger open; cheap and idempotent)."""
    del dialect  # same text in both engines
    yield Q(_TABLE)


def refuse_if_frozen_steps(budget_id: str) -> Steps[None]:
    """Raise `PolicyViolation` (rule ``budget.frozen``) when the budget is frozen."""
    rows = yield frozen_query(budget_id)
    refuse_if_frozen(budget_id, rows)


def frozen_query(budget_id: str) -> Q:
    """The statement of `refuse_if_frozen_steps` (the reserve sends it in a batch); `refuse_if_frozen` reads it."""
    return Q("SELECT reason, changed_by FROM budget_controls WHERE budget_id = ? AND frozen = 1", (budget_id,))


def refuse_if_frozen(budget_id: str, rows: list[Row]) -> None:
    if rows:
        reason = str(rows[0][0])
        raise PolicyViolation(
            f"budget {budget_id!r} is frozen by its owner ({reason or 'no reason given'}); no payment can be made "
            "until the owner unfreezes it",
            rule=FROZEN_RULE, hint="Do not retry; tell the user the budget is frozen.")


def freeze_steps(dialect: Dialect, budget_id: str, frozen: bool, *, by: str, reason: str,
                 now: datetime) -> Steps[BudgetControl]:
    """Set the budget's frozen flag and audit the change; freezing twice keeps the first reason."""
    budget = one_line("budget_id", budget_id, 200)
    who = one_line("by", by, 200)
    why = one_line("reason", reason, _MAX_REASON)
    if not budget or not who:
        raise InvalidArguments("freezing a budget needs a budget_id and the name of the person (by=...)")
    # The budget row lock first (the ledger's lock order): in-flight reservations finish before this.
    yield Q(f"SELECT budget_id FROM budgets WHERE budget_id = ?{dialect.for_update}", (budget,))
    yield Q("INSERT INTO budget_controls (budget_id, frozen, reason, changed_by, changed_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (budget_id) DO UPDATE SET frozen = excluded.frozen, reason = excluded.reason, "
            "changed_by = excluded.changed_by, changed_at = excluded.changed_at",
            (budget, int(frozen), why, who, to_us(now)))
    yield from append_steps(dialect, "budget_freeze" if frozen else "budget_unfreeze",
                            {"budget_id": budget, "by": who, "reason": why}, budget_id=budget, at=now)
    return BudgetControl(budget, frozen, why, who, now)


def controls_steps() -> Steps[dict[str, BudgetControl]]:
    """Every budget's control row, by budget id."""
    rows = yield Q("SELECT budget_id, frozen, reason, changed_by, changed_at FROM budget_controls")
    return {str(r[0]): BudgetControl(str(r[0]), bool(r[1]), str(r[2]), str(r[3]), from_us(int(r[4]))) for r in rows}
