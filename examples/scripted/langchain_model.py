"""A LangChain chat model that plays a `Script` (offline; works with `langchain.agents.create_agent`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import ConfigDict

from amp_examples.scripted.script import Final, Script

__all__ = ["ScriptedChatModel", "to_neutral"]

_ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}


def to_neutral(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as the script's plain-dict conversation."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        item: dict[str, Any] = {"role": _ROLES.get(msg.type, msg.type), "content": msg.text}
        if isinstance(msg, AIMessage):
            item["tool_calls"] = [{"name": c["name"], "args": c["args"], "id": c["id"]} for c in msg.tool_calls]
        if isinstance(msg, ToolMessage):
            item.update(name=msg.name, tool_call_id=msg.tool_call_id, is_error=msg.status == "error")
        out.append(item)
    return out


class ScriptedChatModel(BaseChatModel):
    """Answers each turn with the script's next step; `bind_tools` is accepted and ignored."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    script: Script

    @property
    def _llm_type(self) -> str:
        return "amp-scripted"

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
                   *, tool_choice: str | None = None, **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        step = self.script.next_turn(to_neutral(messages))
        if isinstance(step, Final):
            message = AIMessage(content=step.text)
        else:
            message = AIMessage(content="", tool_calls=[
                {"name": c.name, "args": c.args, "id": c.id, "type": "tool_call"} for c in step])
        return ChatResult(generations=[ChatGeneration(message=message)])
