"""Helpers for the cross-framework scenarios: reading what the model saw, scripts, drivers, the shop.

A driver runs a `Script` through that framework's own agent loop (LangChain `create_agent`,
a CrewAI crew, an AutoGen `AssistantAgent`, an Agent Framework `Agent`) over the real `AmpToolkit` tools, and hands back
the neutral conversation the scripted model saw last, so every scenario asserts the same way
whichever framework ran it. CrewAI is imported once per session, on first use.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from amp_examples.scripted import Final, Script, ToolCall
from amp_examples.scripted.script import Conversation, Step
from amp_tools.approvals import Approver
from amp_tools.ledger import LedgerBase
from amp_tools.policy import BudgetPolicy, parse_policy
from amp_tools.sandbox import Sandbox
from amp_tools.toolkit import AmpToolkit

FRAMEWORKS = ("langchain", "crewai", "autogen", "agent-framework")
USER = "Book a Kuala Lumpur trip: a hotel for two nights and a flight from Singapore."


# ------------------------------------------------------------------ reading a conversation
@dataclass
class Seen:
    """What the model was shown: tool results by tool name, parsed when they are JSON."""

    conversation: Conversation

    def results(self, name: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.conversation if m.get("role") == "tool" and (name is None or m.get("name") == name)]

    def ok(self, name: str) -> list[Any]:
        return [json.loads(str(m["content"])) for m in self.results(name) if not m.get("is_error")]

    def errors(self, name: str) -> list[str]:
        return [str(m["content"]) for m in self.results(name) if m.get("is_error")]

    def texts(self, name: str) -> list[str]:
        return [str(m["content"]) for m in self.results(name)]


Plan = list[Callable[[Seen], Step]]


def plan_script(plan: Plan, *, done: str = "Done.") -> Script:
    """A reactive script: turn n runs `plan[n]` on what the model has seen so far."""

    def policy(conv: Conversation) -> Step:
        turn = sum(1 for m in conv if m.get("role") == "assistant")
        return plan[turn](Seen(conv)) if turn < len(plan) else Final(done)

    return Script(policy)


def offer(seen: Seen, words: str) -> str:
    """The id of the first searched offer whose name contains `words`."""
    for result in seen.ok("search_offers"):
        for item in result["offers"]:
            if words.lower() in item["name"].lower():
                return str(item["offer_id"])
    raise AssertionError(f"no offer named like {words!r} was found; saw {seen.texts('search_offers')}")


def searches() -> list[ToolCall]:
    return [ToolCall("search_offers", {"query": "hotel Kuala Lumpur", "category": "hotel"}),
            ToolCall("search_offers", {"query": "flight Kuala Lumpur", "category": "flight"})]


def hotel_checkout(seen: Seen) -> str:
    return str(seen.ok("accept_quote")[-1]["checkout_id"])


# ------------------------------------------------------------------ framework drivers
@dataclass
class Run:
    seen: Seen
    final: str
    raw: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


async def run_langchain(toolkit: AmpToolkit, script: Script, request: str = USER) -> Run:
    from langchain.agents import create_agent

    from amp_examples.scripted.langchain_model import ScriptedChatModel
    from amp_langchain import to_langchain_tools

    agent = create_agent(ScriptedChatModel(script=script), tools=to_langchain_tools(toolkit.specs()))
    out = await agent.ainvoke({"messages": [{"role": "user", "content": request}]}, config={"recursion_limit": 60})
    return Run(Seen(script.seen[-1]), str(out["messages"][-1].content), out)


def crew_for(toolkit: AmpToolkit, script: Script, request: str = USER) -> Any:
    from crewai import Agent, Crew, Process, Task

    from amp_crewai import to_crewai_tools
    from amp_examples.scripted.crewai_model import ScriptedCrewLLM

    agent = Agent(role="Travel agent", goal="Book the trip within the budget policy", backstory="Careful with money.",
                  llm=ScriptedCrewLLM(script), tools=to_crewai_tools(toolkit.specs()), max_iter=30,
                  allow_delegation=False, verbose=False)
    task = Task(description=request, expected_output="What was paid and what is left.", agent=agent)
    return Crew(agents=[agent], tasks=[task], process=Process.sequential, verbose=False)


async def run_crewai(toolkit: AmpToolkit, script: Script, request: str = USER) -> Run:
    crew = crew_for(toolkit, script, request)
    # CrewAI runs sync tools in worker threads; keep this loop free, as the travel demo does.
    out = await asyncio.to_thread(crew.kickoff)
    return Run(Seen(script.seen[-1]), str(out.raw), out)


def autogen_agent(toolkit: AmpToolkit, script: Script, **kwargs: Any) -> Any:
    from autogen_agentchat.agents import AssistantAgent

    from amp_autogen import to_autogen_tools
    from amp_examples.scripted.autogen_model import ScriptedChatCompletionClient

    return AssistantAgent("travel", model_client=ScriptedChatCompletionClient(script),
                          tools=to_autogen_tools(toolkit.specs()),  # type: ignore[arg-type]
                          reflect_on_tool_use=True, max_tool_iterations=30, **kwargs)


async def run_autogen(toolkit: AmpToolkit, script: Script, request: str = USER) -> Run:
    result = await autogen_agent(toolkit, script).run(task=request)
    return Run(Seen(script.seen[-1]), str(result.messages[-1].content), result)


def maf_agent(toolkit: AmpToolkit, script: Script, **kwargs: Any) -> Any:
    from agent_framework import Agent

    from amp_agent_framework import to_agent_framework_tools
    from amp_examples.scripted.agent_framework_model import ScriptedChatClient

    return Agent(client=ScriptedChatClient(script), tools=to_agent_framework_tools(toolkit.specs()), **kwargs)


async def run_agent_framework(toolkit: AmpToolkit, script: Script, request: str = USER) -> Run:
    response = await maf_agent(toolkit, script).run(request)
    return Run(Seen(script.seen[-1]), response.text, response)


DRIVERS = {"langchain": run_langchain, "crewai": run_crewai, "autogen": run_autogen,
           "agent-framework": run_agent_framework}


# ------------------------------------------------------------------ the shop under test
@dataclass
class Shop:
    """One sandbox + ledger; `toolkit(policy, approver)` builds the session the agent uses."""

    sandbox: Sandbox
    ledger: LedgerBase
    tmp: Path
    toolkits: list[AmpToolkit] = field(default_factory=list)

    def toolkit(self, policy: BudgetPolicy, approver: Approver | None = None) -> AmpToolkit:
        tk = AmpToolkit.for_sandbox(self.sandbox, policy, ledger=self.ledger, approver=approver, budget_id="trip")
        self.toolkits.append(tk)
        return tk

    def until(self, days: int = 7) -> str:
        return (self.sandbox.clock.now() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def rows(self) -> list[Any]:
        return list(reversed(await self.ledger.entries("trip")))

    async def committed(self) -> list[Any]:
        return [e for e in await self.rows() if e.status == "committed"]

    def paid(self) -> list[dict[str, Any]]:
        return [p for p in self.sandbox.payments() if p["status"] == "SUCCESS"]


def policy(**overrides: Any) -> BudgetPolicy:
    """A USD trip budget; tests override the limits they exercise."""
    data: dict[str, Any] = {"name": "integration", "currency": "USD", "total_budget": "1000.00",
                            "negotiation": {"max_rounds": 2}}
    data.update(overrides)
    return parse_policy(data, "integration-test")
