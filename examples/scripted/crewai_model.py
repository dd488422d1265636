"""A CrewAI `BaseLLM` that plays a `Script` with native (OpenAI-style) tool calls, offline."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from crewai import BaseLLM
from pydantic import ConfigDict, Field

from amp_examples.scripted.script import Final, Script

if TYPE_CHECKING:
    from crewai.utilities.types import LLMMessage

__all__ = ["ScriptedCrewLLM", "to_neutral"]


def to_neutral(messages: str | list[LLMMessage]) -> list[dict[str, Any]]:
    """CrewAI's OpenAI-style message dicts as the script's conversation."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    out: list[dict[str, Any]] = []
    for msg in messages:
        item: dict[str, Any] = {"role": msg["role"], "content": msg.get("content") or ""}
        if msg["role"] == "assistant":
            calls = [(c.get("id"), c["function"]) for c in msg.get("tool_calls") or []]
            item["tool_calls"] = [{"name": f["name"], "args": json.loads(f["arguments"] or "{}"), "id": i}
                                  for i, f in calls]
        if msg["role"] == "tool":
            # CrewAI renders a ToolFailure as "<message> (code: X)"; that suffix is the only error flag it keeps.
            item.update(name=msg.get("name"), tool_call_id=msg.get("tool_call_id"),
                        is_error="(code: " in str(item["content"])
                        or str(item["content"]).startswith("Error executing tool"))
        out.append(item)
    return out


class ScriptedCrewLLM(BaseLLM):
    """Declares function calling so agents use native tool calls; answers from the script."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    script: Script = Field(exclude=True)

    def __init__(self, script: Script, model: str = "amp-scripted", **kwargs: Any) -> None:
        super().__init__(model=model, script=script, **kwargs)  # BaseLLM insists on an explicit model name

    def call(self, messages: str | list[LLMMessage], tools: list[dict[str, Any]] | None = None,
             callbacks: list[Any] | None = None, available_functions: dict[str, Any] | None = None,
             from_task: Any = None, from_agent: Any = None, response_model: Any = None) -> str | Any:
        step = self.script.next_turn(to_neutral(messages))
        if isinstance(step, Final):
            return step.text
        return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.args)}}
                for c in step]

    async def acall(self, messages: str | list[LLMMessage], tools: list[dict[str, Any]] | None = None,
                    callbacks: list[Any] | None = None, available_functions: dict[str, Any] | None = None,
                    from_task: Any = None, from_agent: Any = None, response_model: Any = None) -> str | Any:
        return self.call(messages, tools, callbacks, available_functions, from_task, from_agent, response_model)

    def supports_function_calling(self) -> bool:
        return True

    def get_input_tokens_count(self, messages: str | list[LLMMessage], tools: Any = None,
                               response_model: Any = None) -> int:
        return 0

    def get_context_window_size(self) -> int:
        return 128_000
