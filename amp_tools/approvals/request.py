"""What a person is asked to approve, and what they answered.

Owns `ApprovalRequest` (an immutable description of one payment plus why the policy asks),
its `binding` (the hash a grant is tied to) and `ApprovalDecision`.

The binding is sha256 (hex) of ``budget_id|checkout_id|action|merchant_id|minor|currency|items``
where items is the canonical JSON of the purchase lines (sorted, compact). A grant, a denial and
a pending question only ever apply to a payment with the same binding: another budget (a
sub-budget level is a budget of its own), another checkout, a changed amount, merchant, currency
or basket needs its own approval. Two budgets paying identical baskets at the same moment never
share a request, a grant or a denial.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from amp_tools.clock import SYSTEM_CLOCK, Clock, utc
from amp_tools.money import Money
from amp_tools.policy.decide import Item, SpendIntent, Verdict
from amp_tools.untrusted import clean_text

__all__ = ["DEFAULT_TTL", "ApprovalDecision", "ApprovalRequest", "canonical_items", "compute_binding",
           "make_request"]

#: How long a person has to answer (and a grant stays usable) unless the caller says otherwise.
DEFAULT_TTL = timedelta(minutes=15)


def canonical_items(items: tuple[Item, ...]) -> str:
    """The items as compact JSON with sorted keys, lines sorted, so order does not matter."""
    rows = [{"product_id": item.product_id.strip(), "name": item.name.strip(), "quantity": item.quantity,
             "unit_amount": {"minor": item.unit_amount.minor, "currency": item.unit_amount.currency}}
            for item in items]
    rows.sort(key=lambda row: json.dumps(row, sort_keys=True))
    return json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_binding(action: str, merchant_id: str, amount: Money, items: tuple[Item, ...], *, budget_id: str,
                    checkout_id: str) -> str:
    """sha256 hex of ``budget_id|checkout_id|action|merchant_id|minor|currency|canonical items`` (each text
    JSON-quoted, so no field can borrow a separator from its neighbour)."""
    fields = [budget_id, checkout_id.strip(), action, merchant_id.strip()]
    text = "|".join([*(json.dumps(f, ensure_ascii=False) for f in fields), str(amount.minor), amount.currency,
                     canonical_items(items)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApprovalDecision:
    """A person's answer. `approver` names who or what answered (for the audit trail)."""

    approved: bool
    reason: str = ""
    approver: str = ""
    #: For a grant taken from the store: its id, expiry and the owner's signature (None: unsigned).
    #: (Not part of equality: two answers are equal when they say the same thing.)
    approval_id: str = field(default="", compare=False)
    expires_at: datetime | None = field(default=None, compare=False)
    signature: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ApprovalRequest:
    """One payment awaiting a person's yes or no."""

    id: str
    action: str
    merchant_id: str
    merchant_name: str
    items: tuple[Item, ...]
    amount: Money
    budget_amount: Money
    rules: tuple[str, ...]
    budget_left: Money
    created_at: datetime
    expires_at: datetime
    binding: str
    #: The budget the payment would come from (the level that asked: a sub-budget's own id); bound.
    budget_id: str = ""
    #: The checkout the payment pays; bound.
    checkout_id: str = ""

    def is_expired(self, now: datetime) -> bool:
        return utc(now) >= self.expires_at

    def matches(self, intent: SpendIntent) -> bool:
        """True when `intent` is the very payment this request describes."""
        return compute_binding(intent.action, intent.merchant_id, intent.amount, intent.items,
                               budget_id=self.budget_id, checkout_id=intent.checkout_id) == self.binding

    def merchant_text(self) -> str:
        """The merchant's name for display: cleaned and bounded again, whoever built the request."""
        return clean_text(self.merchant_name or self.merchant_id)

    def amount_text(self) -> str:
        if self.amount.currency == self.budget_amount.currency:
            return str(self.amount)
        return f"{self.amount} (= {self.budget_amount} from the budget)"

    def summary(self) -> str:
        """A short text for a person: what, to whom, how much, why they are asked."""
        verb = "Refund of" if self.action == "refund" else "Pay"
        who = self.merchant_text()
        lines = [f"{verb} {self.amount_text()} {'from' if self.action == 'refund' else 'to'} {who} "
                 f"({clean_text(self.merchant_id)})"]
        for item in self.items:
            lines.append(f"  - {item.quantity} x {clean_text(item.name)} at {item.unit_amount}")
        if self.rules:
            lines.append("Asked because: " + "; ".join(self.rules))
        lines.append(f"Budget left after this payment: {self.budget_left}")
        lines.append(f"Approval {self.id} expires at {self.expires_at.isoformat()}")
        return "\n".join(lines)

    def to_public(self) -> dict[str, Any]:
        """A JSON-able view; it holds no secrets (there are none in a request)."""
        return {
            "id": self.id,
            "action": self.action,
            "merchant_id": self.merchant_id,
            "merchant_name": clean_text(self.merchant_name),
            "items": [{"product_id": i.product_id, "name": clean_text(i.name), "quantity": i.quantity,
                       "unit_amount": i.unit_amount.to_public()} for i in self.items],
            "amount": self.amount.to_public(),
            "budget_amount": self.budget_amount.to_public(),
            "rules": list(self.rules),
            "budget_left": self.budget_left.to_public(),
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "binding": self.binding,
            **({"budget_id": self.budget_id} if self.budget_id else {}),
            **({"checkout_id": self.checkout_id} if self.checkout_id else {}),
        }

    @classmethod
    def from_public(cls, data: dict[str, Any]) -> ApprovalRequest:
        """Rebuild a request from `to_public()` output (the store keeps it that way)."""
        items = tuple(Item(product_id=i["product_id"], name=i["name"], quantity=int(i["quantity"]),
                           unit_amount=Money.parse(i["unit_amount"]["amount"], i["unit_amount"]["currency"]))
                      for i in data["items"])

        def money(key: str) -> Money:
            return Money.parse(data[key]["amount"], data[key]["currency"], allow_negative=True)

        return cls(id=data["id"], action=data["action"], merchant_id=data["merchant_id"],
                   merchant_name=data["merchant_name"], items=items, amount=money("amount"),
                   budget_amount=money("budget_amount"), rules=tuple(data["rules"]),
                   budget_left=money("budget_left"),
                   created_at=utc(datetime.fromisoformat(data["created_at"])),
                   expires_at=utc(datetime.fromisoformat(data["expires_at"])), binding=data["binding"],
                   budget_id=str(data.get("budget_id") or ""), checkout_id=str(data.get("checkout_id") or ""))


def make_request(intent: SpendIntent, verdict: Verdict, *, budget_id: str, ttl: timedelta | float = DEFAULT_TTL,
                 clock: Clock = SYSTEM_CLOCK) -> ApprovalRequest:
    """Build the request a person will see for `intent` paid from `budget_id`, with the verdict's reasons."""
    life = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
    if life <= timedelta(0):
        raise ValueError(f"approval ttl {life} must be positive")
    now = utc(clock.now())
    return ApprovalRequest(
        id="apr_" + secrets.token_hex(8),
        action=intent.action,
        merchant_id=intent.merchant_id,
        merchant_name=intent.merchant_name,
        items=intent.items,
        amount=intent.amount,
        budget_amount=intent.budget_amount,
        rules=verdict.approval_reasons,
        budget_left=verdict.budget_left,
        created_at=now,
        expires_at=now + life,
        binding=compute_binding(intent.action, intent.merchant_id, intent.amount, intent.items,
                                budget_id=budget_id, checkout_id=intent.checkout_id),
        budget_id=budget_id,
        checkout_id=intent.checkout_id,
    )
