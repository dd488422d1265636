"""LangChain adapter: amp-tools `ToolSpec`s as LangChain tools, plus an `interrupt()` approver.

Translation only. A core `ToolError` becomes a `ToolException`, so the agent sees an error
`ToolMessage` and keeps running; a schema error becomes a readable error string; every other
exception (notably LangGraph's `GraphInterrupt`) propagates unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, ValidationError

from amp_tools.errors import ToolError
from amp_tools.toolkit import ToolSpec, validation_message

__all__ = ["AmpLangChainToolkit", "interrupt_approver", "to_langchain_tools"]


class _SpecTool(StructuredTool):
    """A StructuredTool that also validates the input of a tool with no arguments.

    LangChain skips validation when the schema has no fields, silently dropping whatever the
    model passed; the core refuses unknown arguments, so this path must too.
    """

    def _to_args_and_kwargs(self, tool_input: str | dict[str, Any],
                            tool_call_id: str | None) -> tuple[tuple[str, ...], dict[str, Any]]:
        schema = self.args_schema
        if isinstance(tool_input, dict) and isinstance(schema, type) and issubclass(schema, BaseModel) \
                and not schema.model_fields:
            schema.model_validate(tool_input)  # a ValidationError becomes the readable error result
        return super()._to_args_and_kwargs(tool_input, tool_call_id)


def _tool(spec: ToolSpec) -> BaseTool:
    def run(**kwargs: Any) -> str:
        try:
            return json.dumps(spec.invoke(kwargs), ensure_ascii=False)
        except ToolError as exc:
            raise ToolException(str(exc)) from exc

    async def arun(**kwargs: Any) -> str:
        try:
            return json.dumps(await spec.ainvoke(kwargs), ensure_ascii=False)
        except ToolError as exc:
            raise ToolException(str(exc)) from exc

    def on_invalid(exc: ValidationError) -> str:
        return validation_message(spec.name, exc, spec.args_model) + " Fix the named fields and call the tool again."

    return _SpecTool(
        func=run, coroutine=arun, name=spec.name, description=spec.description,
        args_schema=spec.args_model, handle_tool_error=True, handle_validation_error=on_invalid)


def to_langchain_tools(specs: Iterable[ToolSpec]) -> list[BaseTool]:
    """One `StructuredTool` per spec; results are JSON strings."""
    return [_tool(spec) for spec in specs]


class _HasSpecs(Protocol):
    def specs(self) -> list[ToolSpec]: ...


class AmpLangChainToolkit:
    """Wraps a core toolkit (anything with `specs()`) the way LangChain toolkits look."""

    def __init__(self, toolkit: _HasSpecs) -> None:
        self.toolkit = toolkit

    def get_tools(self) -> list[BaseTool]:
        return to_langchain_tools(self.toolkit.specs())


def interrupt_approver(request: Any) -> Any:
    """Approver that pauses the LangGraph run with `interrupt()` until a person answers.

    The interrupt's value is the request (`to_public()`) plus the `action_requests` / `review_configs`
    of a `HumanInTheLoopMiddleware` request (approve or reject), so UIs built for that middleware can
    answer it. Resume with ours, `Command(resume={"approved": bool, "reason": str, "by": str})`, optionally
    carrying the request's `binding`, or with the middleware's: a single decision `{"type": "approve"}` /
    `{"type": "reject", "message": str}`, or `{"decisions": [one such decision]}`. An answer bound to
    another payment, an edit or respond decision, or any other shape is a denial. On resume the tool
    re-runs from the top, which the core's idempotent guard allows.
    """
    from langgraph.types import interrupt  # lazy: amp_langchain must import without langgraph

    from amp_tools.approvals import ApprovalDecision

    public = request.to_public()
    answer = interrupt({**public, "action_requests": [
        {"name": public["action"], "args": {k: public[k] for k in ("merchant_id", "amount", "items")},
         "description": request.summary()}],
        "review_configs": [{"action_name": public["action"], "allowed_decisions": ["approve", "reject"]}]})
    if isinstance(answer, bool):
        answer = {"approved": answer}
    if isinstance(answer, dict) and isinstance(answer.get("decisions"), list) and len(answer["decisions"]) == 1:
        answer = answer["decisions"][0]  # HumanInTheLoopMiddleware's batched shape: one decision per request
    if not isinstance(answer, dict) or ("approved" not in answer and answer.get("type") not in ("approve", "reject")):
        return ApprovalDecision(approved=False, reason=f"unreadable approval answer {answer!r}", approver="interrupt")
    if answer.get("binding") not in (None, request.binding):
        return ApprovalDecision(approved=False, reason="the answer approves a different payment (binding mismatch)",
                                approver="interrupt")
    approved = answer.get("approved", answer.get("type") == "approve")
    reason = str(answer.get("reason") or answer.get("message") or "")
    return ApprovalDecision(approved=approved is True, reason=reason, approver=str(answer.get("by", "interrupt")))
