"""HTTP routes of the Credential Provider (``/credential-provider``), reference shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from amp_tools.sandbox.api_network import fx_quote_in, rate_lock_view
from amp_tools.sandbox.codes import Refusal
from amp_tools.sandbox.network import money_view
from amp_tools.sandbox.reference_shapes import reference_shape
from amp_tools.sandbox.roles import Roles
from amp_tools.sandbox.state import CpSession
from amp_tools.sandbox.wire import Body, run

__all__ = ["cp_router"]


def _idv(s: CpSession) -> dict[str, str] | None:
    return {"authUrl": "", "authSessionId": s.aplus_session_id} if s.status == "PENDING_IDV" else None


def cp_router(roles: Roles) -> APIRouter:
    ctx, cp = roles.ctx, roles.cp
    r = APIRouter(prefix="/credential-provider", tags=["credential-provider"])

    def session_answer(s: CpSession, **fields: Any) -> dict[str, Any]:
        return {"success": s.status != "FAILED", "sessionId": s.session_id, "status": s.status, **fields,
                "idv": _idv(s), "error": s.error, "resultCode": s.result_code}

    def refusal(**fields: Any) -> Callable[[Refusal], dict[str, Any]]:
        """The CP's failure envelope: every field of the answer present, null unless given."""
        return lambda e: {"success": False, **fields, "error": e.text, "resultCode": e.code}

    def reply(op: str, work: Callable[[], Any], on_refusal: Callable[[Refusal], Any]) -> Any:
        return reference_shape(ctx, op, run(ctx, work, on_refusal))

    @r.post("/addPaymentMethod")
    async def add_payment_method(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            s = cp.add_payment_method(agent_id=b.get("agentId"), wallet_name=b.get("walletName"))
            return session_answer(s, tokenId=s.token_id)

        return reply("addPaymentMethod", work, refusal(sessionId=None, status="FAILED", tokenId=None, idv=None))

    @r.post("/queryPaymentMethodList")
    async def query_payment_method_list(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            tokens = cp.payment_methods(session_id=b.get("sessionId"), token_id=b.get("tokenId"),
                                        wallet_name=b.get("walletName"), agent_id=b.get("agentId"))
            return {"success": True, "paymentMethods": [
                {"tokenId": t.token_id, "walletName": t.wallet_name, "userLoginId": t.user_login_id,
                 "l1Serialized": t.l1, "gmtCreate": t.created_at.isoformat(timespec="seconds")} for t in tokens],
                "error": None, "resultCode": "SUCCESS"}

        return reply("queryPaymentMethodList", work, refusal(paymentMethods=[]))

    @r.post("/createMandateSession")
    async def create_mandate_session(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            s = cp.create_mandate_session(b)
            return session_answer(s, mandateId=s.mandate_id)

        return reply("createMandateSession", work, refusal(sessionId=None, status="FAILED", mandateId=None, idv=None))

    @r.post("/inquiryMandateSession")
    async def inquiry_mandate_session(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            s = cp.inquiry_mandate_session(str(b.get("sessionId") or ""))
            st = ctx.state
            done = s.status == "COMPLETED"
            l1 = st.binding_tokens[s.token_id].l1 if done and s.token_id else None
            l2 = st.mandates[s.mandate_id].l2 if done and s.mandate_id else None
            return {"success": s.status != "FAILED", "sessionId": s.session_id, "status": s.status,
                    "mandateId": s.mandate_id if done else None, "mandateType": s.mandate_type if done else None,
                    "tokenId": s.token_id if done else None, "l1Serialized": l1, "l2Serialized": l2,
                    "idv": _idv(s), "error": s.error, "resultCode": s.result_code,
                    "budget": _budget(s) if done and s.mandate_id else None}

        def _budget(s: CpSession) -> dict[str, Any]:
            # Extension: the mandate's budget as the network counts it (an issued, unused token is reserved).
            m = roles.network.mandate(str(s.mandate_id))
            return {"mandateStatus": m.status, "totalBudgetAmount": money_view(m.total),
                    "usedAmount": money_view(m.used), "reservedAmount": money_view(m.reserved),
                    "remainingAmount": money_view(m.remaining)}

        return reply("inquiryMandateSession", work, refusal(sessionId=b.get("sessionId"), status=None, mandateId=None,
                                                            mandateType=None, tokenId=None, l1Serialized=None,
                                                            l2Serialized=None, idv=None))

    @r.post("/applyCredential")
    async def apply_credential(body: Body) -> Any:
        b = body.raw()

        def work() -> Any:
            token, mtype = cp.apply_credential(b, fx_quote_in(b))
            lock = rate_lock_view(ctx, token)
            return {"success": True, "paymentToken": token.token, "mandateType": mtype, "error": None,
                    "resultCode": "SUCCESS", "fxQuoteId": lock["fxQuoteId"], "fxRate": lock["fxRate"]}

        return reply("applyCredential", work, refusal(paymentToken=None, mandateType=None, fxQuoteId=None, fxRate=None))

    return r
