"""kill -9 of a real agent process at each state of a payment, recovered by `toolkit.reconcile()` against a
network like the AMP reference services: no order-status extension and no merchant registry.

Recovery knows the owner is dead at once (no age threshold). A payment killed before its charge request was
sent is released without asking anyone; one killed while sending, after the charge, or with its outcome
unknown is settled by replaying the idempotent ``startPayment`` for the checkout with the sealed payment token
(a paid checkout answers with its original transaction id). Afterwards the same session pays again and the
sandbox's record and the ledger agree: every checkout charged exactly once, the budget counts exactly that.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from amp_tools.amp.keys import AgentKey
from amp_tools.approvals import CallbackApprover
from amp_tools.payments import PaymentState, state_of
from amp_tools.sandbox import Sandbox, SandboxConfig
from tests._shared._served import served_sandbox
from tests.payments._crash_child import BUDGET, SCENARIOS, build, crash_child

#: The state recovery finds, and what it makes of it.
EXPECTED = {"reserved": (PaymentState.RESERVED, "released"),
            "awaiting_approval": (PaymentState.AWAITING_APPROVAL, "released"),
            "sending_before_charge": (PaymentState.SENDING, "committed"),
            "charged_before_commit": (PaymentState.SENDING, "committed"),
            "unknown": (PaymentState.UNKNOWN, "committed")}


@pytest.fixture
def served() -> Iterator[tuple[Sandbox, str]]:
    with served_sandbox(SandboxConfig.reference_like(seed=3)) as running:
        yield running


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_kill_9_at_each_state_then_reconcile_without_order_status(
        scenario: str, engine_name: str, ledger_target: str, served: tuple[Sandbox, str], tmp_path: Path) -> None:
    sandbox, url = served
    key = AgentKey.generate()
    key_path = str(tmp_path / "agent-key.jwk")
    key.save(key_path)
    sandbox.register_agent("crash-agent", key.public_jwk())
    merchants = sandbox.merchant_directory()
    marker = tmp_path / "marker"
    child = multiprocessing.get_context("spawn").Process(
        target=crash_child, args=(engine_name, ledger_target, url, key_path, merchants, scenario, str(marker)))
    child.start()
    deadline = time.monotonic() + 90
    while not marker.exists() and time.monotonic() < deadline:
        assert child.is_alive(), f"the agent process died on its own (exit {child.exitcode})"
        time.sleep(0.02)
    checkout = marker.read_text()
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL

    charged_at_kill = [p for p in sandbox.payments() if p["checkoutId"] == checkout and p["status"] == "SUCCESS"]
    assert len(charged_at_kill) == (1 if scenario in ("charged_before_commit", "unknown") else 0)

    tk = build(engine_name, ledger_target, url, key_path, merchants, CallbackApprover(lambda r: True))
    try:
        [held] = [e for e in await tk.ledger.entries(BUDGET) if e.checkout_id == checkout]
        found_state, settles_as = EXPECTED[scenario]
        assert state_of(held) == found_state and held.status == "reserved"  # nothing lost at the kill

        report = await tk.reconcile()
        assert getattr(report, settles_as) == [held.id] and not report.failed and not report.unknown
        settled = await tk.ledger.get(held.id)
        charges = [p for p in sandbox.payments() if p["checkoutId"] == checkout and p["status"] == "SUCCESS"]
        if settles_as == "committed":
            assert len(charges) == 1 and settled.external_ref == charges[0]["transactionId"]
        else:
            assert charges == [] and settled.status == "released"

        # The restarted agent resumes the same session and pays the checkout: at most once, ever.
        specs = {s.name: s for s in tk.specs()}
        again = await specs["pay"].ainvoke({"checkout_id": checkout})
        assert again["status"] == ("already_paid" if settles_as == "committed" else "paid")
        charges = [p for p in sandbox.payments() if p["checkoutId"] == checkout and p["status"] == "SUCCESS"]
        assert len(charges) == 1 and again["transaction_id"] == charges[0]["transactionId"]
        status = await specs["order_status"].ainvoke({"checkout_id": checkout})
        assert status["status"] == "PAID" and "ledger" in status["source"]
        report = await tk.ledger.usage_report(tk.policy, BUDGET)
        assert report["total"]["used"]["amount"] == "19.99"
        assert (await tk.ledger.audit.verify()).ok
    finally:
        await tk.aclose()
        await tk.ledger.close()
