"""A mandate's figures as the credential provider counts them.

After a payment, an order status or a reconcile the toolkit asks the CP's ``inquiryMandateSession``
where the mandate stands. Where the CP reports the budget (an extension; the reference does not),
its remaining amount replaces the local arithmetic, so a token the network issued and never used
is counted exactly as the network counts it; where it does not, `MandateRef.remaining` stays the
local estimate and says so (`remaining_source`).
"""

from __future__ import annotations

import logging

from amp_tools.errors import AmpError
from amp_tools.toolkit._core import ToolkitCore
from amp_tools.toolkit._state import MandateRef

__all__ = ["refresh_mandate", "refresh_mandates"]

log = logging.getLogger(__name__)

#: Mandate states of the network that end the mandate (no payment will be accepted under it).
_ENDED = {"CLOSED": "CLOSED", "REVOKED": "REVOKED", "EXPIRED": "EXPIRED"}


async def refresh_mandate(tk: ToolkitCore, ref: MandateRef) -> MandateRef:
    """Bring `ref`'s remaining budget (and an ended status) from the CP's inquiry; unchanged when it is silent."""
    if ref.mandate_type != "AUTONOMOUS" or ref.status != "ACTIVE":
        return ref
    try:
        session = await tk.client.inquiry_mandate_session(ref.session_id)
    except Exception as exc:  # never let a figure refresh turn a finished payment into an error
        # The figures fall back to the local arithmetic (marked so); the payment's outcome is not affected.
        log.info("mandate %s: the credential provider's inquiry failed (%s); keeping the local figures",
                 ref.mandate_id, exc.code if isinstance(exc, AmpError) else type(exc).__name__)
        ref.reported_remaining = None
        return ref
    budget = session.budget
    if budget is None or budget.remaining_amount is None or budget.remaining_amount.currency != ref.budget.currency:
        ref.reported_remaining = None
        return ref
    ref.reported_remaining = budget.remaining_amount
    if budget.total_budget_amount is not None and budget.total_budget_amount.currency == ref.budget.currency:
        ref.budget = budget.total_budget_amount
    if budget.mandate_status in _ENDED:
        ref.status = _ENDED[budget.mandate_status]
    return ref


async def refresh_mandates(tk: ToolkitCore) -> None:
    """Refresh every active AUTONOMOUS mandate of the session."""
    for ref in list(tk.state.mandates):
        await refresh_mandate(tk, ref)
