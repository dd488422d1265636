"""PostgreSQL reserve latency with 10^4 budgets in the database over with 1 (`pg_reserve_ratio_1e4_budgets`).

One fresh schema. "One budget": `samples` reserves on budget ``solo``. Then 10^4 budgets are added
by SQL (each with its budget row, one committed entry, its running totals and an audit chain head,
as payments would leave them) and `samples` reserves are spread over them, one per budget. The
one-budget side is measured again after that and both of its batches pooled, so drift on a shared
machine moves both sides. Reserve = `reserve_sync` (policy decision, entry, audit record, one commit).
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from amp_tools.errors import PolicyViolation
from amp_tools.ledger import LedgerBase
from amp_tools.money import Money
from amp_tools.policy import BudgetPolicy, SpendIntent
from benchmarks.ledger_tps import AT, _drop_schema, _open, _policy

__all__ = ["measure"]

_SEED = [
    "INSERT INTO budgets (budget_id, currency, used_minor, used_count, committed_count, created_at) "
    "SELECT 'many-' || g, 'USD', 100, 1, 1, 0 FROM generate_series(1, %(n)s) g",
    "INSERT INTO entries (budget_id, idempotency_key, attempt, run_id, action, merchant_id, merchant_name, mcc, "
    "amount_minor, currency, budget_minor, budget_currency, checkout_id, status, counts, counted_minor, "
    "refunded_minor, refunded_budget_minor, created_at, updated_at, audit_seq, last_audit_seq, reserved_minor) "
    "SELECT 'many-' || g, 'seed', 1, 'seed', 'pay', 'm0', 'M', '5812', 100, 'USD', 100, 'USD', 'seed-' || g, "
    "'committed', 1, 100, 0, 0, %(at)s, %(at)s, 0, 0, 100 FROM generate_series(1, %(n)s) g",
    "INSERT INTO usage_totals (budget_id, scope, key, label, used_minor, used_count, committed_count) "
    "SELECT 'many-' || g, 'merchant', 'm0', 'M', 100, 1, 1 FROM generate_series(1, %(n)s) g",
    "INSERT INTO audit_heads (budget_id, n, seq, hash) SELECT 'many-' || g, 0, 0, repeat('0', 64) "
    "FROM generate_series(1, %(n)s) g",
]


def _reserve_ms(ledger: LedgerBase, policy: BudgetPolicy, budgets: list[str], tag: str) -> list[float]:
    amount = Money(100, "USD")
    out = []
    for n, budget_id in enumerate(budgets):
        intent = SpendIntent("pay", f"m{n % 4}", "M", "5812", amount, amount, None, (), False, f"{tag}-{n}", AT)
        start = time.perf_counter()
        try:
            ledger.reserve_sync(intent, policy, budget_id=budget_id, idempotency_key=f"{tag}-{n}", run_id="bench")
        except PolicyViolation as exc:
            raise RuntimeError(f"the budgets benchmark policy refused a reserve: {exc}") from exc
        out.append(time.perf_counter() - start)
    return out


def measure(pg_url: str | None, *, budgets: int = 10_000, samples: int = 200) -> dict[str, Any]:
    if not pg_url:
        return {"pg_reserve_ratio_1e4_budgets": None}
    import psycopg

    schema = f"amp_bench_{uuid.uuid4().hex[:10]}"
    try:
        ledger = _open(pg_url, schema)
        policy = BudgetPolicy.model_validate(_policy(100 * samples))
        try:
            solo = _reserve_ms(ledger, policy, ["solo"] * samples, "solo-a")
            with psycopg.connect(pg_url, autocommit=False, options=f"-c search_path={schema}") as conn:
                for sql in _SEED:
                    conn.execute(sql, {"n": budgets, "at": 0})
                conn.commit()
                conn.execute("ANALYZE")
                conn.commit()
            many = _reserve_ms(ledger, policy, [f"many-{1 + (n * 7919) % budgets}" for n in range(samples)],
                               "many")
            solo += _reserve_ms(ledger, policy, ["solo"] * samples, "solo-b")
            audit_ok = ledger.audit.verify_sync(cross_check=False).ok
        finally:
            ledger.close_sync()
    finally:
        _drop_schema(pg_url, schema)
    solo_ms, many_ms = statistics.median(solo) * 1e3, statistics.median(many) * 1e3
    return {"pg_reserve_ms_1_budget": round(solo_ms, 3), "pg_reserve_ms_1e4_budgets": round(many_ms, 3),
            "pg_reserve_ratio_1e4_budgets": round(many_ms / solo_ms, 3), "pg_budgets_seeded": budgets,
            "pg_budgets_audit_ok": audit_ok}

