"""Which limits apply to a budget, and the figures of every budget the console lists.

`policy_for` is the one place the console asks "what are this budget's limits": every page and
the JSON API go through it. The source is the policy stored in the ledger (``amp-tools budgets``);
a crew's sub-budget gets its level of the crew's stored policy, exactly as payments are checked.
No file given to the server decides any budget's limits; a budget with no stored policy has none.

`overview` reads one row per budget (used, limit, left, frozen, pending approvals, last
payment) from the ledger's running aggregates: a crew's row counts its agents' spending, as
`amp-tools ledger tree` and `budget_status` do. All figures stay in integer minor units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from amp_tools.errors import AmpToolsError, ConfigError
from amp_tools.ledger import LedgerBase, StoredBudget
from amp_tools.ledger._sql import Q, Steps, from_us
from amp_tools.ledger.budgets import _SELECT as stored_select
from amp_tools.ledger.budgets import _budget as stored_budget
from amp_tools.money import Money
from amp_tools.policy.subbudgets import SEPARATOR, BudgetPath

from .control import list_controls

__all__ = ["BudgetRow", "Limits", "overview", "policy_for", "stored_budgets", "subtree"]


@dataclass(frozen=True)
class Limits:
    """The policy that limits one budget (None: no limits known) and where it comes from."""

    policy: Any
    source: str
    version: str | None = None
    signed: bool | None = None


#: A budget's stored policy, or why it could not be read.
Stored = dict[str, StoredBudget | str]


def _stored_steps() -> Steps[Stored]:
    rows = yield Q(stored_select + " ORDER BY b.budget_id")
    out: Stored = {}
    for row in rows:
        try:
            budget = stored_budget(row)
        except (AmpToolsError, ValueError) as exc:
            # One unreadable stored policy (a bug, or someone writing the database) must not take every
            # page down: that budget says why it shows no limits.
            out[str(row[0])] = str(exc.message if isinstance(exc, AmpToolsError) else exc)[:300]
            continue
        out[budget.budget_id] = budget
    return out


async def stored_budgets(ledger: LedgerBase) -> Stored:
    """Every budget's stored policy (or the problem reading it), by budget id: one read for a page."""
    return await ledger.run_read(_stored_steps)


def _found(stored: Mapping[str, StoredBudget | str], budget_id: str) -> StoredBudget | None:
    found = stored.get(budget_id)
    return found if isinstance(found, StoredBudget) else None


def _root_of(stored: Mapping[str, StoredBudget | str], budget_id: str) -> StoredBudget | None:
    """The top stored ancestor of `budget_id` (itself when it has no stored parent)."""
    current, seen = _found(stored, budget_id), set()
    while current is not None and current.parent and _found(stored, current.parent) and \
            current.budget_id not in seen:
        seen.add(current.budget_id)
        current = _found(stored, current.parent)
    return current


def policy_for(stored: Mapping[str, StoredBudget | str], budget_id: str) -> Limits:
    """The limits of `budget_id`: its stored policy, or for a crew's sub-budget (``trip/hotel_booker``)
    its level of the crew's stored policy (tightened by every level above it), as payments are checked."""
    problem = stored.get(budget_id)
    if isinstance(problem, str):
        return Limits(None, f"its stored policy could not be read ({problem})")
    own, root = _found(stored, budget_id), _root_of(stored, budget_id)
    if root is None and SEPARATOR in budget_id:
        root = _found(stored, budget_id.partition(SEPARATOR)[0])
    if root is None:
        return Limits(None, "no policy is stored for it (amp-tools budgets create)")
    agent = budget_id[len(root.budget_id) + 1:] if budget_id != root.budget_id else ""
    try:
        policy = BudgetPath.of(root.policy, root.budget_id, agent).leaf.policy if agent else root.policy
    except ConfigError:
        policy = own.policy if own is not None else None
    if policy is None:
        return Limits(None, f"{root.budget_id}'s stored policy names no sub-budget {agent!r}")
    shown = own or root
    where = ("stored in the ledger" if shown is root else
             f"stored in the ledger, the level of {root.budget_id}'s policy version {root.policy_version}")
    return Limits(policy, f"{where}, set by {shown.updated_by}", version=str(shown.policy_version),
                  signed=shown.signed)


@dataclass
class BudgetRow:
    """One budget's figures as the overview lists them (amounts in minor units of `currency`)."""

    budget_id: str
    parent: str | None
    currency: str | None
    used: int
    count: int
    limit: int | None = None
    frozen: bool = False
    frozen_reason: str = ""
    pending: int = 0
    last_payment: datetime | None = None
    name: str | None = None
    children: list[BudgetRow] = field(default_factory=list)

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    def money(self, minor: int | None) -> Money | None:
        return None if minor is None or self.currency is None else Money(minor, self.currency)

    def to_public(self) -> dict[str, Any]:
        def shown(minor: int | None) -> dict[str, Any] | None:
            value = self.money(minor)
            return None if value is None else value.to_public()
        return {"budget_id": self.budget_id, "name": self.name, "parent": self.parent, "currency": self.currency,
                "used": shown(self.used), "limit": shown(self.limit), "left": shown(self.left),
                "payments": self.count, "frozen": self.frozen, "frozen_reason": self.frozen_reason or None,
                "pending_approvals": self.pending,
                "last_payment": None if self.last_payment is None else self.last_payment.isoformat(),
                "sub_budgets": [child.budget_id for child in self.children]}


def _rows_steps() -> Steps[tuple[list[Any], dict[str, int]]]:
    # Each budget's newest entry: one descent of the (budget_id, id) index per budget, never a scan
    # of every entry.
    rows = yield Q("SELECT b.budget_id, b.parent, b.currency, b.used_minor, b.used_count, "
                   "(SELECT MAX(e.id) FROM entries e WHERE e.budget_id = b.budget_id) FROM budgets b "
                   "ORDER BY b.budget_id")
    return [r[:5] for r in rows], {str(r[0]): int(r[5]) for r in rows if r[5] is not None}


def _created_steps(ids: list[int]) -> Steps[dict[int, int]]:
    if not ids:
        return {}
    rows = yield Q(f"SELECT id, created_at FROM entries WHERE id IN ({', '.join('?' * len(ids))})", tuple(ids))
    return {int(r[0]): int(r[1]) for r in rows}


async def overview(ledger: LedgerBase, pending: dict[str, int]) -> list[BudgetRow]:
    """Every budget, parents before their sub-budgets (each row's `children` filled), with its limit,
    freeze state, pending approvals (`pending`: count per budget id) and newest payment."""
    rows, last_ids = await ledger.run_read(_rows_steps)
    created = await ledger.run_read(lambda: _created_steps(sorted(set(last_ids.values()))))
    controls = await list_controls(ledger)
    stored = await stored_budgets(ledger)
    out: dict[str, BudgetRow] = {}
    for budget_id, parent, currency, used, count in rows:
        out[str(budget_id)] = BudgetRow(str(budget_id), None if parent is None else str(parent), str(currency),
                                        int(used), int(count))
    for budget_id in [*stored, *controls]:
        if budget_id not in out:  # stored or frozen before its first payment: no spending yet
            parent = budget_id.rpartition(SEPARATOR)[0] or None
            known = _found(stored, budget_id)
            parent = known.parent if known is not None else parent
            out[budget_id] = BudgetRow(budget_id, parent if parent in out or parent in stored else None,
                                       known.currency if known is not None else None, 0, 0)
    for row in out.values():
        limits = policy_for(stored, row.budget_id)
        if limits.policy is not None:
            row.name = getattr(limits.policy, "name", None)
            row.limit = limits.policy.total_budget.minor
            row.currency = row.currency or str(limits.policy.currency)
        control = controls.get(row.budget_id)
        row.frozen, row.frozen_reason = bool(control and control.frozen), (control.reason if control else "") or ""
        row.pending = pending.get(row.budget_id, 0)
        newest = last_ids.get(row.budget_id)
        if newest is not None and newest in created:
            row.last_payment = from_us(created[newest])
        if row.parent is not None and row.parent in out:
            out[row.parent].children.append(row)
    # A crew's newest payment is its agents' newest too (deepest first, so it climbs every level).
    for row in sorted(out.values(), key=lambda r: -r.budget_id.count(SEPARATOR)):
        parent = out.get(row.parent or "")
        if parent is not None and row.last_payment is not None and (
                parent.last_payment is None or row.last_payment > parent.last_payment):
            parent.last_payment = row.last_payment
    return list(out.values())


def subtree(rows: list[BudgetRow], budget_id: str) -> tuple[str, ...]:
    """`budget_id` and every budget below it (whose spending counts in its figures)."""
    return tuple(r.budget_id for r in rows if r.budget_id == budget_id
                 or r.budget_id.startswith(budget_id + SEPARATOR))
