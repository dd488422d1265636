"""What an agent asks to pay, before any money moves: the one intent shape.

The policy decides on a `SpendIntent` (`amp_tools.policy.decide`) and the ledger records one
(`amp_tools.ledger`); both import it from here, so the ledger needs nothing of the policy package
to know what an intent holds. Plain frozen dataclasses over `Money`: no I/O, no validation library.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from amp_tools.money import Money

__all__ = ["Item", "SpendIntent"]


@dataclass(frozen=True)
class Item:
    """One line of a purchase: unit price in the merchant currency."""

    product_id: str
    name: str
    quantity: int
    unit_amount: Money


@dataclass(frozen=True)
class SpendIntent:
    """A payment (or refund) the agent wants to make, before any money moves.

    `amount` is in the merchant currency; `budget_amount` is the same amount in the policy
    currency, converted with ``ROUND_UP`` at `fx_rate` (None when no conversion was needed).
    """

    action: Literal["pay", "refund"]
    merchant_id: str
    merchant_name: str
    mcc: str | None
    amount: Money
    budget_amount: Money
    fx_rate: Decimal | None
    items: tuple[Item, ...]
    human_present: bool
    checkout_id: str
    at: datetime
