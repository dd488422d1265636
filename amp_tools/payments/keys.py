"""The idempotency key of a payment, derived from the payment itself.

The same merchant, checkout, amount and currency give the same key from any toolkit, process,
host or restart, so they all meet the same ledger row (and the merchant, which is idempotent per
checkout, sees one charge). No run id or session id goes into it.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["payment_key"]


def payment_key(intent: Any) -> str:
    raw = "|".join([intent.action, intent.merchant_id, intent.checkout_id, str(intent.amount.minor),
                    intent.amount.currency])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
