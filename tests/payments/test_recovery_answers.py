"""Issue 20, findings 4 and 6: recovery settles what the merchant's answer proves, and says what it could not.

* A replayed ``startPayment`` refused for a business reason (INSUFFICIENT_STOCK) by a merchant that is
  idempotent per checkout proves the checkout was never paid: released, audited with the answer.
* Silence or an ambiguous error leaves the money held; `payments unresolved` shows the payment's age,
  recovery's last attempt and the answer.
* A payment sealed under another agent key is reported with both keys' thumbprints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from amp_tools.amp.keys import AgentKey
from amp_tools.errors import AmpError
from amp_tools.money import Money
from amp_tools.payments import PaymentState, state_of, unresolved
from amp_tools.payments.recovery import last_attempts
from amp_tools.sandbox import SandboxConfig
from tests.payments._support import ESIM, Lab, budget_policy

CLI = [str(Path(sys.executable).parent / "amp-tools")]


@pytest.fixture
async def lab(engine_name: str, ledger_target: str) -> Any:
    made = Lab(engine_name, ledger_target, SandboxConfig(seed=6, order_status=False))  # like the reference
    yield made
    await made.close()


async def _lost_payment(lab: Lab, key: AgentKey | None = None) -> tuple[Any, Any]:
    """A payment whose charge request was lost before the merchant saw it: the outcome is unknown."""
    agent = lab.agent(budget_policy("100.00"), budget_id="rec", agent_key=key or AgentKey.generate())
    checkout = await agent.buy(ESIM)
    lab.sandbox.faults.arm("merchant.startPayment", "timeout_before", count=3)  # every retry of the call
    with pytest.raises(AmpError) as lost:
        await agent.call("pay", checkout_id=checkout)
    assert lost.value.code == "OUTCOME_UNKNOWN"
    [entry] = await lab.ledger.entries("rec")
    assert state_of(entry) == PaymentState.UNKNOWN
    return agent, entry


def _sold_out(lab: Lab) -> None:
    lab.sandbox.state.merchants["SUNNY-TOURS"].products["SUN-ESIM-ASIA"].stock = 0


async def test_a_business_refusal_to_the_replay_settles_as_not_paid_and_releases(lab: Lab) -> None:
    agent, entry = await _lost_payment(lab)
    _sold_out(lab)
    report = await agent.toolkit.reconcile()
    assert report.released == [entry.id] and report.unknown == []
    after = await lab.ledger.get(entry.id)
    assert state_of(after) == PaymentState.RELEASED
    assert "INSUFFICIENT_STOCK" in (after.reason or "") and "idempotent per checkout" in (after.reason or "")
    assert lab.sandbox.payments() == []  # the network never charged it
    assert await lab.used(agent.toolkit.policy, "rec") == "0.00"
    released = [r.payload for r in await lab.ledger.audit.records() if r.kind == "release"]
    assert any("INSUFFICIENT_STOCK" in json.dumps(p) for p in released)  # audited with the merchant's answer


async def test_a_merchant_not_known_to_be_idempotent_per_checkout_leaves_it_for_a_person(lab: Lab) -> None:
    agent, entry = await _lost_payment(lab)
    info = agent.toolkit.state.merchants.get("SUNNY-TOURS") or await agent.toolkit.merchant("SUNNY-TOURS")
    agent.toolkit.state.merchants["SUNNY-TOURS"] = info.model_copy(update={"idempotent_per_checkout": False})
    _sold_out(lab)
    report = await agent.toolkit.reconcile()
    assert report.unknown == [entry.id]
    assert state_of(await lab.ledger.get(entry.id)) == PaymentState.UNKNOWN
    assert await lab.used(agent.toolkit.policy, "rec") == "19.99"


async def test_an_ambiguous_answer_stays_held_and_unresolved_shows_age_attempt_and_answer(
        lab: Lab, engine_name: str, ledger_target: str) -> None:
    agent, entry = await _lost_payment(lab)
    lab.sandbox.faults.arm("merchant.startPayment", "http_500", count=5)
    report = await agent.toolkit.reconcile()
    assert report.unknown == [entry.id]
    assert state_of(await lab.ledger.get(entry.id)) == PaymentState.UNKNOWN
    [attempt] = [r.payload for r in await lab.ledger.audit.records() if r.kind == "recovery_attempt"]
    assert attempt["entry_id"] == entry.id and "a person must check" in attempt["answer"]
    [held] = await unresolved(lab.ledger, budget_id="rec")
    tried = (await last_attempts(lab.ledger, [held]))[entry.id]
    assert tried.answer == attempt["answer"] and tried.at.endswith("Z")
    if engine_name != "sqlite":
        return  # the CLI below reads a ledger file; the same figures come from the functions above
    listed = subprocess.run([*CLI, "payments", "unresolved", "--ledger", ledger_target, "--json"],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["id"] == entry.id and row["state"] == "unknown"
    assert row["answer"] == attempt["answer"] and row["last_attempt"] == tried.at
    assert row["age_seconds"] >= 0
    table = subprocess.run([*CLI, "payments", "unresolved", "--ledger", ledger_target], capture_output=True,
                           text=True, timeout=120, env={**os.environ, "COLUMNS": "220"})
    assert "last attempt" in table.stdout and "a person must check" in table.stdout


async def test_a_payment_sealed_with_another_key_names_both_keys(lab: Lab) -> None:
    first_key = AgentKey.generate()
    _, entry = await _lost_payment(lab, first_key)
    other = lab.agent(budget_policy("100.00"), budget_id="rec", agent_key=AgentKey.generate())
    report = await other.toolkit.reconcile()
    assert report.unknown == [entry.id]
    [attempt] = [r.payload for r in await lab.ledger.audit.records() if r.kind == "recovery_attempt"]
    assert (f"sealed with key {first_key.thumbprint()}, this process has {other.toolkit.agent_key.thumbprint()}"
            in attempt["answer"])
    # The process with the key that sent it settles it.
    owner = lab.agent(budget_policy("100.00"), budget_id="rec", agent_key=first_key)
    report = await owner.toolkit.reconcile()
    assert report.committed == [entry.id]  # the replay reached the merchant this time and paid the checkout
    assert await lab.used(owner.toolkit.policy, "rec") == "19.99"
    [charge] = lab.sandbox.payments()
    assert (await lab.ledger.get(entry.id)).budget_amount == Money.from_wire(charge["mandateAmount"])
