"""The exact fields each owner decision governs, as canonical payloads.

Every payload names its own type (``typ``), so a signature over a policy version can never pass
for an approval or a control, and carries every field that decision governs, so a signature over
one approval can never validate another budget, amount, currency, checkout, merchant, level,
decision or expiry. Payloads are serialised as canonical JSON (sorted keys, no spaces, UTF-8);
the verifier rebuilds the payload from the rows it is about to act on and compares bytes.

Money is carried as integer minor units with the ISO 4217 code; times as integer microseconds
since the epoch (UTC), the ledger's own unit, so no float or timezone text enters a signature.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from amp_tools.errors import InvalidArguments
from amp_tools.money import Money

__all__ = ["APPROVAL_TYP", "CONTROL_TYP", "POLICY_TYP", "approval_payload", "canonical", "control_payload",
           "policy_payload"]

POLICY_TYP = "amp-tools/owner-policy-version/v1"
APPROVAL_TYP = "amp-tools/owner-approval-decision/v1"
CONTROL_TYP = "amp-tools/owner-budget-control/v1"
Decision = Literal["approve", "deny", "reopen"]
_DECISIONS = ("approve", "deny", "reopen")


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _us(at: datetime | int) -> int:
    if isinstance(at, int) and not isinstance(at, bool):
        return at
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise InvalidArguments("a signed time must be timezone-aware (UTC)")
        return int(at.timestamp()) * 1_000_000 + at.microsecond
    raise InvalidArguments(f"a signed time must be a datetime or microseconds, not {type(at).__name__}")


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArguments(f"{name} must be non-empty text to be signed")
    return value


def policy_payload(budget_id: str, version: int, policy_hash: str) -> dict[str, Any]:
    """A stored policy version: which budget, which version number, the hash of its canonical policy."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidArguments(f"a policy version is a positive integer, not {version!r}")
    return {"typ": POLICY_TYP, "budget_id": _text("budget_id", budget_id), "version": version,
            "policy_hash": _text("policy_hash", policy_hash)}


def approval_payload(*, approval_id: str, budget_id: str, level: str | None, checkout_id: str, amount: Money,
                     merchant_id: str, decision: str, expires_at: datetime | int) -> dict[str, Any]:
    """An approval decision, bound to one request of one budget (and the level that asked) for one payment."""
    if decision not in _DECISIONS:
        raise InvalidArguments(f"decision must be one of {', '.join(_DECISIONS)}, not {decision!r}")
    if not isinstance(amount, Money):
        raise InvalidArguments("amount must be Money (integer minor units and an ISO 4217 code)")
    return {"typ": APPROVAL_TYP, "approval_id": _text("approval_id", approval_id),
            "budget_id": _text("budget_id", budget_id), "level": level or budget_id,
            "checkout_id": _text("checkout_id", checkout_id), "amount_minor": amount.minor,
            "currency": amount.currency, "merchant_id": _text("merchant_id", merchant_id), "decision": decision,
            "expires_us": _us(expires_at)}


def control_payload(*, budget_id: str, frozen: bool, reason: str, at: datetime | int) -> dict[str, Any]:
    """A freeze or unfreeze of one budget, at one moment (the control row's ``changed_at``: its sequence)."""
    if not isinstance(frozen, bool):
        raise InvalidArguments("frozen must be true or false")
    if not isinstance(reason, str):
        raise InvalidArguments("reason must be text")
    return {"typ": CONTROL_TYP, "budget_id": _text("budget_id", budget_id),
            "action": "freeze" if frozen else "unfreeze", "reason": reason, "at_us": _us(at)}
