"""Reserve+commit throughput of the ledger: 1 process SQLite, N processes SQLite, N processes PostgreSQL.

Run: ``.venv/bin/python benchmarks/ledger_throughput.py [--ops 300] [--procs 8] [--pg URL]``.
Each payment is one reserve (atomic policy check) and one commit: two write transactions plus
their audit records. Figures are printed with their ratio to the single-process SQLite run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amp_tools.clock import ManualClock
from amp_tools.ledger import open_ledger
from amp_tools.money import Money
from amp_tools.policy import BudgetPolicy, SpendIntent

POLICY = {"currency": "USD", "total_budget": "1000000.00", "windows": {"day": {"limit": "1000000.00"}},
          "merchants": {"caps": {f"m{i}": "1000000.00" for i in range(4)}}}
AT = datetime(2025, 6, 11, 12, tzinfo=UTC)


def _open(target: str, schema: str | None) -> Any:
    clock = ManualClock(AT)
    return open_ledger(target, clock=clock, schema=schema) if schema else open_ledger(target, clock=clock)


def worker(args: tuple[str, str | None, int, int, Any]) -> float:
    target, schema, wid, ops, barrier = args
    ledger = _open(target, schema)
    pol = BudgetPolicy.model_validate(POLICY)
    amount = Money(100, "USD")
    if barrier is not None:
        barrier.wait()
    start = time.perf_counter()
    for n in range(ops):
        intent = SpendIntent("pay", f"m{n % 4}", "M", "5812", amount, amount, None, (), False, f"c{wid}-{n}", AT)
        res = ledger.reserve_sync(intent, pol, budget_id="bench", idempotency_key=f"{wid}-{n}", run_id="bench")
        ledger.commit_sync(res.id, external_ref=f"ref-{wid}-{n}")
    elapsed = time.perf_counter() - start
    ledger.close_sync()
    return elapsed


_BARRIER: Any = None


def _init(barrier: Any) -> None:
    global _BARRIER
    _BARRIER = barrier


def _pool_worker(args: tuple[str, str | None, int, int]) -> float:
    return worker((*args, _BARRIER))


def run(target: str, schema: str | None, procs: int, ops: int) -> float:
    _open(target, schema).close_sync()  # create the schema once, outside the timing
    if procs == 1:
        elapsed = worker((target, schema, 0, ops, None))
        return ops / elapsed
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(procs, initializer=_init, initargs=(ctx.Barrier(procs),)) as pool:
        start = time.perf_counter()
        pool.map(_pool_worker, [(target, schema, w, ops) for w in range(procs)], chunksize=1)
        wall = time.perf_counter() - start
    return procs * ops / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=300, help="payments per process")
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    opts = parser.parse_args()
    results: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(("sqlite, 1 process", run(str(Path(tmp) / "one.db"), None, 1, opts.ops)))
        results.append((f"sqlite, {opts.procs} processes", run(str(Path(tmp) / "many.db"), None, opts.procs, opts.ops)))
    schema = f"amp_bench_{uuid.uuid4().hex[:8]}"
    try:
        results.append((f"postgresql, {opts.procs} processes", run(opts.pg, schema, opts.procs, opts.ops)))
    except Exception as exc:  # report, do not hide: the PostgreSQL figure is simply missing
        print(f"postgresql skipped: {exc}")
    finally:
        try:
            import psycopg

            with psycopg.connect(opts.pg, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        except Exception:
            pass
    base = results[0][1]
    cpus = multiprocessing.cpu_count()
    print(f"{'setup':<28}{'payments/s':>12}{'vs 1 proc':>11}   (reserve + commit each; cpus={cpus})")
    for name, rate in results:
        print(f"{name:<28}{rate:>12.1f}{rate / base:>10.2f}x")


if __name__ == "__main__":
    main()
