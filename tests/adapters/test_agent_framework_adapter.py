"""Agent Framework adapter through an `Agent` with the scripted chat client: results, errors, approvals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agent_framework import Agent, Content

from amp_agent_framework import KEY, AgentFrameworkApprover, approval_response, to_agent_framework_tools
from amp_examples.scripted import Final, Script, ToolCall, last_tool_result
from amp_examples.scripted.agent_framework_model import ScriptedChatClient, to_neutral
from tests.adapters._adapter_fakes import PAY_NEEDS_APPROVAL, PAY_OK, PAY_TOO_MUCH, FakeShop


def _agent(shop: FakeShop, steps: Any, **kw: Any) -> tuple[Agent[Any], Script]:
    script = Script(steps)
    return Agent(client=ScriptedChatClient(script), tools=to_agent_framework_tools(shop.specs()), **kw), script


def _tool_results(script: Script) -> list[dict[str, Any]]:
    return [m for m in script.seen[-1] if m["role"] == "tool"]


async def test_success_result_reaches_the_model(shop: FakeShop) -> None:
    def policy(conv: list[dict[str, Any]]) -> Any:
        found = last_tool_result(conv)
        if found is None:
            return ToolCall("search_offers", {"query": "hotel", "max_results": 1})
        if "offers" in found:
            offer = found["offers"][0]
            return ToolCall("pay", {"checkout_id": offer["checkout_id"], "amount": offer["price"]["value"],
                                    "currency": offer["price"]["currency"]})
        return Final(f"Paid {found['payment_id']}")

    agent, script = _agent(shop, policy)
    response = await agent.run("Book a hotel")
    results = _tool_results(script)
    assert [(r["name"], r["is_error"]) for r in results] == [("search_offers", False), ("pay", False)]
    assert json.loads(results[1]["content"]) == shop.payments["co_1"]
    assert response.text == "Paid pay_1" and shop.executed == 1


async def test_policy_violation_is_an_error_text_and_the_run_continues(shop: FakeShop) -> None:
    agent, script = _agent(shop, [ToolCall("pay", PAY_TOO_MUCH), ToolCall("pay", PAY_OK), Final("ok")])
    response = await agent.run("pay")
    refused, paid = _tool_results(script)
    assert refused["is_error"] and refused["content"].startswith(
        "POLICY_VIOLATION: 900.00 EUR exceeds the per-payment limit of 500.00 EUR [policy: max_per_payment]. Choose")
    assert not paid["is_error"] and json.loads(paid["content"])["payment_id"] == "pay_1"
    assert response.text == "ok" and shop.executed == 1
    # What the model was given is Agent Framework's own form of a failed call.
    [raw] = [c for m in response.messages for c in m.contents if c.type == "function_result"][:1]
    assert str(raw.result).startswith("Error: POLICY_VIOLATION: ")


@pytest.mark.parametrize(("args", "expected"), [
    ({"checkout_id": "co_1", "amount": "80.5x", "currency": "EUR"},
     "INVALID_ARGUMENTS: invalid arguments for pay: amount: String should match pattern"),
    ({"checkout_id": "co_1", "amount": 80.5, "currency": "EUR"}, "Argument parsing failed."),
], ids=["bad-value-worded-by-the-spec", "wrong-json-type-worded-by-agent-framework"])
async def test_invalid_arguments_pay_nothing(shop: FakeShop, args: dict[str, Any], expected: str) -> None:
    agent, script = _agent(shop, [ToolCall("pay", args), Final("gave up")])
    await agent.run("pay")
    [result] = _tool_results(script)
    assert result["is_error"] and result["content"].startswith(expected)
    assert shop.executed == 0 and shop.payments == {}


async def test_same_call_twice_in_one_turn_pays_once(shop: FakeShop) -> None:
    agent, script = _agent(shop, [[ToolCall("pay", PAY_OK), ToolCall("pay", PAY_OK)], Final("done")])
    await agent.run("pay")
    first, second = (json.loads(r["content"]) for r in _tool_results(script))
    assert first["payment_id"] == second["payment_id"] == "pay_1" and shop.executed == 1


async def test_direct_invoke_returns_the_json_text(shop: FakeShop) -> None:
    pay = to_agent_framework_tools(shop.specs())[1]
    assert pay.name == "pay" and pay.parameters()["properties"]["amount"]["type"] == "string"
    [ok] = await pay.invoke(arguments=dict(PAY_OK))
    [refused] = await pay.invoke(arguments=dict(PAY_TOO_MUCH))
    assert json.loads(str(ok.text)) == shop.payments["co_1"]
    assert str(refused.text).startswith("Error: POLICY_VIOLATION")


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed-run"])
async def test_approval_request_pauses_and_the_response_pays_once(shop: FakeShop, stream: bool) -> None:
    approver = AgentFrameworkApprover()
    shop.approver = approver
    def policy(conv: list[dict[str, Any]]) -> Any:
        found = last_tool_result(conv)
        return ToolCall("pay", PAY_NEEDS_APPROVAL) if found is None else Final(found["payment_id"])

    agent, script = _agent(shop, policy, middleware=[approver.middleware])
    session = agent.create_session()

    async def run(message: Any) -> Any:
        if not stream:
            return await agent.run(message, session=session)
        return await agent.run(message, session=session, stream=True).get_final_response()

    paused = await run("pay the big one")
    [request] = paused.user_input_requests
    assert request.additional_properties[KEY] == shop.approval_requests[0].to_public()
    assert shop.executed == 0 and script.seen[-1][-1]["role"] == "user"

    done = await run(approval_response(request, True, by="alice"))
    assert done.user_input_requests == [] and done.text == "pay_1"
    assert shop.executed == 1 and len(shop.approval_requests) == 2  # asked once more, answered by alice


async def test_an_answer_for_another_payment_is_a_denial(shop: FakeShop) -> None:
    approver = AgentFrameworkApprover()
    shop.approver = approver
    agent, script = _agent(shop, [ToolCall("pay", PAY_NEEDS_APPROVAL), Final("stopped")],
                           middleware=[approver.middleware])
    session = agent.create_session()
    [request] = (await agent.run("pay", session=session)).user_input_requests
    answer = approval_response(request, True, by="alice")
    answer.additional_properties[KEY] = {**answer.additional_properties[KEY], "binding": "0" * 64}
    await agent.run(answer, session=session)
    [result] = _tool_results(script)
    assert result["is_error"] and "binding mismatch" in result["content"] and shop.executed == 0


def test_approval_response_needs_an_approval_request() -> None:
    with pytest.raises(ValueError, match="expected a function_approval_request"):
        approval_response(Content.from_text("yes"), True)


def test_neutral_conversation_names_tool_results() -> None:
    from agent_framework import Message

    call = Content.from_function_call(call_id="c1", name="pay", arguments='{"x": 1}')
    failed = Content.from_function_result(call_id="c1", result="Error: X: no")
    conv = to_neutral([Message(role="user", contents=["hi"]), Message(role="assistant", contents=[call]),
                       Message(role="tool", contents=[failed])])
    assert conv == [{"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "", "tool_calls": [{"name": "pay", "args": {"x": 1}, "id": "c1"}]},
                    {"role": "tool", "name": "pay", "tool_call_id": "c1", "content": "X: no", "is_error": True}]


async def test_two_payments_asked_in_one_turn_are_answered_together(shop: FakeShop) -> None:
    approver = AgentFrameworkApprover()
    shop.approver = approver
    other = {**PAY_NEEDS_APPROVAL, "checkout_id": "co_4", "amount": "300.00"}
    agent, script = _agent(shop, [[ToolCall("pay", PAY_NEEDS_APPROVAL), ToolCall("pay", other)], Final("done")],
                           middleware=[approver.middleware])
    session = agent.create_session()
    response = await agent.run("pay both", session=session)
    asked = {r.additional_properties[KEY]["checkout_id"]: r for r in response.user_input_requests}
    assert sorted(asked) == ["co_3", "co_4"] and shop.executed == 0

    response = await agent.run([approval_response(asked["co_3"], True, by="alice"),
                                approval_response(asked["co_4"], False, by="alice")], session=session)
    assert response.user_input_requests == [] and response.text == "done"
    assert sorted(shop.payments) == ["co_3"] and shop.executed == 1
    results = {r["tool_call_id"]: r for r in _tool_results(script)}
    assert [r["is_error"] for r in results.values()].count(True) == 1
