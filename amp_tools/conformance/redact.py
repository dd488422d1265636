"""Secrets out of the evidence: chain strings, token ids, payment tokens and IDV handles shortened."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SECRET_FIELDS", "redact", "redact_str"]

#: Fields whose values let their holder act for the user (chains, tokens, the IDV handle).
SECRET_FIELDS = frozenset({"l1Serialized", "l2Serialized", "l3Serialized", "paymentToken", "tokenId",
                           "authSessionId", "paymentMethodId", "d"})
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-.~]*")
_PAYMENT_TOKEN = re.compile(r"\b28\d{6}[0-9a-fA-F]{16,}\b")
_HEX32 = re.compile(r"\b[0-9a-f]{32}\b")


def _short(value: str) -> str:
    return f"{value[:8]}…[redacted, {len(value)} chars]" if len(value) > 8 else "…[redacted]"


def redact_str(text: str) -> str:
    """Chain strings, payment tokens and 32-hex ids inside free text shortened to a recognisable prefix."""
    text = _JWT.sub(lambda m: _short(m.group(0)), text)
    text = _PAYMENT_TOKEN.sub(lambda m: _short(m.group(0)), text)
    return _HEX32.sub(lambda m: _short(m.group(0)), text)


def redact(value: Any, key: str | None = None) -> Any:
    """A copy of a JSON value with every secret shortened (its first 8 characters kept for reference)."""
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        return _short(value) if key in SECRET_FIELDS and value else redact_str(value)
    return value
