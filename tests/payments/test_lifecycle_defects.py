"""Regression tests of the payment-lifecycle defects (issue: payments that survive), on both engines.

Each asserts charges at the sandbox, ledger rows and budget figures, not just "no exception".
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from amp_tools.approvals import ApprovalRequest, CallbackApprover, OutOfBandApprover
from amp_tools.clock import ManualClock
from amp_tools.errors import ConfigError, PolicyViolation, ToolError
from amp_tools.ledger import AlreadyCommitted, open_ledger
from amp_tools.payments import Lifecycle, PaymentState, settle_abandoned, state_of
from amp_tools.policy import parse_policy
from amp_tools.toolkit import AmpToolkit
from tests.payments._support import Lab, budget_policy


@pytest.fixture
async def lab(engine_name: str, ledger_target: str) -> Any:
    made = Lab(engine_name, ledger_target)
    yield made
    await made.close()


async def test_reconcile_never_releases_a_live_payment_awaiting_approval(lab: Lab) -> None:
    """Defect 1: a second process's start-up reconcile released A's live payment; 59.98 charged under 30.00."""
    policy = budget_policy("30.00", approval={"confirm_above": "10.00"})
    asked, answer = asyncio.Event(), asyncio.Event()

    async def person(request: ApprovalRequest) -> bool:
        asked.set()
        await answer.wait()  # the person takes their time
        return True

    a = lab.agent(policy, CallbackApprover(person), budget_id="family")
    first = await a.buy()
    paying = asyncio.create_task(a.call("pay", checkout_id=first))
    await asyncio.wait_for(asked.wait(), 5)
    held = (await lab.ledger.entries("family"))[0]
    assert state_of(held) == PaymentState.AWAITING_APPROVAL and held.owner

    lab.sandbox.clock.advance(minutes=3)  # far past any age threshold
    b = lab.agent(policy, CallbackApprover(lambda r: True), budget_id="family")
    report = await b.toolkit.reconcile()
    assert report.in_flight == [held.id] and not report.released and not report.committed
    assert state_of(await lab.ledger.get(held.id)) == PaymentState.AWAITING_APPROVAL
    assert await lab.used(policy, "family") == "19.99"  # still held

    answer.set()
    paid = await asyncio.wait_for(paying, 10)
    assert paid["status"] == "paid" and len(lab.charges(first)) == 1
    second = await b.buy()
    with pytest.raises(PolicyViolation) as refused:
        await b.call("pay", checkout_id=second)
    assert refused.value.rule == "total_budget"
    assert lab.charges(second) == []
    assert await lab.used(policy, "family") == "19.99"


async def test_reconcile_releases_a_payment_whose_owner_died_before_sending(lab: Lab) -> None:
    policy = budget_policy("30.00")
    a = lab.agent(policy, budget_id="solo")
    checkout = await a.buy()
    entry = (await lab.ledger.reserve(_intent(lab, a, checkout), policy, budget_id="solo", idempotency_key="k-dead",
                                      owner="another-host|4242|1", lease_until=lab.sandbox.clock.now())).entry
    lab.sandbox.clock.advance(seconds=1)  # the dead owner's lease has run out; no age threshold involved
    report = await settle_abandoned(Lifecycle(lab.ledger, clock=lab.sandbox.clock), _never_asked)
    assert report.released == [entry.id]
    assert (await lab.ledger.get(entry.id)).status == "released"


async def _never_asked(entry: Any) -> Any:
    raise AssertionError("nothing was sent, so the counterparty must not be asked")


def _intent(lab: Lab, agent: Any, checkout: str) -> Any:
    from amp_tools.policy import SpendIntent

    ck = agent.toolkit.state.checkouts[checkout]
    return SpendIntent(action="pay", merchant_id=ck.merchant_id, merchant_name=ck.merchant_name, mcc=ck.mcc,
                       amount=ck.amount, budget_amount=ck.amount, fx_rate=None, items=ck.items, human_present=True,
                       checkout_id=checkout, at=lab.sandbox.clock.now())


async def test_the_same_checkout_from_two_toolkits_is_charged_and_counted_once(lab: Lab) -> None:
    """Defect 2: two toolkits built as the README shows (no run id) paying one checkout counted 39.98."""
    policy = budget_policy("100.00")
    a = lab.agent(policy, CallbackApprover(lambda r: True), budget_id="shared")
    b = lab.agent(policy, CallbackApprover(lambda r: True), budget_id="shared")
    assert a.toolkit.run_id != b.toolkit.run_id
    checkout = await a.buy()
    b.toolkit.state.checkouts[checkout] = a.toolkit.state.checkouts[checkout]  # B learns of the same checkout
    first = await a.call("pay", checkout_id=checkout)
    again = await b.call("pay", checkout_id=checkout)
    assert first["status"] == "paid" and again["status"] == "already_paid"
    assert again["transaction_id"] == first["transaction_id"]
    assert len(lab.charges(checkout)) == 1
    committed = [e for e in await lab.ledger.entries("shared") if e.status == "committed"]
    assert len(committed) == 1 and await lab.used(policy, "shared") == "19.99"


async def test_one_merchant_transaction_is_committed_once_across_budgets(lab: Lab) -> None:
    """The constraint itself: a second entry can never be committed with the same merchant transaction id."""
    policy = budget_policy("100.00")
    a = lab.agent(policy, budget_id="one")
    checkout = await a.buy()
    life = Lifecycle(lab.ledger, clock=lab.sandbox.clock)
    rows = []
    for budget in ("one", "two"):
        res = await life.reserve(_intent(lab, a, checkout), policy, budget_id=budget, key="same-key")
        await life.sending(res.id)
        rows.append(res.id)
    await life.commit(rows[0], external_ref="TX-1")
    with pytest.raises(AlreadyCommitted) as dup:
        await life.commit(rows[1], external_ref="TX-1")
    assert dup.value.other_id == rows[0] and dup.value.code == "ALREADY_PAID"
    assert (await lab.ledger.get(rows[1])).status == "reserved"  # nothing half-written
    assert await lab.used(policy, "one") == "19.99"


async def test_a_payment_above_the_mandate_is_refused_not_switched(lab: Lab) -> None:
    """Defect 4 (second half): a payment the mandate cannot cover switched to IMMEDIATE silently."""
    policy = budget_policy("100.00")
    a = lab.agent(policy, CallbackApprover(lambda r: True), budget_id="m")
    await a.call("discover_merchants")
    mandate = await a.call("request_mandate", purpose="Buy eSIMs for the trip", budget="25.00",
                           expires_at=lab.until(), merchant_ids=["SUNNY-TOURS"])
    assert mandate["status"] == "ACTIVE"
    first = await a.buy()
    assert (await a.call("pay", checkout_id=first))["mode"] == "delegated"
    second = await a.buy()
    immediate_before = [m for m in lab.sandbox.state.mandates.values() if getattr(m, "mandate_type", "") == "IMMEDIATE"]
    with pytest.raises(ToolError) as gap:
        await a.call("pay", checkout_id=second)
    assert gap.value.code == "MANDATE_DOES_NOT_COVER"
    assert "5.01" in gap.value.message and "human_present" in gap.value.hint
    immediate_after = [m for m in lab.sandbox.state.mandates.values() if getattr(m, "mandate_type", "") == "IMMEDIATE"]
    assert len(immediate_after) == len(immediate_before)  # no stray IMMEDIATE mandate at the CP
    assert lab.charges(second) == []
    explicit = await a.call("pay", checkout_id=second, mode="human_present")
    assert explicit["status"] == "paid" and explicit["mode"] == "human_present"


async def test_budgets_are_named_on_purpose(lab: Lab) -> None:
    """Defect 8: toolkits shared a budget called 'default' unless told otherwise."""
    unnamed = parse_policy({"currency": "USD", "total_budget": "30.00"}, "unnamed")
    with pytest.raises(ConfigError) as err:
        AmpToolkit.for_sandbox(lab.sandbox, unnamed, ledger=lab.ledger)
    assert "budget_id" in err.value.message
    named = lab.agent(budget_policy("30.00"))  # the policy's own name names the budget
    assert named.toolkit.budget_id == "lifecycle"
    alice = lab.agent(budget_policy("30.00"), budget_id="alice")
    bob = lab.agent(budget_policy("30.00"), budget_id="bob")
    await alice.call("pay", checkout_id=await alice.buy(), mode="human_present")
    assert await lab.used(budget_policy(), "alice") == "19.99"
    assert await lab.used(budget_policy(), "bob") == "0.00"
    assert (await bob.call("budget_status"))["total"]["left"]["amount"] == "30.00"


async def test_a_session_resumes_after_a_restart_and_pays_once(lab: Lab, tmp_path: Any) -> None:
    """Defect 6: a LangGraph thread resumed after a restart could not pay its checkout; a new key meant a new
    mandate. Sessions are durable under the program's id; the key persists in its file."""
    from amp_tools.approvals import ApprovalStore
    from amp_tools.errors import ApprovalPending

    store = ApprovalStore(open_ledger(tmp_path / "approvals.db"), clock=lab.sandbox.clock)
    policy = budget_policy("100.00", approval={"confirm_above": "10.00"})
    confirmations: list[str] = []
    lab.sandbox.idv_mode = "manual"  # the person confirms in the wallet, as a real one would

    async def wallet(action: Any) -> None:
        confirmations.append(action.kind)
        lab.sandbox.complete_idv(action.auth_session_id)

    first = lab.agent(policy, OutOfBandApprover(store, clock=lab.sandbox.clock), budget_id="trip",
                      session_id="thread-42", wallet_prompt=wallet)
    await first.call("discover_merchants")
    mandate = await first.call("request_mandate", purpose="Buy eSIMs for the trip", budget="50.00",
                               expires_at=lab.until(), merchant_ids=["SUNNY-TOURS"])
    checkout = await first.buy()
    with pytest.raises(ApprovalPending):
        await first.call("pay", checkout_id=checkout)
    assert confirmations == ["bind_wallet", "confirm_mandate"]
    await first.toolkit.aclose()

    # The process restarts: a new toolkit, nothing in memory, the same session id and the same key file.
    pending = store.list("pending")
    assert len(pending) == 1
    store.approve(pending[0].id, by="alice")
    again = lab.agent(policy, OutOfBandApprover(store, clock=lab.sandbox.clock), budget_id="trip",
                      session_id="thread-42", wallet_prompt=wallet)
    assert again.toolkit.agent_key.kid == first.toolkit.agent_key.kid
    paid = await again.call("pay", checkout_id=checkout)
    assert paid["status"] == "paid" and paid["mode"] == "delegated"
    assert paid["mandate_id"] == mandate["mandate_id"]
    assert confirmations == ["bind_wallet", "confirm_mandate"]  # no new wallet confirmation
    assert len(lab.charges(checkout)) == 1
    assert (await again.call("pay", checkout_id=checkout))["status"] == "already_paid"
    assert len(lab.charges(checkout)) == 1


async def test_session_secrets_are_sealed_at_rest(lab: Lab) -> None:
    a = lab.agent(budget_policy("100.00"), budget_id="sealed", session_id="thread-7")
    await a.call("discover_merchants")
    await a.call("request_mandate", purpose="Buy eSIMs for the trip", budget="50.00", expires_at=lab.until(),
                 merchant_ids=["SUNNY-TOURS"])
    stored = await lab.ledger.load_session("thread-7")
    assert stored is not None
    budget_id, data, _ = stored
    mandate = a.toolkit.state.mandates[0]
    assert budget_id == "sealed" and mandate.l2 is not None and a.toolkit.state.wallet.token_id is not None
    for secret in (mandate.l2.reveal(), mandate.l1.reveal() if mandate.l1 else "",
                   a.toolkit.state.wallet.token_id.reveal()):
        assert secret and secret not in data and secret[:40] not in data
    from amp_tools.amp.keys import AgentKey
    from amp_tools.toolkit._state import load_state

    with pytest.raises(ConfigError) as other_key:
        from amp_tools.amp.sealed import Sealer

        load_state(data, Sealer(AgentKey.generate()), purpose="session:thread-7")
    assert "another agent key" in other_key.value.message


async def test_pending_owner_is_recorded_and_cleared(lab: Lab) -> None:
    policy = budget_policy("100.00")
    a = lab.agent(policy, budget_id="own")
    paid = await a.call("pay", checkout_id=await a.buy(), mode="human_present")
    entry = (await lab.ledger.entries("own"))[0]
    assert paid["status"] == "paid" and entry.status == "committed"
    assert entry.owner is None and entry.lease_until is None and entry.resume is None  # out of flight: cleared


async def test_pay_right_after_request_mandate_waits_for_the_pending_mandate(engine_name: str,
                                                                              ledger_target: str) -> None:
    """Defect 4 (first half): against the reference services the mandate is still PENDING_IDV right after
    request_mandate (the wallet completes it ~0.5 s later); pay fell back to an IMMEDIATE purchase."""
    from amp_tools.sandbox import SandboxConfig

    # The wallet's half-second passes on a ManualClock the toolkit shares: moved by the test, and by pay's wait.
    lab = Lab(engine_name, ledger_target, SandboxConfig.reference_like(seed=5, start_time=datetime.now(UTC)))
    clock = lab.sandbox.clock
    assert isinstance(clock, ManualClock)
    try:
        a = lab.agent(budget_policy("100.00"), budget_id="ref", clock=clock)  # no wallet prompt: nobody waits now
        await a.call("discover_merchants")
        ask = {"purpose": "Buy eSIMs for the trip", "budget": "50.00", "expires_at": lab.until(),
               "merchant_ids": ["SUNNY-TOURS"]}
        with pytest.raises(ToolError) as linking:
            await a.call("request_mandate", **ask)
        assert linking.value.code == "WALLET_CONFIRMATION_REQUIRED"
        clock.advance(0.6)  # the user links the wallet; the model asks again
        first = await a.call("request_mandate", **ask)
        assert first["status"] == "PENDING_IDV"  # the wallet confirms the mandate half a second later
        checkout = await a.buy()
        paid = await a.call("pay", checkout_id=checkout)
        assert paid["status"] == "paid" and paid["mode"] == "delegated"
        kinds = [getattr(m, "mandate_type", "") for m in lab.sandbox.state.mandates.values()]
        assert "IMMEDIATE" not in kinds  # no stray human-present mandate at the CP
        assert len(lab.charges(checkout)) == 1
    finally:
        await lab.close()
