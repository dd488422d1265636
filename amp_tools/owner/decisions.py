"""The owner's side: sign each decision in the same transaction that stores it.

`sign_policy_steps` signs a stored policy version (``budget_policies.signature``) after checking
that its text still hashes to its ``policy_hash``; `freeze_signed_steps` freezes or unfreezes a
budget and signs the control row it wrote (``budgets.signature``); `decide_signed_steps` records
an approval decision (approve, deny, reopen) and its signature (``approval_signatures``) together,
so a decision is never visible unsigned to an agent that requires the signature, and a signature
never outlives the decision it was made for. Each signature is audited (kind ``owner_signature``,
the JWS under ``owner_jws``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from amp_tools.errors import InvalidArguments, NotFound
from amp_tools.ledger._sql import Dialect, Q, Steps, to_us
from amp_tools.ledger.audit import append_steps
from amp_tools.ledger.controls import BudgetControl, freeze_steps
from amp_tools.money import Money

from .keys import OwnerKey
from .payloads import approval_payload, control_payload, policy_payload
from .signing import sign

__all__ = ["approval_payload_of", "decide_signed_steps", "freeze_signed_steps", "sign_control_steps",
           "sign_policy_steps"]


def _audit(dialect: Dialect, key: OwnerKey, what: str, budget_id: str, token: str, now: datetime,
           **facts: Any) -> Steps[int]:
    return (yield from append_steps(dialect, "owner_signature", {"signed": what, "budget_id": budget_id,
                                                                  "kid": key.kid, "owner_jws": token, **facts},
                                    budget_id=budget_id, at=now))


def sign_policy_steps(dialect: Dialect, key: OwnerKey, budget_id: str, version: int | None, *,
                      now: datetime) -> Steps[dict[str, Any]]:
    """Sign version `version` (default: the one in force) of the budget's stored policy."""
    if version is None:
        rows = yield Q(f"SELECT policy_version FROM budgets WHERE budget_id = ?{dialect.for_update}", (budget_id,))
        if not rows or rows[0][0] is None:
            raise NotFound(f"budget {budget_id!r} is not a stored budget",
                           hint=f"Create it with `amp-tools budgets create {budget_id} --policy FILE`.")
        version = int(rows[0][0])
    rows = yield Q("SELECT policy, policy_hash FROM budget_policies WHERE budget_id = ? AND version = ?",
                   (budget_id, version))
    if not rows:
        raise NotFound(f"budget {budget_id!r} has no policy version {version}")
    text, digest = str(rows[0][0]), str(rows[0][1])
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != digest:
        raise InvalidArguments(f"policy version {version} of budget {budget_id!r} does not hash to its stored "
                               "policy_hash: the row was edited outside the ledger; not signing it",
                               hint="Run `amp-tools audit verify`, then store a policy you reviewed with "
                                    "`amp-tools budgets set-policy`.")
    token = sign(key, policy_payload(budget_id, version, digest))
    yield Q("UPDATE budget_policies SET signature = ? WHERE budget_id = ? AND version = ?", (token, budget_id, version))
    yield from _audit(dialect, key, "policy", budget_id, token, now, version=version, policy_hash=digest)
    return {"budget_id": budget_id, "version": version, "policy_hash": digest, "policy": json.loads(text)}


def sign_control_steps(dialect: Dialect, key: OwnerKey, budget_id: str, *, now: datetime) -> Steps[None]:
    """Sign the budget's control row as it stands (frozen or not, its reason and time)."""
    rows = yield Q("SELECT frozen, reason, changed_at FROM budget_controls WHERE budget_id = ?", (budget_id,))
    if not rows:
        raise NotFound(f"budget {budget_id!r} was never frozen; there is no control to sign")
    frozen, reason, at = bool(rows[0][0]), str(rows[0][1]), int(rows[0][2])
    token = sign(key, control_payload(budget_id=budget_id, frozen=frozen, reason=reason, at=at))
    yield Q("UPDATE budgets SET signature = ? WHERE budget_id = ?", (token, budget_id))
    yield from _audit(dialect, key, "freeze" if frozen else "unfreeze", budget_id, token, now, at_us=at)


def freeze_signed_steps(dialect: Dialect, key: OwnerKey | None, budget_id: str, frozen: bool, *, by: str,
                        reason: str, now: datetime) -> Steps[BudgetControl]:
    """Freeze or unfreeze, signed with `key` when the owner has one (unsigned otherwise)."""
    control = yield from freeze_steps(dialect, budget_id, frozen, by=by, reason=reason, now=now)
    if key is not None:
        yield from sign_control_steps(dialect, key, control.budget_id, now=now)
    else:
        yield Q("UPDATE budgets SET signature = NULL WHERE budget_id = ?", (control.budget_id,))
    return control


def approval_payload_of(request: Any, *, approval_id: str, budget_id: str, decision: str,
                        expires_at: datetime | int) -> dict[str, Any]:
    """The signed fields of a decision about `request` (an `ApprovalRequest` or its public dict)."""
    data = request if isinstance(request, dict) else request.to_public()
    amount = data.get("amount")
    if not isinstance(amount, dict):
        raise InvalidArguments("an approval request without an amount cannot be signed")
    money = Money(int(amount["minor"]), str(amount["currency"])) if "minor" in amount else \
        Money.parse(str(amount["amount"]), str(amount["currency"]))
    payload = approval_payload(approval_id=approval_id, budget_id=budget_id,
                               level=str(data.get("level") or budget_id),
                               checkout_id=str(data.get("checkout_id") or data.get("binding") or ""),
                               amount=money, merchant_id=str(data.get("merchant_id") or ""), decision=decision,
                               expires_at=expires_at)
    payload["binding"] = str(data.get("binding") or "")  # merchant, amount and the basket, as the grant is keyed
    return payload


def decide_signed_steps(dialect: Dialect, key: OwnerKey, approval_id: str, decision: str,
                        decide: Any, *, now: datetime) -> Steps[Any]:
    """Run the store's `decide` steps (approve, deny or reopen) and sign the result, in one transaction."""
    record = yield from decide()
    rows = yield Q("SELECT request, budget_id, expires_us FROM approval_requests WHERE id = ?", (approval_id,))
    request, budget_id, expires_us = json.loads(str(rows[0][0])), str(rows[0][1]), int(rows[0][2])
    token = sign(key, approval_payload_of(request, approval_id=approval_id, budget_id=budget_id, decision=decision,
                                          expires_at=expires_us))
    yield Q("INSERT INTO approval_signatures (approval_id, decision, signature, signed_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (approval_id, decision) DO UPDATE SET signature = excluded.signature, "
            "signed_at = excluded.signed_at", (approval_id, decision, token, to_us(now)))
    yield from _audit(dialect, key, f"approval {decision}", budget_id, token, now,
                      approval_id=approval_id)
    return record
