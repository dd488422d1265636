"""The agent process the kill -9 tests murder: two payments stopped at the worst moments.

Payment "after" marks itself sending, charges the network and then hangs before its ledger commit;
payment "before" has its reservation written and hangs before its request leaves (it never says
it is sending). Each writes a marker file when
it reaches that point, so the parent knows when to SIGKILL. Imported by a spawned process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from amp_tools.payments import Execute, ExecutionOutcome, Guard, PaymentHandle
from amp_tools.payments.keys import payment_key
from amp_tools.policy import BudgetPolicy, SpendIntent
from tests.ledger._ledger_helpers import intent, open_backend
from tests.reliability._network_record import NetworkRecord

__all__ = ["CRASH_POLICY", "RUN_ID", "crash_child", "spend"]

RUN_ID = "agent-run-1"
CRASH_POLICY = {"name": "crash", "currency": "USD", "total_budget": "30.00"}


def spend(which: str) -> SpendIntent:
    return intent("10.00", merchant="shop-1", checkout=f"co-{which}")


async def _agent(backend: str, where: str, network_path: str, markers: str) -> None:
    ledger = open_backend(backend, where)
    network = NetworkRecord(network_path)
    guard = Guard(BudgetPolicy.model_validate(CRASH_POLICY), ledger, budget_id="default")

    def execute(which: str) -> Execute:
        async def run(handle: PaymentHandle) -> ExecutionOutcome:
            payment = spend(which)
            if which == "after":
                await handle.sending()
                network.charge(payment_key(payment), "shop-1", 1000, "USD")
            Path(markers, which).write_text("reached")
            await asyncio.Event().wait()  # hang here until killed
            raise AssertionError("unreachable")
        return run

    await asyncio.gather(*(guard.pay(spend(w), execute(w), run_id=RUN_ID)
                           for w in ("after", "before")))


def crash_child(backend: str, where: str, network_path: str, markers: str) -> None:
    asyncio.run(_agent(backend, where, network_path, markers))
