"""How the console says things to an owner: states, times, amounts and a policy, in words.

Everything returned here is HTML-escaped already (values are untrusted: merchant names, reasons
and budget names come from models, merchants or anyone who can write the database). Times are
rendered as ``<time datetime=...>`` with a UTC fallback; the page script rewrites them in the
browser's own time zone (``data-rel`` adds "in 14 min" / "3 h ago").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from amp_tools.approvals import ApprovalRecord
from amp_tools.errors import AmpToolsError
from amp_tools.ledger import Entry
from amp_tools.money import Money
from amp_tools.payments import state_of

__all__ = ["approval_state", "budget_href", "h", "money", "payment_state", "policy_words",
           "released_why", "when"]


def h(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def budget_href(budget_id: str, suffix: str = "") -> str:
    """The budget page's path; a sub-budget id keeps its ``/`` (``/budgets/trip/hotel_booker``)."""
    return h(f"/budgets/{quote(budget_id, safe='/:')}{suffix}")


def money(value: Money | Mapping[str, Any] | None) -> str:
    """An amount with its currency ("139.86 USD"), or a dash."""
    if value is None:
        return "-"
    if isinstance(value, Money):
        return h(str(value))
    if "minor" in value and "amount" not in value:
        try:
            return h(str(Money(int(value["minor"]), str(value.get("currency", "")))))
        except (TypeError, ValueError, AmpToolsError):
            return h(f"{value.get('minor')} (minor units) {value.get('currency', '')}")
    return h(f"{value.get('amount')} {value.get('currency', '')}")


def when(at: datetime | str | None, *, rel: bool = False) -> str:
    """A time the browser shows in the owner's zone (and relative to now with `rel`)."""
    if at is None or at == "":
        return "-"
    iso = at.isoformat() if isinstance(at, datetime) else str(at)
    fallback = iso[:16].replace("T", " ") + " UTC"
    flag = " data-rel" if rel else ""
    return f'<time datetime="{h(iso)}" class="local"{flag}>{h(fallback)}</time>'


_PAYMENT = {"reserved": ("held while the agent pays", "held"),
            "awaiting_approval": ("waiting for your approval", "pending"),
            "sending": ("being paid", "held"), "unknown": ("outcome unknown: resolve it", "bad"),
            "committed": ("paid", "ok"), "refunded": ("refunded", "muted"), "released": ("not paid", "muted")}


def payment_state(entry: Entry) -> tuple[str, str]:
    """(words, badge class) of a payment's state, as the owner would say it."""
    state = str(state_of(entry))
    words, badge = _PAYMENT.get(state, (state, "muted"))
    if state == "refunded" and entry.refunded.minor < entry.amount.minor:
        words = f"paid, {entry.refunded} refunded"
    elif state == "released" and entry.action == "refund":
        words = "refund not made"
    return words, badge


_RELEASED = {"APPROVAL_PENDING": "set aside while you were asked; the agent pays again once you approve",
             "APPROVAL_DENIED": "you denied it", "APPROVAL_EXPIRED": "your approval expired unanswered",
             "PAYMENT_NOT_SENT": "never sent to the wallet"}


def released_why(reason: str) -> str:
    """Why a payment was not made, in words (the ledger stores some reasons as error codes)."""
    code = reason.strip()
    if code in _RELEASED:
        return _RELEASED[code]
    return code.replace("_", " ").lower() if code.isupper() and " " not in code else code


def approval_state(rec: ApprovalRecord, entry: Entry | None) -> tuple[str, str]:
    """(words, badge class) of an approval, with what became of the payment it allowed."""
    status = rec.status
    if status == "consumed":
        if entry is None:
            return "approved, used by the agent", "ok"
        state = str(state_of(entry))
        if state in ("committed", "refunded"):
            return ("approved and paid", "ok") if state == "committed" else ("approved, paid, refunded", "muted")
        if state == "released":
            return "failed after approval", "bad"
        return "approved, payment in progress", "held"
    return {"pending": ("waiting for you", "pending"), "approved": ("approved, not paid yet", "ok"),
            "denied": ("denied", "bad"), "expired": ("expired unanswered", "muted"),
            "reopened": ("denied, agent may ask again", "muted")}.get(status, (status, "muted"))


def _names(values: list[str]) -> str:
    return ", ".join(h(v) for v in values)


def policy_words(policy: Any) -> list[str]:
    """The rules of a budget policy as short sentences (HTML), most important first."""
    out = [f"At most {money(policy.total_budget)} in total."]
    if policy.per_transaction_max is not None:
        out.append(f"At most {money(policy.per_transaction_max)} per payment.")
    for period, cap in policy.windows.configured():
        kind = "rolling" if cap.mode == "rolling" else "calendar"
        out.append(f"At most {money(cap.limit)} per {h(period)} ({kind}, time zone {h(policy.timezone)}).")
    merchants, mccs = policy.merchants, policy.mccs
    if merchants.allow:
        out.append(f"Only these merchants: {_names(merchants.allow)}.")
    if merchants.deny:
        out.append(f"Never these merchants: {_names(merchants.deny)}.")
    for key, cap in merchants.caps.items():
        out.append(f"At most {money(cap)} at {h(key)}.")
    if mccs.allow:
        out.append(f"Only merchant categories (MCC): {_names(mccs.allow)}.")
    if mccs.deny:
        out.append(f"Never merchant categories (MCC): {_names(mccs.deny)}.")
    for key, cap in mccs.caps.items():
        out.append(f"At most {money(cap)} in MCC {h(key)}.")
    if policy.velocity is not None:
        out.append(f"At most {h(policy.velocity.max_payments)} payments per {h(policy.velocity.per)}.")
    rules = policy.approval
    asks = []
    if rules.confirm_all:
        asks.append("every payment")
    if rules.confirm_above is not None:
        asks.append(f"a payment above {money(rules.confirm_above)}")
    if rules.confirm_new_merchants:
        asks.append("the first payment to a new merchant")
    if rules.confirm_human_present:
        asks.append("a purchase while you are present")
    if rules.confirm_refunds:
        asks.append("a refund")
    out.append("You are asked before " + "; ".join(asks) + "." if asks else "Nobody is asked before a payment.")
    if policy.agents:
        out.append(f"Agents with a sub-budget of their own inside it: {_names(list(policy.agents))}.")
    if policy.expires_at is not None:
        out.append(f"Every payment is refused after {when(policy.expires_at)}.")
    return out
