"""The idempotency key of a payment, derived from the payment itself.

The same merchant, checkout, amount and currency give the same key from any toolkit, process,
host or restart, so they all meet the same ledger row (and the merchant, which is idempotent per
checkout, sees one charge). No run id or session id goes into it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from amp_tools.money import Money

__all__ = ["checkout_key", "payment_key"]


def checkout_key(merchant_id: str, checkout_id: str, amount: Money, *, action: str = "pay") -> str:
    raw = "|".join([action, merchant_id, checkout_id, str(amount.minor), amount.currency])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def payment_key(intent: Any) -> str:
    return checkout_key(intent.merchant_id, intent.checkout_id, intent.amount, action=intent.action)
