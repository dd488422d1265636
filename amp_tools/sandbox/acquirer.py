"""The acquirer: CGCP routing of payment tokens and the APS request to Alipay+.

Idempotent per checkout: a checkout whose payment succeeded returns the stored answer; one
whose answer was lost (timeout) is re-sent with the same paymentRequestId, so Alipay+'s own
idempotency settles it; a failed one gets a fresh paymentRequestId for the next attempt.
"""

from __future__ import annotations

from typing import Any

from amp_tools.money import Money
from amp_tools.sandbox import codes as C
from amp_tools.sandbox.codes import Refusal, Timeout, UpstreamError
from amp_tools.sandbox.roles import Roles
from amp_tools.sandbox.state import AcquirerRecord, Context

__all__ = ["Acquirer", "cgcp_routing"]

_RULE = ("FixedPrefix='28' + version='1' + institution='666' + businessType='23'")


def cgcp_routing(token: str) -> dict[str, Any]:
    """Parse the CGCP header; raise `Refusal(UNKNOWN_NETWORK)` with the reference text when it does not route."""
    parts = {"FixedPrefix": token[0:2], "version": token[2:3], "institution": token[3:6], "businessType": token[6:8]}
    if token[:8] != "28166623" or len(token) < 24:
        desc = " ".join(f"{k}={v!r}" for k, v in parts.items())
        raise Refusal(C.UNKNOWN_NETWORK,
                      f"CGCP: token '{token[:8]}...' {desc} does not match A+ routing rule ({_RULE})")
    return {"paymentToken": token, "identifiedNetwork": "AlipayPlus", "cgcpPrefix": "28166623", "prefixMatched": True,
            "routingDetail": {"iin": "28", "protocolVersion": "1", "institutionCode": "666", "businessType": "23",
                              "iinIdentifiedFamily": "AlipayPlus-family"}}


class Acquirer:
    def __init__(self, ctx: Context, roles: Roles) -> None:
        self.ctx = ctx
        self.roles = roles

    def pay(self, *, checkout_id: str, amount: Money, payment_token: str, merchant_id: str) -> dict[str, Any]:
        fault = self.ctx.faults.take("acquirer.pay")
        if fault == "timeout_before":
            raise Timeout("acquirer.pay", after=False)
        if fault == "http_500":
            raise UpstreamError("acquirer.pay")
        st = self.ctx.state
        rt = st.merchants.get(merchant_id)
        if rt is None:
            raise Refusal(C.INVALID_PARAM, f"merchant {merchant_id!r} is not onboarded with this acquirer")
        routing = cgcp_routing(payment_token)
        rec = st.acquirer.get(checkout_id)
        if rec is not None and rec.status == "SUCCESS" and rec.last_response is not None:
            return {**rec.last_response, "idempotent": True}
        if rec is None or rec.status == "FAIL":
            rec = AcquirerRecord(checkout_id, merchant_id, self.ctx.ids.hex32(), self.ctx.ids.payment_request())
            st.acquirer[checkout_id] = rec
        if fault == "decline":
            rec.status = "FAIL"
            raise Refusal(C.INTERNAL_ERROR, "acquirer declined the payment (merchant risk rule)")
        seed = rt.seed
        co = rt.checkouts.get(checkout_id)
        goods = [{"referenceGoodsId": i["productId"], "goodsName": rt.products[i["productId"]].name,
                  "goodsUnitAmount": Money(i["unitPrice"], amount.currency).to_aps(),
                  "goodsQuantity": str(i["quantity"])} for i in (co.items if co else [])]
        body = {
            "paymentRequestId": rec.payment_request_id, "pspId": self.ctx.config.wallet_name,
            "order": {"referenceOrderId": checkout_id, "orderDescription": f"{seed.name} order {checkout_id}",
                      "orderAmount": amount.to_aps(),
                      "merchant": {"referenceMerchantId": merchant_id, "merchantMCC": seed.mcc,
                                   "merchantName": seed.name, "merchantDisplayName": seed.name,
                                   "merchantAddress": {"region": seed.country, "city": seed.city}},
                      "goods": goods, "env": {}},
            "paymentAmount": amount.to_aps(),
            "paymentMethod": {"paymentMethodType": "CONNECT_WALLET", "paymentMethodId": payment_token,
                              "paymentMethodMetaData": {"tokenRequestor": "OTHER",
                                                        "tokenServiceProvider": "ALIPAY_PLUS",
                                                        "tokenUser": "ShoppingAgent"}},
            "paymentFactor": {"isTokenizationPayment": "true", "tokenizationPaymentScenario": "AgenticPay"},
        }
        try:
            payment, replayed = self.roles.network.pay(body)
        except Refusal as exc:
            rec.status = "FAIL"
            raise Refusal(C.INTERNAL_ERROR, f"A+ network processing failed: {exc.text}", resultCode=exc.code) from None
        except UpstreamError as exc:
            rec.status = "FAIL"
            raise Refusal(C.INTERNAL_ERROR, f"A+ network processing failed: HTTP {exc.status}",
                          resultCode=C.PAYMENT_FAILED) from None
        rec.status, rec.network_payment_id, rec.processed_at = "SUCCESS", payment.payment_id, self.ctx.now()
        rec.last_response = {
            "paymentId": rec.payment_id, "paymentRequestId": rec.payment_request_id, "checkoutId": checkout_id,
            "amount": amount.to_cent(), "cgcpRouting": routing,
            "networkResponse": {"success": True, "resultCode": "SUCCESS", "resultMessage": "SUCCESS",
                                "data": {"paymentId": payment.payment_id, "status": "SUCCESS",
                                         "amount": payment.amount.to_cent(),
                                         "walletAmount": payment.wallet_amount.to_cent(),
                                         "mandateAmount": payment.mandate_amount.to_cent(),
                                         "fxRate": (format(payment.wallet_rate, "f")
                                                    if payment.wallet_rate is not None else None)}},
            "processedAt": rec.processed_at.isoformat()}
        if fault == "timeout_after":
            raise Timeout("acquirer.pay", after=True)
        # A re-sent request whose payment the network had already completed is a replay too.
        return {**rec.last_response, "idempotent": True} if replayed else dict(rec.last_response)
