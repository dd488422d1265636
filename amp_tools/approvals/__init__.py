"""Human-in-the-loop approvals: requests, approvers and the durable grant store.

The model can never approve: approvers are handed to the Guard by the program that builds
the agent, `ApprovalStore.approve`/`deny` are called by people (the CLI), and no tool spec
exposes any of them. A grant is bound to the exact payment, single-use and expiring.
"""

from __future__ import annotations

from amp_tools.approvals.approvers import (
    Approver,
    CallbackApprover,
    ConsoleApprover,
    DenyApprover,
    OutOfBandApprover,
    ask,
    ask_yes_no,
)
from amp_tools.approvals.request import (
    DEFAULT_TTL,
    ApprovalDecision,
    ApprovalRequest,
    compute_binding,
    make_request,
)
from amp_tools.approvals.store import ApprovalRecord, ApprovalStateError, ApprovalStore

__all__ = [
    "DEFAULT_TTL",
    "ApprovalDecision",
    "ApprovalRecord",
    "ApprovalRequest",
    "ApprovalStateError",
    "ApprovalStore",
    "Approver",
    "CallbackApprover",
    "ConsoleApprover",
    "DenyApprover",
    "OutOfBandApprover",
    "ask",
    "ask_yes_no",
    "compute_binding",
    "make_request",
]
