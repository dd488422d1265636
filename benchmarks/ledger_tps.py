"""(b) Ledger reserve+commit throughput across processes, and the overspend count.

Each payment is one `reserve_sync` (the atomic policy check) and one `commit_sync`: two write
transactions with their audit records, on the ledger's default durability (SQLite WAL with
``synchronous=FULL``, PostgreSQL ``synchronous_commit=on``); the single-process SQLite run is
repeated with ``durability="normal"`` (survives a process crash, not a power loss). PostgreSQL runs
8 processes on one shared budget and on 8 separate budgets. The total budget is sized so the
last few attempts must be refused: the overspend count is the number of committed payments
beyond what the budget allows (it must be 0), checked on the rows and on the running totals.

``cpu_ms_per_payment_sqlite`` / ``cpu_ms_per_payment_pg``: the CPU time of the paying process
(`time.process_time`, all its threads) per committed payment of the one-process runs, the client's
share only (the PostgreSQL server's backend is another process). Reservations commit without waiting
for the flush, as the payment lifecycle makes them (`amp_tools.payments.states.DURABILITY`).

Beside its floor, in the same run (`floors`): ``sqlite_tps_1p_vs_floor`` is one process with 32
concurrent payers (asyncio tasks on the async API, which runs each transaction on a worker thread)
over ``1 / (2 x durable SQLite commit)``; ``pg_scale_8p_separate`` is 8 processes on 8 separate
budgets over 1 process; ``pg_shared_vs_floor`` is 8 processes on one budget over
``1 / (2 x PostgreSQL commit)``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from amp_tools.clock import ManualClock
from amp_tools.errors import PolicyViolation
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.money import Money
from amp_tools.payments.states import PaymentState, must_flush
from amp_tools.policy import BudgetPolicy, SpendIntent
from benchmarks import floors

__all__ = ["PG_URL", "measure"]

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
AT = datetime(2025, 6, 11, 12, tzinfo=UTC)
AMOUNT = 100  # minor units per payment
REFUSED_SHARE = 20  # 1 attempt in this many finds the budget spent
#: A reservation waits for the disk flush only if the payment lifecycle says so (`states.DURABILITY`: it
#: does not; the commit does).
RESERVE_FLUSH = must_flush(PaymentState.RESERVED)


def _policy(attempts: int) -> dict[str, Any]:
    allowed = attempts - max(1, attempts // REFUSED_SHARE)
    limit = Money(allowed * AMOUNT, "USD").amount_str()
    return {"currency": "USD", "total_budget": limit, "windows": {"day": {"limit": limit}},
            "velocity": {"max_payments": min(100_000, attempts * 2), "per": "1h"},
            "merchants": {"caps": {f"m{i}": limit for i in range(4)}}}


def _open(target: str, schema: str | None, durability: str = "full") -> LedgerBase:
    clock = ManualClock(AT)
    if schema:
        return open_ledger(target, clock=clock, schema=schema)
    return open_ledger(target, clock=clock, durability=durability)


def _worker(target: str, schema: str | None, wid: int, ops: int, attempts: int, barrier: Any,
            separate: bool = False, durability: str = "full") -> tuple[float, int, float]:
    """(wall seconds, refusals, CPU seconds of this process: `time.process_time`, every thread)."""
    ledger = _open(target, schema, durability)
    policy = BudgetPolicy.model_validate(_policy(attempts))
    amount = Money(AMOUNT, "USD")
    refused = 0
    budget_id = f"bench-{wid}" if separate else "bench"
    if barrier is not None:
        barrier.wait()
    start, cpu = time.perf_counter(), time.process_time()
    for n in range(ops):
        intent = SpendIntent("pay", f"m{n % 4}", "M", "5812", amount, amount, None, (), False, f"c{wid}-{n}", AT)
        try:
            res = ledger.reserve_sync(intent, policy, budget_id=budget_id, idempotency_key=f"{wid}-{n}", run_id="bench",
                                      flush=RESERVE_FLUSH)
        except PolicyViolation:
            refused += 1
            continue
        # A merchant transaction id is committed once per merchant: the runs sharing a schema need their own.
        ledger.commit_sync(res.id, external_ref=f"ref-{budget_id}-{wid}-{n}")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    ledger.close_sync()
    return elapsed, refused, cpu


_BARRIER: Any = None


def _init(barrier: Any) -> None:
    global _BARRIER
    _BARRIER = barrier


def _pool_worker(args: tuple[str, str | None, int, int, int, bool]) -> tuple[float, int, float]:
    target, schema, wid, ops, attempts, separate = args
    return _worker(target, schema, wid, ops, attempts, _BARRIER, separate)


async def _payers(target: str, payers: int, ops: int) -> tuple[float, int]:
    """`payers` concurrent tasks sharing `ops` payments on one budget, one ledger object."""
    ledger = _open(target, None)
    policy = BudgetPolicy.model_validate(_policy(ops))
    amount = Money(AMOUNT, "USD")
    refused = 0
    counter = iter(range(ops))

    async def payer(wid: int) -> None:
        nonlocal refused
        for n in counter:  # shared: each payment is taken by exactly one task
            intent = SpendIntent("pay", f"m{n % 4}", "M", "5812", amount, amount, None, (), False, f"c-{n}", AT)
            try:
                res = await ledger.reserve(intent, policy, budget_id="bench", idempotency_key=f"{wid}-{n}",
                                           run_id="bench", flush=RESERVE_FLUSH)
            except PolicyViolation:
                refused += 1
                continue
            await ledger.commit(res.id, external_ref=f"ref-{n}")

    start = time.perf_counter()
    await asyncio.gather(*(payer(w) for w in range(payers)))
    elapsed = time.perf_counter() - start
    await ledger.close()
    return elapsed, refused


def _overspend(target: str, schema: str | None, attempts: int, budget_id: str = "bench") -> tuple[int, int]:
    """(committed payments beyond the budget, committed payments) from rows and running totals."""
    ledger = _open(target, schema)
    try:
        policy = BudgetPolicy.model_validate(_policy(attempts))
        allowed = policy.total_budget.minor // AMOUNT
        entries = ledger.entries_sync(budget_id, limit=10 * attempts)
        committed = sum(1 for e in entries if e.status == "committed")
        report = ledger.usage_report_sync(policy, budget_id)
        used = Money.parse(report["total"]["used"]["amount"], "USD").minor
        rows_over = max(0, committed - allowed)
        totals_over = max(0, used // AMOUNT - allowed)
        if used != committed * AMOUNT:  # the running total must agree with the rows
            totals_over = max(totals_over, 1)
        return max(rows_over, totals_over), committed
    finally:
        ledger.close_sync()


def _run(target: str, schema: str | None, procs: int, ops: int, *, separate: bool = False,
         durability: str = "full", payers: int = 0) -> dict[str, Any]:
    """`separate`: each process pays from its own budget (sized for its own `ops`) instead of one shared one.
    `payers`: one process with that many concurrent tasks sharing `ops` payments."""
    attempts = ops if separate else procs * ops
    _open(target, schema).close_sync()  # create the schema once, outside the timing
    cpu = None
    if payers:
        elapsed, refused = asyncio.run(_payers(target, payers, ops))
    elif procs == 1:
        elapsed, refused, cpu = _worker(target, schema, 0, ops, attempts, None, separate, durability)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(procs, initializer=_init, initargs=(ctx.Barrier(procs),)) as pool:
            out = pool.map(_pool_worker, [(target, schema, w, ops, attempts, separate) for w in range(procs)],
                           chunksize=1)
            # Wall time from the barrier: the slowest worker's own clock (process start-up excluded).
            elapsed = max(e for e, _r, _c in out)
            refused = sum(r for _e, r, _c in out)
    budgets = [f"bench-{w}" for w in range(procs)] if separate else ["bench"]
    overspend = committed = 0
    for budget_id in budgets:
        over, done = _overspend(target, schema, attempts, budget_id)
        overspend, committed = overspend + over, committed + done
    return {"tps": committed / elapsed, "committed": committed, "refused": refused, "overspend": overspend,
            "cpu_ms": None if cpu is None else cpu * 1000 / max(1, committed)}


def measure(tmp: str, *, ops_1p: int, ops_np: int, procs: int = 8, pg_url: str | None = PG_URL
            ) -> dict[str, Any]:
    results: dict[str, Any] = {}
    one = _run(f"{tmp}/tps-1p.db", None, 1, ops_1p)
    normal = _run(f"{tmp}/tps-1p-normal.db", None, 1, ops_1p, durability="normal")
    many = _run(f"{tmp}/tps-np.db", None, procs, ops_np)
    concurrent = _run(f"{tmp}/tps-1p-32.db", None, 1, ops_1p, payers=32)
    commit_ms = floors.sqlite_commit_ms(tmp)
    floor_tps = 1000 / (2 * commit_ms)
    results.update({"sqlite_tps_1p": round(one["tps"], 1), "sqlite_tps_1p_normal": round(normal["tps"], 1),
                    "sqlite_tps_8p": round(many["tps"], 1), "ledger_procs": procs,
                    "sqlite_tps_1p_32_payers": round(concurrent["tps"], 1),
                    "sqlite_commit_ms_ledger_run": round(commit_ms, 4), "sqlite_floor_tps": round(floor_tps, 1),
                    "sqlite_tps_1p_vs_floor": round(concurrent["tps"] / floor_tps, 3),
                    "cpu_ms_per_payment_sqlite": round(one["cpu_ms"], 3)})
    overspend = one["overspend"] + many["overspend"] + normal["overspend"] + concurrent["overspend"]
    results["pg_tps_8p"] = None
    if pg_url:
        schema = f"amp_bench_{uuid.uuid4().hex[:10]}"
        try:
            pg = _run(pg_url, schema, procs, ops_np)
            results["pg_tps_8p"] = round(pg["tps"], 1)
            overspend += pg["overspend"]
            pg_sep = _run(pg_url, schema, procs, ops_np, separate=True)
            results["pg_tps_8p_separate_budgets"] = round(pg_sep["tps"], 1)
            overspend += pg_sep["overspend"]
            pg_one = _run(pg_url, schema + "_1p", 1, ops_np, separate=True)  # fresh: bench-0 is taken above
            results["pg_tps_1p"] = round(pg_one["tps"], 1)
            results["cpu_ms_per_payment_pg"] = round(pg_one["cpu_ms"], 3)
            overspend += pg_one["overspend"]
            results["pg_scale_8p_separate"] = round(pg_sep["tps"] / pg_one["tps"], 3)
            pg_ms = floors.pg_commit_ms(pg_url)
            results["pg_commit_ms"] = round(pg_ms, 4)
            results["pg_floor_tps"] = round(1000 / (2 * pg_ms), 1)
            results["pg_shared_vs_floor"] = round(pg["tps"] / (1000 / (2 * pg_ms)), 3)
        except Exception as exc:  # report, do not hide: the PostgreSQL figure is simply missing
            results["pg_error"] = f"{type(exc).__name__}: {exc}"
        finally:
            _drop_schema(pg_url, schema)
            _drop_schema(pg_url, schema + "_1p")
    results["overspend"] = overspend
    return results


def _drop_schema(url: str, schema: str) -> None:
    try:
        import psycopg

        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except Exception:  # nothing to drop when the server is unreachable
        pass
