"""An AutoGen `ChatCompletionClient` that plays a `Script` (offline, function calling on)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal

from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelFamily,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from autogen_ext.models.replay import ReplayChatCompletionClient
from pydantic import BaseModel

from amp_examples.scripted.script import Final, Script

__all__ = ["MODEL_INFO", "ScriptedChatCompletionClient", "to_neutral"]

MODEL_INFO = ModelInfo(vision=False, function_calling=True, json_output=False, family=ModelFamily.UNKNOWN,
                       structured_output=False)
_NO_USAGE = RequestUsage(prompt_tokens=0, completion_tokens=0)

# The replay base logs token-count and tool_choice notices at WARNING on every turn; they are noise here.
logging.getLogger("autogen_core.events").setLevel(logging.ERROR)


def to_neutral(messages: Sequence[LLMMessage]) -> list[dict[str, Any]]:
    """AutoGen model-context messages as the script's plain-dict conversation."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        if isinstance(msg, FunctionExecutionResultMessage):
            out += [{"role": "tool", "content": r.content, "name": r.name, "tool_call_id": r.call_id,
                     "is_error": bool(r.is_error)} for r in msg.content]
        elif isinstance(msg, AssistantMessage):
            calls = msg.content if isinstance(msg.content, list) else []
            out.append({"role": "assistant", "content": msg.content if isinstance(msg.content, str) else "",
                        "tool_calls": [{"name": c.name, "args": json.loads(c.arguments or "{}"), "id": c.id}
                                       for c in calls]})
        else:
            role = "system" if msg.type == "SystemMessage" else "user"
            out.append({"role": role, "content": msg.content if isinstance(msg.content, str) else str(msg.content)})
    return out


class ScriptedChatCompletionClient(ReplayChatCompletionClient):
    """Answers each `create` with the script's next step instead of a fixed replay list."""

    def __init__(self, script: Script, model_info: ModelInfo | None = None) -> None:
        super().__init__([], model_info=model_info or MODEL_INFO)
        self.script = script

    async def create(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = [],
                     tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
                     json_output: bool | type[BaseModel] | None = None, extra_create_args: Mapping[str, Any] = {},
                     cancellation_token: CancellationToken | None = None) -> CreateResult:
        step = self.script.next_turn(to_neutral(messages))
        if isinstance(step, Final):
            return CreateResult(finish_reason="stop", content=step.text, usage=_NO_USAGE, cached=False)
        calls = [FunctionCall(id=c.id or "", name=c.name, arguments=json.dumps(c.args)) for c in step]
        return CreateResult(finish_reason="function_calls", content=calls, usage=_NO_USAGE, cached=False)

    async def create_stream(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = [],
                            tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
                            json_output: bool | type[BaseModel] | None = None,
                            extra_create_args: Mapping[str, Any] = {},
                            cancellation_token: CancellationToken | None = None,
                            ) -> AsyncGenerator[str | CreateResult, None]:
        yield await self.create(messages, tools=tools)
