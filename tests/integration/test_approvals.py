"""A payment the policy sends to a person: paused, approved, paid, in each framework's own terms.

* LangChain: the approver is LangGraph's `interrupt()`; the run pauses in a checkpointer and a
  person resumes it with `Command(resume={"approved": True, "binding": ...})`.
* AutoGen: the `OutOfBandApprover` answers APPROVAL_PENDING, the agent hands off to the user
  (`HandoffTermination`), the person runs `amp-tools approvals approve ID`, the team resumes.
* CrewAI: the same out-of-band approver on the toolkit behind the tool instances, across two
  kickoffs (no process-global hooks); or, inside one Flow run, the person answers a
  `@human_feedback` step (directly, or after the flow paused and was resumed).
* Agent Framework: the run ends with a `function_approval_request` (the core's request in its
  `additional_properties`); the person's `function_approval_response` in the next run of the
  same session is the decision the core takes; a rejection never runs the tool.

Each also shows the grant is bound and single-use: the next payment, of another amount, asks again.
A denied approval charges nothing, releases the reservation and reads APPROVAL_DENIED.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from amp_examples.scripted import Final, ToolCall
from amp_tools.approvals import ApprovalDecision, ApprovalRequest, ApprovalStore, CallbackApprover, OutOfBandApprover
from amp_tools.ledger import open_ledger
from amp_tools.money import Money
from tests.integration._scenarios import (
    DRIVERS,
    USER,
    Seen,
    Shop,
    autogen_agent,
    crew_for,
    hotel_checkout,
    maf_agent,
    offer,
    plan_script,
    policy,
)
from tests.integration._scenarios import searches as both_searches

CONFIRM = {"confirm_above": "200.00"}  # the negotiated hotel (231.42 USD) asks; the flight (110.26) does not


def _negotiated_hotel() -> list[Any]:
    return [
        lambda s: both_searches(),
        lambda s: ToolCall("request_quote", {"offer_id": offer(s, "superior"), "quantity": 2}),
        lambda s: ToolCall("negotiate", {"quote_id": s.ok("request_quote")[0]["quote_id"], "offer_amount": "986.00"}),
        lambda s: ToolCall("accept_quote", {"quote_id": s.ok("negotiate")[0]["quote_id"]}),
    ]


def _second_hotel_at_list_price() -> list[Any]:
    """Another two nights, not negotiated: a different amount (1160.00 MYR = 243.60 USD)."""
    return [
        lambda s: ToolCall("request_quote", {"offer_id": offer(s, "superior"), "quantity": 2}),
        lambda s: ToolCall("accept_quote", {"quote_id": s.ok("request_quote")[-1]["quote_id"]}),
        lambda s: ToolCall("pay", {"checkout_id": s.ok("accept_quote")[-1]["checkout_id"]}),
    ]


async def _assert_first_hotel_paid_once(shop: Shop) -> None:
    rows = await shop.rows()
    committed = [r for r in rows if r.status == "committed"]
    assert [(r.merchant_id, r.amount) for r in committed] == [("KL-GRAND-HOTEL", Money.parse("1102.00", "MYR"))]
    assert [(p["merchantId"], p["amount"]["cent"]) for p in shop.paid()] == [("KL-GRAND-HOTEL", 110200)]


# ---------------------------------------------------------------------- LangChain: interrupt()
async def test_langchain_interrupt_pauses_then_resume_pays(shop: Shop) -> None:
    from langchain.agents import create_agent
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    from amp_examples.scripted.langchain_model import ScriptedChatModel
    from amp_langchain import interrupt_approver, to_langchain_tools

    tk = shop.toolkit(policy(approval=CONFIRM), approver=interrupt_approver)
    plan = [*_negotiated_hotel(), lambda s: ToolCall("pay", {"checkout_id": hotel_checkout(s)}),
            *_second_hotel_at_list_price(), lambda s: Final("; ".join(s.texts("pay")))]
    script = plan_script(plan)
    agent = create_agent(ScriptedChatModel(script=script), tools=to_langchain_tools(tk.specs()),
                         checkpointer=InMemorySaver())
    cfg: Any = {"configurable": {"thread_id": "trip-1"}, "recursion_limit": 60}

    paused = await agent.ainvoke({"messages": [{"role": "user", "content": USER}]}, cfg)
    [first] = paused["__interrupt__"]
    asked = first.value
    assert (asked["merchant_id"], asked["amount"], asked["budget_amount"]) == (
        "KL-GRAND-HOTEL", {"amount": "1102.00", "currency": "MYR"}, {"amount": "231.42", "currency": "USD"})
    assert "200.00 USD" in " ".join(asked["rules"])
    # Paused: nothing charged, and the reservation taken before asking was released.
    assert await shop.committed() == [] and shop.paid() == []
    assert [(r.status, r.reason) for r in await shop.rows()] == [("released", "GraphInterrupt")]

    resumed = await agent.ainvoke(Command(resume={"approved": True, "binding": asked["binding"], "by": "alice"}), cfg)
    await _assert_first_hotel_paid_once(shop)
    [second] = resumed["__interrupt__"]  # the next payment, another amount, asks again
    assert second.value["amount"] == {"amount": "1160.00", "currency": "MYR"}
    assert second.value["binding"] != asked["binding"]

    # The first answer cannot be replayed onto the second payment: its binding does not match.
    done = await agent.ainvoke(Command(resume={"approved": True, "binding": asked["binding"]}), cfg)
    assert "__interrupt__" not in done
    seen = Seen(script.seen[-1])
    [paid] = seen.ok("pay")
    assert (paid["status"], paid["approved_by"], paid["budget_left"]) == (
        "paid", "alice", {"amount": "768.58", "currency": "USD"})
    [refused] = seen.errors("pay")
    assert refused.startswith("APPROVAL_DENIED") and "binding mismatch" in refused
    await _assert_first_hotel_paid_once(shop)
    assert await tk.budget_left() == Money.parse("768.58", "USD")


# ---------------------------------------------------------------------- AutoGen: handoff + out of band
async def test_autogen_handoff_then_cli_approval_resumes_and_pays(shop: Shop, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from autogen_agentchat.base import Handoff
    from autogen_agentchat.conditions import HandoffTermination, MaxMessageTermination
    from autogen_agentchat.messages import HandoffMessage
    from autogen_agentchat.teams import RoundRobinGroupChat
    from typer.testing import CliRunner

    from amp_tools.cli import app

    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    store = ApprovalStore(shop.ledger, clock=shop.sandbox.clock)  # the ledger the CLI answers in
    tk = shop.toolkit(policy(approval=CONFIRM), approver=OutOfBandApprover(store))
    hand_off = lambda s: ToolCall("transfer_to_user", {})  # noqa: E731
    plan = [*_negotiated_hotel(), lambda s: ToolCall("pay", {"checkout_id": hotel_checkout(s)}), hand_off,
            # resumed after the person answered: the same call again consumes the grant
            lambda s: ToolCall("pay", {"checkout_id": hotel_checkout(s)}),
            *_second_hotel_at_list_price(), hand_off]
    script = plan_script(plan)
    agent = autogen_agent(tk, script, handoffs=[Handoff(target="user", message="A payment needs your approval.")])
    team = RoundRobinGroupChat([agent], termination_condition=HandoffTermination(target="user")
                               | MaxMessageTermination(80))

    first = await team.run(task=USER)
    assert first.stop_reason is not None and "Handoff to user" in first.stop_reason
    [pending] = Seen(script.seen[-1]).errors("pay")
    assert pending.startswith("APPROVAL_PENDING") and "amp-tools approvals approve" in pending
    [waiting] = store.list("pending")
    assert waiting.id in pending and waiting.request.amount == Money.parse("1102.00", "MYR")
    assert await shop.committed() == [] and shop.paid() == []

    answered = await asyncio.to_thread(CliRunner().invoke, app, ["approvals", "approve", waiting.id, "--by", "alice"])
    assert answered.exit_code == 0 and f"approved {waiting.id}" in answered.output

    second = await team.run(task=HandoffMessage(source="user", target="travel", content="Approved."))
    assert second.stop_reason is not None and "Handoff to user" in second.stop_reason
    seen = Seen(script.seen[-1])
    [paid] = seen.ok("pay")
    assert (paid["status"], paid["approved_by"], paid["merchant"]) == ("paid", "alice", "KL Grand Hotel")
    assert store.get(waiting.id).status == "consumed"  # single use
    # The next payment (another amount) is not covered by the consumed grant: a new approval is asked.
    again = seen.errors("pay")
    assert len(again) == 2 and again[1].startswith("APPROVAL_PENDING") and waiting.id not in again[1]
    [new] = store.list("pending")
    assert new.request.amount == Money.parse("1160.00", "MYR") and new.request.binding != waiting.request.binding
    await _assert_first_hotel_paid_once(shop)


# ---------------------------------------------------------------------- Agent Framework: function approvals
async def test_agent_framework_approval_request_pauses_then_response_pays(shop: Shop) -> None:
    from amp_agent_framework import KEY, AgentFrameworkApprover, approval_response

    approver = AgentFrameworkApprover()
    tk = shop.toolkit(policy(approval=CONFIRM), approver=approver)
    plan = [*_negotiated_hotel(), lambda s: ToolCall("pay", {"checkout_id": hotel_checkout(s)}),
            *_second_hotel_at_list_price(), lambda s: Final("; ".join(s.texts("pay")))]
    script = plan_script(plan)
    agent = maf_agent(tk, script, middleware=[approver.middleware])
    session = agent.create_session()

    paused = await agent.run(USER, session=session)
    [request] = paused.user_input_requests
    asked = request.additional_properties[KEY]
    assert request.type == "function_approval_request" and request.function_call.name == "pay"
    assert (asked["merchant_id"], asked["amount"], asked["budget_amount"]) == (
        "KL-GRAND-HOTEL", {"amount": "1102.00", "currency": "MYR"}, {"amount": "231.42", "currency": "USD"})
    assert "200.00 USD" in " ".join(asked["rules"])
    assert await shop.committed() == [] and shop.paid() == []
    assert [(r.status, r.reason) for r in await shop.rows()] == [("released", "FunctionApprovalRequested")]

    resumed = await agent.run(approval_response(request, True, by="alice"), session=session)
    await _assert_first_hotel_paid_once(shop)
    [second] = resumed.user_input_requests  # the next payment, another amount, asks again
    assert second.additional_properties[KEY]["amount"] == {"amount": "1160.00", "currency": "MYR"}
    assert second.additional_properties[KEY]["binding"] != asked["binding"]

    # An answer carrying the first payment's binding cannot approve the second one.
    replayed = approval_response(second, True, by="mallory")
    replayed.additional_properties[KEY] = asked
    done = await agent.run(replayed, session=session)
    assert done.user_input_requests == []
    seen = Seen(script.seen[-1])
    [paid] = seen.ok("pay")
    assert (paid["status"], paid["approved_by"], paid["budget_left"]) == (
        "paid", "alice", {"amount": "768.58", "currency": "USD"})
    [refused] = seen.errors("pay")
    assert refused.startswith("APPROVAL_DENIED") and "binding mismatch" in refused
    await _assert_first_hotel_paid_once(shop)
    assert await tk.budget_left() == Money.parse("768.58", "USD")


async def test_agent_framework_rejection_never_runs_the_payment(shop: Shop) -> None:
    from amp_agent_framework import AgentFrameworkApprover, approval_response

    approver = AgentFrameworkApprover()
    tk = shop.toolkit(policy(approval=CONFIRM), approver=approver)
    script = plan_script([*_negotiated_hotel(), lambda s: ToolCall("pay", {"checkout_id": hotel_checkout(s)}),
                          lambda s: Final(s.texts("pay")[0])])
    agent = maf_agent(tk, script, middleware=[approver.middleware])
    session = agent.create_session()
    [request] = (await agent.run(USER, session=session)).user_input_requests

    done = await agent.run(approval_response(request, False, by="alice", reason="too dear"), session=session)
    assert done.user_input_requests == [] and "rejected by user" in done.text
    assert Seen(script.seen[-1]).errors("pay") == [done.text]
    assert [(r.merchant_id, r.status) for r in await shop.rows()] == [("KL-GRAND-HOTEL", "released")]
    assert shop.paid() == [] and await tk.budget_left() == Money.parse("1000.00", "USD")


async def test_agent_framework_approver_without_its_middleware_declines_saying_why(shop: Shop) -> None:
    from amp_agent_framework import AgentFrameworkApprover

    tk = shop.toolkit(policy(approval=CONFIRM), approver=AgentFrameworkApprover())
    plan = [*_negotiated_hotel(), lambda s: ToolCall("pay", {"checkout_id": hotel_checkout(s)}),
            lambda s: Final(s.errors("pay")[0])]
    run = await DRIVERS["agent-framework"](tk, plan_script(plan))
    assert run.final.startswith("APPROVAL_DENIED") and "approver.middleware" in run.final
    assert shop.paid() == [] and await tk.budget_left() == Money.parse("1000.00", "USD")


# ---------------------------------------------------------------------- CrewAI: approver on the toolkit
async def test_crewai_out_of_band_approval_across_two_kickoffs(shop: Shop, tmp_path: Path) -> None:
    store = ApprovalStore(shop.ledger, clock=shop.sandbox.clock)
    tk = shop.toolkit(policy(approval=CONFIRM), approver=OutOfBandApprover(store))
    first_script = plan_script([*_negotiated_hotel(), lambda s: ToolCall("pay", {"checkout_id": hotel_checkout(s)}),
                                lambda s: Final("Waiting for your approval: " + s.errors("pay")[0][:60])])
    out = await asyncio.to_thread(crew_for(tk, first_script).kickoff)
    assert str(out.raw).startswith("Waiting for your approval: APPROVAL_PENDING")
    checkout_id = hotel_checkout(Seen(first_script.seen[-1]))
    [waiting] = store.list("pending")
    assert await shop.committed() == [] and shop.paid() == []

    store.approve(waiting.id, "alice")  # what `amp-tools approvals approve ID` does

    second_script = plan_script([
        lambda s: ToolCall("pay", {"checkout_id": checkout_id}),
        lambda s: ToolCall("search_offers", {"query": "hotel Kuala Lumpur", "category": "hotel"}),
        *_second_hotel_at_list_price(),
        lambda s: Final("done")])
    await asyncio.to_thread(crew_for(tk, second_script, "Pay the approved hotel, then book two more nights.").kickoff)
    seen = Seen(second_script.seen[-1])
    [paid] = seen.ok("pay")
    assert (paid["status"], paid["approved_by"], paid["checkout_id"]) == ("paid", "alice", checkout_id)
    assert store.get(waiting.id).status == "consumed"
    [again] = seen.errors("pay")
    assert again.startswith("APPROVAL_PENDING") and waiting.id not in again
    [new] = store.list("pending")
    assert new.request.amount == Money.parse("1160.00", "MYR")
    await _assert_first_hotel_paid_once(shop)


# ---------------------------------------------------------------------- CrewAI: a Flow asks with @human_feedback
class _Person:
    """A `HumanFeedbackProvider`: answers at once, or pauses the flow (`HumanFeedbackPending`) when it has no answer."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.shown: list[Any] = []

    def request_feedback(self, context: Any, flow: Any) -> str:
        from crewai.flow.async_feedback import HumanFeedbackPending

        self.shown.append(context)
        if self.answer is None:
            raise HumanFeedbackPending(context=context)
        return self.answer


def _flow_parts(shop: Shop, tmp_path: Path) -> tuple[Any, Any, list[Any]]:
    from amp_examples.crewai_approval_flow import FlowApprover

    approver = FlowApprover(ApprovalStore(open_ledger(tmp_path / "approvals.db"), clock=shop.sandbox.clock))
    tk = shop.toolkit(policy(approval=CONFIRM), approver=approver)
    scripts = [plan_script([*_negotiated_hotel(), lambda s: ToolCall("pay", {"checkout_id": hotel_checkout(s)}),
                            lambda s: Final("Waiting: " + s.errors("pay")[0])])]

    def crew(round_: int) -> Any:
        if round_ == 0:
            return crew_for(tk, scripts[0])
        checkout_id = hotel_checkout(Seen(scripts[0].seen[-1]))
        scripts.append(plan_script([lambda s: ToolCall("pay", {"checkout_id": checkout_id}),
                                    lambda s: Final(s.texts("pay")[-1])]))
        return crew_for(tk, scripts[-1], "The person has answered: pay the hotel if it was approved.")

    return crew, approver, scripts


@pytest.mark.parametrize(("answer", "paid"), [("Approve, thanks", True), ("no: too dear for one hotel", False),
                                              ("", False)], ids=["approve", "decline", "no-answer"])
async def test_crewai_flow_waits_for_the_person_inside_one_run(shop: Shop, tmp_path: Path, answer: str, paid: bool,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from crewai.flow import flow_config

    from amp_examples.crewai_approval_flow import ApprovalFlow

    person = _Person(answer)
    monkeypatch.setattr(flow_config, "hitl_provider", person)
    crew, approver, _ = _flow_parts(shop, tmp_path)
    flow = ApprovalFlow(crew=crew, approver=approver, by="alice")

    final = await asyncio.to_thread(flow.kickoff)
    [shown] = person.shown
    assert str(shown.method_output).startswith("Pay 1102.00 MYR (= 231.42 USD from the budget) to KL Grand Hotel")
    assert flow.state.rounds[0].startswith("Waiting: APPROVAL_PENDING") and len(flow.state.rounds) == 2
    [record] = approver.store.list()
    # An approval is decided once and taken once by the retry; a denial stands until the owner reopens it.
    assert (record.status, record.decided_by) == ("consumed" if paid else "denied", "alice")
    if paid:
        assert json.loads(final)["status"] == "paid" and json.loads(final)["approved_by"] == "alice"
        await _assert_first_hotel_paid_once(shop)
    else:
        assert final.startswith("APPROVAL_DENIED") and (answer or "no answer was given") in final
        assert shop.paid() == [] and await shop.committed() == []


async def test_crewai_flow_paused_for_feedback_resumes_later_and_pays(shop: Shop, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from crewai.flow import flow_config
    from crewai.flow.async_feedback import HumanFeedbackPending
    from crewai.flow.persistence import SQLiteFlowPersistence

    from amp_examples.crewai_approval_flow import ApprovalFlow

    monkeypatch.setattr(flow_config, "hitl_provider", _Person(None))  # e.g. a message sent to the person's phone
    crew, approver, _ = _flow_parts(shop, tmp_path)
    saved = SQLiteFlowPersistence(str(tmp_path / "flows.db"))
    paused = await asyncio.to_thread(ApprovalFlow(crew=crew, approver=approver, persistence=saved).kickoff)
    assert isinstance(paused, HumanFeedbackPending)
    [waiting] = approver.store.list("pending")
    assert shop.paid() == [] and await shop.committed() == []

    # Later (another process could do this): the person's answer arrives and the same flow run goes on.
    restored = ApprovalFlow.from_pending(paused.context.flow_id, saved, crew=crew, approver=approver, by="bob")
    final = await asyncio.to_thread(restored.resume, "yes")
    assert (json.loads(final)["status"], json.loads(final)["approved_by"]) == ("paid", "bob")
    assert approver.store.get(waiting.id).status == "consumed"
    await _assert_first_hotel_paid_once(shop)


# ---------------------------------------------------------------------- denied, in every framework
async def test_denied_approval_charges_nothing(shop: Shop, framework: str) -> None:
    asked: list[ApprovalRequest] = []

    def person(request: ApprovalRequest) -> ApprovalDecision:
        asked.append(request)
        return ApprovalDecision(False, "too expensive for one hotel", "alice")

    tk = shop.toolkit(policy(approval=CONFIRM), approver=CallbackApprover(person))
    plan = [*_negotiated_hotel(), lambda s: ToolCall("pay", {"checkout_id": hotel_checkout(s)}),
            lambda s: Final(s.errors("pay")[0])]
    run = await DRIVERS[framework](tk, plan_script(plan))

    [denied] = run.seen.errors("pay")
    assert denied.startswith("APPROVAL_DENIED") and "too expensive for one hotel" in denied
    assert run.seen.ok("pay") == [] and run.final == denied
    assert [(r.amount, r.binding) for r in asked] == [(Money.parse("1102.00", "MYR"), asked[0].binding)]
    rows = await shop.rows()
    assert [(r.merchant_id, r.status, r.reason) for r in rows] == [("KL-GRAND-HOTEL", "released", "APPROVAL_DENIED")]
    assert shop.paid() == []
    assert await tk.budget_left() == Money.parse("1000.00", "USD")
