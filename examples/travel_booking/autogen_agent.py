"""The travel agent as an AutoGen `AssistantAgent` over the amp-tools AutoGen tools."""

from __future__ import annotations

from typing import Any

from autogen_agentchat.agents import AssistantAgent

from amp_autogen import to_autogen_tools
from amp_tools.toolkit import ToolSpec


async def run_agent(specs: list[ToolSpec], model: Any, system_prompt: str, request: str) -> str:
    agent = AssistantAgent("travel_agent", model_client=model, tools=to_autogen_tools(specs),  # type: ignore[arg-type]
                           system_message=system_prompt, reflect_on_tool_use=True, max_tool_iterations=40)
    result = await agent.run(task=request)
    return str(result.messages[-1].content)


def scripted_model(script: Any) -> Any:
    from amp_examples.scripted.autogen_model import ScriptedChatCompletionClient

    return ScriptedChatCompletionClient(script)
