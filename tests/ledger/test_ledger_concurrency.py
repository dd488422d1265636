"""Many threads, tasks and processes against one ledger: no limit is ever exceeded, and with
uniform 1.00 payments the number of successes is exactly what the caps allow.

Policy (`STRESS_POLICY`): total 50.00, calendar day 40.00, four merchants capped at 12.00 each.
A payment is allowed iff every cap has room, so the allowed count is
``min(total room, day cap, sum over merchants of min(12, attempts at that merchant))``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from multiprocessing.pool import Pool
from typing import Any

import pytest

from amp_tools.errors import PolicyViolation
from amp_tools.ledger import LedgerBase
from amp_tools.policy import BudgetPolicy
from tests.ledger._ledger_helpers import (
    START,
    STRESS_MERCHANTS,
    STRESS_POLICY,
    init_worker,
    intent,
    open_backend,
    raw_sync,
    stress_run,
    stress_worker,
)

PER_MERCHANT, DAY, TOTAL = 1200, 4000, 5000


def _expected(results: list[dict[str, Any]], total_room: int) -> int:
    tried = {m: sum(r["tried"][m] for r in results) for m in STRESS_MERCHANTS}
    return min(total_room // 100, DAY // 100, sum(min(PER_MERCHANT // 100, n) for n in tried.values()))


def _check_rows(ledger: LedgerBase, results: list[dict[str, Any]], *, seeded: int = 0) -> None:
    live = raw_sync(ledger, "SELECT merchant_id, created_at, counted_minor, status FROM entries "
                            "WHERE budget_id = 'stress' AND status <> 'released'")
    today = [r for r in live if r[0] != "seed"]
    total = sum(int(r[2]) for r in live)
    per_merchant = {m: sum(int(r[2]) for r in today if r[0] == m) for m in STRESS_MERCHANTS}
    assert total <= TOTAL
    assert sum(int(r[2]) for r in today) <= DAY
    assert all(v <= PER_MERCHANT for v in per_merchant.values()), per_merchant
    ok = sum(r["ok"] for r in results)
    assert len(today) == ok == _expected(results, TOTAL - seeded * 100)
    assert {str(r[3]) for r in today} <= {"reserved", "committed"}
    # The running aggregates agree with the rows they summarize.
    head = raw_sync(ledger, "SELECT used_minor, used_count FROM budgets WHERE budget_id = 'stress'")[0]
    assert (int(head[0]), int(head[1])) == (total, len(live))
    for merchant, used in per_merchant.items():
        agg = raw_sync(ledger, "SELECT used_minor FROM usage_totals WHERE budget_id = 'stress' AND "
                               "scope = 'merchant' AND key = ?", merchant)
        assert (int(agg[0][0]) if agg else 0) == used
    report = ledger.audit.verify_sync()
    commits = raw_sync(ledger, "SELECT COUNT(*) FROM entries WHERE budget_id = 'stress' AND status = 'committed'")
    assert report.ok and report.records == len(live) + int(commits[0][0])


def _seed_yesterday(ledger: LedgerBase, count: int) -> None:
    pol = BudgetPolicy.model_validate(STRESS_POLICY)
    day_before = START - timedelta(days=1)
    for n in range(count):
        ledger.reserve_sync(intent("1.00", merchant="seed", at=day_before, checkout=f"s{n}"), pol,
                            budget_id="stress", idempotency_key=f"seed-{n}", run_id="seed", now=day_before)


def test_threads_never_overspend(ledger: LedgerBase) -> None:
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def run(worker: int) -> None:
        out = stress_run(ledger, worker, 8)
        with lock:
            results.append(out)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16
    _check_rows(ledger, results)


async def test_async_tasks_never_overspend(ledger: LedgerBase) -> None:
    pol = BudgetPolicy.model_validate(STRESS_POLICY)

    async def run(worker: int) -> dict[str, Any]:
        rng = random.Random(100 + worker)
        tried = {m: 0 for m in STRESS_MERCHANTS}
        ok = 0
        for n in range(8):
            merchant = rng.choice(STRESS_MERCHANTS)
            tried[merchant] += 1
            try:
                res = await ledger.reserve(intent("1.00", merchant=merchant, checkout=f"a{worker}-{n}"), pol,
                                           budget_id="stress", idempotency_key=f"a{worker}-{n}", run_id="a")
            except PolicyViolation:
                continue
            ok += 1
            if n % 2:
                await ledger.commit(res.id, external_ref=f"a{worker}-{n}")
        return {"ok": ok, "tried": tried}

    results = list(await asyncio.gather(*(run(w) for w in range(16))))
    _check_rows(ledger, results)


async def test_concurrent_replays_of_one_key_make_one_entry(ledger: LedgerBase) -> None:
    pol = BudgetPolicy.model_validate(STRESS_POLICY)
    out = await asyncio.gather(*(ledger.reserve(intent("1.00", merchant="m0"), pol, budget_id="stress",
                                                idempotency_key="same", run_id="r") for _ in range(12)))
    assert len({r.id for r in out}) == 1
    assert sum(not r.replayed for r in out) == 1
    assert len(await ledger.entries("stress")) == 1


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """Eight spawned processes, shared by both engines' runs (spawning and importing is the slow part)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8, initializer=init_worker, initargs=(ctx.Barrier(8),)) as workers:
        yield workers


@pytest.mark.slow
def test_eight_processes_never_overspend(backend: str, target: str, pool: Pool) -> None:
    ledger = open_backend(backend, target)
    try:
        _seed_yesterday(ledger, 15)  # total room today: 35.00 < day cap 40.00 -> the total cap binds
        results = pool.map(stress_worker, [(backend, target, w, 20) for w in range(8)], chunksize=1)
        pids = {r["pid"] for r in results}
        assert len(results) == 8 and len(pids) == 8
        _check_rows(ledger, results, seeded=15)
        assert sum(r["ok"] for r in results) == 35
    finally:
        ledger.close_sync()
