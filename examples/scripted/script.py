"""The framework-neutral script that drives every scripted model.

A script is either a list of steps or a reactive policy. A step is a `ToolCall`, several
`ToolCall`s made in one turn, or a `Final` text. A policy is a function
`(conversation) -> step` that sees the conversation so far as plain dicts:

    {"role": "system" | "user" | "assistant" | "tool", "content": str,
     "tool_calls": [{"name", "args", "id"}],      # assistant turns only
     "name": str, "tool_call_id": str, "is_error": bool}   # tool results only

A list script is indexed by the number of assistant turns already in the conversation, not by
a counter, so it survives pauses and resumes (LangGraph interrupts, AutoGen handoffs) and the
same model object can serve a fresh conversation from the top.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Final", "Script", "Step", "ToolCall", "last_tool_result", "tool_results"]


@dataclass(frozen=True)
class ToolCall:
    """The model calls tool `name` with `args` (ids are filled in by `Script`)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Final:
    """The model answers with text and makes no further call."""

    text: str


Step = ToolCall | Final | Sequence[ToolCall]
Conversation = list[dict[str, Any]]
Policy = Callable[[Conversation], Step]


class Script:
    """Decides the scripted model's next turn from the conversation so far."""

    def __init__(self, steps: Sequence[Step] | Policy, *, done: str = "Done.") -> None:
        self._steps = steps
        self._done = done
        self.seen: list[Conversation] = []  # every conversation the model was shown, for assertions

    def next_turn(self, conversation: Conversation) -> Final | list[ToolCall]:
        """The next step, with tool calls normalised to a list carrying stable ids."""
        self.seen.append(conversation)
        turn = sum(1 for m in conversation if m.get("role") == "assistant")
        if callable(self._steps):
            step = self._steps(conversation)
        else:
            step = self._steps[turn] if turn < len(self._steps) else Final(self._done)
        if isinstance(step, Final):
            return step
        calls = [step] if isinstance(step, ToolCall) else list(step)
        return [ToolCall(c.name, dict(c.args), c.id or f"call_{turn}_{i}") for i, c in enumerate(calls)]


def tool_results(conversation: Conversation) -> list[dict[str, Any]]:
    """All tool-result messages, oldest first."""
    return [m for m in conversation if m.get("role") == "tool"]


def last_tool_result(conversation: Conversation) -> Any:
    """The newest tool result, parsed from JSON when it is JSON, else its text; None if none yet."""
    results = tool_results(conversation)
    if not results:
        return None
    text = str(results[-1].get("content", ""))
    try:
        return json.loads(text)
    except ValueError:
        return text
