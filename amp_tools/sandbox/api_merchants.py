"""HTTP routes of the merchants (``/merchants/{merchantId}``) and the registry (``/registry``).

The registry and ``orderStatus`` are extensions a reference-like sandbox switches off
(`SandboxConfig.registry`, `SandboxConfig.order_status`): they then answer exactly what a server
without the route answers, HTTP 404 ``{"detail": "Not Found"}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from amp_tools.money import Money
from amp_tools.sandbox.reference_shapes import reference_shape
from amp_tools.sandbox.roles import Roles
from amp_tools.sandbox.wire import Body, ItemsIn, merchant_error, money_in, run

__all__ = ["merchant_router", "registry_router"]


def _absent() -> JSONResponse:
    """What FastAPI answers for a route it does not have."""
    return JSONResponse({"detail": "Not Found"}, status_code=404)


def registry_router(roles: Roles) -> APIRouter:
    ctx, mer = roles.ctx, roles.merchants
    r = APIRouter(prefix="/registry", tags=["extension"])

    @r.get("/merchants", summary="Discover merchants by keyword, category, region or currency")
    async def merchants(query: str | None = None, category: str | None = None, region: str | None = None,
                        currency: str | None = None) -> Any:
        if not ctx.config.registry:
            return _absent()
        return run(ctx, lambda: {"success": True, "data": mer.registry(query=query, category=category, region=region,
                                                                        currency=currency)}, merchant_error)

    @r.get("/merchants/{merchant_id}")
    async def merchant(merchant_id: str) -> Any:
        if not ctx.config.registry:
            return _absent()
        return run(ctx, lambda: {"success": True, "data": mer.profile(mer.get(merchant_id))}, merchant_error)

    return r


def merchant_router(roles: Roles) -> APIRouter:
    ctx, mer = roles.ctx, roles.merchants
    r = APIRouter(prefix="/merchants/{merchant_id}", tags=["merchant"])

    def ok(data: Any) -> dict[str, Any]:
        return {"success": True, "data": data}

    @r.post("/searchProducts")
    async def search(merchant_id: str, body: Body) -> Any:
        b = body.raw()
        return reference_shape(ctx, "searchProducts", run(
            ctx, lambda: ok(mer.search(merchant_id, str(b.get("query") or ""))), merchant_error))

    @r.post("/startCheckout")
    async def start_checkout(merchant_id: str, body: ItemsIn) -> Any:
        items = [i.model_dump() for i in body.items]
        return reference_shape(ctx, "startCheckout", run(
            ctx, lambda: ok(mer.checkout_view(mer.start_checkout(merchant_id, items))), merchant_error))

    @r.post("/startPayment")
    async def start_payment(merchant_id: str, body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            co, replay = mer.start_payment(merchant_id, b)
            data: dict[str, Any] = {"success": True, "transactionId": co.transaction_id,
                                    "message": "Payment already completed (idempotent)" if replay
                                    else "Payment processed successfully", "status": co.status}
            debit = mer.debit_view(co)
            if debit["debitedAmount"] is not None:
                data["debitedAmount"] = debit["debitedAmount"]
            if debit["fxRate"] is not None:
                data["fxRate"] = debit["fxRate"]
            if debit["mandateAmount"] is not None:
                data["mandateAmount"] = debit["mandateAmount"]
            if replay:
                data["idempotent"] = True
            return ok(data)
        return reference_shape(ctx, "startPayment", run(ctx, work, merchant_error))

    @r.post("/quotes", tags=["extension"], summary="Open a negotiable quote at list price")
    async def create_quote(merchant_id: str, body: ItemsIn) -> Any:
        items = [i.model_dump() for i in body.items]
        return run(ctx, lambda: ok(mer.quote_view(mer.create_quote(merchant_id, items))), merchant_error)

    @r.get("/quotes/{quote_id}", tags=["extension"])
    async def get_quote(merchant_id: str, quote_id: str) -> Any:
        return run(ctx, lambda: ok(mer.quote_view(mer._quote(merchant_id, quote_id)[1])), merchant_error)

    @r.post("/quotes/{quote_id}/counter", tags=["extension"], summary="Counter-offer a total")
    async def counter(merchant_id: str, quote_id: str, body: Body) -> Any:
        b = body.raw()
        return run(ctx, lambda: ok(mer.quote_view(mer.counter(merchant_id, quote_id,
                                                              money_in(b.get("offerAmount"), "offerAmount")))),
                   merchant_error)

    @r.post("/quotes/{quote_id}/accept", tags=["extension"], summary="Turn the quote into a checkout")
    async def accept(merchant_id: str, quote_id: str) -> Any:
        return run(ctx, lambda: ok(mer.checkout_view(mer.accept_quote(merchant_id, quote_id))), merchant_error)

    @r.post("/quotes/{quote_id}/reject", tags=["extension"])
    async def reject(merchant_id: str, quote_id: str) -> Any:
        return run(ctx, lambda: ok(mer.quote_view(mer.reject_quote(merchant_id, quote_id))), merchant_error)

    @r.post("/orderStatus", tags=["extension"])
    async def order_status(merchant_id: str, body: Body) -> Any:
        if not ctx.config.order_status:
            return _absent()
        b = body.raw()
        return run(ctx, lambda: ok(mer.order_view(mer.order_status(merchant_id, str(b.get("checkoutId") or "")))),
                   merchant_error)

    @r.post("/refund", tags=["extension"], summary="Refund all or part of a paid order")
    async def refund(merchant_id: str, body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            cid = str(b.get("checkoutId") or "")
            co = mer.order_status(merchant_id, cid)
            amount = money_in(b["amount"], "amount") if b.get("amount") is not None else (
                co.total - (co.refunded or Money.zero(co.total.currency)))
            key = b.get("idempotencyKey")
            return ok(mer.refund(merchant_id, cid, amount, str(b.get("reason") or ""), str(key) if key else None))
        return run(ctx, work, merchant_error)

    return r
