"""One crew, many processes: each spawned process is one agent of the crew paying 1.00 at a time
through the real `Guard.pay` (static rules, the atomic reserve of every level, execute, commit or,
for every fifth payment, release). Imported by spawned workers: no pytest here.

The crew's total (60.00) is below the sum of the agents' own totals (25 + 25 + 25 + 10 = 85), so
both kinds of level bind; the hotel booker also has a day cap (18.00) below its total.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from amp_tools.clock import ManualClock
from amp_tools.errors import AmpError, PolicyViolation
from amp_tools.payments import ExecutionOutcome, Guard, PaymentHandle
from amp_tools.policy import BudgetPolicy
from amp_tools.policy.subbudgets import BudgetPath
from tests.ledger._ledger_helpers import START, intent, open_backend

__all__ = ["AGENTS", "CREW_POLICY", "ROOT", "init_worker", "race_worker"]

ROOT = "crew"
AGENTS = ["flight_booker", "hotel_booker", "car_booker", "researcher"]
CREW_POLICY: dict[str, Any] = {
    "name": "crew", "currency": "USD", "total_budget": "60.00",
    "agents": {
        "flight_booker": {"total_budget": "25.00"},
        "hotel_booker": {"total_budget": "25.00", "windows": {"day": {"limit": "18.00"}}},
        "car_booker": {"total_budget": "25.00"},
        "researcher": {"total_budget": "10.00", "per_transaction_max": "1.00"},
    },
}

_BARRIER: Any = None


def init_worker(barrier: Any) -> None:
    global _BARRIER
    _BARRIER = barrier


async def _pay_as(backend: str, where: str, worker: int, attempts: int) -> dict[str, Any]:
    policy = BudgetPolicy.model_validate(CREW_POLICY)
    agent = AGENTS[worker % len(AGENTS)]
    path = BudgetPath.of(policy, ROOT, agent)
    clock = ManualClock(START)
    ledger = open_backend(backend, where, clock)
    guard = Guard(path.leaf.policy, ledger, clock=clock, budget_id=path.budget_id, path=path)
    stats: dict[str, Any] = {"agent": agent, "ok": 0, "released": 0, "refused": {}, "pid": os.getpid()}
    started = time.perf_counter()
    try:
        for n in range(attempts):
            spend = intent("1.00", merchant=f"m{n % 3}", checkout=f"w{worker}-{n}")
            decline = n % 5 == 4

            async def execute(handle: PaymentHandle, decline: bool = decline, n: int = n) -> ExecutionOutcome:
                await handle.sending()
                if decline:
                    raise AmpError("card declined", code="PAYMENT_DECLINED", retryable=False)
                return ExecutionOutcome(external_ref=f"tx-{worker}-{n}")

            try:
                await guard.pay(spend, execute, run_id=f"w{worker}")
            except PolicyViolation as exc:
                stats["refused"][exc.rule] = stats["refused"].get(exc.rule, 0) + 1
            except AmpError:
                stats["released"] += 1
            else:
                stats["ok"] += 1
    finally:
        stats["elapsed"] = time.perf_counter() - started
        await ledger.close()
    return stats


def race_worker(args: tuple[str, str, int, int]) -> dict[str, Any]:
    backend, where, worker, attempts = args
    if _BARRIER is not None:
        _BARRIER.wait(timeout=120)
    return asyncio.run(_pay_as(backend, where, worker, attempts))
