"""The owner's controls: freeze a budget, resolve a payment whose outcome is unknown, revoke a mandate.

Each control validates its input, changes the ledger in one audited step and says what it did.
`resolve_unknown` validates what the owner typed and hands it to the payment lifecycle's audited
resolution (`amp_tools.payments.resolve`), the same one `amp-tools payments resolve` uses.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx

from amp_tools.errors import InvalidArguments
from amp_tools.ledger import Entry, LedgerBase
from amp_tools.ledger.controls import BudgetControl, controls_steps
from amp_tools.owner import OwnerKey
from amp_tools.owner.decisions import freeze_signed_steps
from amp_tools.payments import Lifecycle, resolve, state_of
from amp_tools.payments.recovery import in_flight
from amp_tools.payments.states import HELD
from amp_tools.untrusted import one_line

__all__ = ["freeze", "list_controls", "resolvable", "resolve_unknown", "revoke_mandate"]

def resolvable(entry: Entry, now: datetime) -> bool:
    """Whether a person may settle this payment by hand: held, and no live process is working on it."""
    return state_of(entry) in HELD and not in_flight(entry, now)
_REF = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")
_MANDATE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


async def freeze(ledger: LedgerBase, budget_id: str, frozen: bool, *, by: str, reason: str,
                 signer: OwnerKey | None = None) -> BudgetControl:
    """Freeze or unfreeze; signed with the owner's key when the console has one (an agent pinned to it
    takes no unsigned unfreeze)."""
    at = ledger.clock.now()
    return await ledger.run_write(lambda: freeze_signed_steps(ledger.dialect, signer, budget_id, frozen, by=by,
                                                              reason=reason, now=at))


async def list_controls(ledger: LedgerBase) -> dict[str, BudgetControl]:
    return await ledger.run_read(controls_steps)


async def resolve_unknown(ledger: LedgerBase, entry_id: int, *, paid: bool, transaction_id: str, by: str,
                          reason: str) -> Entry:
    """Settle a payment whose outcome is unknown as paid (with its transaction id) or not paid."""
    who, why, ref = one_line("by", by, 200), one_line("reason", reason, 500), transaction_id.strip()
    if not who or not why:
        raise InvalidArguments("resolving a payment needs who decides and why (what the wallet or bank statement says)")
    if paid and not _REF.match(ref):
        raise InvalidArguments("a payment resolved as paid needs its transaction id (letters, digits and ._:/-, "
                               "at most 128), as shown by the wallet")
    return await resolve(Lifecycle(ledger), entry_id, paid=paid, by=who, reason=why,
                         transaction_id=ref if paid else None)


async def revoke_mandate(network_url: str, mandate_id: str, *, transport: httpx.AsyncBaseTransport | None = None
                         ) -> dict[str, Any]:
    """Ask the wallet network to revoke an AMP mandate (the sandbox offers ``/network/mandate/revoke``)."""
    ident = mandate_id.strip()
    if not _MANDATE.match(ident):
        raise InvalidArguments("a mandate id is 1 to 128 letters, digits or ._:- characters")
    async with httpx.AsyncClient(timeout=10.0, transport=transport) as client:
        try:
            resp = await client.post(network_url.rstrip("/") + "/mandate/revoke", json={"mandateId": ident})
        except httpx.HTTPError as exc:
            raise InvalidArguments(f"the wallet network could not be reached ({type(exc).__name__})") from exc
    try:
        data = resp.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or resp.status_code >= 400 or data.get("success") is not True:
        message = data.get("resultMessage") if isinstance(data, dict) else None
        raise InvalidArguments(f"the wallet refused to revoke mandate {ident}: {message or f'HTTP {resp.status_code}'}")
    found = data.get("data")
    view: dict[str, Any] = found if isinstance(found, dict) else {}
    # Only the status is passed on: the mandate view also names tokens, which the web app never shows.
    return {"mandate_id": ident, "status": str(view.get("mandateStatus") or "REVOKED")}
