"""The vocabulary of tool result schemas (MCP's ``outputSchema``): the pieces and the named result shapes.

Each tool names its result shape where it is declared (``@tool(..., output=QUOTE)``), so a tool's
schema and read-only mark live in its one registration; this module only spells the shapes. A
shape names the keys a successful result always carries, with their types (money is
``{amount: decimal string, currency: ISO 4217 code}``); results may carry more keys (notes, hints,
optional figures), so objects stay open. `bound_result` may shorten a large result: lists then
end with a text note, and in the last resort the result is only ``{truncated, keys}``; `published`
accepts both, so a shortened result still validates. Tests validate every tool's real result
against its schema.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BUDGET", "CHECKOUT", "MANDATE", "MERCHANTS", "OFFERS", "ORDER", "PAYMENT", "QUOTE", "REFUND", "published"]

_TEXT: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
_MONEY: dict[str, Any] = {
    "type": "object", "required": ["amount", "currency"],
    "properties": {"amount": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"},
                   "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}},
}
_MAYBE_TEXT: dict[str, Any] = {"type": ["string", "null"]}


def _obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}


def _list(item: dict[str, Any]) -> dict[str, Any]:
    # A shortened list ends with a text note ("... 3 more not shown"); a shortened object says `not_shown`.
    return {"type": "array", "items": {"anyOf": [item, _TEXT, {"type": "object", "required": ["not_shown"]}]}}


_TOTAL = _obj({"amount": _TEXT, "currency": _TEXT}, {"in_budget_currency": _MONEY})

MERCHANTS = _obj({"merchants": _list(_obj({"merchant_id": _TEXT, "name": _TEXT}))}, {"note": _TEXT})
OFFERS = _obj({"budget_currency": _TEXT,
               "offers": _list(_obj({"offer_id": _TEXT, "name": _TEXT, "merchant": _TEXT, "price": _MONEY},
                                    {"price_in_budget_currency": _MONEY}))},
              {"note": _TEXT})
QUOTE = _obj({"quote_id": _TEXT, "status": _TEXT, "item": _TEXT, "quantity": _INT, "total": _TOTAL,
              "list_total": _MONEY, "expires_at": _MAYBE_TEXT, "negotiation_rounds_left": _INT},
             {"your_offer": _MONEY, "merchant_says": _TEXT, "most_you_may_offer_in_budget_currency": _MONEY})
CHECKOUT = _obj({"checkout_id": _TEXT, "merchant": _TEXT, "item": _TEXT, "quantity": _INT, "total": _TOTAL,
                 "next": _TEXT}, {"expires_at": _MAYBE_TEXT})
MANDATE = _obj({"mandate_id": _TEXT, "type": _TEXT, "status": _TEXT, "budget": _MONEY, "remaining": _MONEY,
                "merchants": _list(_TEXT), "mccs": _list(_TEXT), "expires_at": _MAYBE_TEXT}, {"next": _TEXT})
PAYMENT = _obj({"status": {"type": "string", "enum": ["paid", "already_paid"]}, "amount": _MONEY,
                "checkout_id": _TEXT, "merchant": _TEXT},
               {"transaction_id": _TEXT, "budget_amount": _MONEY, "budget_left": _MONEY, "approved_by": _TEXT,
                "mode": _TEXT, "mandate_id": _TEXT, "mandate_remaining": _MONEY})
BUDGET = _obj({"currency": _TEXT, "total": _obj({"used": _MONEY, "count": _INT}, {"limit": _MONEY, "left": _MONEY})},
              {"windows": {"type": "object"}, "merchants": {"type": "object"}, "mandates": _list(MANDATE)})
ORDER = _obj({"checkout_id": _TEXT, "status": _TEXT},
             {"merchant": _TEXT, "amount": _MONEY, "transaction_id": _TEXT, "refunded": _MONEY})
REFUND = _obj({"status": _TEXT, "checkout_id": _TEXT, "amount": _MONEY},
              {"refund_id": _TEXT, "total_refunded": _MONEY})

_SHORTENED: dict[str, Any] = {"required": ["truncated", "keys"],
                              "properties": {"truncated": _TEXT, "keys": _list(_TEXT)}}


def published(shape: dict[str, Any] | None) -> dict[str, Any]:
    """The schema a client reads for a result of `shape`, including the last-resort shortened form;
    any object when the tool names no shape."""
    if shape is None:
        return {"type": "object"}
    return {"type": "object", "anyOf": [shape, _SHORTENED]}
