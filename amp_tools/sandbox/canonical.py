"""The IMMEDIATE checkout hash (amp-protocol.md 3.8) and the checkout shape conversions.

The canonical form is the snake_case chain checkout ``{total_amount:{currency, amount},
merchant:{reference_merchant_id, merchant_name, merchant_mcc}, goods?}``: keys sorted at every
level, compact separators, strings stripped, UTF-8, SHA-256, base64url without padding.
Unlike the reference (amp-reference-wire.md 5.5), camelCase input is normalised the same way
at mandate creation and at validation, so camelCase `goods` do not break the hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from amp_tools.amp.chain import normalize_checkout
from amp_tools.money import Money

__all__ = ["checkout_hash", "snake_keys", "to_chain_checkout"]

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub(r"_\1", name).lower()


def snake_keys(value: Any) -> Any:
    """Recursively rename camelCase keys to snake_case and strip strings."""
    if isinstance(value, dict):
        return {_snake(str(k)): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    if isinstance(value, str):
        return value.strip()
    return value


def _goods(raw: Any) -> list[Any] | None:
    if not raw:
        return None
    goods = snake_keys(raw)
    return goods if isinstance(goods, list) else [goods]


def to_chain_checkout(data: Any, *, include_checkout_id: bool = False) -> dict[str, Any]:
    """Either checkout spelling (CP camelCase or chain snake_case) as the chain claim."""
    total, mid, name, mcc = normalize_checkout(data)
    out: dict[str, Any] = {
        "total_amount": total.to_chain(),
        "merchant": {"reference_merchant_id": mid, "merchant_name": name, "merchant_mcc": mcc},
    }
    goods = _goods(data.get("goods")) if isinstance(data, dict) else None
    if goods:
        out["goods"] = goods
    if include_checkout_id and isinstance(data, dict):
        cid = data.get("reference_checkout_id") or data.get("referenceCheckoutId") or data.get("checkoutId")
        if cid:
            out["reference_checkout_id"] = str(cid).strip()
    return out


def checkout_hash(data: Any) -> str:
    """B64U(SHA-256(canonical JSON)) of the checkout's amount, merchant and goods."""
    claim = to_chain_checkout(data)
    text = json.dumps(claim, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def checkout_total(data: Any) -> Money:
    return normalize_checkout(data)[0]
