"""CrewAI adapter through a real Crew kickoff with the scripted BaseLLM (telemetry off: tests/conftest.py)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from crewai import Agent, Crew, Process, Task
from crewai.crews.crew_output import CrewOutput
from crewai.tools import ToolFailure

from amp_crewai import answer_from_feedback, to_crewai_tools
from amp_examples.scripted import Final, Script, ToolCall, last_tool_result, tool_results
from amp_examples.scripted.crewai_model import ScriptedCrewLLM
from amp_tools.approvals import ApprovalDecision, ApprovalStateError, ApprovalStore
from amp_tools.approvals.request import make_request
from amp_tools.errors import NotFound
from amp_tools.ledger import open_ledger
from amp_tools.money import Money
from amp_tools.policy.decide import Item, SpendIntent, Verdict
from tests.adapters._adapter_fakes import PAY_BAD, PAY_OK, PAY_TOO_MUCH, FakeShop


def _kickoff(shop: FakeShop, steps: Any) -> tuple[CrewOutput, Script]:
    script = Script(steps)
    agent = Agent(role="Shopper", goal="Buy what the user asks within budget", backstory="Careful with money.",
                  llm=ScriptedCrewLLM(script=script), tools=to_crewai_tools(shop.specs()), max_iter=6)
    task = Task(description="Buy a hotel night", expected_output="payment status", agent=agent)
    crew = Crew(agents=[agent], tasks=[task], process=Process.sequential, memory=False, planning=False)
    out = crew.kickoff()
    assert isinstance(out, CrewOutput)
    return out, script


def test_environment_keeps_crewai_offline_and_out_of_home() -> None:
    assert os.environ["CREWAI_DISABLE_TELEMETRY"] == "true" and os.environ["OTEL_SDK_DISABLED"] == "true"
    assert "amp-tools-test-home-" in os.environ["HOME"]


def test_success_result_reaches_the_model(shop: FakeShop) -> None:
    def policy(conv: list[dict[str, Any]]) -> Any:
        found = last_tool_result(conv)
        if found is None:
            return ToolCall("search_offers", {"query": "hotel"})
        if "offers" in found:
            offer = found["offers"][0]
            return ToolCall("pay", {"checkout_id": offer["checkout_id"], "amount": offer["price"]["value"],
                                    "currency": offer["price"]["currency"]})
        return Final(f"Paid {found['payment_id']}")

    out, script = _kickoff(shop, policy)
    assert out.raw == "Paid pay_1" and shop.executed == 1
    results = tool_results(script.seen[-1])
    assert [r["is_error"] for r in results] == [False, False]
    assert json.loads(results[1]["content"])["amount"] == {"amount": "80.00", "currency": "EUR"}
    assert out.tasks_output[0].tool_failures == []


def test_policy_violation_is_a_tool_failure_and_run_continues(shop: FakeShop) -> None:
    out, script = _kickoff(shop, [ToolCall("pay", PAY_TOO_MUCH), ToolCall("pay", PAY_OK), Final("ok")])
    (record,) = out.tasks_output[0].tool_failures
    assert record.tool_name == "pay" and record.failure.code == "POLICY_VIOLATION"
    assert record.failure.details == {"rule": "max_per_payment"}
    first = tool_results(script.seen[1])[0]
    assert first["is_error"] and first["content"].startswith("POLICY_VIOLATION: 900.00 EUR exceeds")
    assert out.raw == "ok" and shop.executed == 1


def test_invalid_arguments_are_shown_as_an_error(shop: FakeShop) -> None:
    out, script = _kickoff(shop, [ToolCall("pay", PAY_BAD), Final("gave up")])
    (record,) = out.tasks_output[0].tool_failures
    shown = tool_results(script.seen[1])[0]["content"]
    assert shown.startswith("Error executing tool: Tool 'pay' arguments validation failed"), shown
    assert "input_value=80.5" in shown and "String should match pattern '^[A-Z]{3}$'" in shown
    assert record.tool_name == "pay" and shop.executed == 0 and shop.payments == {}


def test_same_call_twice_pays_once(shop: FakeShop) -> None:
    out, script = _kickoff(shop, [ToolCall("pay", PAY_OK), ToolCall("pay", PAY_OK), Final("done")])
    first, second = (json.loads(r["content"]) for r in tool_results(script.seen[-1]))
    assert first["payment_id"] == second["payment_id"] == "pay_1" and second["repeated"] is True
    assert out.raw == "done"
    assert shop.executed == 1


def test_direct_run_returns_json_or_tool_failure(shop: FakeShop) -> None:
    pay = to_crewai_tools(shop.specs())[1]
    assert json.loads(pay.run(**PAY_OK))["payment_id"] == "pay_1"
    failure = pay.run(**PAY_TOO_MUCH)
    assert isinstance(failure, ToolFailure) and failure.code == "POLICY_VIOLATION"
    assert "spec" not in pay.model_dump()


def _intent() -> SpendIntent:
    hotel = Money.parse("250.00", "USD")
    return SpendIntent(action="pay", merchant_id="KL-GRAND-HOTEL", merchant_name="KL Grand Hotel", mcc=None,
                       amount=hotel, budget_amount=hotel, fx_rate=None, items=(Item("room", "Room", 1, hotel),),
                       human_present=False, checkout_id="CKO-1", at=datetime.now(UTC))


@pytest.mark.parametrize(("feedback", "status", "reason"), [
    ("approve", "approved", ""), ("Approved!", "approved", ""), ("yes, go ahead", "approved", ""),
    ("y", "approved", ""), ("no", "denied", "no"), ("approve? not sure", "denied", "approve? not sure"),
    ("I do not approve", "denied", "I do not approve"), ("", "denied", "no answer was given"),
    ("   ", "denied", "no answer was given")])
def test_feedback_text_decides_the_stored_approval(tmp_path: Path, feedback: str, status: str, reason: str) -> None:
    from crewai.flow import HumanFeedbackResult

    store = ApprovalStore(open_ledger(tmp_path / "approvals.db"))
    request = make_request(_intent(), Verdict(approval_reasons=("above 200.00 USD",),
                                              budget_left=Money.parse("10.00", "USD"), checked_rules=()),
                           budget_id="default")
    store.create(request)
    record = answer_from_feedback(store, request.id, HumanFeedbackResult(output="", feedback=feedback), by="alice")
    assert (record.status, record.decided_by, record.reason) == (status, "alice", reason)
    assert store.consume(request.binding) == ApprovalDecision(status == "approved", reason, "alice")
    if status == "approved":
        assert store.consume(request.binding) is None  # a grant is single use
    else:  # a denial stands until the owner reopens it, so the model cannot keep asking
        assert store.consume(request.binding) == ApprovalDecision(False, reason, "alice")


def test_feedback_on_an_unknown_or_decided_approval_is_refused(tmp_path: Path) -> None:
    store = ApprovalStore(open_ledger(tmp_path / "approvals.db"))
    with pytest.raises(NotFound):
        answer_from_feedback(store, "apr_missing", "approve", by="alice")
    request = make_request(_intent(), Verdict(approval_reasons=("x",), budget_left=Money.parse("1.00", "USD"),
                                              checked_rules=()), budget_id="default")
    store.create(request)
    answer_from_feedback(store, request.id, "approve", by="alice")
    with pytest.raises(ApprovalStateError, match="already approved"):
        answer_from_feedback(store, request.id, "no", by="mallory")
