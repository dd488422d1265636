"""(c) Policy decision latency against ledger size: 10^3, 10^5 and 10^6 rows of history.

Rows are bulk-loaded straight into one SQLite ledger (``executemany`` in one transaction per
step), spread evenly over two years before "now", over 50 merchants and 5 MCCs, with the running
totals (``budgets``, ``usage_totals``) and the hour/day buckets (``usage_buckets``, filled by the
ledger's own backfill statements) moved by the same amounts so they stay consistent. The
database grows 10^3 -> 10^5 -> 10^6 and is measured at each size.

The decision measured is what `reserve` runs under its lock before it writes: every usage query
the policy asks (all-time total, calendar day / week / month windows, a merchant cap, an MCC cap,
a 1 h velocity window) plus `decide`, in one read transaction. A full `reserve_sync` (decision +
insert + audit, fsync included) is reported beside it.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from amp_tools.clock import ManualClock
from amp_tools.ledger import _ops
from amp_tools.ledger._sql import to_us
from amp_tools.ledger.schema import backfill_buckets_sql
from amp_tools.ledger.sqlite import SqliteLedger
from amp_tools.money import Money
from amp_tools.policy import BudgetPolicy, SpendIntent, decide

__all__ = ["measure"]

NOW = datetime(2025, 6, 11, 12, tzinfo=UTC)
HISTORY = timedelta(days=730)
MERCHANTS = [f"merchant-{i:02d}" for i in range(50)]
MCCS = ["5812", "4511", "7011", "7512", "5411"]
BUDGET = "scale"
POLICY = {"name": "scale", "currency": "USD", "total_budget": "1000000000.00", "timezone": "UTC",
          "windows": {"day": {"limit": "100000000.00"}, "week": {"limit": "100000000.00"},
                      "month": {"limit": "100000000.00"}},
          "velocity": {"max_payments": 100_000, "per": "1h"},
          "merchants": {"caps": {m: "100000000.00" for m in MERCHANTS}},
          "mccs": {"caps": {m: "100000000.00" for m in MCCS}}}

_INSERT = ("INSERT INTO entries (budget_id, idempotency_key, attempt, run_id, action, merchant_id, merchant_name, "
           "mcc, amount_minor, currency, budget_minor, budget_currency, fx_rate, checkout_id, status, counts, "
           "counted_minor, refunded_minor, refunded_budget_minor, external_ref, decision, policy_hash, created_at, "
           "updated_at) VALUES (?, ?, 1, 'hist', 'pay', ?, ?, ?, ?, 'USD', ?, 'USD', NULL, ?, 'committed', 1, ?, 0, "
           "0, ?, '{}', '', ?, ?)")


def _load(path: str, start: int, stop: int, rng: random.Random) -> None:
    """Add rows [start, stop) of history, oldest first, and move the running totals with them."""
    now_us, span = to_us(NOW), int(HISTORY.total_seconds() * 1e6)
    count = stop - start
    # Evenly spread, jittered timestamps; sorted so the index insertions stay append-like.
    stamps = sorted(now_us - span + (span * k) // count + rng.randrange(span // count or 1) - 3_600_000_000
                    for k in range(count))
    rows, per_scope = [], {}
    total = 0
    for k, ts in enumerate(stamps):
        n = start + k
        merchant, mcc, minor = MERCHANTS[n % 50], MCCS[n % 5], 100 + n % 900
        rows.append((BUDGET, f"hist-{n:08d}", merchant, merchant.upper(), mcc, minor, minor, f"ck-{n}", minor,
                     f"ref-{n}", ts, ts))
        total += minor
        for key in (("merchant", merchant), ("mcc", mcc)):
            agg = per_scope.setdefault(key, [0, 0])
            agg[0] += minor
            agg[1] += 1
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # setup only: the measured ledger keeps FULL
        conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: index pages stay in memory while loading
        conn.execute("BEGIN IMMEDIATE")
        # Drop the entries indexes while loading and rebuild them from their own stored SQL:
        # one sort per index instead of a million scattered B-tree insertions.
        indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries' "
                               "AND sql IS NOT NULL").fetchall()
        for name, _sql in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        last_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM entries").fetchone()[0]
        conn.executemany(_INSERT, rows)
        for sql in backfill_buckets_sql(f" AND id > {int(last_id)}"):
            conn.execute(sql)
        for _name, sql in indexes:
            conn.execute(sql)
        conn.execute("UPDATE budgets SET used_minor = used_minor + ?, used_count = used_count + ?, "
                     "committed_count = committed_count + ? WHERE budget_id = ?", (total, count, count, BUDGET))
        conn.executemany(
            "INSERT INTO usage_totals (budget_id, scope, key, label, used_minor, used_count, committed_count) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (budget_id, scope, key) DO UPDATE SET "
            "used_minor = usage_totals.used_minor + excluded.used_minor, "
            "used_count = usage_totals.used_count + excluded.used_count, "
            "committed_count = usage_totals.committed_count + excluded.committed_count",
            [(BUDGET, scope, key, key.upper() if scope == "merchant" else None, agg[0], agg[1], agg[1])
             for (scope, key), agg in per_scope.items()])
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def _intent(n: int) -> SpendIntent:
    amount = Money(250, "USD")
    merchant = MERCHANTS[n % 50]
    return SpendIntent("pay", merchant, merchant.upper(), MCCS[n % 5], amount, amount, None, (), False,
                       f"live-{n}", NOW)


def _decision_ms(ledger: SqliteLedger, policy: BudgetPolicy, samples: int, seed: int) -> float:
    engine = ledger.engine
    times = []
    for k in range(samples):
        intent = _intent(seed + k)

        def steps(intent: SpendIntent = intent) -> Any:
            queries = list(engine.usage_queries(policy, intent))
            usage = yield from _ops._usage_steps(engine, BUDGET, "USD", queries, intent.merchant_id)
            return decide(policy, intent, usage)

        start = time.perf_counter()
        ledger._run_read_sync(steps)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _reserve_ms(ledger: SqliteLedger, policy: BudgetPolicy, samples: int, seed: int) -> float:
    times = []
    for k in range(samples):
        intent = _intent(seed + k)
        start = time.perf_counter()
        res = ledger.reserve_sync(intent, policy, budget_id=BUDGET, idempotency_key=f"live-{seed + k}")
        times.append(time.perf_counter() - start)
        ledger.release_sync(res.id, reason="benchmark")  # keep the measured window unchanged
    return statistics.median(times) * 1e3


def measure(tmp: str, *, sizes: tuple[int, ...] = (1_000, 100_000, 1_000_000), samples: int = 200
            ) -> dict[str, Any]:
    path = f"{tmp}/scale.db"
    policy = BudgetPolicy.model_validate(POLICY)
    ledger = SqliteLedger(path, clock=ManualClock(NOW))
    ledger._run_write_sync(lambda: _ops._lock_budget(ledger.dialect, BUDGET, "USD", to_us(NOW), create=True))
    rng = random.Random(7)
    out: dict[str, Any] = {}
    loaded, setup = 0, 0.0
    try:
        for size in sizes:
            started = time.perf_counter()
            _load(path, loaded, size, rng)
            setup += time.perf_counter() - started
            loaded = size
            _decision_ms(ledger, policy, 20, 0)  # warm the page cache
            out[f"decision_ms_{size}"] = round(_decision_ms(ledger, policy, samples, 0), 4)
            out[f"reserve_ms_{size}"] = round(_reserve_ms(ledger, policy, max(10, samples // 4), size), 4)
    finally:
        ledger.close_sync()
    small, large = sizes[0], sizes[-1]
    return {"scale_ratio_1e6_vs_1e3": round(out[f"decision_ms_{large}"] / out[f"decision_ms_{small}"], 3),
            "scale_reserve_ratio": round(out[f"reserve_ms_{large}"] / out[f"reserve_ms_{small}"], 3),
            "scale_sizes": list(sizes), "scale_setup_s": round(setup, 2),
            **{f"scale_{k}": v for k, v in out.items()}}
