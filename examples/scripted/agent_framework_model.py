"""A Microsoft Agent Framework chat client that plays a `Script` (offline, function calling on).

It composes Agent Framework's own function-invocation and middleware layers over `BaseChatClient`,
as the shipped clients do, so tools, function middleware and approval requests behave as they do
with a real model. A call that failed reaches the model as text starting ``Error: `` (Agent
Framework's own form); the neutral conversation marks it `is_error` and drops that prefix.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any

from agent_framework import (
    BaseChatClient,
    ChatMiddlewareLayer,
    ChatResponse,
    ChatResponseUpdate,
    Content,
    FunctionInvocationLayer,
    Message,
    ResponseStream,
)

from amp_examples.scripted.script import Final, Script

__all__ = ["ScriptedChatClient", "to_neutral"]

_ERROR = "Error: "


def _text(result: Any) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, list):
        return "".join(str(getattr(item, "text", None) or item) for item in result)
    return json.dumps(result) if result is not None else ""


def to_neutral(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Agent Framework messages as the script's plain-dict conversation."""
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for msg in messages:
        role = str(msg.role)
        calls = [c for c in msg.contents if c.type == "function_call"]
        results = [c for c in msg.contents if c.type == "function_result"]
        for call in calls:
            names[str(call.call_id)] = str(call.name)
        if role == "assistant":
            out.append({"role": "assistant", "content": msg.text or "",
                        "tool_calls": [{"name": c.name, "args": c.parse_arguments() or {}, "id": c.call_id}
                                       for c in calls]})
        for res in results:
            text = _text(res.result)
            failed = res.exception is not None or text.startswith(_ERROR)
            out.append({"role": "tool", "name": names.get(str(res.call_id)), "tool_call_id": res.call_id,
                        "content": text.removeprefix(_ERROR) if failed else text, "is_error": failed})
        if role in ("user", "system") and msg.text:
            out.append({"role": role, "content": msg.text})
    return out


class ScriptedChatClient(FunctionInvocationLayer[Any], ChatMiddlewareLayer[Any], BaseChatClient[Any]):
    """Answers each model call with the script's next step: text, or function calls."""

    def __init__(self, script: Script, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = script

    def _answer(self, messages: Sequence[Message]) -> ChatResponse:
        step = self.script.next_turn(to_neutral(messages))
        if isinstance(step, Final):
            return ChatResponse(messages=[Message(role="assistant", contents=[step.text])])
        calls = [Content.from_function_call(call_id=c.id or "", name=c.name, arguments=json.dumps(c.args))
                 for c in step]
        return ChatResponse(messages=[Message(role="assistant", contents=calls)])

    def _inner_get_response(self, *, messages: Sequence[Message], stream: bool, options: Mapping[str, Any],
                            **kwargs: Any) -> Awaitable[ChatResponse] | ResponseStream[Any, Any]:
        if not stream:
            return self._respond(messages)

        async def updates() -> AsyncIterator[ChatResponseUpdate]:
            for message in self._answer(messages).messages:
                yield ChatResponseUpdate(role="assistant", contents=list(message.contents))

        return self._build_response_stream(updates())

    async def _respond(self, messages: Sequence[Message]) -> ChatResponse:
        return self._answer(messages)
