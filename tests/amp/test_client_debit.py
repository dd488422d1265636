"""AmpClient's reading of the debit extensions (debitedAmount, fxRate, quoteId) and of servers
that do not send them, and what it sends as fxQuoteId."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from amp_tools.amp.client import AmpClient
from amp_tools.amp.models import CpCheckout
from amp_tools.errors import AmpError
from amp_tools.money import Money

MERCHANT = "http://merchant.test"
REFERENCE_PAY = {"success": True, "transactionId": "359be058356d4b90965c3db7eec6a8d0",
                 "message": "Payment already completed (idempotent)", "idempotent": True}


def serving(data: dict[str, Any], seen: list[dict[str, Any]] | None = None) -> AmpClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None and request.content:
            seen.append(json.loads(request.content))
        return httpx.Response(200, json=data)

    return AmpClient("http://cp.test", transport=httpx.MockTransport(handler), retries=0)


async def test_reference_answers_leave_the_extensions_empty() -> None:
    paid = await serving({"success": True, "data": REFERENCE_PAY}).start_payment(MERCHANT, "CKO-1", "2816")
    assert (paid.transaction_id, paid.idempotent, paid.debited_amount, paid.fx_rate) == (
        "359be058356d4b90965c3db7eec6a8d0", True, None, None)
    fx = await serving({"success": True, "data": {"from": "SGD", "to": "USD", "rate": "0.74"}}).fx_rate("SGD", "USD")
    assert fx.quote_id is None
    order = await serving({"success": True, "data": {"checkoutId": "CKO-1", "status": "PAID",
                                                     "debitedAmount": None, "fxRate": None}}).order_status(
        MERCHANT, "CKO-1")
    assert (order.debited_amount, order.fx_rate) == (None, None)


async def test_extensions_are_read_exactly() -> None:
    data = {**REFERENCE_PAY, "debitedAmount": {"cent": 13410, "currency": "usd"}, "fxRate": "0.90000000"}
    paid = await serving({"success": True, "data": data}).start_payment(MERCHANT, "CKO-1", "2816")
    assert paid.debited_amount == Money(13410, "USD") and paid.fx_rate == Decimal("0.90000000")
    order = await serving({"success": True, "data": {"checkoutId": "CKO-1", "status": "PAID",
                                                     "debitedAmount": {"cent": 5, "currency": "JPY"}}}).order_status(
        MERCHANT, "CKO-1")
    assert order.debited_amount == Money(5, "JPY") and order.fx_rate is None


@pytest.mark.parametrize(("field", "value", "says"), [
    ("debitedAmount", {"cent": 1.5, "currency": "USD"}, "debitedAmount {'cent': 1.5, 'currency': 'USD'} is not an "
                                                        "amount (minor units 1.5 must be an integer"),
    ("debitedAmount", {"cent": 100, "currency": "XXX"}, "is not an amount (currency 'XXX' is not an ISO 4217"),
    ("debitedAmount", "13410", "debitedAmount '13410' is not an amount"),
    ("debitedAmount", {"cent": -1, "currency": "USD"}, "debitedAmount -0.01 USD is negative"),
    ("fxRate", 0.9, "fxRate 0.9 is not a decimal string"),
    ("fxRate", "-1", "fxRate '-1' is not usable"),
    ("fxRate", "abc", "fxRate 'abc' is not usable"),
])
async def test_bad_extension_values_are_bad_responses_that_say_what_is_wrong(field: str, value: Any,
                                                                              says: str) -> None:
    client = serving({"success": True, "data": {**REFERENCE_PAY, field: value}})
    with pytest.raises(AmpError) as exc:
        await client.start_payment(MERCHANT, "CKO-1", "2816")
    assert exc.value.code == "BAD_RESPONSE"
    assert f"startPayment: response does not have the expected shape at {field}: " in exc.value.message
    assert says in exc.value.message
    order = serving({"success": True, "data": {"checkoutId": "CKO-1", "status": "PAID", field: value}})
    with pytest.raises(AmpError) as exc:
        await order.order_status(MERCHANT, "CKO-1")
    assert exc.value.code == "BAD_RESPONSE" and says in exc.value.message


async def test_fx_quote_id_is_sent_only_when_given() -> None:
    seen: list[dict[str, Any]] = []
    client = serving({"success": True, "paymentToken": "28166623" + "a" * 32, "mandateType": "IMMEDIATE",
                      "error": None, "fxQuoteId": "FXQ-1", "fxRate": "0.74000000"}, seen)
    checkout = CpCheckout.build(Money(4500, "USD"), merchant_id="M-1", merchant_name="Shop", merchant_mcc="5411")
    plain = await client.apply_credential("cps-1", l1="a.b.c~", l2="a.b.c~", checkout=checkout,
                                          mandate_type="IMMEDIATE")
    locked = await client.apply_credential("cps-1", l1="a.b.c~", l2="a.b.c~", checkout=checkout,
                                           mandate_type="IMMEDIATE", fx_quote_id="FXQ-1")
    assert "fxQuoteId" not in seen[0] and seen[1]["fxQuoteId"] == "FXQ-1"
    assert (locked.fx_quote_id, locked.fx_rate) == ("FXQ-1", Decimal("0.74000000"))
    assert plain.payment_token is not None and "a" * 32 not in repr(plain)  # the token stays secret
    for bad in ("", 7):
        with pytest.raises(AmpError) as exc:
            await client.apply_credential("cps-1", l1="a.b.c~", l2="a.b.c~", checkout=checkout,
                                          mandate_type="IMMEDIATE", fx_quote_id=bad)  # type: ignore[arg-type]
        assert exc.value.code == "PARAM_ILLEGAL" and exc.value.details["field"] == "fx_quote_id"
    assert len(seen) == 2  # refused before sending
