"""Helpers of the PostgreSQL pool tests: a watcher counting server connections, and the workers
that spawned processes run (importable without pytest)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.ledger._sql import Q, Row, Steps, StepsFactory
from tests.ledger._ledger_helpers import PG_URL, START, intent, policy


def app_name() -> str:
    return f"amp_pool_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"


class ConnectionWatch:
    """Counts, every few milliseconds, the server connections whose application_name is `name`."""

    def __init__(self, name: str, every: float = 0.003) -> None:
        import psycopg

        self.name, self.every = name, every
        self.peak = 0
        self.samples = 0
        self._conn = psycopg.connect(PG_URL, autocommit=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def count(self) -> int:
        row = self._conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                 (self.name,)).fetchone()
        return int(row[0]) if row else 0

    def settled(self, limit: float = 10.0) -> int:
        """The count once the server has let closed connections go: a backend leaves
        pg_stat_activity shortly after its client hangs up, not at the same instant (bounded wait)."""
        deadline = time.monotonic() + limit
        count = self.count()
        while count and time.monotonic() < deadline:
            time.sleep(0.05)
            count = self.count()
        return count

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.count())
            self.samples += 1
            time.sleep(self.every)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.count())
        self._conn.close()


def pay_steps(ledger: LedgerBase, n: int, *, amount: str = "0.01", budget: str = "pool") -> StepsFactory[Any]:
    """The steps of one reserve (the guard's first ledger write), for wrapping in tests."""
    return ledger._reserve(intent(amount, checkout=f"c{n}"), policy(total_budget="1000.00"), budget, f"k{n}",
                           "r", None)


def sleeping_steps(seconds: float) -> Steps[list[Row]]:
    """A transaction that holds its connection for `seconds`."""
    rows = yield Q("SELECT pg_sleep(?)", (seconds,))
    return rows


def pay(ledger: LedgerBase, n: int, *, amount: str = "0.01", budget: str = "pool") -> int:
    res = ledger.reserve_sync(intent(amount, checkout=f"c{n}"), policy(total_budget="1000.00"), budget_id=budget,
                              idempotency_key=f"k{n}", run_id="r")
    ledger.commit_sync(res.id, external_ref=f"ref-{n}")
    return res.id


async def apay(ledger: LedgerBase, n: int, *, amount: str = "0.01", budget: str = "pool") -> int:
    res = await ledger.reserve(intent(amount, checkout=f"c{n}"), policy(total_budget="1000.00"), budget_id=budget,
                               idempotency_key=f"k{n}", run_id="r")
    await ledger.commit(res.id, external_ref=f"ref-{n}")
    return res.id


# ----------------------------------------------------------------------------- spawned workers
_BARRIER: Any = None


def init_worker(barrier: Any) -> None:
    global _BARRIER
    _BARRIER = barrier


def process_worker(args: tuple[str, str, int, int, int]) -> dict[str, Any]:
    """One process: its own ledger (default pool), `tasks` concurrent tasks of `each` payments."""
    schema, name, worker, tasks, each = args
    ledger = open_ledger(PG_URL, clock=ManualClock(START), schema=schema, application_name=name)
    errors: list[str] = []

    async def task(t: int) -> int:
        done = 0
        for i in range(each):
            try:
                await apay(ledger, worker * 10_000 + t * 100 + i)
                done += 1
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        return done

    async def main() -> list[int]:
        return list(await asyncio.gather(*(task(t) for t in range(tasks))))

    try:
        if _BARRIER is not None:
            _BARRIER.wait(timeout=120)
        done = asyncio.run(main())
        return {"done": sum(done), "errors": errors, "pool_size": getattr(ledger, "pool_size", None)}
    finally:
        ledger.close_sync()


def run_in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Start `fn` in a thread; the list gets its result or the exception it raised."""
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out
