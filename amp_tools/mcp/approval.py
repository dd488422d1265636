"""Approvals over MCP: the person answers out of band, never the MCP client.

`McpApprover` is the Guard's approver for one MCP session. Every decision it returns comes from
the approval store in the ledger's database, where only the owner console (a logged-in person)
and the CLI write decisions; a client's answer to an elicitation is never read as one. The MCP
specification says so too: servers must not use form-mode elicitation for interactions that
authorize transactions, and use URL mode for them.

Modes (``amp-tools mcp --approvals``):

* ``auto`` (default): the request is parked in the store; a client that declared URL-mode
  elicitation is sent the approval's page in the owner console (``elicitation/create`` with
  ``mode: "url"``), and the call waits a bounded time for the person's decision there; whatever
  the client answers, only the store's state counts. A client without URL mode gets
  ``APPROVAL_PENDING`` at once, as with ``cli``.
* ``cli``: never elicits; ``APPROVAL_PENDING`` for the inbox and ``amp-tools approvals``.
* ``form``: the old in-band form, which trusts the MCP client's UI to have shown it to the
  person. Only on explicit request; the approver recorded is a fixed label, never a name the
  client sent.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

import anyio
from mcp import types
from mcp.server.session import ServerSession
from mcp.shared.context import RequestContext
from mcp.shared.exceptions import McpError

from amp_tools.approvals import ApprovalDecision, ApprovalRequest, OutOfBandApprover
from amp_tools.approvals.approvers import ask
from amp_tools.clock import SYSTEM_CLOCK, Clock
from amp_tools.errors import ApprovalPending

__all__ = ["APPROVAL_MODES", "DECISION_SCHEMA", "FORM_APPROVER", "ApprovalMode", "McpApprover", "client_can_elicit",
           "client_can_open_url"]

ApprovalMode = Literal["auto", "cli", "form"]
APPROVAL_MODES: tuple[str, ...] = ("auto", "cli", "form")
#: Who a form-mode decision is recorded as: the channel, never the client's self-chosen name.
FORM_APPROVER = "mcp-client-form (trusts the MCP client's UI)"

#: The form of ``--approvals form``: an explicit choice (no default, so nothing is approved by a bare
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
_POLL_SECONDS = 1.0


def _elicitation(session: ServerSession) -> types.ElicitationCapability | None:
    params = session.client_params
    return params.capabilities.elicitation if params is not None else None


def client_can_elicit(session: ServerSession) -> bool:
    """True when the client declared form elicitation (an empty capability means form, per the spec)."""
    caps = _elicitation(session)
    return caps is not None and (caps.form is not None or caps.url is None)


def client_can_open_url(session: ServerSession) -> bool:
    """True when the client declared URL-mode elicitation."""
    caps = _elicitation(session)
    return caps is not None and caps.url is not None


class McpApprover:
    """The person's decision from the store (URL elicitation pointing at it), or the client's form in form mode."""

    name = "mcp"

    def __init__(self, context: Callable[[], Context], store: OutOfBandApprover, *, mode: ApprovalMode = "auto",
                 console_url: str = "http://127.0.0.1:8787", wait: float = 30.0,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._context = context
        self.store = store
        self.mode = mode
        self.console_url = console_url.rstrip("/")
        self.wait = max(wait, 0.0)
        self.clock = clock

    def approval_url(self, approval_id: str) -> str:
        return f"{self.console_url}/approvals/{approval_id}"

    async def __call__(self, request: ApprovalRequest) -> ApprovalDecision:
        ctx = self._current()
        if self.mode == "form" and ctx is not None and client_can_elicit(ctx.session):
            return await self._elicit_form(ctx, request)
        try:
            return await ask(self.store, request)  # a standing denial, or the person's grant (used once)
        except ApprovalPending as pending:
            if self.mode != "auto" or ctx is None or not client_can_open_url(ctx.session):
                raise self._pointing(pending) from None
            return await self._elicit_url(ctx, request, pending)

    def _current(self) -> Context | None:
        try:
            return self._context()
        except LookupError:  # called outside an MCP request (a program using the toolkit directly)
            return None

    def _pointing(self, pending: ApprovalPending) -> ApprovalPending:
        """The pending error with the approval's console page added."""
        approval_id = str(pending.details.get("approval_id", ""))
        if not approval_id:
            return pending
        url = self.approval_url(approval_id)
        return ApprovalPending(f"{pending.message} Its page in the owner console: {url}", hint=pending.hint,
                               details={**pending.details, "approval_url": url})

    async def _elicit_url(self, ctx: Context, request: ApprovalRequest, pending: ApprovalPending) -> ApprovalDecision:
        approval_id = str(pending.details["approval_id"])
        url = self.approval_url(approval_id)
        # Unique per elicitation (the spec asks it), and readable: the approval it is about, then a nonce.
        elicitation_id = f"{approval_id}.{secrets.token_hex(4)}"
        message = ("amp-tools needs your approval (not the AI model's) for a payment: " + request.summary()
                   + "\n\nOpen the owner console, log in, and approve or deny it there. Answering here approves "
                     "nothing.")
        try:
            with anyio.move_on_after(max((request.expires_at - self.clock.now()).total_seconds(), 0.0)):
                await ctx.session.elicit_url(message, url, elicitation_id, related_request_id=ctx.request_id)
        except McpError:
            pass  # the client would not show the link; the question still waits in the inbox and the CLI
        # Whatever the client answered (accept, decline, cancel, or a form's content), only the store decides.
        decision = await self._await_person(request, pending)
        with contextlib.suppress(Exception):  # a courtesy notification; the client may be gone
            await ctx.session.send_elicit_complete(elicitation_id, related_request_id=ctx.request_id)
        return decision

    async def _await_person(self, request: ApprovalRequest, pending: ApprovalPending) -> ApprovalDecision:
        """Re-read the store until the person decides, the wait ends or the request expires."""
        deadline = min(self.clock.now() + timedelta(seconds=self.wait), request.expires_at)
        while True:
            try:
                return await ask(self.store, request)
            except ApprovalPending as still:
                pending = still
            if self.clock.now() >= deadline:
                raise self._pointing(pending)
            await anyio.sleep(_POLL_SECONDS)

    async def _elicit_form(self, ctx: Context, request: ApprovalRequest) -> ApprovalDecision:
        approver = FORM_APPROVER
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
