"""Human-in-the-loop approvals: requests, approvers (console, callback, out of band, webhook) and the
durable grant store, which lives in the ledger's own database (SQLite or PostgreSQL).

The model can never approve: approvers are handed to the Guard by the program that builds
the agent, `ApprovalStore.approve`/`deny` are called by people (the CLI, the owner console), and no tool spec
exposes any of them. A grant is bound to the exact payment, single-use and expiring.
"""

from __future__ import annotations

from amp_tools.approvals.approvers import (
    Approver,
    CallbackApprover,
    ConsoleApprover,
    DenyApprover,
    OutOfBandApprover,
    ask_yes_no,
    off_loop,
)
from amp_tools.approvals.request import ApprovalDecision, ApprovalRequest
from amp_tools.approvals.store import ApprovalRecord, ApprovalStateError, ApprovalStore, Consult
from amp_tools.approvals.webhook import WebhookApprover, verify_signature

__all__ = [
    "ApprovalDecision",
    "ApprovalRecord",
    "ApprovalRequest",
    "ApprovalStateError",
    "ApprovalStore",
    "Approver",
    "CallbackApprover",
    "ConsoleApprover",
    "Consult",
    "DenyApprover",
    "OutOfBandApprover",
    "WebhookApprover",
    "ask_yes_no",
    "off_loop",
    "verify_signature",
]
