"""AutoGen adapter through AssistantAgent, StaticWorkbench and a handoff team, with the scripted client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import Handoff, TaskResult
from autogen_agentchat.conditions import HandoffTermination, MaxMessageTermination, TextMentionTermination
from autogen_agentchat.messages import HandoffMessage, ToolCallExecutionEvent
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core import CancellationToken
from autogen_core.models import FunctionExecutionResult
from autogen_core.tools import StaticWorkbench

from amp_autogen import AmpToolResult, to_autogen_tools
from amp_examples.scripted import Final, Script, ToolCall, last_tool_result
from amp_examples.scripted.autogen_model import ScriptedChatCompletionClient
from amp_tools.errors import ApprovalPending, InvalidArguments, PolicyViolation
from tests.adapters._adapter_fakes import PAY_BAD, PAY_NEEDS_APPROVAL, PAY_OK, PAY_TOO_MUCH, FakeShop


def _agent(shop: FakeShop, steps: Any, **kw: Any) -> tuple[AssistantAgent, Script]:
    script = Script(steps)
    agent = AssistantAgent("shopper", model_client=ScriptedChatCompletionClient(script),
                           tools=[*to_autogen_tools(shop.specs())], reflect_on_tool_use=True,
                           max_tool_iterations=5, **kw)
    return agent, script


def _results(res: TaskResult) -> list[FunctionExecutionResult]:
    return [r for m in res.messages if isinstance(m, ToolCallExecutionEvent) for r in m.content]


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
    res = await agent.run(task="Book a hotel")
    results = _results(res)
    assert [r.is_error for r in results] == [False, False]
    assert json.loads(results[1].content)["amount"] == {"amount": "80.00", "currency": "EUR"}
    assert res.messages[-1].to_text() == "Paid pay_1"
    assert shop.executed == 1 and script.seen[-1][-1]["role"] == "tool"


async def test_policy_violation_is_an_error_result_and_run_continues(shop: FakeShop) -> None:
    agent, script = _agent(shop, [ToolCall("pay", PAY_TOO_MUCH), ToolCall("pay", PAY_OK), Final("ok")])
    res = await agent.run(task="pay")
    first, second = _results(res)
    assert first.is_error and first.content.startswith("POLICY_VIOLATION: 900.00 EUR exceeds the per-payment limit")
    assert not second.is_error and shop.executed == 1
    assert res.messages[-1].to_text() == "ok"
    assert script.seen[1][-1]["is_error"] is True


async def test_invalid_arguments_are_a_readable_error(shop: FakeShop) -> None:
    agent, _ = _agent(shop, [ToolCall("pay", PAY_BAD), Final("gave up")])
    (result,) = _results(await agent.run(task="pay"))
    assert result.is_error
    assert result.content.startswith("INVALID_ARGUMENTS: invalid arguments for pay: amount: Input should be a valid")
    assert shop.executed == 0 and shop.payments == {}


async def test_same_call_twice_pays_once(shop: FakeShop) -> None:
    agent, _ = _agent(shop, [[ToolCall("pay", PAY_OK), ToolCall("pay", PAY_OK)], Final("done")])
    first, second = (json.loads(r.content) for r in _results(await agent.run(task="pay")))
    assert first["payment_id"] == second["payment_id"] == "pay_1" and second["repeated"] is True
    assert shop.executed == 1


async def test_static_workbench_and_direct_run_json(shop: FakeShop) -> None:
    tools = to_autogen_tools(shop.specs())
    async with StaticWorkbench(tools) as bench:
        ok = await bench.call_tool("pay", dict(PAY_OK))
        refused = await bench.call_tool("pay", dict(PAY_TOO_MUCH))
        bad = await bench.call_tool("pay", dict(PAY_BAD))
    assert not ok.is_error and json.loads(ok.to_text()) == shop.payments["co_1"]
    assert refused.is_error and "rule" not in refused.to_text() and "POLICY_VIOLATION" in refused.to_text()
    assert bad.is_error and bad.to_text().startswith("INVALID_ARGUMENTS")
    pay = tools[1]
    direct = await pay.run_json(dict(PAY_OK), CancellationToken())
    assert isinstance(direct, AmpToolResult) and direct.data["repeated"] is True
    with pytest.raises(PolicyViolation):
        await pay.run_json(dict(PAY_TOO_MUCH), CancellationToken())
    with pytest.raises(InvalidArguments):
        await pay.run_json(dict(PAY_BAD), CancellationToken())
    assert shop.executed == 1


def test_dump_component_refuses_with_a_reason(shop: FakeShop) -> None:
    with pytest.raises(NotImplementedError, match="cannot be dumped"):
        to_autogen_tools(shop.specs())[0].dump_component()


async def test_handoff_to_user_then_resume_after_out_of_band_approval(shop: FakeShop) -> None:
    def pending(req: Any) -> bool:
        raise ApprovalPending(f"approval {req.binding[:8]} is waiting for the user", hint="Hand off to the user.")

    shop.approver = pending
    steps = [ToolCall("pay", PAY_NEEDS_APPROVAL), ToolCall("transfer_to_user"), ToolCall("pay", PAY_NEEDS_APPROVAL),
             Final("Paid after approval. TERMINATE")]
    agent, script = _agent(shop, steps, handoffs=[Handoff(target="user", message="Please approve the payment.")])
    team = RoundRobinGroupChat([agent], termination_condition=HandoffTermination(target="user")
                               | TextMentionTermination("TERMINATE") | MaxMessageTermination(12))
    first = await team.run(task="pay the hotel")
    assert first.stop_reason is not None and "Handoff to user" in first.stop_reason
    assert isinstance(first.messages[-1], HandoffMessage) and shop.executed == 0
    assert _results(first)[0].content.startswith("APPROVAL_PENDING")

    shop.approver = lambda req: True  # the person approves out of band; the model cannot write here
    second = await team.run(task=HandoffMessage(source="user", target="shopper", content="Approved"))
    assert shop.executed == 1 and shop.payments["co_3"]["amount"] == {"amount": "250.00", "currency": "EUR"}
    assert second.messages[-1].to_text() == "Paid after approval. TERMINATE"
    assert any(m["role"] == "user" and m["content"] == "Approved" for m in script.seen[-1])


async def test_awaiting_approver_blocks_until_the_person_answers(shop: FakeShop) -> None:
    answers: asyncio.Queue[bool] = asyncio.Queue()
    asked = asyncio.Event()

    async def approver(req: Any) -> bool:
        asked.set()
        return await answers.get()

    shop.approver = approver
    agent, _ = _agent(shop, [ToolCall("pay", PAY_NEEDS_APPROVAL), Final("done")])
    run = asyncio.create_task(agent.run(task="pay"))
    await asked.wait()
    assert shop.executed == 0 and shop.approval_requests[0].amount.minor == 25000
    await answers.put(False)
    (result,) = _results(await run)
    assert result.is_error and result.content.startswith("APPROVAL_DENIED") and shop.executed == 0
