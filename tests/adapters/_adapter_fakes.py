"""Fake tool specs for the adapter tests: a tiny shop whose `pay` has an approver hook.

The fakes stand in for the real toolkit (built elsewhere) and only exercise the seams the
adapters touch: a successful result, a `PolicyViolation`, an approver that denies or
approves (sync, async, or LangGraph `interrupt()`), idempotent repeats, and schema errors.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from amp_tools.errors import ApprovalDenied, PolicyViolation
from amp_tools.money import Money
from amp_tools.toolkit import ToolSpec

AMOUNT = r"^\d+(\.\d{1,2})?$"


class SearchArgs(BaseModel):
    query: str = Field(min_length=1, description="What to look for, e.g. 'hotel in Lisbon'")
    max_results: int = Field(default=2, ge=1, le=5, description="How many offers to return")


class PayArgs(BaseModel):
    checkout_id: str = Field(pattern=r"^co_[a-z0-9]+$", description="Checkout id from search_offers")
    amount: str = Field(pattern=AMOUNT, description="Decimal string, e.g. '129.99'")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")


@dataclass(frozen=True)
class FakeApprovalRequest:
    """Just the surface of the core ApprovalRequest the adapters use."""

    checkout_id: str
    amount: Money

    @property
    def binding(self) -> str:
        return hashlib.sha256(f"pay|{self.checkout_id}|{self.amount.minor}|{self.amount.currency}".encode()).hexdigest()

    def summary(self) -> str:
        return f"Pay {self.amount} for checkout {self.checkout_id}"

    def to_public(self) -> dict[str, Any]:
        return {"action": "pay", "merchant_id": "m_fake", "items": [], "checkout_id": self.checkout_id,
                "amount": self.amount.to_public(), "binding": self.binding}


@dataclass
class FakeShop:
    """Per-run state lives here (the 'toolkit'), never in globals."""

    limit: Money = field(default_factory=lambda: Money.parse("500.00", "EUR"))
    approval_above: Money = field(default_factory=lambda: Money.parse("100.00", "EUR"))
    approver: Callable[[Any], Any] | None = None
    executed: int = 0
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    approval_requests: list[FakeApprovalRequest] = field(default_factory=list)

    async def _search(self, args: SearchArgs) -> dict[str, Any]:
        price = {"value": "80.00", "currency": "EUR"}
        offers = [{"checkout_id": f"co_{i}", "title": f"{args.query} #{i}", "price": price}
                  for i in range(1, args.max_results + 1)]
        return {"offers": offers}

    async def _pay(self, args: PayArgs) -> dict[str, Any]:
        amount = Money.parse(args.amount, args.currency)
        if args.checkout_id in self.payments:  # idempotent: a repeat returns the first result
            return {**self.payments[args.checkout_id], "repeated": True}
        if self.limit < amount:
            raise PolicyViolation(f"{amount.amount_str()} {amount.currency} exceeds the per-payment limit "
                                  f"of {self.limit.amount_str()} {self.limit.currency}", rule="max_per_payment",
                                  hint="Choose a cheaper offer or ask the user to raise the limit.")
        if self.approval_above < amount:
            req = FakeApprovalRequest(args.checkout_id, amount)
            self.approval_requests.append(req)
            decision = self.approver(req) if self.approver else False
            if inspect.isawaitable(decision):
                decision = await decision
            approved = decision if isinstance(decision, bool) else decision.approved
            if not approved:
                reason = "" if isinstance(decision, bool) else decision.reason
                raise ApprovalDenied(f"the person declined paying {amount.amount_str()} {amount.currency}"
                                     + (f": {reason}" if reason else ""), hint="Tell the user; do not retry.")
        self.executed += 1
        result = {"status": "paid", "payment_id": f"pay_{self.executed}", "checkout_id": args.checkout_id,
                  "amount": amount.to_public()}
        self.payments[args.checkout_id] = result
        return result

    def specs(self) -> list[ToolSpec]:
        return [
            ToolSpec("search_offers", "Search offers; returns checkout ids and prices.", SearchArgs, self._search),
            ToolSpec("pay", "Pay a checkout. Amount is a decimal string.", PayArgs, self._pay, moves_money=True),
        ]


PAY_OK = {"checkout_id": "co_1", "amount": "80.00", "currency": "EUR"}
PAY_TOO_MUCH = {"checkout_id": "co_2", "amount": "900.00", "currency": "EUR"}
PAY_NEEDS_APPROVAL = {"checkout_id": "co_3", "amount": "250.00", "currency": "EUR"}
PAY_BAD = {"checkout_id": "co_1", "amount": 80.5, "currency": "eur"}
