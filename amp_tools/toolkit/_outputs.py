"""The JSON Schema of each tool's result: what a client may rely on (MCP's ``outputSchema``).

Each schema names the keys a successful result always carries, with their types (money is
``{amount: decimal string, currency: ISO 4217 code}``); results may carry more keys (notes, hints,
optional figures), so objects stay open. `bound_result` may shorten a large result: lists then
end with a text note, and in the last resort the result is only ``{truncated, keys}``; the
schemas accept both, so a shortened result still validates. Tests validate every tool's real
result against its schema.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OUTPUT_SCHEMAS", "READ_ONLY", "output_schema"]

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
_MANDATE = _obj({"mandate_id": _TEXT, "type": _TEXT, "status": _TEXT, "budget": _MONEY, "remaining": _MONEY,
                 "merchants": _list(_TEXT), "mccs": _list(_TEXT), "expires_at": _MAYBE_TEXT}, {"next": _TEXT})
_QUOTE = _obj({"quote_id": _TEXT, "status": _TEXT, "item": _TEXT, "quantity": _INT, "total": _TOTAL,
               "list_total": _MONEY, "expires_at": _MAYBE_TEXT, "negotiation_rounds_left": _INT},
              {"your_offer": _MONEY, "merchant_says": _TEXT, "most_you_may_offer_in_budget_currency": _MONEY})
_CHECKOUT = _obj({"checkout_id": _TEXT, "merchant": _TEXT, "item": _TEXT, "quantity": _INT, "total": _TOTAL,
                  "next": _TEXT}, {"expires_at": _MAYBE_TEXT})

OUTPUT_SCHEMAS: dict[str, dict[str, Any]] = {
    "discover_merchants": _obj({"merchants": _list(_obj({"merchant_id": _TEXT, "name": _TEXT}))}, {"note": _TEXT}),
    "search_offers": _obj({"budget_currency": _TEXT,
                           "offers": _list(_obj({"offer_id": _TEXT, "name": _TEXT, "merchant": _TEXT,
                                                 "price": _MONEY}, {"price_in_budget_currency": _MONEY}))},
                          {"note": _TEXT}),
    "request_quote": _QUOTE,
    "negotiate": _QUOTE,
    "accept_quote": _CHECKOUT,
    "checkout": _CHECKOUT,
    "request_mandate": _MANDATE,
    "mandate_status": _MANDATE,
    "pay": _obj({"status": {"type": "string", "enum": ["paid", "already_paid"]}, "amount": _MONEY,
                 "checkout_id": _TEXT, "merchant": _TEXT},
                {"transaction_id": _TEXT, "budget_amount": _MONEY, "budget_left": _MONEY, "approved_by": _TEXT,
                 "mode": _TEXT, "mandate_id": _TEXT, "mandate_remaining": _MONEY}),
    "budget_status": _obj({"currency": _TEXT,
                           "total": _obj({"used": _MONEY, "count": _INT}, {"limit": _MONEY, "left": _MONEY})},
                          {"windows": {"type": "object"}, "merchants": {"type": "object"},
                           "mandates": _list(_MANDATE)}),
    "order_status": _obj({"checkout_id": _TEXT, "status": _TEXT},
                         {"merchant": _TEXT, "amount": _MONEY, "transaction_id": _TEXT, "refunded": _MONEY}),
    "refund": _obj({"status": _TEXT, "checkout_id": _TEXT, "amount": _MONEY},
                   {"refund_id": _TEXT, "total_refunded": _MONEY}),
}

#: Tools that only read: no money moves, nothing is created at a merchant or in the ledger.
READ_ONLY = frozenset({"discover_merchants", "search_offers", "mandate_status", "budget_status", "order_status"})

_SHORTENED: dict[str, Any] = {"required": ["truncated", "keys"],
                              "properties": {"truncated": _TEXT, "keys": _list(_TEXT)}}


def output_schema(tool: str) -> dict[str, Any]:
    """The schema of `tool`'s results, including the last-resort shortened form; any object if unknown."""
    known = OUTPUT_SCHEMAS.get(tool)
    if known is None:
        return {"type": "object"}
    return {"type": "object", "anyOf": [known, _SHORTENED]}
