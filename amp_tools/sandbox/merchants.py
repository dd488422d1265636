"""The merchants (Seller Agents): catalogue search, checkout, negotiation, payment, refunds.

Reference contracts (`searchProducts`, `startCheckout`, `startPayment`) keep their shapes
under ``/merchants/{merchantId}``; quotes, order status and refunds are extensions. Unlike the
reference merchant, ``startPayment`` verifies the mandate chain against its own checkout
record before charging (amp-protocol.md 9, item 22), and refuses a checkout whose prices
changed since it was made.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from amp_tools.amp.chain import ChainError, NonceCache, verify_chain
from amp_tools.money import Money, parse_rate
from amp_tools.sandbox import codes as C
from amp_tools.sandbox.catalog import MerchantSeed, default_catalog
from amp_tools.sandbox.codes import Refusal, Timeout, UpstreamError
from amp_tools.sandbox.deviations import MERCHANT_CHAIN_UNCHECKED, TOKEN_AMOUNT_UNBOUND
from amp_tools.sandbox.roles import Roles
from amp_tools.sandbox.state import Checkout, Context, MerchantRuntime, Quote
from amp_tools.sandbox.timefmt import iso_z

__all__ = ["Merchants"]


class Merchants:
    def __init__(self, ctx: Context, roles: Roles, catalog: list[MerchantSeed] | None = None) -> None:
        self.ctx = ctx
        self.roles = roles
        self.nonces: dict[str, NonceCache] = {}
        for seed in catalog or default_catalog():
            ctx.state.merchants[seed.merchant_id] = MerchantRuntime(
                seed, {p.product_id: p for p in seed.products}, {p.product_id: 0 for p in seed.products})
            self.nonces[seed.merchant_id] = NonceCache()

    def get(self, merchant_id: str) -> MerchantRuntime:
        rt = self.ctx.state.merchants.get(merchant_id)
        if rt is None:
            raise Refusal(C.MERCHANT_NOT_FOUND, f"Merchant not found: {merchant_id}")
        return rt

    # ------------------------------------------------------------------ registry (extension)
    def profile(self, rt: MerchantRuntime) -> dict[str, Any]:
        s = rt.seed
        return {"merchantId": s.merchant_id, "name": s.name, "mcc": s.mcc, "categories": list(s.categories),
                "regions": list(s.regions), "currencies": [s.currency], "baseUrl": f"/merchants/{s.merchant_id}",
                "description": s.description, "maxNegotiationRounds": s.max_rounds,
                "idempotentPerCheckout": True}

    def registry(self, *, query: str | None, category: str | None, region: str | None,
                 currency: str | None) -> list[dict[str, Any]]:
        out = []
        words = [w for w in (query or "").lower().split() if w]
        for rt in self.ctx.state.merchants.values():
            s = rt.seed
            if category and category.lower() not in {c.lower() for c in s.categories}:
                continue
            if region and region.upper() not in s.regions:
                continue
            if currency and currency.upper() != s.currency:
                continue
            if words:
                text = " ".join([s.merchant_id, s.name, s.description, *s.categories, *s.regions,
                                 *(p.name + " " + p.description for p in rt.products.values())]).lower()
                if not any(w in text for w in words):
                    continue
            out.append(self.profile(rt))
        return out

    # ------------------------------------------------------------------ catalogue
    def search(self, merchant_id: str, query: str) -> list[dict[str, Any]]:
        rt = self.get(merchant_id)
        q = (query or "").strip().lower()
        if not q:
            raise Refusal(C.INVALID_PARAM, "query must not be empty; use '*' to list every product")
        words = q.split()
        out = []
        for p in rt.products.values():
            text = f"{p.name} {p.description} {p.category} {p.region}".lower()
            if q == "*" or any(w in text for w in words):
                out.append({"id": p.product_id, "name": p.name, "price": p.price, "currency": rt.seed.currency,
                            "imageUrl": p.image_url, "description": p.description, "category": p.category,
                            "region": p.region, "stock": p.stock, "merchantId": rt.seed.merchant_id,
                            "merchantName": rt.seed.name, "merchantMcc": rt.seed.mcc})
        return out

    def _lines(self, rt: MerchantRuntime, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not items:
            raise Refusal(C.INVALID_PARAM, "items must list at least one {productId, quantity}")
        lines: dict[str, int] = {}
        for it in items:
            pid, qty = str(it.get("productId") or ""), it.get("quantity")
            if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
                raise Refusal(C.INVALID_PARAM, f"quantity of {pid!r} must be an integer >= 1")
            p = rt.products.get(pid)
            if p is None:
                raise Refusal(C.PRODUCT_NOT_FOUND, f"Product not found: {pid}")
            lines[pid] = lines.get(pid, 0) + qty
        for pid, qty in lines.items():
            if rt.products[pid].stock < qty:
                raise Refusal(C.INSUFFICIENT_STOCK,
                              f"Insufficient stock for {pid}: requested {qty}, available {rt.products[pid].stock}")
        return [{"productId": pid, "quantity": qty, "unitPrice": rt.products[pid].price} for pid, qty in lines.items()]

    def _new_checkout(self, rt: MerchantRuntime, lines: list[dict[str, Any]], total: Money,
                      quote_id: str | None = None) -> Checkout:
        now = self.ctx.now()
        co = Checkout(self.ctx.ids.checkout(), rt.seed.merchant_id, lines, total, now,
                      now + timedelta(seconds=self.ctx.config.checkout_ttl_seconds),
                      {line["productId"]: rt.price_versions[line["productId"]] for line in lines}, quote_id=quote_id)
        rt.checkouts[co.checkout_id] = co
        return co

    def start_checkout(self, merchant_id: str, items: list[dict[str, Any]]) -> Checkout:
        rt = self.get(merchant_id)
        lines = self._lines(rt, items)
        total = Money(sum(line["unitPrice"] * line["quantity"] for line in lines), rt.seed.currency)
        return self._new_checkout(rt, lines, total)

    def checkout_view(self, co: Checkout) -> dict[str, Any]:
        seed = self.ctx.state.merchants[co.merchant_id].seed
        return {"checkoutId": co.checkout_id,
                "items": [{"productId": i["productId"], "quantity": i["quantity"]} for i in co.items],
                "totalAmount": co.total.to_cent(), "merchantId": co.merchant_id, "merchantName": seed.name,
                "merchantMcc": seed.mcc, "expiresAt": iso_z(co.expires_at), "quoteId": co.quote_id,
                "lines": [{"productId": i["productId"], "quantity": i["quantity"],
                           "unitPrice": Money(i["unitPrice"], co.total.currency).to_cent()} for i in co.items]}

    def _price_changes(self, rt: MerchantRuntime, versions: dict[str, int]) -> list[str]:
        return [pid for pid, v in versions.items() if rt.price_versions.get(pid) != v]

    # ------------------------------------------------------------------ negotiation (extension)
    def _quote(self, merchant_id: str, quote_id: str) -> tuple[MerchantRuntime, Quote]:
        rt = self.get(merchant_id)
        q = rt.quotes.get(quote_id)
        if q is None:
            raise Refusal(C.QUOTE_NOT_FOUND, f"Quote not found: {quote_id}")
        if q.status == "OPEN" and self.ctx.now() >= q.expires_at:
            q.status, q.message = "EXPIRED", "The quote expired; request a new one."
        return rt, q

    def create_quote(self, merchant_id: str, items: list[dict[str, Any]]) -> Quote:
        rt = self.get(merchant_id)
        lines = self._lines(rt, items)
        cur = rt.seed.currency
        total = Money(sum(line["unitPrice"] * line["quantity"] for line in lines), cur)
        floor = Money(sum(rt.products[line["productId"]].floor * line["quantity"] for line in lines), cur)
        ttl = self.ctx.config.quote_ttl_seconds or rt.seed.quote_ttl_seconds
        now = self.ctx.now()
        q = Quote(self.ctx.ids.quote(), merchant_id, lines, total, total, floor, rt.seed.max_rounds, now,
                  now + timedelta(seconds=ttl), {line["productId"]: rt.price_versions[line["productId"]]
                                                 for line in lines})
        rt.quotes[q.quote_id] = q
        return q

    def _require_open(self, rt: MerchantRuntime, q: Quote) -> None:
        if q.status == "EXPIRED":
            raise Refusal(C.QUOTE_EXPIRED, f"Quote {q.quote_id} expired at {iso_z(q.expires_at)}; request a new one")
        if q.status != "OPEN":
            raise Refusal(C.QUOTE_CLOSED, f"Quote {q.quote_id} is {q.status}")
        changed = self._price_changes(rt, q.price_versions)
        if changed:
            q.status, q.message = "EXPIRED", "Prices changed; request a new quote."
            raise Refusal(C.PRICE_CHANGED, f"the price of {', '.join(changed)} changed after quote {q.quote_id}; "
                                           "request a new quote")

    def counter(self, merchant_id: str, quote_id: str, offer: Money) -> Quote:
        rt, q = self._quote(merchant_id, quote_id)
        self._require_open(rt, q)
        if offer.currency != q.total.currency or not offer.is_positive():
            raise Refusal(C.INVALID_PARAM, f"offerAmount must be a positive amount in {q.total.currency}")
        q.round += 1
        q.last_offer = offer
        if offer >= q.floor_total:
            q.total = offer if offer < q.total else q.total
            q.status, q.message = "ACCEPTED", f"Offer accepted at {q.total}."
        elif q.round >= q.max_rounds:
            q.status, q.message = "REJECTED", f"Round limit {q.max_rounds} reached; no deal below our last price."
        else:
            # Concede half of what is left above the floor each round; never below the floor.
            gap = q.total.minor - q.floor_total.minor
            q.total = Money(max(q.floor_total.minor, q.total.minor - gap // 2), q.total.currency)
            q.message = f"We cannot accept {offer}; our counter-offer is {q.total}."
        return q

    def reject_quote(self, merchant_id: str, quote_id: str) -> Quote:
        _, q = self._quote(merchant_id, quote_id)
        if q.status in ("OPEN", "ACCEPTED") and q.checkout_id is None:
            q.status, q.message = "REJECTED", "Quote rejected by the buyer."
        return q

    def accept_quote(self, merchant_id: str, quote_id: str) -> Checkout:
        rt, q = self._quote(merchant_id, quote_id)
        if q.checkout_id is not None:
            return rt.checkouts[q.checkout_id]
        if q.status == "ACCEPTED":
            if self.ctx.now() >= q.expires_at:
                raise Refusal(C.QUOTE_EXPIRED, f"Quote {q.quote_id} expired at {iso_z(q.expires_at)}")
            changed = self._price_changes(rt, q.price_versions)
            if changed:
                raise Refusal(C.PRICE_CHANGED, f"the price of {', '.join(changed)} changed after quote {q.quote_id}")
        else:
            self._require_open(rt, q)
        lines = self._lines(rt, q.items)  # stock may have moved
        co = self._new_checkout(rt, lines, q.total, quote_id=q.quote_id)
        co.price_versions = dict(q.price_versions)
        q.status, q.checkout_id, q.message = "ACCEPTED", co.checkout_id, f"Checkout {co.checkout_id} created."
        return co

    def quote_view(self, q: Quote) -> dict[str, Any]:
        return {"quoteId": q.quote_id, "merchantId": q.merchant_id,
                "items": [{"productId": i["productId"], "quantity": i["quantity"]} for i in q.items],
                "totalAmount": q.total.to_cent(), "listAmount": q.list_total.to_cent(),
                "expiresAt": iso_z(q.expires_at), "round": q.round, "maxRounds": q.max_rounds, "status": q.status,
                "lastOffer": q.last_offer.to_cent() if q.last_offer else None, "message": q.message,
                "checkoutId": q.checkout_id}

    # ------------------------------------------------------------------ payment
    def start_payment(self, merchant_id: str, body: dict[str, Any]) -> tuple[Checkout, bool]:
        """Returns (checkout, replayed).

        Idempotent per checkout before anything else: a paid checkout answers its original
        transaction whatever token (expired, used, absent) or chain the replay carries.
        """
        fault = self.ctx.faults.take("merchant.startPayment")
        if fault == "timeout_before":
            raise Timeout("merchant.startPayment", after=False)
        if fault == "http_500":
            raise UpstreamError("merchant.startPayment")
        rt = self.get(merchant_id)
        cid = str(body.get("checkoutId") or "")
        co = rt.checkouts.get(cid)
        if co is None:
            raise Refusal(C.CHECKOUT_NOT_FOUND, f"Checkout not found: {cid}")
        if co.transaction_id is not None:
            if fault == "timeout_after":
                raise Timeout("merchant.startPayment", after=True)
            return co, True
        if fault == "decline":
            raise Refusal(C.MERCHANT_DECLINED, "payment declined by the merchant (risk rule)")
        token = str(body.get("paymentToken") or "")
        if not token:
            raise Refusal(C.INVALID_PARAM, "paymentToken is required")
        if co.status != "PENDING":  # a lost answer may be retried after expiry; a new payment may not
            if self.ctx.now() >= co.expires_at:
                raise Refusal(C.CHECKOUT_EXPIRED, f"Checkout {cid} expired at {iso_z(co.expires_at)}")
            changed = self._price_changes(rt, co.price_versions)
            if changed:
                raise Refusal(C.PRICE_CHANGED, f"the price of {', '.join(changed)} changed after checkout {cid}; "
                                               "start a new checkout (and re-authorize an IMMEDIATE mandate)")
            self._lines(rt, co.items)  # stock
        if self.ctx.config.require_chain and MERCHANT_CHAIN_UNCHECKED not in self.ctx.config.deviations:
            self._verify_chain(rt, co, body)
        co.status = "PENDING"
        try:
            ans = self.roles.acquirer.pay(checkout_id=cid, amount=co.total, payment_token=token,
                                          merchant_id=merchant_id)
        except Refusal as exc:
            co.status, co.failure = "FAILED", exc.text
            raise Refusal(C.ACQUIRER_FAILED, exc.text, resultCode=exc.extra.get("resultCode", exc.code)) from None
        except UpstreamError as exc:
            co.status, co.failure = "FAILED", f"acquirer HTTP {exc.status}"
            raise Refusal(C.ACQUIRER_FAILED, f"acquirer unavailable (HTTP {exc.status})",
                          resultCode=C.INTERNAL_ERROR) from None
        co.status, co.transaction_id, co.failure = "PAID", str(ans["paymentId"]), None
        network = ans["networkResponse"]["data"]
        payment = self.ctx.state.payments.get(str(network["paymentId"]))
        co.mandate_id = payment.mandate_id if payment else None
        co.debited = Money.from_wire(network["walletAmount"])
        co.debit_rate = parse_rate(network["fxRate"]) if network.get("fxRate") else None
        co.mandate_charge = Money.from_wire(network["mandateAmount"]) if network.get("mandateAmount") else None
        for line in co.items:
            rt.products[line["productId"]].stock -= line["quantity"]
        if fault == "timeout_after":
            raise Timeout("merchant.startPayment", after=True)
        # The payment may have completed on an earlier attempt whose answer was lost.
        return co, bool(ans.get("idempotent"))

    def _verify_chain(self, rt: MerchantRuntime, co: Checkout, body: dict[str, Any]) -> None:
        l1, l2, l3 = body.get("l1Serialized"), body.get("l2Serialized"), body.get("l3Serialized")
        if not l1 or not l2:
            raise Refusal(C.CHAIN_INVALID, "startPayment requires l1Serialized and l2Serialized (and l3Serialized "
                                           "for an AUTONOMOUS mandate): this merchant verifies the mandate chain")
        fingerprint = hashlib.sha256(f"{l1}|{l2}|{l3 or ''}".encode()).hexdigest()
        if co.verified_chain == fingerprint:
            # The same chain for the same checkout (a retry after a lost answer or a refused token) is
            # not a replay; the nonce cache only has to stop it being used for another checkout.
            return
        request: dict[str, Any] | None = {"totalAmount": co.total.to_cent(),
                                          "merchant": {"merchantId": rt.seed.merchant_id,
                                                       "merchantName": rt.seed.name, "merchantMcc": rt.seed.mcc}}
        if TOKEN_AMOUNT_UNBOUND in self.ctx.config.deviations:
            request = None  # the reference merchant never compares the signed checkout with its order
        try:
            verify_chain(str(l1), str(l2), str(l3) if l3 else None, aplus_public_jwk=self.ctx.aplus_key.public_jwk(),
                         expected_iss=self.ctx.config.issuer, expected_aud=self.ctx.config.audience,
                         now=self.ctx.now(), request_checkout=request, nonce_cache=self.nonces[rt.seed.merchant_id])
        except ChainError as exc:
            raise Refusal(C.CHAIN_INVALID, f"chain verification failed: {exc.reason}", check=exc.check) from None
        co.verified_chain = fingerprint

    # ------------------------------------------------------------------ after the payment
    def order_status(self, merchant_id: str, checkout_id: str) -> Checkout:
        rt = self.get(merchant_id)
        co = rt.checkouts.get(checkout_id)
        if co is None:
            raise Refusal(C.CHECKOUT_NOT_FOUND, f"Checkout not found: {checkout_id}")
        return co

    def order_view(self, co: Checkout) -> dict[str, Any]:
        return {"checkoutId": co.checkout_id, "merchantId": co.merchant_id, "status": co.status,
                "transactionId": co.transaction_id, "amount": co.total.to_cent(),
                "refundedAmount": (co.refunded or Money.zero(co.total.currency)).to_cent(), "failure": co.failure,
                **self.debit_view(co)}

    @staticmethod
    def debit_view(co: Checkout) -> dict[str, Any]:
        """Extension fields: what the wallet was debited for this checkout, at which rate, and what the
        network charged the mandate (in the mandate's currency)."""
        return {"debitedAmount": co.debited.to_cent() if co.debited else None,
                "fxRate": format(co.debit_rate, "f") if co.debit_rate is not None else None,
                "mandateAmount": co.mandate_charge.to_cent() if co.mandate_charge else None}

    def refund(self, merchant_id: str, checkout_id: str, amount: Money, reason: str,
               idempotency_key: str | None = None) -> dict[str, Any]:
        """Refund through the network; a repeated `idempotency_key` returns the first answer."""
        rt = self.get(merchant_id)
        co = self.order_status(merchant_id, checkout_id)
        if idempotency_key:
            seen = rt.refunds.get(idempotency_key)
            if seen is not None:
                if seen["checkoutId"] != checkout_id or seen["refundAmount"] != amount.to_cent():
                    raise Refusal(C.INVALID_PARAM, f"idempotencyKey {idempotency_key!r} was already used for "
                                                   "a different refund")
                return {**seen, "idempotent": True}
        if co.transaction_id is None or co.status not in ("PAID", "PARTIALLY_REFUNDED"):
            raise Refusal(C.INVALID_PARAM, f"Checkout {checkout_id} is {co.status}; only a paid order can be refunded")
        rec = self.ctx.state.acquirer[checkout_id]
        assert rec.network_payment_id is not None
        out = self.roles.network.refund(rec.network_payment_id, amount, reason)
        answer = {"refundId": out["refundId"], "checkoutId": checkout_id, "status": co.status,
                  "refundAmount": amount.to_cent(), "refundedAmount": out["refundedAmount"]}
        if idempotency_key:
            rt.refunds[idempotency_key] = answer
        return answer

    def on_refund(self, merchant_id: str, checkout_id: str, refunded: Money, paid: Money) -> None:
        rt = self.ctx.state.merchants.get(merchant_id)
        co = rt.checkouts.get(checkout_id) if rt else None
        if co is not None:
            co.refunded = refunded
            co.status = "REFUNDED" if refunded == paid else "PARTIALLY_REFUNDED"

    # ------------------------------------------------------------------ admin
    def set_price(self, merchant_id: str, product_id: str, minor: int) -> None:
        rt = self.get(merchant_id)
        p = rt.products.get(product_id)
        if p is None:
            raise Refusal(C.PRODUCT_NOT_FOUND, f"Product not found: {product_id}")
        if minor <= 0:
            raise Refusal(C.INVALID_PARAM, "price must be a positive number of minor units")
        ratio_floor = p.floor * minor // p.price
        p.price, p.floor = minor, ratio_floor
        rt.price_versions[product_id] += 1

    def set_stock(self, merchant_id: str, product_id: str, stock: int) -> None:
        rt = self.get(merchant_id)
        p = rt.products.get(product_id)
        if p is None:
            raise Refusal(C.PRODUCT_NOT_FOUND, f"Product not found: {product_id}")
        if stock < 0:
            raise Refusal(C.INVALID_PARAM, "stock must be >= 0")
        p.stock = stock
