"""The merchant contract: catalogue search, checkout, bad input and the error envelope.

The spec leaves discovery and checkout to the merchant (amp-protocol.md 6); these hold a
merchant to the reference services' shapes (amp-reference-wire.md 3.6, 4.2), which is what a
Buyer Agent reads to build the checkout it pays.
"""

from __future__ import annotations

from amp_tools.conformance.context import Ctx, Fail
from amp_tools.conformance.registry import check
from amp_tools.conformance.shapes import obj, shape_problems


@check("merchant.search.shape", "merchant", "MUST", "amp-protocol.md 6 [SAMPLE]; amp-reference-wire.md 3.6",
       "searchProducts answers {success:true, data:[{id, name, price:<int minor units>, currency}]}")
async def search_shape(ctx: Ctx) -> str:
    search = await ctx.search(owner=True)
    items = search.json.get("data")
    problems = []
    if not isinstance(items, list) or not items:
        problems.append("data: expected a non-empty list for the query '*'")
    else:
        for i, item in enumerate(items[:20]):
            problems += [f"data[{i}].{p}" for p in shape_problems(item, {"id": str, "name": str, "price": int,
                                                                          "currency": str})]
    if problems:
        raise Fail("; ".join(problems), search.exchange)
    return f"{len(items)} products" if isinstance(items, list) else ""


@check("merchant.checkout.shape", "merchant", "MUST", "amp-protocol.md 2.5 step 13, 6; amp-reference-wire.md 3.6",
       "startCheckout answers {success:true, data:{checkoutId, items, totalAmount:{cent, currency}, merchantId}}")
async def checkout_shape(ctx: Ctx) -> str:
    m = await ctx.merchant(owner=True)
    data = m.checkout_answer.json.get("data")
    problems = shape_problems(data, {"checkoutId": str, "items": list, "totalAmount": dict, "merchantId": str})
    if isinstance(data, dict) and isinstance(data.get("totalAmount"), dict):
        problems += [f"totalAmount.{p}" for p in shape_problems(data["totalAmount"], {"cent": int, "currency": str})]
    if problems:
        raise Fail("; ".join(problems), m.checkout_answer.exchange)
    return f"{m.first_checkout_id}: {m.price_minor} {m.currency}"


@check("merchant.rejects_bad_quantity", "merchant", "SHOULD", "amp-protocol.md 6 [SAMPLE]; amp-reference-wire.md 4.2",
       "startCheckout with quantity 0 creates no checkout (HTTP 422 or success:false)")
async def bad_quantity(ctx: Ctx) -> str:
    m = await ctx.merchant()
    ans = await ctx.probe.post(f"{m.base}/startCheckout", {"items": [{"productId": m.product_id, "quantity": 0}]})
    if ans.ok or obj(ans.json.get("data")).get("checkoutId"):
        raise Fail("a checkout of quantity 0 was created", ans.exchange)
    return f"refused ({ans.describe()})"


@check("merchant.error_envelope", "merchant", "MUST", "amp-protocol.md 4.3, 11 item 1; amp-reference-wire.md 4.2",
       "a merchant business error is HTTP 200 with success:false, errorCode and errorMessage")
async def merchant_error_envelope(ctx: Ctx) -> str:
    m = await ctx.merchant()
    ans = await ctx.probe.post(f"{m.base}/startPayment", {"checkoutId": f"CKO-CONF{ctx.run_id.upper()}",
                                                          "paymentToken": "28166623" + "0" * 32})
    body = ans.json
    problems = []
    if ans.status != 200:
        problems.append(f"HTTP {ans.status}: business errors are HTTP 200")
    if body.get("success") is not False:
        problems.append(f"success: expected false for an unknown checkout, got {body.get('success')!r}")
    problems += shape_problems(body, {"errorCode": str, "errorMessage": str})
    if problems:
        raise Fail("; ".join(problems), ans.exchange)
    return f"{body['errorCode']}: {body['errorMessage']}"
