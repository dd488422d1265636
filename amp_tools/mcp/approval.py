"""Approvals over MCP: ask the person through the client (elicitation), else wait for the CLI.

`McpApprover` is the Guard's approver for one MCP session. When the connected client declared
form elicitation, the approval request goes to the client's *user* as an ``elicitation/create``
request (the MCP spec has the client show it to the person; it never reaches the model), tied
to the tool call that caused it. The answer is for that one request object, which the Guard
checks against the payment it is about to make (its binding), and it is used once: nothing is
stored, so paying again asks again. When the client cannot elicit, or the server runs with
``--approvals cli``, the `OutOfBandApprover` fallback answers ``APPROVAL_PENDING`` and the person
answers with ``amp-tools approvals approve|deny ID``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from mcp import types
from mcp.server.session import ServerSession
from mcp.shared.context import RequestContext
from mcp.shared.exceptions import McpError

from amp_tools.approvals import ApprovalDecision, ApprovalRequest, Approver, ask
from amp_tools.clock import SYSTEM_CLOCK, Clock

__all__ = ["DECISION_SCHEMA", "McpApprover", "client_can_elicit"]

#: The form a person fills in: an explicit choice (no default, so nothing is approved by a bare
#: "OK") and an optional reason kept in the audit trail.
DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "decision": {"type": "string", "title": "Your decision", "enum": ["approve", "deny"],
                     "enumNames": ["Approve this payment", "Deny it"]},
        "reason": {"type": "string", "title": "Reason (optional)", "maxLength": 200},
    },
    "required": ["decision"],
}

Context = RequestContext[ServerSession, Any, Any]


def client_can_elicit(session: ServerSession) -> bool:
    """True when the client declared form elicitation (an empty capability means form, per the spec)."""
    params = session.client_params
    caps = params.capabilities.elicitation if params is not None else None
    if caps is None:
        return False
    return caps.form is not None or caps.url is None


class McpApprover:
    """Elicitation when the calling client supports it, else `fallback` (the out-of-band store)."""

    name = "mcp"

    def __init__(self, context: Callable[[], Context], fallback: Approver, *, elicit: bool = True,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._context = context
        self.fallback = fallback
        self.elicit = elicit
        self.clock = clock

    async def __call__(self, request: ApprovalRequest) -> ApprovalDecision:
        ctx = self._current()
        if ctx is None or not self.elicit or not client_can_elicit(ctx.session):
            return await ask(self.fallback, request)
        return await self._elicit(ctx, request)

    def _current(self) -> Context | None:
        try:
            return self._context()
        except LookupError:  # called outside an MCP request (a program using the toolkit directly)
            return None

    async def _elicit(self, ctx: Context, request: ApprovalRequest) -> ApprovalDecision:
        who = _client_name(ctx.session)
        approver = f"mcp-elicitation ({who})" if who else "mcp-elicitation"
        message = ("amp-tools asks you (not the AI model) to approve a payment.\n\n" + request.summary()
                   + f"\n\nBinding {request.binding[:16]}: this answer applies to this payment only, once.")
        seconds = (request.expires_at - self.clock.now()).total_seconds()
        result: types.ElicitResult | None = None
        try:
            with anyio.move_on_after(max(seconds, 0.0)):
                result = await ctx.session.elicit_form(message, DECISION_SCHEMA, related_request_id=ctx.request_id)
        except McpError as exc:
            return ApprovalDecision(False, f"the MCP client could not ask the person: {exc.error.message}", approver)
        if result is None:
            return ApprovalDecision(False, f"no answer before approval {request.id} expired", approver)
        if result.action != "accept":
            verb = "declined" if result.action == "decline" else "dismissed"
            return ApprovalDecision(False, f"the person {verb} the approval request in the MCP client", approver)
        content = result.content or {}
        reason = str(content.get("reason") or "")[:200]
        if content.get("decision") != "approve":
            return ApprovalDecision(False, reason or "the person denied the payment", approver)
        if request.is_expired(self.clock.now()):
            return ApprovalDecision(False, f"approval {request.id} was answered after it expired", approver)
        return ApprovalDecision(True, reason, approver)


def _client_name(session: ServerSession) -> str:
    params = session.client_params
    return params.clientInfo.name[:60] if params is not None else ""

