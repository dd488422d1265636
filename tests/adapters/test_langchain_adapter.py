"""LangChain adapter through the real `create_agent` loop with the scripted model."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_tests.unit_tests import ToolsUnitTests
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphInterrupt
from langgraph.types import Command

from amp_examples.scripted import Final, Script, ToolCall, last_tool_result
from amp_examples.scripted.langchain_model import ScriptedChatModel
from amp_langchain import AmpLangChainToolkit, interrupt_approver, to_langchain_tools
from tests.adapters._adapter_fakes import PAY_BAD, PAY_NEEDS_APPROVAL, PAY_OK, PAY_TOO_MUCH, FakeShop


def _agent(shop: FakeShop, steps: Any, **kw: Any) -> tuple[Any, Script]:
    script = Script(steps)
    return create_agent(ScriptedChatModel(script=script), tools=to_langchain_tools(shop.specs()), **kw), script


def _tool_messages(out: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in out["messages"] if isinstance(m, ToolMessage)]


class TestPayToolStandard(ToolsUnitTests):
    """langchain-tests' standard unit tests for one adapted tool."""

    @property
    def tool_constructor(self) -> BaseTool:
        tool: BaseTool = AmpLangChainToolkit(FakeShop()).get_tools()[1]
        return tool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return dict(PAY_OK)


def test_importing_the_adapter_does_not_need_langgraph() -> None:
    code = "import sys; sys.modules['langgraph'] = None; import amp_langchain; print(len(amp_langchain.__all__))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "3"), done.stderr


async def test_success_result_reaches_the_model(shop: FakeShop) -> None:
    def policy(conv: list[dict[str, Any]]) -> Any:
        found = last_tool_result(conv)
        if found is None:
            return ToolCall("search_offers", {"query": "hotel"})
        if "offers" in found:  # reactive: pay the checkout the search returned
            offer = found["offers"][0]
            return ToolCall("pay", {"checkout_id": offer["checkout_id"], "amount": offer["price"]["value"],
                                    "currency": offer["price"]["currency"]})
        return Final(f"Paid: {found['payment_id']}")

    agent, script = _agent(shop, policy)
    out = await agent.ainvoke({"messages": [{"role": "user", "content": "Book a hotel"}]})
    tools = _tool_messages(out)
    assert [t.status for t in tools] == ["success", "success"]
    assert json.loads(tools[1].text)["amount"] == {"amount": "80.00", "currency": "EUR"}
    assert out["messages"][-1].text == "Paid: pay_1"
    assert shop.executed == 1 and shop.payments["co_1"]["status"] == "paid"
    assert script.seen[-1][-1]["role"] == "tool" and not script.seen[-1][-1]["is_error"]


def test_policy_violation_is_an_error_result_and_run_continues(shop: FakeShop) -> None:
    agent, script = _agent(shop, [ToolCall("pay", PAY_TOO_MUCH), ToolCall("pay", PAY_OK), Final("ok")])
    out = agent.invoke({"messages": [{"role": "user", "content": "pay"}]})  # sync path: spec.invoke
    first, second = _tool_messages(out)
    assert first.status == "error" and first.text.startswith("POLICY_VIOLATION: 900.00 EUR exceeds")
    assert "cheaper offer" in first.text
    assert second.status == "success" and shop.executed == 1
    assert out["messages"][-1].text == "ok"
    assert script.seen[1][-1]["is_error"] is True


async def test_invalid_arguments_are_a_readable_error(shop: FakeShop) -> None:
    agent, _ = _agent(shop, [ToolCall("pay", PAY_BAD), Final("gave up")])
    out = await agent.ainvoke({"messages": [{"role": "user", "content": "pay"}]})
    (msg,) = _tool_messages(out)
    assert msg.status == "error"
    assert msg.text.startswith("invalid arguments for pay: amount: Input should be a valid string (got 80.5)")
    assert "currency: String should match pattern" in msg.text
    assert shop.executed == 0 and shop.payments == {}


async def test_same_call_twice_pays_once(shop: FakeShop) -> None:
    agent, _ = _agent(shop, [ToolCall("pay", PAY_OK), ToolCall("pay", PAY_OK), Final("done")])
    out = await agent.ainvoke({"messages": [{"role": "user", "content": "pay"}]})
    first, second = (json.loads(m.text) for m in _tool_messages(out))
    assert first["payment_id"] == second["payment_id"] == "pay_1" and second["repeated"] is True
    assert shop.executed == 1


def test_direct_invoke_maps_errors_without_an_agent(shop: FakeShop) -> None:
    pay = to_langchain_tools(shop.specs())[1]
    assert json.loads(pay.invoke(PAY_OK))["payment_id"] == "pay_1"
    assert pay.invoke(PAY_TOO_MUCH).startswith("POLICY_VIOLATION")
    msg = pay.invoke({"name": "pay", "args": PAY_TOO_MUCH, "id": "c9", "type": "tool_call"})
    assert isinstance(msg, ToolMessage) and msg.status == "error" and msg.tool_call_id == "c9"


def test_other_exceptions_propagate_unchanged(shop: FakeShop) -> None:
    shop.approver = lambda req: (_ for _ in ()).throw(RuntimeError("approval channel down"))
    pay = to_langchain_tools(shop.specs())[1]
    with pytest.raises(RuntimeError, match="approval channel down"):
        pay.invoke(PAY_NEEDS_APPROVAL)
    assert shop.executed == 0


def _hitl(shop: FakeShop) -> tuple[Any, dict[str, Any]]:
    shop.approver = interrupt_approver
    agent, _ = _agent(shop, [ToolCall("pay", PAY_NEEDS_APPROVAL), Final("finished")], checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t1"}}
    paused = agent.invoke({"messages": [{"role": "user", "content": "pay"}]}, cfg, version="v2")
    return agent, cfg | {"paused": paused}


def test_interrupt_pauses_then_approve_pays_once(shop: FakeShop) -> None:
    agent, cfg = _hitl(shop)
    (intr,) = cfg.pop("paused").interrupts
    assert intr.value["checkout_id"] == "co_3" and intr.value["amount"] == {"amount": "250.00", "currency": "EUR"}
    assert shop.executed == 0
    out = agent.invoke(Command(resume={"approved": True, "binding": intr.value["binding"]}), cfg, version="v2")
    (msg,) = _tool_messages(out.value)
    assert msg.status == "success" and json.loads(msg.text)["amount"]["amount"] == "250.00"
    assert shop.executed == 1 and out.value["messages"][-1].text == "finished"


@pytest.mark.parametrize("answer", [{"approved": False, "reason": "too pricey"},
                                    {"type": "reject", "message": "too pricey"},
                                    {"decisions": [{"type": "reject", "message": "too pricey"}]},
                                    {"decisions": [{"type": "approve"}, {"type": "approve"}]},
                                    {"decisions": [{"type": "edit", "edited_action": {"name": "pay", "args": {}}}]},
                                    {"type": "respond", "message": "paid it myself"},
                                    {"approved": True, "binding": "someone-elses-binding"}, "yes"],
                         ids=["ours", "hitl-decision", "hitl-response", "two-decisions", "hitl-edit",
                              "hitl-respond", "other-binding", "text"])
def test_interrupt_deny_wrong_binding_or_unreadable_answer_denies(shop: FakeShop, answer: Any) -> None:
    agent, cfg = _hitl(shop)
    cfg.pop("paused")
    out = agent.invoke(Command(resume=answer), cfg, version="v2")
    (msg,) = _tool_messages(out.value)
    assert msg.status == "error" and msg.text.startswith("APPROVAL_DENIED: the person declined paying 250.00 EUR")
    assert shop.executed == 0 and shop.payments == {}


def test_interrupt_speaks_human_in_the_loop_middleware_and_takes_its_decisions(shop: FakeShop) -> None:
    agent, cfg = _hitl(shop)
    (intr,) = cfg.pop("paused").interrupts
    # What a UI built for HumanInTheLoopMiddleware reads: one action to review, approve or reject only.
    assert intr.value["action_requests"] == [{
        "name": "pay", "args": {"merchant_id": "m_fake", "amount": {"amount": "250.00", "currency": "EUR"},
                                "items": []},
        "description": "Pay 250.00 EUR for checkout co_3"}]
    assert intr.value["review_configs"] == [{"action_name": "pay", "allowed_decisions": ["approve", "reject"]}]
    out = agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), cfg, version="v2")
    (msg,) = _tool_messages(out.value)
    assert msg.status == "success" and json.loads(msg.text)["payment_id"] == "pay_1" and shop.executed == 1


def test_graph_interrupt_propagates_through_the_tool(shop: FakeShop) -> None:
    shop.approver = lambda req: (_ for _ in ()).throw(GraphInterrupt(()))
    pay = to_langchain_tools(shop.specs())[1]
    with pytest.raises(GraphInterrupt):
        pay.invoke({"name": "pay", "args": PAY_NEEDS_APPROVAL, "id": "c1", "type": "tool_call"})
    assert shop.executed == 0


def test_interrupt_outside_a_graph_is_not_swallowed(shop: FakeShop) -> None:
    shop.approver = interrupt_approver
    pay = to_langchain_tools(shop.specs())[1]
    with pytest.raises((RuntimeError, KeyError)):  # interrupt() needs a graph; the error is not turned into text
        pay.invoke(PAY_NEEDS_APPROVAL)
    assert shop.executed == 0


async def test_interrupt_on_the_async_path(shop: FakeShop) -> None:
    shop.approver = interrupt_approver
    agent, _ = _agent(shop, [ToolCall("pay", PAY_NEEDS_APPROVAL), Final("finished")], checkpointer=InMemorySaver())
    cfg: Any = {"configurable": {"thread_id": "t-async"}}
    paused = await agent.ainvoke({"messages": [{"role": "user", "content": "pay"}]}, cfg, version="v2")
    assert paused.interrupts[0].value["amount"]["amount"] == "250.00" and shop.executed == 0
    out = await agent.ainvoke(Command(resume={"type": "approve"}), cfg, version="v2")
    assert _tool_messages(out.value)[0].status == "success" and shop.executed == 1
