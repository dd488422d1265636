"""kill -9 of an agent process in the middle of payments, then recovery with `payments.settle_abandoned`.

One payment is killed after the network charged it but before the ledger commit; another after
its reservation was written but before its request left. After the restart, recovery sees their
owner is gone (no waiting for a timeout): the one that never said it was sending is released
without asking anybody; for the other the payment network is asked (its own record, by
idempotency key) and it is committed with the network's charge id. Retrying both then charges
nothing twice and loses nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

from amp_tools.ledger import Entry
from amp_tools.payments import (
    Execute,
    ExecutionOutcome,
    Guard,
    Lifecycle,
    PaymentHandle,
    Resolution,
    settle_abandoned,
    state_of,
)
from amp_tools.payments.keys import payment_key
from amp_tools.policy import BudgetPolicy
from tests.ledger._ledger_helpers import open_backend
from tests.reliability._crash_support import CRASH_POLICY, RUN_ID, crash_child, spend
from tests.reliability._network_record import NetworkRecord


async def test_kill_9_mid_payment_then_reconcile(engine_name: str, ledger_target: str, tmp_path: Path) -> None:
    network_path, markers = str(tmp_path / "network.db"), tmp_path / "markers"
    markers.mkdir()
    NetworkRecord(network_path).close()
    child = multiprocessing.get_context("spawn").Process(
        target=crash_child, args=(engine_name, ledger_target, network_path, str(markers)))
    child.start()
    deadline = time.monotonic() + 60
    while not all((markers / m).exists() for m in ("after", "before")) and time.monotonic() < deadline:
        assert child.is_alive(), f"the agent process died on its own (exit {child.exitcode})"
        time.sleep(0.02)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL

    policy = BudgetPolicy.model_validate(CRASH_POLICY)
    ledger = open_backend(engine_name, ledger_target)
    network = NetworkRecord(network_path)
    try:
        keys = {w: payment_key(spend(w)) for w in ("after", "before")}
        before = {w: await ledger.get_by_key("default", k) for w, k in keys.items()}
        assert all(e is not None and e.status == "reserved" for e in before.values())  # nothing was lost
        assert {w: str(state_of(e)) for w, e in before.items()} == {"after": "sending", "before": "reserved"}
        report = await ledger.usage_report(policy, "default")
        assert report["total"]["used"]["amount"] == "20.00"  # both held: the budget is never overstated
        charge = network.find(keys["after"])
        assert charge is not None and network.find(keys["before"]) is None

        asked: list[str] = []

        async def resolver(entry: Entry) -> Resolution:
            asked.append(entry.checkout_id)
            found = network.find(entry.idempotency_key)
            return Resolution("committed", found.charge_id) if found else Resolution("released")

        # Run at once: the owner is dead, so its payments are settled without waiting for any age.
        recovered = await settle_abandoned(Lifecycle(ledger), resolver)
        assert asked == ["co-after"]  # nothing was sent for "before": released without asking
        after = await ledger.get_by_key("default", keys["after"])
        gone = await ledger.get_by_key("default", keys["before"])
        assert after is not None and gone is not None
        assert sorted(recovered.committed) == [after.id] and sorted(recovered.released) == [gone.id]
        assert (after.status, after.external_ref) == ("committed", charge.charge_id)
        assert gone.status == "released"
        report = await ledger.usage_report(policy, "default")
        assert report["total"]["used"]["amount"] == "10.00"

        # The restarted agent retries both payments.
        guard = Guard(policy, ledger, budget_id="default")

        def execute(which: str) -> Execute:
            async def run(handle: PaymentHandle) -> ExecutionOutcome:
                await handle.sending()
                key = payment_key(spend(which))
                return ExecutionOutcome(external_ref=network.charge(key, "shop-1", 1000, "USD"))
            return run

        again = await guard.pay(spend("after"), execute("after"), run_id=RUN_ID)
        retried = await guard.pay(spend("before"), execute("before"), run_id=RUN_ID)
        assert again.status == "already_paid" and again.external_ref == charge.charge_id
        assert retried.status == "paid"
        charges = {c.idem_key: c for c in network.all()}
        assert sorted(charges) == sorted(keys.values()) and all(c.attempts == 1 for c in charges.values())
        latest = await ledger.get_by_key("default", keys["before"])
        assert latest is not None and (latest.attempt, latest.status) == (2, "committed")
        report = await ledger.usage_report(policy, "default")
        assert report["total"]["used"]["amount"] == "20.00"
        assert (await ledger.audit.verify()).ok
    finally:
        network.close()
        await ledger.close()
