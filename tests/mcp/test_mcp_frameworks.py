"""Agent frameworks as MCP clients of `amp-tools mcp`: AutoGen's `McpWorkbench` and LangChain's MCP adapters.

Each runs its own agent loop with a scripted model over the tools it loaded from the server
subprocess: shop, negotiate, pay; and the approval path that client offers (AutoGen's
workbench declares no elicitation, so the payment waits for ``amp-tools approvals``; a
LangChain MCP session can carry an elicitation callback, so the person is asked there).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("mcp", reason="the [mcp] extra is not installed")

from amp_examples.scripted import Final, Script, ToolCall
from amp_examples.scripted.script import Conversation, Step
from amp_tools.approvals import ApprovalStore
from amp_tools.cli import app
from tests.mcp._mcp_support import (
    FLIGHT_WORDS,
    HOTEL_WORDS,
    Person,
    ledger_rows,
    server_args,
    server_env,
    stdio_session,
    write_policy,
)

USER = "Book a Kuala Lumpur trip: a hotel for two nights and a flight from Singapore."


# ---------------------------------------------------------------------- a reactive script over what the model saw
def results(conv: Conversation, name: str) -> list[dict[str, Any]]:
    return [m for m in conv if m.get("role") == "tool" and m.get("name") == name]


def ok(conv: Conversation, name: str) -> list[dict[str, Any]]:
    return [json.loads(str(m["content"])) for m in results(conv, name) if not m.get("is_error")]


def errors(conv: Conversation, name: str) -> list[str]:
    return [str(m["content"]) for m in results(conv, name) if m.get("is_error")]


def offer(conv: Conversation, words: str) -> str:
    return next(str(o["offer_id"]) for r in ok(conv, "search_offers") for o in r["offers"]
                if words.lower() in o["name"].lower())


def scripted(plan: list[Callable[[Conversation], Step]]) -> Script:
    def policy(conv: Conversation) -> Step:
        turn = sum(1 for m in conv if m.get("role") == "assistant")
        return plan[turn](conv) if turn < len(plan) else Final("Done.")

    return Script(policy)


def trip() -> list[Callable[[Conversation], Step]]:
    """Search both, negotiate the hotel to 1102.00 MYR and pay it, buy the flight and pay it, report."""
    return [
        lambda c: [ToolCall("search_offers", {"query": "hotel Kuala Lumpur", "category": "hotel"}),
                   ToolCall("search_offers", {"query": "flight Kuala Lumpur", "category": "flight"})],
        lambda c: ToolCall("request_quote", {"offer_id": offer(c, HOTEL_WORDS), "quantity": 2}),
        lambda c: ToolCall("negotiate", {"quote_id": ok(c, "request_quote")[0]["quote_id"], "offer_amount": "986.00"}),
        lambda c: ToolCall("accept_quote", {"quote_id": ok(c, "negotiate")[0]["quote_id"]}),
        lambda c: ToolCall("pay", {"checkout_id": ok(c, "accept_quote")[0]["checkout_id"]}),
        lambda c: ToolCall("checkout", {"offer_id": offer(c, FLIGHT_WORDS), "quantity": 1}),
        lambda c: ToolCall("pay", {"checkout_id": ok(c, "checkout")[0]["checkout_id"]}),
        lambda c: Final(f"paid {len(ok(c, 'pay'))}, refused {len(errors(c, 'pay'))}"),
    ]


def assert_trip_paid(conv: Conversation) -> None:
    paid = ok(conv, "pay")
    assert [(p["merchant"], p["amount"]["amount"], p["budget_amount"]["amount"]) for p in paid] == [
        ("KL Grand Hotel", "1102.00", "231.42"), ("Skylark Air", "149.00", "110.26")]
    assert paid[-1]["budget_left"] == {"amount": "658.32", "currency": "USD"}


# ---------------------------------------------------------------------- AutoGen McpWorkbench
def _workbench(policy: Path, ledger: Path, home: Path) -> Any:
    from autogen_ext.tools.mcp import McpWorkbench, StdioServerParams

    params = StdioServerParams(command=sys.executable, args=server_args(policy, ledger), env=server_env(home),
                               read_timeout_seconds=60)
    return McpWorkbench(server_params=params)


def _autogen_agent(script: Script, workbench: Any) -> Any:
    from autogen_agentchat.agents import AssistantAgent

    from amp_examples.scripted.autogen_model import ScriptedChatCompletionClient

    return AssistantAgent("travel", model_client=ScriptedChatCompletionClient(script), workbench=workbench,
                          reflect_on_tool_use=True, max_tool_iterations=30)


async def test_autogen_mcp_workbench_shops_negotiates_and_pays(tmp_path: Path) -> None:
    pytest.importorskip("autogen_ext.tools.mcp", reason="autogen-ext[mcp] is not installed")
    ledger = tmp_path / "ledger.db"
    script = scripted(trip())
    async with _workbench(write_policy(tmp_path), ledger, tmp_path) as workbench:
        listed = [t["name"] for t in await workbench.list_tools()]
        result = await _autogen_agent(script, workbench).run(task=USER)

    assert "pay" in listed and "negotiate" in listed
    assert_trip_paid(script.seen[-1])
    assert result.messages[-1].content == "paid 2, refused 0"
    assert [r[:2] for r in await ledger_rows(ledger)] == [("KL-GRAND-HOTEL", "committed"),
                                                          ("SKYLARK-AIR", "committed")]


async def test_autogen_mcp_workbench_payment_waits_for_the_cli_then_pays(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("autogen_ext.tools.mcp", reason="autogen-ext[mcp] is not installed")
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    ledger = tmp_path / "ledger.db"
    hotel = lambda c: ToolCall("pay", {"checkout_id": ok(c, "accept_quote")[0]["checkout_id"]})  # noqa: E731
    plan = [*trip()[:5], lambda c: Final("Waiting for your approval: " + errors(c, "pay")[-1][:16]), hotel,
            lambda c: Final(f"paid {len(ok(c, 'pay'))}")]
    script = scripted(plan)
    policy = write_policy(tmp_path, approval={"confirm_above": "200.00"})
    async with _workbench(policy, ledger, tmp_path) as workbench:
        agent = _autogen_agent(script, workbench)
        paused = await agent.run(task=USER)
        [pending] = errors(script.seen[-1], "pay")
        approval_id = pending.split("approval id ")[1].split(",")[0]
        answered = CliRunner().invoke(app, ["approvals", "approve", approval_id, "--by", "bob"])
        resumed = await agent.run(task="I approved it.")

    assert paused.messages[-1].content == "Waiting for your approval: APPROVAL_PENDING"
    assert answered.exit_code == 0, answered.output
    [paid] = ok(script.seen[-1], "pay")
    assert (paid["merchant"], paid["approved_by"]) == ("KL Grand Hotel", "bob")
    assert resumed.messages[-1].content == "paid 1"
    # One payment, one row: held while the person decided, then committed (issue 20).
    assert [r[:2] for r in await ledger_rows(ledger)] == [("KL-GRAND-HOTEL", "committed")]


# ---------------------------------------------------------------------- LangChain MCP adapters
async def test_langchain_mcp_adapters_trip_with_a_refusal(tmp_path: Path) -> None:
    pytest.importorskip("langchain_mcp_adapters", reason="langchain-mcp-adapters is not installed")
    from langchain.agents import create_agent
    from langchain_mcp_adapters.tools import load_mcp_tools

    from amp_examples.scripted.langchain_model import ScriptedChatModel

    ledger = tmp_path / "ledger.db"
    script = scripted(trip())
    async with stdio_session(write_policy(tmp_path, merchants={"caps": {"KL-GRAND-HOTEL": "150.00"}}),
                             ledger, tmp_path) as session:
        tools = await load_mcp_tools(session)
        agent = create_agent(ScriptedChatModel(script=script), tools=tools)
        out = await agent.ainvoke({"messages": [{"role": "user", "content": USER}]}, {"recursion_limit": 60})

    conv = script.seen[-1]
    [refused] = errors(conv, "pay")
    assert refused.startswith("POLICY_VIOLATION") and "merchants.caps" in refused and "KL-GRAND-HOTEL" in refused
    assert [p["merchant"] for p in ok(conv, "pay")] == ["Skylark Air"]
    assert out["messages"][-1].content == "paid 1, refused 1"
    assert [r[:2] for r in await ledger_rows(ledger)] == [("SKYLARK-AIR", "committed")]


async def test_langchain_mcp_adapters_person_approves_through_the_console_link(tmp_path: Path) -> None:
    pytest.importorskip("langchain_mcp_adapters", reason="langchain-mcp-adapters is not installed")
    from langchain.agents import create_agent
    from langchain_mcp_adapters.tools import load_mcp_tools

    from amp_examples.scripted.langchain_model import ScriptedChatModel

    ledger = tmp_path / "ledger.db"
    script = scripted(trip())
    async def in_the_console(approval_id: str) -> None:
        store = ApprovalStore(ledger)  # the person opened the link and pressed Approve
        try:
            store.approve(approval_id, "erin (inbox)")
        finally:
            store.close()

    person = Person(["approve"], console=in_the_console)
    policy = write_policy(tmp_path, approval={"confirm_above": "200.00"})
    async with stdio_session(policy, ledger, tmp_path, elicit=person) as session:
        agent = create_agent(ScriptedChatModel(script=script), tools=await load_mcp_tools(session))
        await agent.ainvoke({"messages": [{"role": "user", "content": USER}]}, {"recursion_limit": 60})

    assert_trip_paid(script.seen[-1])
    assert ok(script.seen[-1], "pay")[0]["approved_by"] == "erin (inbox)"
    assert len(person.asked) == 1 and "KL Grand Hotel" in person.asked[0].message
