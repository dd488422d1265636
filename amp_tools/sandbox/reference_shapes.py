"""The reference services' exact answer shapes, for a sandbox with ``extension_fields=False``.

The sandbox adds fields to reference answers (``resultCode``, checkout merchant name and MCC,
``debitedAmount``...). A client must not depend on them to talk to the reference services;
with `SandboxConfig.extension_fields` off, the reference routes answer only the fields the
reference sends (amp-reference-wire.md 3, 4), so a test can prove that.
"""

from __future__ import annotations

from typing import Any

from amp_tools.sandbox.state import Context

__all__ = ["reference_shape"]

# Every field of the CP's response models (present, null when absent), in the reference's order.
_CP = {
    "addPaymentMethod": ("success", "sessionId", "status", "tokenId", "idv", "error"),
    "queryPaymentMethodList": ("success", "paymentMethods", "error"),
    "createMandateSession": ("success", "sessionId", "status", "mandateId", "idv", "error"),
    "inquiryMandateSession": ("success", "sessionId", "status", "mandateId", "mandateType", "tokenId",
                              "l1Serialized", "l2Serialized", "error"),
    "applyCredential": ("success", "paymentToken", "mandateType", "error"),
}
# Merchant ``data`` fields; optional ones are kept only when present.
_MERCHANT = {
    "searchProducts": ("id", "name", "price", "currency", "imageUrl"),
    "startCheckout": ("checkoutId", "items", "totalAmount", "merchantId"),
    "startPayment": ("success", "transactionId", "message", "idempotent"),
}
_MERCHANT_ERROR = ("success", "errorCode", "errorMessage")


def _pick(obj: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: obj[k] for k in keys if k in obj}


def reference_shape(ctx: Context, op: str, answer: Any) -> Any:
    """`answer` cut down to the reference's fields when extension fields are off (faults pass through)."""
    if ctx.config.extension_fields or not isinstance(answer, dict):
        return answer
    if op in _CP:
        return {k: answer.get(k) for k in _CP[op]}
    if answer.get("success") is False:
        return _pick(answer, _MERCHANT_ERROR)
    data = answer.get("data")
    keys = _MERCHANT[op]
    if isinstance(data, list):
        data = [_pick(item, keys) if isinstance(item, dict) else item for item in data]
    elif isinstance(data, dict):
        data = _pick(data, keys)
    return {"success": answer.get("success"), "data": data}
