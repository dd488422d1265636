"""`audit verify` time against ledger size: 10^4 and 10^5 payments.

``python -m benchmarks.audit_verify [--sizes 10000,100000] [--pg URL]``

A ledger of N committed payments (one budget, 50 merchants, 5 MCCs, one payment a minute) is
written in bulk, exactly as the ledger writes it: each payment's entry and its ``reserve`` and
``commit`` audit records, hash-chained in the budget's chain with its head, the running totals and
the hour / day usage buckets (the ledger's own backfill statements). Writing 10^5 payments through
`reserve` + `commit` one by one would take longer than the measurement itself; the bulk rows are
checked first: `verify` must pass on them, so they are what the ledger would have written.

Measured: one full `audit.verify_sync()` (chains, entries, refunds, totals, usage buckets and
totals, controls, approvals, policy versions) per size; the ratio of the per-payment times shows
whether verify stays linear. Beside it, the median time of the check an agent with a pinned owner
key runs before each payment (`pay_check_ms`: the signed policy version, the control, the usage
buckets against the entries over the span the policy reaches back: two UTC days for a day cap,
32 for a month cap; at one payment a minute, 2,880 and 46,080 entries; and the all-time totals of
the budget, the merchant and the MCC against all their entries). `pay_check_totals_ms` times the
all-time part alone (the three entries sums and the stored totals, in one statement): the cost
the total budget and merchant / MCC caps add, which grows with the budget's history.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.ledger._sql import Q, Steps, to_us
from amp_tools.ledger.audit import GENESIS, canonical_json, record_hash
from amp_tools.ledger.schema import backfill_buckets_sql

__all__ = ["main", "measure"]

START = datetime(2025, 1, 1, tzinfo=UTC)
BUDGET = "bench"
_BATCH = 5000
_SCHEMAS: dict[str, str] = {}


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rows(count: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int, str, int]:
    """(entries, audit records, used_minor, head hash, last seq) of `count` committed payments."""
    entries, audit = [], []
    prev, seq, used = GENESIS, 0, 0
    for i in range(count):
        at = START + timedelta(minutes=i)
        at_us, ts = to_us(at), _ts(at)
        minor, merchant, mcc = 100 + i % 997, f"m{i % 50:02d}", f"58{i % 5:02d}"
        key, ref = f"k{i}", f"pay-{i}"
        money = {"minor": minor, "currency": "USD"}
        entry_id = i + 1
        reserve = {"entry_id": entry_id, "idempotency_key": key, "attempt": 1, "run_id": "bench", "action": "pay",
                   "merchant_id": merchant, "mcc": mcc, "amount": money, "budget_amount": money, "fx_rate": None,
                   "checkout_id": f"c{i}", "policy_hash": "", "decision": "allow", "owner": None}
        commit = {"entry_id": entry_id, "external_ref": ref}
        for kind, payload in (("reserve", reserve), ("commit", commit)):
            seq += 1
            digest = record_hash(prev, seq, ts, kind, BUDGET, payload, seq)
            audit.append((seq, ts, kind, BUDGET, canonical_json(payload), prev, digest, seq))
            prev = digest
        entries.append((entry_id, BUDGET, key, merchant, merchant.upper(), mcc, minor, minor, f"c{i}", minor, ref,
                        at_us, at_us, seq - 1, seq, minor))
        used += minor
    return entries, audit, used, prev, seq


def _load_steps(count: int, postgres: bool) -> Steps[None]:
    entries, audit, used, head, last = _rows(count)
    for start in range(0, len(entries), _BATCH):
        for row in entries[start:start + _BATCH]:
            yield Q("INSERT INTO entries (id, budget_id, idempotency_key, attempt, run_id, action, merchant_id, "
                    "merchant_name, mcc, amount_minor, currency, budget_minor, budget_currency, checkout_id, status, "
                    "counts, counted_minor, refunded_minor, refunded_budget_minor, external_ref, decision, "
                    "policy_hash, created_at, updated_at, audit_seq, last_audit_seq, phase, reserved_minor) VALUES "
                    "(?, ?, ?, 1, 'bench', 'pay', ?, ?, ?, ?, 'USD', ?, 'USD', ?, 'committed', 1, ?, 0, 0, ?, '{}', "
                    "'', ?, ?, ?, ?, NULL, ?)", row)
    for row in audit:
        yield Q("INSERT INTO audit (seq, ts, kind, budget_id, payload, prev_hash, hash, n) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
    yield Q("INSERT INTO audit_heads (budget_id, n, seq, hash) VALUES (?, ?, ?, ?)", (BUDGET, last, last, head))
    yield Q("INSERT INTO budgets (budget_id, currency, used_minor, used_count, committed_count, created_at) "
            "VALUES (?, 'USD', ?, ?, ?, ?)", (BUDGET, used, count, count, to_us(START)))
    for scope, key in (("merchant", "merchant_id"), ("mcc", "mcc")):
        yield Q("INSERT INTO usage_totals (budget_id, scope, key, label, used_minor, used_count, committed_count) "
                f"SELECT budget_id, '{scope}', {key}, NULL, SUM(counted_minor), COUNT(*), COUNT(*) FROM entries "
                f"GROUP BY budget_id, {key}")
    for statement in backfill_buckets_sql():
        yield Q(statement)
    if postgres:  # the ledger's next global seq comes from this sequence
        yield Q("SELECT setval('audit_seq_gen', ?, false)", (last + 1,))


def _ledger(count: int, pg: str | None) -> LedgerBase:
    if pg:
        import uuid

        import psycopg

        schema = "bench_" + uuid.uuid4().hex[:10]
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        target = f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}"
        _SCHEMAS[target] = schema
    else:
        target = tempfile.mkdtemp(prefix="amp-verify-") + "/ledger.db"
    led = open_ledger(target, clock=ManualClock(START))
    led.bench_schema = _SCHEMAS.get(target, "")  # type: ignore[attr-defined]
    led.run_write_sync(lambda: _load_steps(count, bool(pg)))
    if pg:  # as autovacuum would for a ledger that grew over time: statistics and the visibility map
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE entries")
            conn.execute("VACUUM ANALYZE usage_buckets")
            conn.execute("VACUUM ANALYZE audit")
    return led


def _drop(pg: str | None, led: LedgerBase) -> None:
    """Remove the benchmark's PostgreSQL schema (a SQLite temp file is left to the OS)."""
    if not pg:
        return
    import psycopg

    schema = str(getattr(led, "bench_schema", ""))
    if schema.startswith("bench_"):
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _pay_check_ms(led: LedgerBase, spans: tuple[int, ...], samples: int = 30) -> list[float]:
    """Median time of the pinned-key check a payment runs before reserving (signed policy, control,
    the usage buckets of the last `span` UTC days against the entries), per span, on this ledger."""
    from amp_tools.owner import OwnerKey
    from amp_tools.owner.decisions import sign_policy_steps
    from amp_tools.owner.enforce import OwnerAuthority
    from amp_tools.policy import BudgetPolicy

    policy = BudgetPolicy.model_validate({"name": BUDGET, "currency": "USD", "total_budget": "100000000.00"})
    key = OwnerKey.generate()
    stored = led.create_budget_sync(BUDGET, policy, by="bench")  # adopts the bulk budget
    led.run_write_sync(lambda: sign_policy_steps(led.dialect, key, BUDGET, None, now=START))
    authority = OwnerAuthority(key.public())
    now = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=int(led.run_read_sync(_last_us)))
    medians = []
    for span in spans:
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            led.run_read_sync(lambda: authority.check_steps(policy_budget=BUDGET, budget_id=BUDGET,
                                                            enforced_hash=stored.policy_hash, merchant_id="m07",
                                                            mcc="5802", now=now, days=span))  # noqa: B023
            times.append(time.perf_counter() - t0)
        medians.append(round(sorted(times)[len(times) // 2] * 1000, 2))
    return medians


def _totals_check_ms(led: LedgerBase, samples: int = 30) -> float:
    """Median time of the all-time part of the pinned-key check alone (budget, merchant and MCC totals
    against all their entries, one statement), the part whose cost grows with the history."""
    from amp_tools.owner.enforce import totals_sql

    sql, params = totals_sql(((BUDGET, (BUDGET,)),), "m07", "5802")

    def steps() -> Steps[int]:
        rows = yield Q(sql, params)
        return len(rows)

    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        led.run_read_sync(steps)
        times.append(time.perf_counter() - t0)
    return round(sorted(times)[len(times) // 2] * 1000, 2)


def _last_us() -> Steps[int]:
    rows = yield Q("SELECT MAX(created_at) FROM entries")
    return int(rows[0][0])


def measure(sizes: tuple[int, ...] = (10_000, 100_000), pg: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"engine": "postgresql" if pg else "sqlite"}
    for size in sizes:
        led = _ledger(size, pg)
        try:
            t0 = time.perf_counter()
            report = led.audit.verify_sync()
            took = time.perf_counter() - t0
            day, month = _pay_check_ms(led, (2, 32))
            out[f"pay_check_ms_{size}_day_cap"], out[f"pay_check_ms_{size}_month_cap"] = day, month
            out[f"pay_check_totals_ms_{size}"] = _totals_check_ms(led)
        finally:
            led.close_sync()
            _drop(pg, led)
        if not report.ok or report.entries != size:
            raise RuntimeError(f"the bulk ledger of {size} payments does not verify: {report.problem}")
        out[f"verify_s_{size}"] = round(took, 3)
        out[f"verify_us_per_payment_{size}"] = round(took / size * 1e6, 1)
    if len(sizes) > 1:
        small, big = sizes[0], sizes[-1]
        out["per_payment_ratio"] = round(out[f"verify_us_per_payment_{big}"] / out[f"verify_us_per_payment_{small}"], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--pg", default=None, help="PostgreSQL URL (default: SQLite in a temp file)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(tuple(int(s) for s in args.sizes.split(",")), args.pg), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
