"""Test-harness routes (``/_admin``): time, IDV mode, faults, prices, stock, FX, the payment record."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from amp_tools.sandbox import codes as C
from amp_tools.sandbox.codes import Refusal
from amp_tools.sandbox.roles import Roles
from amp_tools.sandbox.timefmt import iso_z
from amp_tools.sandbox.wire import Body, merchant_error, run

__all__ = ["admin_router", "payments_record"]


def payments_record(roles: Roles) -> list[dict[str, Any]]:
    """The sandbox's own record of every payment, for reconciliation against a client's ledger."""
    st = roles.ctx.state
    out = []
    for p in st.payments.values():
        token = st.payment_tokens.get(p.token)
        out.append({
            "paymentId": p.payment_id, "paymentRequestId": p.payment_request_id, "checkoutId": p.checkout_id,
            "merchantId": p.merchant_id, "mandateId": p.mandate_id, "status": p.status,
            "transactionId": st.acquirer[p.checkout_id].payment_id if p.checkout_id in st.acquirer else None,
            "amount": p.amount.to_cent(), "mandateAmount": p.mandate_amount.to_cent(),
            "walletAmount": p.wallet_amount.to_cent(), "fxRate": format(token.rate, "f") if token else None,
            "walletFxRate": format(p.wallet_rate, "f") if p.wallet_rate is not None else None,
            "fxQuoteId": token.fx_quote_id if token else None,
            "refunded": p.refunded.to_cent() if p.refunded else None,
            "resultCode": p.result_code, "createdAt": iso_z(p.created_at)})
    return out


def admin_router(roles: Roles) -> APIRouter:
    ctx = roles.ctx
    r = APIRouter(prefix="/_admin", tags=["admin"])

    def ok(data: Any) -> dict[str, Any]:
        return {"success": True, "data": data}

    @r.post("/advanceTime")
    async def advance_time(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            seconds = b.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise Refusal(C.INVALID_PARAM, "seconds must be a non-negative number")
            advance = getattr(ctx.clock, "advance", None)
            if advance is None:
                raise Refusal(C.INVALID_PARAM, "this sandbox runs on a clock that cannot be moved")
            advance(seconds=seconds)
            return ok({"now": iso_z(ctx.now())})
        return run(ctx, work, merchant_error)

    @r.get("/now")
    async def now() -> Any:
        return ok({"now": iso_z(ctx.now())})

    @r.post("/idvMode")
    async def idv_mode(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            mode = b.get("mode")
            if mode not in ("auto", "manual", "reject"):
                raise Refusal(C.INVALID_PARAM, f"mode {mode!r} must be 'auto', 'manual' or 'reject'")
            ctx.idv_mode = mode
            return ok({"mode": mode})
        return run(ctx, work, merchant_error)

    @r.post("/fault")
    async def fault(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            target, mode = b.get("target"), b.get("mode")
            if mode == "reset":
                ctx.faults.reset(target if isinstance(target, str) else None)
            else:
                try:
                    ctx.faults.arm(str(target), str(mode), int(b.get("count") or 1))
                except ValueError as exc:
                    raise Refusal(C.INVALID_PARAM, str(exc)) from None
            return ok({"armed": ctx.faults.armed()})
        return run(ctx, work, merchant_error)

    @r.post("/setPrice")
    async def set_price(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            roles.merchants.set_price(str(b.get("merchantId")), str(b.get("productId")), int(b.get("cent") or 0))
            return ok(None)
        return run(ctx, work, merchant_error)

    @r.post("/setStock")
    async def set_stock(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            roles.merchants.set_stock(str(b.get("merchantId")), str(b.get("productId")), int(b.get("stock") or 0))
            return ok(None)
        return run(ctx, work, merchant_error)

    @r.post("/setFxRate", summary="Set one currency's value in USD (the base of every cross rate)")
    async def set_fx(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            try:
                ctx.fx.set_usd_rate(str(b.get("currency")), str(b.get("usdRate")))
            except ValueError as exc:
                raise Refusal(C.INVALID_PARAM, str(exc)) from None
            return ok(None)
        return run(ctx, work, merchant_error)

    @r.get("/payments")
    async def payments() -> Any:
        return run(ctx, lambda: ok(payments_record(roles)), merchant_error)

    return r
