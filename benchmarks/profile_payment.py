"""Where a payment's CPU goes: cProfile, top functions by own time.

    .venv/bin/python -m benchmarks.profile_payment                  # the guarded `pay` tool, SQLite ledger
    .venv/bin/python -m benchmarks.profile_payment --pg URL         # the same on a PostgreSQL ledger
    .venv/bin/python -m benchmarks.profile_payment --ledger [--pg URL]  # the ledger writes of a payment

``guard`` (the default): payments as in `guard_overhead` (in-process sandbox, one mandate, checkouts
made outside the profile); only the ``pay`` calls are profiled. cProfile sees the calling thread
only, so the ledger transactions that the async API runs on worker threads are missing from this
table (the sandbox's own work, ECDSA checks and deep copies, is in it). ``--ledger`` profiles
those transactions instead, run in the calling thread through the sync API: the three writes of a
payment's life (reserve without flush, ``sending``, commit), as the lifecycle makes them. Both
print the CPU milliseconds per payment of this process without the profiler (`time.process_time`,
every thread of the process).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import tempfile
import time
import uuid
from typing import Any

from benchmarks import guard_overhead

__all__ = ["main", "profile"]


async def _run(payments: int, pg_url: str | None, profiler: cProfile.Profile | None) -> float:
    with tempfile.TemporaryDirectory(prefix="amp-bench-profile-") as tmp:
        schema = f"amp_bench_prof_{uuid.uuid4().hex[:8]}" if pg_url else None
        _sandbox, tk, specs = await guard_overhead._setup(tmp, pg_url=pg_url, schema=schema)
        try:
            for _ in range(5):  # warm-up: imports, prepared statements, caches
                await guard_overhead._guarded(specs)
            cpu = 0.0
            for _ in range(payments):
                ck = await specs["checkout"].ainvoke({"offer_id": specs["_offer"]["offer_id"], "quantity": 1})
                started = time.process_time()
                if profiler is not None:
                    profiler.enable()
                out = await specs["pay"].ainvoke({"checkout_id": ck["checkout_id"]})
                if profiler is not None:
                    profiler.disable()
                cpu += time.process_time() - started
                if out.get("status") != "paid":
                    raise RuntimeError(f"profiled payment did not pay: {out}")
        finally:
            await tk.aclose()
            if schema is not None:
                drop = getattr(tk.ledger, "drop_schema", None)
                if drop is not None:
                    drop()
            await tk.ledger.close()
    return cpu * 1000 / payments


def _ledger_run(payments: int, pg_url: str | None, profiler: cProfile.Profile | None) -> float:
    from amp_tools.ledger import _ops, open_ledger
    from amp_tools.money import Money
    from amp_tools.payments.states import PaymentState, allowed_from, must_flush
    from amp_tools.policy import BudgetPolicy, SpendIntent

    policy = BudgetPolicy.model_validate(guard_overhead.POLICY)
    amount = Money(1500, "USD")
    with tempfile.TemporaryDirectory(prefix="amp-bench-profile-") as tmp:
        schema = f"amp_bench_prof_{uuid.uuid4().hex[:8]}" if pg_url else None
        ledger = open_ledger(pg_url, schema=schema) if pg_url else open_ledger(f"{tmp}/ledger.db")
        sending = allowed_from(PaymentState.SENDING)
        try:
            cpu = 0.0
            for n in range(payments + 5):
                intent = SpendIntent("pay", guard_overhead.MERCHANT, "Sunny", "4722", amount, amount, None, (), False,
                                     f"co-{n}", ledger.clock.now())
                started = time.process_time()
                if profiler is not None and n >= 5:
                    profiler.enable()
                res = ledger.reserve_sync(intent, policy, budget_id="bench", idempotency_key=f"k-{n}",
                                          flush=must_flush(PaymentState.RESERVED))
                at = ledger.clock.now()
                ledger.run_write_sync(lambda entry_id=res.id, at=at: _ops.transition_steps(
                    ledger.dialect, entry_id, allowed_from=sending, to_phase="sending", owner="bench",
                    lease_until=None, resume=None, keep_resume=True, reason="sending", now=at))
                ledger.commit_sync(res.id, external_ref=f"tx-{n}")
                if profiler is not None:
                    profiler.disable()
                if n >= 5:
                    cpu += time.process_time() - started
        finally:
            drop = getattr(ledger, "drop_schema", None)
            if drop is not None:
                drop()
            ledger.close_sync()
    return cpu * 1000 / payments


def profile(payments: int = 200, pg_url: str | None = None, top: int = 10, *, ledger: bool = False
            ) -> dict[str, Any]:
    """CPU ms per payment (no profiler), and the profiled top functions by own time."""
    if ledger:
        cpu_ms = _ledger_run(payments, pg_url, None)
        profiler = cProfile.Profile(time.process_time)  # CPU time, not wall time (fsyncs and waits)
        _ledger_run(payments, pg_url, profiler)
    else:
        cpu_ms = asyncio.run(_run(payments, pg_url, None))
        profiler = cProfile.Profile(time.process_time)  # CPU time, not wall time (fsyncs and waits)
        asyncio.run(_run(payments, pg_url, profiler))
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return {"cpu_ms_per_payment": round(cpu_ms, 3), "table": out.getvalue()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_payment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--pg", default="", help="PostgreSQL URL (a schema is created and dropped); SQLite if empty")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--ledger", action="store_true", help="profile the ledger writes of a payment, sync API")
    opts = parser.parse_args(argv)
    result = profile(opts.payments, opts.pg or None, opts.top, ledger=opts.ledger)
    print(f"{'ledger' if opts.ledger else 'guard'} {'postgresql' if opts.pg else 'sqlite'} "
          f"cpu_ms_per_payment={result['cpu_ms_per_payment']}")
    print(result["table"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
