"""Usage queries never scan the history: a window reads the rows of its partial first hour through
the partial covering indexes and hour/day buckets by primary key; all-time figures are primary-key
lookups of the running aggregates."""

from __future__ import annotations

from datetime import timedelta

import pytest

from amp_tools.ledger import LedgerBase
from amp_tools.ledger._ops import WINDOW_SQL, window_params
from amp_tools.ledger._sql import Q, Row, Steps, to_us
from tests.ledger._ledger_helpers import START, intent, policy, raw_steps

SINCE = to_us(START - timedelta(days=1))
CASES = [("all", window_params("b", "all", None, SINCE), "entries_win_all"),
         ("merchant", window_params("b", "merchant", "shop-1", SINCE), "entries_win_merchant"),
         ("mcc", window_params("b", "mcc", "5812", SINCE), "entries_win_mcc")]


async def _fill(ledger: LedgerBase) -> None:
    """One 1.00 payment a day for 40 days, merchants shop-0..2 in turn, all MCC 5812."""
    pol = policy(total_budget="100000.00")
    for n in range(40):
        at = START - timedelta(days=n)
        await ledger.reserve(intent("1.00", at=at, checkout=f"c{n}", merchant=f"shop-{n % 3}"), pol,
                             budget_id="b", idempotency_key=f"k{n}", run_id="r", now=at)


def _pg_bulk() -> Steps[list[Row]]:
    """A realistic history for the PostgreSQL planner: 6k rows over 8 months, 60 merchants, 20 MCCs."""
    yield Q("INSERT INTO entries (budget_id, idempotency_key, attempt, run_id, action, merchant_id, merchant_name, "
            "mcc, amount_minor, currency, budget_minor, budget_currency, checkout_id, status, counts, counted_minor, "
            "refunded_minor, refunded_budget_minor, created_at, updated_at) "
            "SELECT 'b', 'bulk-' || g, 1, 'r', 'pay', 'bulk-' || mod(g, 60), 'x', "
            "'6' || lpad(mod(g, 20)::text, 3, '0'), "
            "100, 'USD', 100, 'USD', 'c', 'committed', 1, 100, 0, 0, ? - g * 3600000000, 0 "
            "FROM generate_series(100, 6000) AS g", (SINCE,))
    return (yield from raw_steps("ANALYZE entries"))


@pytest.mark.parametrize(("scope", "params", "index"), CASES)
async def test_window_sums_use_their_index(ledger: LedgerBase, backend: str, scope: str,
                                           params: tuple[object, ...], index: str) -> None:
    await _fill(ledger)
    sql = WINDOW_SQL[scope]
    # The window figure: one payment per day, so the last day holds today's and yesterday's.
    rows = await ledger.run_write(lambda: raw_steps(sql, params))
    assert (int(rows[0][0]), int(rows[0][1])) == {"all": (200, 2), "merchant": (100, 1), "mcc": (200, 2)}[scope]
    if backend == "sqlite":
        plan = " | ".join(ledger.explain(sql, params))  # type: ignore[attr-defined]
        assert f"SEARCH entries USING COVERING INDEX {index} " in plan, plan
        assert "created_at>? AND created_at<?" in plan, plan  # the range is in the index search, not a filter
        assert plan.count("SEARCH usage_buckets USING PRIMARY KEY (budget_id=? AND scope=? AND key=? AND "
                          "width=? AND start>?") == 2, plan
        assert "SCAN entries" not in plan and "SCAN usage_buckets" not in plan, plan
    else:
        await ledger.run_write(_pg_bulk)
        plan = " | ".join(str(r[0]) for r in await ledger.run_write(lambda: raw_steps("EXPLAIN " + sql, params)))
        assert f"Index Only Scan using {index}" in plan and "Seq Scan on entries" not in plan, plan
        assert "created_at >=" in plan.split("Index Cond:")[1], plan


async def test_all_time_figures_are_key_lookups(ledger: LedgerBase, backend: str) -> None:
    await _fill(ledger)
    totals = await ledger.run_write(lambda: raw_steps("SELECT used_minor, used_count FROM budgets", ()))
    assert (int(totals[0][0]), int(totals[0][1])) == (4000, 40)
    if backend != "sqlite":
        return  # same primary keys on PostgreSQL; the plan shape is shown on SQLite
    for sql, params in (("SELECT used_minor, used_count FROM budgets WHERE budget_id = ?", ("b",)),
                        ("SELECT used_minor, used_count FROM usage_totals WHERE budget_id = ? AND scope = ? "
                         "AND key = ?", ("b", "merchant", "shop-1"))):
        plan = " | ".join(ledger.explain(sql, params))  # type: ignore[attr-defined]
        assert plan.startswith("SEARCH") and "INDEX" in plan, plan


