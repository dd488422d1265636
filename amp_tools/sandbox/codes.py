"""Result codes of the sandbox and the one exception every role raises for a business refusal.

`Refusal(code, text)` carries an A+ style result code and a message. Where the reference
services have a message for the same refusal, `text` is that message verbatim
(amp-reference-wire.md 4.1), so a client written for the reference maps it the same way.
Each HTTP layer renders a `Refusal` in its own role's envelope.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Refusal", "Timeout", "UpstreamError"]

# A+ / mandate codes used by the reference
PARAM_ILLEGAL = "PARAM_ILLEGAL"
MANDATE_NOT_EXIST = "MANDATE_NOT_EXIST"
MANDATE_STATUS_INVALID = "MANDATE_STATUS_INVALID"
MANDATE_EXPIRED = "MANDATE_EXPIRED"
MANDATE_BALANCE_INSUFFICIENT = "MANDATE_BALANCE_INSUFFICIENT"
CHECKOUT_HASH_INCONSISTENT = "CHECKOUT_HASH_INCONSISTENT"
CHECKOUT_CURRENCY_MISMATCH = "CHECKOUT_CURRENCY_MISMATCH"
CHECKOUT_AMOUNT_EXCEEDS_BUDGET = "CHECKOUT_AMOUNT_EXCEEDS_BUDGET"
MERCHANT_NOT_IN_CONSTRAINTS = "MERCHANT_NOT_IN_CONSTRAINTS"
REPEAT_REQ_INCONSISTENT = "REPEAT_REQ_INCONSISTENT"
PAYMENT_TOKEN_INVALID = "PAYMENT_TOKEN_INVALID"
PAYMENT_TOKEN_ALREADY_USED = "PAYMENT_TOKEN_ALREADY_USED"
PAYMENT_TOKEN_EXPIRED = "PAYMENT_TOKEN_EXPIRED"
PAYMENT_FAILED = "PAYMENT_FAILED"
# sandbox additions (spec rules the reference does not enforce)
PENDING_IDV = "PENDING_IDV"
SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
TOKEN_NOT_FOUND = "TOKEN_NOT_FOUND"
IDV_REJECTED = "IDV_REJECTED"
AGENT_NOT_REGISTERED = "AGENT_NOT_REGISTERED"
PER_TASK_LIMIT_EXCEEDED = "PER_TASK_LIMIT_EXCEEDED"
DAILY_LIMIT_EXCEEDED = "DAILY_LIMIT_EXCEEDED"
MERCHANT_INFO_MISMATCH = "MERCHANT_INFO_MISMATCH"
ORDER_INCONSISTENT = "ORDER_INCONSISTENT"
CHAIN_INVALID = "CHAIN_INVALID"
REFUND_EXCEEDS_PAYMENT = "REFUND_EXCEEDS_PAYMENT"
PAYMENT_NOT_FOUND = "PAYMENT_NOT_FOUND"
# merchant codes
INVALID_PARAM = "INVALID_PARAM"
PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"
INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
CHECKOUT_NOT_FOUND = "CHECKOUT_NOT_FOUND"
CHECKOUT_EXPIRED = "CHECKOUT_EXPIRED"
ACQUIRER_FAILED = "ACQUIRER_FAILED"
MERCHANT_NOT_FOUND = "MERCHANT_NOT_FOUND"
MERCHANT_DECLINED = "MERCHANT_DECLINED"
QUOTE_NOT_FOUND = "QUOTE_NOT_FOUND"
QUOTE_EXPIRED = "QUOTE_EXPIRED"
QUOTE_CLOSED = "QUOTE_CLOSED"
PRICE_CHANGED = "PRICE_CHANGED"
# acquirer codes
UNKNOWN_NETWORK = "UNKNOWN_NETWORK"
INTERNAL_ERROR = "INTERNAL_ERROR"


class Refusal(Exception):
    """A business refusal: `code` for programs, `text` for people (and reference-text matching)."""

    def __init__(self, code: str, text: str, **extra: Any) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text
        self.extra = extra


class Timeout(Exception):
    """An injected timeout: the caller never sees an answer. `after` says whether the work was done."""

    def __init__(self, where: str, *, after: bool) -> None:
        super().__init__(f"injected timeout at {where} ({'after' if after else 'before'} processing)")
        self.where = where
        self.after = after


class UpstreamError(Exception):
    """An injected HTTP 5xx at `where`; nothing was processed there."""

    def __init__(self, where: str, status: int = 500) -> None:
        super().__init__(f"injected HTTP {status} at {where}")
        self.where = where
        self.status = status
