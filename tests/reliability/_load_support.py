"""The 10,000-payment hammer: one policy, many spawned processes, concurrent asyncio tasks in each.

Every attempt goes through the real `Guard.pay` (static policy, atomic ledger reserve, execute,
commit). `execute` charges the stand-in network (`NetworkRecord`, a separate SQLite file), so the
test can compare the ledger with the payment system's own record. Each paid payment is then
repeated with the same intent; the repeat must come back ``already_paid`` without charging.

Amounts are uniform (1.00 USD) and nothing is released, so usage only grows and the number of
successes is exact: a payment is refused only when a global cap (total, day, velocity) or its
merchant's cap is full, hence ``ok == min(global room, sum over merchants of min(cap, attempts))``.

Imported by spawned workers: no pytest here.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import timedelta
from typing import Any

from amp_tools.clock import ManualClock
from amp_tools.errors import PolicyViolation
from amp_tools.payments import ExecutionOutcome, Guard, PaymentHandle
from amp_tools.policy import BudgetPolicy
from tests.ledger._ledger_helpers import START, intent, open_backend
from tests.reliability._network_record import NetworkRecord

__all__ = ["BUDGET_ID", "CAPPED", "LOAD_POLICY", "MERCHANTS", "load_worker", "seed_yesterday"]

BUDGET_ID = "load"
MERCHANTS = [f"m{i}" for i in range(8)]
CAPPED = MERCHANTS[:4]
#: total 150.00 with 50.00 spent yesterday (room 100.00); day 120.00; 140 payments per hour; four
#: merchants capped at 12.00 each. The tightest global room is the total's 100.
LOAD_POLICY: dict[str, Any] = {
    "name": "load", "currency": "USD", "total_budget": "150.00",
    "windows": {"day": {"limit": "120.00"}},
    "velocity": {"max_payments": 140, "per": "1h"},
    "merchants": {"caps": {m: "12.00" for m in CAPPED}},
}
SEEDED = 50
TOTAL, DAY, VELOCITY, MERCHANT_CAP = 15000, 12000, 140, 1200


def seed_yesterday(backend: str, where: str) -> None:
    """50 payments of 1.00 committed yesterday: they count against the total, not today's windows."""
    pol = BudgetPolicy.model_validate(LOAD_POLICY)
    day_before = START - timedelta(days=1)
    ledger = open_backend(backend, where, ManualClock(day_before))
    try:
        for n in range(SEEDED):
            res = ledger.reserve_sync(intent("1.00", merchant="seed", at=day_before, checkout=f"seed-{n}"), pol,
                                      budget_id=BUDGET_ID, idempotency_key=f"seed-{n}", run_id="seed",
                                      now=day_before)
            ledger.commit_sync(res.id, external_ref=f"seed-ref-{n}")
    finally:
        ledger.close_sync()


async def _hammer(backend: str, where: str, network_path: str, worker: int, tasks: int,
                  per_task: int) -> dict[str, Any]:
    pol = BudgetPolicy.model_validate(LOAD_POLICY)
    clock = ManualClock(START)
    ledger = open_backend(backend, where, clock)
    network = NetworkRecord(network_path)
    guard = Guard(pol, ledger, clock=clock, budget_id=BUDGET_ID)
    tried = {m: 0 for m in MERCHANTS}
    stats = {"ok": 0, "refused": 0, "replayed": 0, "replay_charged": 0}
    refusals: dict[str, int] = {}

    async def one_task(task: int) -> None:
        rng = random.Random(worker * 1000 + task)
        for n in range(per_task):
            merchant = rng.choice(MERCHANTS)
            tried[merchant] += 1
            spend = intent("1.00", merchant=merchant, checkout=f"w{worker}-t{task}-{n}")

            async def execute(handle: PaymentHandle, spend: Any = spend) -> ExecutionOutcome:
                from amp_tools.payments.keys import payment_key

                await handle.sending()
                key = payment_key(spend)
                ref = await asyncio.to_thread(network.charge, key, spend.merchant_id, spend.amount.minor,
                                              spend.amount.currency)
                return ExecutionOutcome(external_ref=ref)

            try:
                result = await guard.pay(spend, execute, run_id=f"w{worker}")
            except PolicyViolation as exc:
                stats["refused"] += 1
                refusals[exc.rule or "?"] = refusals.get(exc.rule or "?", 0) + 1
                continue
            assert result.status == "paid", result
            stats["ok"] += 1
            calls_before = network.find(result.idempotency_key)
            again = await guard.pay(spend, execute, run_id=f"w{worker}")
            calls_after = network.find(result.idempotency_key)
            stats["replayed"] += again.status == "already_paid" and again.entry_id == result.entry_id
            stats["replay_charged"] += calls_before != calls_after

    started = time.perf_counter()
    try:
        await asyncio.gather(*(one_task(t) for t in range(tasks)))
    finally:
        elapsed = time.perf_counter() - started
        await ledger.close()
        network.close()
    return {**stats, "tried": tried, "refusals": refusals, "elapsed": elapsed, "pid": os.getpid(),
            "attempts": tasks * per_task}


_BARRIER: Any = None


def init_worker(barrier: Any) -> None:
    """Pool initializer: every worker waits at the barrier so all processes hammer at once."""
    global _BARRIER
    _BARRIER = barrier


def load_worker(args: tuple[str, str, str, int, int, int]) -> dict[str, Any]:
    backend, where, network_path, worker, tasks, per_task = args
    if _BARRIER is not None:
        _BARRIER.wait(timeout=120)  # one task per process: a process blocked here cannot take another
    return asyncio.run(_hammer(backend, where, network_path, worker, tasks, per_task))
