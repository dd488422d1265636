"""The travel agent as a LangChain v1 agent (`create_agent`) over the amp-tools LangChain tools."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent

from amp_langchain import to_langchain_tools
from amp_tools.toolkit import ToolSpec


async def run_agent(specs: list[ToolSpec], model: Any, system_prompt: str, request: str) -> str:
    agent = create_agent(model, tools=to_langchain_tools(specs), system_prompt=system_prompt)
    result = await agent.ainvoke({"messages": [{"role": "user", "content": request}]},
                                 config={"recursion_limit": 80})
    return str(result["messages"][-1].content)


def scripted_model(script: Any) -> Any:
    from amp_examples.scripted.langchain_model import ScriptedChatModel

    return ScriptedChatModel(script=script)
