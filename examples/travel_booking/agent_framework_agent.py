"""The travel agent as a Microsoft Agent Framework `Agent` over the amp-tools function tools."""

from __future__ import annotations

from typing import Any

from agent_framework import Agent

from amp_agent_framework import to_agent_framework_tools
from amp_tools.toolkit import ToolSpec


async def run_agent(specs: list[ToolSpec], model: Any, system_prompt: str, request: str) -> str:
    agent = Agent(client=model, instructions=system_prompt, tools=to_agent_framework_tools(specs))
    response = await agent.run(request)
    return str(response.text)


def scripted_model(script: Any) -> Any:
    from amp_examples.scripted.agent_framework_model import ScriptedChatClient

    return ScriptedChatClient(script)
