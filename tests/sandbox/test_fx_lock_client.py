"""AmpClient over the sandbox: quote ids, fx_quote_id at apply_credential, and the debit that
start_payment / order_status report (debited_amount, fx_rate, idempotent)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from amp_tools.amp.client import AmpClient
from amp_tools.amp.models import CpCheckout
from amp_tools.errors import AmpError
from amp_tools.money import Money
from tests.sandbox.sandbox_helpers import Flow

SKYLARK = "/merchants/SKYLARK-AIR"


def amp_client(flow: Flow) -> AmpClient:
    return AmpClient("http://sandbox", transport=flow.sb.transport(), retries=0)


async def test_client_locks_the_quote_and_reads_the_debit(flow: Flow) -> None:
    m = await flow.autonomous(Money(50000, "USD"), ["Skylark Air"])
    async with amp_client(flow) as client:
        co = await client.start_checkout(SKYLARK, [{"productId": "SKY-SIN-KUL-1900", "quantity": 1}])
        fx = await client.fx_rate("SGD", "USD")
        assert fx.rate == Decimal("0.74000000") and fx.quote_id is not None and fx.quote_id.startswith("FXQ-")
        await flow.post("/_admin/setFxRate", {"currency": "SGD", "usdRate": "0.90"})
        assert co.merchant_name is not None and co.merchant_mcc is not None
        checkout = CpCheckout.build(co.total, merchant_id="SKYLARK-AIR", merchant_name=co.merchant_name,
                                    merchant_mcc=co.merchant_mcc)
        raw = {"checkoutId": co.checkout_id, "totalAmount": co.total.to_cent(), "merchantId": "SKYLARK-AIR",
               "merchantName": co.merchant_name, "merchantMcc": co.merchant_mcc}
        l3 = flow.l3(m["l2Serialized"], raw)
        token = await client.apply_credential(m["sessionId"], l1=m["l1Serialized"], l2=m["l2Serialized"],
                                              l3=l3, checkout=checkout, fx_quote_id=fx.quote_id)
        assert (token.fx_quote_id, token.fx_rate) == (fx.quote_id, Decimal("0.74000000"))
        assert token.payment_token is not None
        paid = await client.start_payment(SKYLARK, co.checkout_id, token.payment_token, l1=m["l1Serialized"],
                                          l2=m["l2Serialized"], l3=l3)
        assert (paid.debited_amount, paid.fx_rate, paid.idempotent) == (
            Money(11026, "USD"), Decimal("0.74000000"), False)
        again = await client.start_payment(SKYLARK, co.checkout_id, token.payment_token)
        assert (again.transaction_id, again.debited_amount, again.idempotent) == (
            paid.transaction_id, Money(11026, "USD"), True)
        status = await client.order_status(SKYLARK, co.checkout_id)
        assert (status.status, status.debited_amount, status.fx_rate) == (
            "PAID", Money(11026, "USD"), Decimal("0.74000000"))


async def test_client_without_quote_sends_no_fx_quote_id_and_reads_the_current_rate(flow: Flow) -> None:
    m = await flow.autonomous(Money(50000, "USD"), ["Skylark Air"])
    await flow.post("/_admin/setFxRate", {"currency": "SGD", "usdRate": "0.90"})
    async with amp_client(flow) as client:
        co = await client.start_checkout(SKYLARK, [{"productId": "SKY-SIN-KUL-1900", "quantity": 1}])
        assert co.merchant_name is not None and co.merchant_mcc is not None
        checkout = CpCheckout.build(co.total, merchant_id="SKYLARK-AIR", merchant_name=co.merchant_name,
                                    merchant_mcc=co.merchant_mcc)
        raw = {"checkoutId": co.checkout_id, "totalAmount": co.total.to_cent(), "merchantId": "SKYLARK-AIR",
               "merchantName": co.merchant_name, "merchantMcc": co.merchant_mcc}
        l3 = flow.l3(m["l2Serialized"], raw)
        token = await client.apply_credential(m["sessionId"], l1=m["l1Serialized"], l2=m["l2Serialized"],
                                              l3=l3, checkout=checkout)
        assert (token.fx_quote_id, token.fx_rate) == (None, Decimal("0.90000000"))
        assert token.payment_token is not None
        paid = await client.start_payment(SKYLARK, co.checkout_id, token.payment_token, l1=m["l1Serialized"],
                                          l2=m["l2Serialized"], l3=l3)
        assert (paid.debited_amount, paid.fx_rate) == (Money(13410, "USD"), Decimal("0.90000000"))
        with pytest.raises(AmpError) as exc:
            await client.apply_credential(m["sessionId"], l1=m["l1Serialized"], l2=m["l2Serialized"], l3=l3,
                                          checkout=checkout, fx_quote_id=" ")
        assert exc.value.code == "PARAM_ILLEGAL" and "fx_quote_id" in exc.value.message
