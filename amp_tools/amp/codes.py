"""AMP result codes: mapping the reference services' error texts to codes, with a hint each.

The reference CP drops the A+ `resultCode` and passes only its message text, and the
merchant wraps network failures as ``ACQUIRER_FAILED`` with the text inside
(amp-reference-wire.md 4.1, 4.2). `map_cp_error` recovers the code from the text; a
`resultCode` in the body (our sandbox's extension) wins when present. Texts are also
scrubbed of tokens and chain strings before they reach a model (`redact_text`).
"""

from __future__ import annotations

import re

from amp_tools._redact import SecretKind, scrub_text
from amp_tools.untrusted import clean_text

__all__ = ["HINTS", "RETRYABLE", "hint_for", "map_cp_error", "redact_text"]

# Ordered: the first match wins, so the specific texts come before the general ones.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.IGNORECASE), code) for p, code in (
    (r"AUTONOMOUS budget exceeded", "CHECKOUT_AMOUNT_EXCEEDS_BUDGET"),
    (r"IMMEDIATE budget mismatch", "CHECKOUT_AMOUNT_EXCEEDS_BUDGET"),
    (r"amount exceeds (the )?(remaining )?budget", "CHECKOUT_AMOUNT_EXCEEDS_BUDGET"),
    (r"merchant not in constraints", "MERCHANT_NOT_IN_CONSTRAINTS"),
    (r"currency mismatch", "CHECKOUT_CURRENCY_MISMATCH"),
    (r"checkout hash does not match", "CHECKOUT_HASH_INCONSISTENT"),
    (r"chain verification failed", "PARAM_ILLEGAL"),
    (r"in request does not match stored", "PARAM_ILLEGAL"),
    (r"does not match stored", "PARAM_ILLEGAL"),
    (r"constraints cannot be null", "PARAM_ILLEGAL"),
    (r"mandate status is not ACTIVE", "MANDATE_STATUS_INVALID"),
    (r"mandate (has )?(is )?expired|mandate expir", "MANDATE_EXPIRED"),
    (r"intent\.?expireTime has already passed", "MANDATE_EXPIRED"),
    (r"balance insufficient|insufficient (mandate )?balance|remaining budget is insufficient",
     "MANDATE_BALANCE_INSUFFICIENT"),
    (r"mandate (does )?not exist|mandate not found", "MANDATE_NOT_EXIST"),
    (r"payment token is not valid, status=USED", "PAYMENT_TOKEN_ALREADY_USED"),
    (r"payment token (has )?(is )?expired|status=EXPIRED", "PAYMENT_TOKEN_EXPIRED"),
    (r"payment token not found", "PAYMENT_TOKEN_INVALID"),
    (r"payment token is not valid", "PAYMENT_TOKEN_INVALID"),
    (r"CGCP: token .* does not match A\+ routing rule", "UNKNOWN_NETWORK"),
    (r"Checkout not found", "CHECKOUT_NOT_FOUND"),
    (r"Product not found", "PRODUCT_NOT_FOUND"),
    (r"Insufficient stock", "INSUFFICIENT_STOCK"),
    (r"Session '.*' not found|session not found", "SESSION_NOT_FOUND"),
    (r"is PENDING_IDV; IDV has not completed", "PENDING_IDV"),
    (r"Missing required field: token_id", "TOKEN_REQUIRED"),
    (r"Timed out waiting for (mandate|authorization|enrollment) callback", "IDV_TIMEOUT"),
    (r"session not in IDV-pending state", "PARAM_ILLEGAL"),
    (r"IDV completion failed", "SYSTEM_ERROR"),
    (r"Missing required field", "PARAM_ILLEGAL"),
))

#: What a model should do next, per code. Short, imperative, no secrets.
HINTS: dict[str, str] = {
    "CHECKOUT_AMOUNT_EXCEEDS_BUDGET": "the checkout is larger than the mandate's remaining budget; choose a cheaper "
                                      "option or ask the user to authorize a larger budget",
    "MERCHANT_NOT_IN_CONSTRAINTS": "this merchant (name or MCC) is outside what the user authorized; pick an "
                                   "authorized merchant or ask the user to authorize this one",
    "CHECKOUT_CURRENCY_MISMATCH": "the checkout currency differs from the mandate's budget currency; use a "
                                  "merchant pricing in the budget currency or ask the user for a new mandate",
    "CHECKOUT_HASH_INCONSISTENT": "the checkout changed since the user authorized it (price or items); ask the user "
                                  "to authorize the new checkout",
    "PARAM_ILLEGAL": "the request was malformed or the mandate chain was rejected; do not retry it unchanged",
    "CHAIN_INVALID": "the mandate chain was rejected; do not retry with the same chain",
    "MANDATE_STATUS_INVALID": "the mandate is no longer active (used, closed or cancelled); ask the user to "
                              "authorize a new mandate",
    "MANDATE_EXPIRED": "the user's authorization has expired; ask the user to authorize a new mandate",
    "MANDATE_BALANCE_INSUFFICIENT": "the mandate's budget is used up; ask the user to authorize more budget",
    "MANDATE_NOT_EXIST": "the mandate is unknown; create a new mandate session",
    "MANDATE_EXPIRY_REQUIRED": "ask the user until when the authorization should be valid; never pick a default",
    "PAYMENT_TOKEN_ALREADY_USED": "this payment token was already used; check the order status before paying again",
    "PAYMENT_TOKEN_INVALID": "the payment token is not valid; request a new payment credential",
    "PAYMENT_TOKEN_EXPIRED": "the payment token expired (10 minutes); request a new payment credential and pay "
                             "promptly",
    "UNKNOWN_NETWORK": "the payment token is not an Alipay+ token; request a new payment credential",
    "CHECKOUT_NOT_FOUND": "the checkout id is unknown to the merchant; create a new checkout",
    "PRODUCT_NOT_FOUND": "the product id is unknown; search again and use an id from the results",
    "INSUFFICIENT_STOCK": "the merchant has too few in stock; lower the quantity or pick another product",
    "SESSION_NOT_FOUND": "the session id is unknown; start a new session",
    "PENDING_IDV": "the user has not finished verifying in the wallet yet; wait and check again",
    "IDV_TIMEOUT": "the user did not complete wallet verification in time; ask the user to try again",
    "IDV_FAILED": "the wallet verification failed or was declined; do not proceed without a new authorization",
    "TOKEN_REQUIRED": "bind a wallet first (add a payment method) and use its token",
    "SCHEMA_VIOLATION": "the request did not match the service's schema; fix the named field",
    "NETWORK_ERROR": "the service could not be reached; try again shortly",
    "TIMEOUT": "the service did not answer in time; try again shortly",
    "OUTCOME_UNKNOWN": "the request may or may not have taken effect; do not repeat it, reconcile its state first",
    "BAD_RESPONSE": "the service sent a response that could not be read; try again later",
    "QUOTE_NOT_FOUND": "the quote id is unknown; request a new quote",
    "QUOTE_EXPIRED": "the quote expired; request a new quote",
    "QUOTE_CLOSED": "the quote is already accepted or rejected; request a new quote",
    "PRICE_CHANGED": "the price changed; review the new price with the user",
    "REFUND_EXCEEDS_PAYMENT": "the refund is larger than what was paid; refund at most the paid amount",
    "SYSTEM_ERROR": "the service failed internally; try again later",
}

#: Codes where sending the same request again later may succeed.
RETRYABLE = frozenset({"NETWORK_ERROR", "TIMEOUT", "PENDING_IDV", "SYSTEM_ERROR", "BAD_RESPONSE"})

_SUCCESS = frozenset({"SUCCESS", "S", ""})


def map_cp_error(text: str | None, result_code: str | None = None, fallback: str | None = None) -> str:
    """The AMP code for an error: `result_code` if given, else the code the text implies, else `fallback`.

    `fallback` is typically the merchant's ``errorCode`` (``ACQUIRER_FAILED`` wraps network texts,
    so the text is consulted first).
    """
    if isinstance(result_code, str) and result_code.strip().upper() not in _SUCCESS:
        return result_code.strip()
    if isinstance(text, str):
        for pattern, code in _PATTERNS:
            if pattern.search(text):
                return code
    if isinstance(fallback, str) and fallback.strip():
        return fallback.strip()
    return "AMP_ERROR"


def hint_for(code: str) -> str:
    return HINTS.get(code, "")


def _shorten(kind: SecretKind, secret: str) -> str:
    # A model needs to see that something was there, never enough of it to use.
    if kind == "sd-jwt":
        return "[redacted SD-JWT]"
    return secret[:8 if kind == "payment-token" else 6] + "…"


def redact_text(text: str, limit: int = 400) -> str:
    """A peer's message with chain strings, payment tokens and 32-hex ids shortened, cleaned and bounded."""
    return clean_text(scrub_text(clean_text(text, 100_000), _shorten), limit)
