"""HTTP routes of Alipay+ (``/network``), the wallet (``/mpp``) and the acquirer (``/acquirer``).

The roles call each other in-process; these routes expose the hops a client or a test may
want to drive directly, plus the wallet functions the spec names but the reference lacks
(revoke, limit adjustment, delegation limits, mandate detail) and the non-AMP refund/dispute.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from amp_tools.money import Money
from amp_tools.sandbox import codes as C
from amp_tools.sandbox.codes import Refusal
from amp_tools.sandbox.roles import Roles
from amp_tools.sandbox.state import Context, PaymentToken
from amp_tools.sandbox.timefmt import iso_z
from amp_tools.sandbox.wire import Body, aplus_error, aplus_ok, money_in, mpp_result, run

__all__ = ["acquirer_router", "mpp_router", "network_router"]


def _param(exc: Refusal) -> Refusal:
    return Refusal(C.PARAM_ILLEGAL, exc.text) if exc.code == C.INVALID_PARAM else exc


def network_router(roles: Roles) -> APIRouter:
    ctx, net = roles.ctx, roles.network
    r = APIRouter(prefix="/network", tags=["network"])

    def wrap(work: Any) -> Any:
        return run(ctx, lambda: aplus_ok(work()), lambda e: aplus_error(_param(e)))

    @r.post("/applyCredential")
    async def apply_credential(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            token, m = net.apply_credential(token_id=str(b.get("tokenId") or ""),
                                            mandate_id=str(b.get("mandateId") or ""),
                                            l1=b.get("l1Serialized"), l2=b.get("l2Serialized"),
                                            l3=b.get("l3Serialized"), checkout=b.get("checkout"),
                                            fx_quote_id=fx_quote_in(b))
            view = net.mandate_view(m)
            return {"paymentToken": token.token, "mandateType": m.mandate_type, "mandateStatus": m.status,
                    "deductedAmount": token.mandate_amount.to_cent(), "budget": view["budget"],
                    "expiresAt": iso_z(token.expires_at), **rate_lock_view(ctx, token)}
        return wrap(work)

    @r.post("/pay")
    async def pay(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            p, replay = net.pay(b)
            out = {"paymentId": p.payment_id, "status": p.status, "amount": p.amount.to_cent(),
                   "walletAmount": p.wallet_amount.to_cent(), "mandateAmount": p.mandate_amount.to_cent(),
                   "fxRate": format(p.wallet_rate, "f") if p.wallet_rate is not None else None}
            return {**out, "idempotent": True} if replay else out
        return wrap(work)

    @r.get("/mandate/{mandate_id}")
    async def get_mandate(mandate_id: str) -> Any:
        return wrap(lambda: net.mandate_view(net.mandate(mandate_id)))

    @r.post("/mandate/revoke")
    async def revoke(body: Body) -> Any:
        b = body.raw()
        return wrap(lambda: net.mandate_view(net.revoke(str(b.get("mandateId") or ""))))

    @r.post("/mandate/adjustLimit")
    async def adjust_limit(body: Body) -> Any:
        b = body.raw()
        return wrap(lambda: net.mandate_view(net.adjust_limit(str(b.get("mandateId") or ""),
                                                              money_in(b.get("budgetAmount"), "budgetAmount"))))

    def limits_view() -> dict[str, Any]:
        return {"walletCurrency": ctx.config.wallet_currency,
                "perMandateLimit": ctx.per_task_limit.to_cent() if ctx.per_task_limit else None,
                "dailyLimit": ctx.daily_limit.to_cent() if ctx.daily_limit else None,
                "authorizedToday": roles.wallet.authorized_today(ctx.now()).to_cent(),
                "debitedToday": roles.wallet.debited_today(ctx.now()).to_cent()}

    @r.get("/limits")
    async def get_limits() -> Any:
        return wrap(limits_view)

    @r.post("/limits", summary="Set the wallet's per-task and daily delegation limits (null clears one)")
    async def set_limits(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            new: dict[str, Money | None] = {}
            for field in ("perMandateLimit", "dailyLimit"):
                if field not in b:
                    continue
                value = None if b[field] is None else money_in(b[field], field)
                if value is not None and value.currency != ctx.config.wallet_currency:
                    raise Refusal(C.PARAM_ILLEGAL, f"{field} must be in the wallet currency "
                                                   f"{ctx.config.wallet_currency}, got {value.currency}")
                new[field] = value
            if "perMandateLimit" in new:
                ctx.per_task_limit = new["perMandateLimit"]
            if "dailyLimit" in new:
                ctx.daily_limit = new["dailyLimit"]
            return limits_view()
        return wrap(work)

    @r.post("/refund", tags=["extension"])
    async def refund(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            p = ctx.state.payments.get(str(b.get("paymentId") or ""))
            cur = p.amount.currency if p else "USD"
            amount = money_in(b.get("amount"), "amount") if b.get("amount") is not None else (
                (p.amount - (p.refunded or Money.zero(cur))) if p else Money.zero(cur))
            return net.refund(str(b.get("paymentId") or ""), amount, str(b.get("reason") or ""))
        return wrap(work)

    @r.post("/dispute", tags=["extension"])
    async def dispute(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            p = ctx.state.payments.get(str(b.get("paymentId") or ""))
            if p is None:
                raise Refusal(C.PAYMENT_NOT_FOUND, f"payment not found, paymentId={b.get('paymentId')}")
            token = ctx.state.payment_tokens[p.token]
            return {"disputeId": f"DSP-{ctx.ids.hex32()[:8].upper()}", "paymentId": p.payment_id, "status": "OPEN",
                    "reason": str(b.get("reason") or ""), "mandateId": p.mandate_id,
                    "evidence": {"l2Retained": bool(ctx.state.mandates[p.mandate_id].l2),
                                 "l3Retained": token.l3 is not None}}
        return wrap(work)

    @r.post("/agents/register", summary="Operator onboarding: register an agent's public key (KYA)")
    async def register_agent(body: Body) -> Any:
        b = body.raw()
        jwk = b.get("publicJwk")
        return wrap(lambda: net.register_agent(str(b.get("agentId") or ""), jwk if isinstance(jwk, dict) else {}))

    @r.get("/keys", tags=["extension"], summary="Alipay+ (L1) and wallet (L2) public keys, as a JWKS")
    async def public_keys() -> Any:
        # The spec makes the Alipay+ public key available to all participants (amp-protocol.md 1.2).
        return {"keys": [ctx.aplus_key.public_jwk(), ctx.isp_key.public_jwk()]}

    @r.get("/fxRate", tags=["extension"])
    async def fx_rate(from_: str = Query("", alias="from"), to: str = "") -> Any:
        return run(ctx, lambda: aplus_ok(_fx(roles, from_, to)), lambda e: aplus_error(e))

    return r


def _fx(roles: Roles, src: str, dst: str) -> dict[str, Any]:
    missing = [name for name, value in (("from", src), ("to", dst)) if not value.strip()]
    if missing:
        raise Refusal(C.PARAM_ILLEGAL, f"missing query parameter(s) {', '.join(missing)}: pass the ISO 4217 codes "
                                       "to convert, e.g. /network/fxRate?from=MYR&to=USD")
    q = roles.network.quote_fx(src, dst)
    return {"from": q.src, "to": q.dst, "rate": format(q.rate, "f"), "rounding": "UP", "quotedAt": iso_z(q.quoted_at),
            "expiresAt": iso_z(q.expires_at), "quoteId": q.quote_id}


def fx_quote_in(body: dict[str, Any]) -> str | None:
    """The optional ``fxQuoteId`` extension field of a token request."""
    value = body.get("fxQuoteId")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise Refusal(C.PARAM_ILLEGAL, f"fxQuoteId must be the quoteId string of GET /network/fxRate, got {value!r}")
    return value


def rate_lock_view(ctx: Context, token: PaymentToken) -> dict[str, Any]:
    """What a token request answers about its debit rate (extension fields)."""
    converted = token.amount.currency != ctx.config.wallet_currency and token.rate_locked_until is not None
    return {"fxQuoteId": token.fx_quote_id, "fxRate": format(token.wallet_rate, "f") if converted else None,
            "fxRateLockedUntil": iso_z(token.rate_locked_until) if converted and token.rate_locked_until else None}


def mpp_router(roles: Roles) -> APIRouter:
    ctx, wallet = roles.ctx, roles.wallet
    r = APIRouter(prefix="/mpp", tags=["mpp"])

    def refused(e: Refusal) -> Any:
        return {"result": mpp_result(e.code, e.text, ok=False)}

    @r.post("/inquiryAuthorization")
    async def inquiry(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            sid = str(b.get("authSessionId") or "")
            wallet.complete_due()
            auth = ctx.state.mpp_auths.get(sid)
            if auth is None:
                raise Refusal(C.SESSION_NOT_FOUND, f"session not found: {sid}")
            return {"result": mpp_result(), "authSessionId": sid, "authId": auth.auth_id, "authStatus": auth.status,
                    "authContext": [auth.context], "idvResult": auth.idv_result}
        return run(ctx, work, refused)

    @r.post("/completeIdv", summary="The person's trusted surface: approve or decline IDV (never an agent tool)")
    async def complete_idv(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            sid = str(b.get("authSessionId") or "")
            auth = wallet.complete_idv(sid, approve=b.get("approve", True) is not False)
            return {"result": mpp_result(), "authSessionId": sid,
                    "idvResult": "PASS" if auth.status == "SUCCESS" else "FAIL"}
        return run(ctx, work, refused)

    return r


def acquirer_router(roles: Roles) -> APIRouter:
    ctx, acq = roles.ctx, roles.acquirer
    r = APIRouter(prefix="/acquirer", tags=["acquirer"])

    @r.post("/pay")
    async def pay(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            amount = money_in(b.get("amount"), "amount")
            return aplus_ok(acq.pay(checkout_id=str(b.get("checkoutId") or ""), amount=amount,
                                    payment_token=str(b.get("paymentToken") or ""),
                                    merchant_id=str(b.get("merchantId") or "")))
        return run(ctx, work, aplus_error)

    return r
