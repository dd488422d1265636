"""Microsoft Agent Framework adapter: amp-tools `ToolSpec`s as `FunctionTool`s, and its approval requests.

Translation only. A core `ToolError` becomes the text ``Error: CODE: message hint``, the form in
which Agent Framework itself reports a failed call to the model, so the run goes on and the model
reads the code and hint whatever the client's `include_detailed_errors` setting. The tools carry
the spec's JSON schema: Agent Framework checks only its top level (a missing field, a number where
a string is expected) and words those failures itself ("Argument parsing failed", with detail
under `include_detailed_errors`); every other bad value gets the core's readable `InvalidArguments`.

Approvals use Agent Framework's own pause. `AgentFrameworkApprover` is given to the toolkit as
its approver and its `middleware` to the agent. When the policy asks a person, the run ends with
a `function_approval_request` in `response.user_input_requests` (its `additional_properties`
hold the core's request under ``"amp_approval"``: merchant, amount, rules, binding); nothing is
charged and the reservation is released. The person answers with `approval_response(request,
approved, by=...)` (or the framework's `request.to_function_approval_response(approved)`) in the
next run of the same session; the approved call runs again and the core takes that answer as its
decision, once, and only for a payment with the same binding (an answer without the request's
binding is a denial). A rejection never runs the tool, so nothing is reserved or paid.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from agent_framework import Content, FunctionInvocationContext, FunctionMiddleware, FunctionTool

from amp_tools.approvals import ApprovalDecision, ApprovalRequest
from amp_tools.errors import ToolError
from amp_tools.toolkit import ToolSpec

__all__ = ["KEY", "AgentFrameworkApprover", "approval_response", "to_agent_framework_tools"]

KEY = "amp_approval"


@dataclass
class _Call:
    """One tool call under the approval middleware: the person's answer to take once, or the request to ask."""

    answer: Content | None
    asking: ApprovalRequest | None = None


_CALL: ContextVar[_Call | None] = ContextVar("amp_agent_framework_call", default=None)


class FunctionApprovalRequested(Exception):
    """Raised by the approver through the Guard (which then releases the reservation), caught in the tool."""


def _tool(spec: ToolSpec) -> FunctionTool:
    async def run(**kwargs: Any) -> str:
        try:
            return json.dumps(await spec.ainvoke(kwargs), ensure_ascii=False)
        except ToolError as exc:
            return f"Error: {exc}"
        except FunctionApprovalRequested:
            return "waiting for a person's approval"  # replaced by the approval request in the middleware

    # A JSON schema (not the model) so the spec validates and words the errors, as in the other adapters.
    return FunctionTool(name=spec.name, description=spec.description, func=run, input_model=spec.json_schema())


def to_agent_framework_tools(specs: Iterable[ToolSpec]) -> list[FunctionTool]:
    """One `FunctionTool` per spec; results are JSON strings."""
    return [_tool(spec) for spec in specs]


class _ApprovalMiddleware(FunctionMiddleware):
    async def process(self, context: FunctionInvocationContext, call_next: Callable[[], Awaitable[None]]) -> None:
        call = _Call(answer=context.metadata.get("approval_response"))
        token = _CALL.set(call)
        try:
            await call_next()
        finally:
            _CALL.reset(token)
        if call.asking is not None:
            occurrence = str(context.metadata.get("function_call_occurrence_id") or context.metadata["call_id"])
            asked = Content.from_function_call(call_id=str(context.metadata["call_id"]), name=context.function.name,
                                               arguments=dict(context.arguments), id=occurrence)
            context.result = Content.from_function_approval_request(
                id=occurrence, function_call=asked, additional_properties={KEY: call.asking.to_public()})


def approval_response(request: Content, approved: bool, *, by: str = "", reason: str = "") -> Content:
    """A person's answer to a `function_approval_request`, naming who answered (for the audit trail)."""
    if request.type != "function_approval_request" or request.function_call is None:
        raise ValueError(f"expected a function_approval_request from response.user_input_requests, got {request.type}")
    extra = {**(request.additional_properties or {}), "by": by, "reason": reason}
    return Content.from_function_approval_response(approved, id=str(request.id), function_call=request.function_call,
                                                   additional_properties=extra)


class AgentFrameworkApprover:
    """The toolkit's approver, answered through Agent Framework's function approval requests."""

    name = "agent-framework"

    def __init__(self) -> None:
        self.middleware = _ApprovalMiddleware()

    def __call__(self, request: ApprovalRequest) -> ApprovalDecision:
        call = _CALL.get()
        if call is None:
            return ApprovalDecision(False, "the agent has no AgentFrameworkApprover middleware, so no person can "
                                           "be asked: add approver.middleware to the agent", self.name)
        answer, call.answer = call.answer, None
        if answer is None:
            call.asking = request
            raise FunctionApprovalRequested("a person was asked through a function_approval_request")
        extra = answer.additional_properties or {}
        if (extra.get(KEY) or {}).get("binding") != request.binding:
            return ApprovalDecision(False, "the answer approves a different payment (binding mismatch)", self.name)
        return ApprovalDecision(answer.approved is True, str(extra.get("reason") or ""),
                                str(extra.get("by") or self.name))
