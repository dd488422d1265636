"""Wire-shape and error-envelope checks of the Credential Provider contract.

The spec defines no wire format; the CP contract of the reference services is the only
concrete one (amp-protocol.md 2.5 and 8.3, amp-reference-wire.md 3), so an implementation
that wants Buyer Agents to interoperate answers in its shape.
"""

from __future__ import annotations

from amp_tools.conformance.context import Ctx, Fail
from amp_tools.conformance.registry import check
from amp_tools.conformance.shapes import missing_fields, shape_problems

_STATUSES = ("PENDING_IDV", "COMPLETED", "FAILED")


@check("cp.add_payment_method.shape", "cp", "MUST", "amp-protocol.md 2.5 step 1, 8.3; amp-reference-wire.md 3.1",
       "addPaymentMethod starts a wallet binding and answers {success, sessionId, status, tokenId, idv, error}")
async def add_payment_method_shape(ctx: Ctx) -> str:
    b = await ctx.binding(owner=True)
    body = b.add_answer.json
    problems = shape_problems(body, {"success": bool, "sessionId": str, "status": str})
    problems += [f"{n}: missing" for n in missing_fields(body, ("tokenId", "idv", "error"))]
    if body.get("status") not in _STATUSES:
        problems.append(f"status: expected one of {', '.join(_STATUSES)}, got {body.get('status')!r}")
    if body.get("status") == "PENDING_IDV":
        idv = body.get("idv")
        if not isinstance(idv, dict) or not isinstance(idv.get("authSessionId"), str):
            problems.append("idv.authSessionId: a PENDING_IDV binding must hand over the IDV handle")
    if problems:
        raise Fail("; ".join(problems), b.add_answer.exchange)
    return f"binding {body['status']} for agent {b.agent_id}"


@check("cp.query_payment_method_list.shape", "cp", "MUST",
       "amp-protocol.md 2.5 step 7, 8.3; amp-reference-wire.md 3.3",
       "queryPaymentMethodList {sessionId} lists the binding: tokenId, walletName, userLoginId, l1Serialized, "
       "gmtCreate")
async def query_shape(ctx: Ctx) -> str:
    b = await ctx.binding(owner=True)
    body = b.list_answer.json
    methods = body.get("paymentMethods")
    problems = shape_problems(body, {"success": bool, "paymentMethods": list})
    if isinstance(methods, list) and len(methods) != 1:
        problems.append(f"paymentMethods: one enrollment session bound one wallet, got {len(methods)} entries")
    if isinstance(methods, list) and methods:
        problems += [f"paymentMethods[0].{p}" for p in shape_problems(
            methods[0], {"tokenId": str, "walletName": str, "userLoginId": str, "l1Serialized": str,
                         "gmtCreate": str})]
    if problems:
        raise Fail("; ".join(problems), b.list_answer.exchange)
    return "one payment method with its L1"


@check("cp.create_mandate_session.shape", "cp", "MUST", "amp-protocol.md 2.5 step 8, 8.3; amp-reference-wire.md 3.4",
       "createMandateSession (AUTONOMOUS) answers {success, sessionId, status, mandateId, idv, error}")
async def create_mandate_shape(ctx: Ctx) -> str:
    m = await ctx.merchant()
    mandate = await ctx.mandate(2 * m.price_minor, purpose="mandate session shape")
    body = mandate.create_answer.json
    problems = shape_problems(body, {"success": bool, "sessionId": str, "status": str})
    problems += [f"{n}: missing" for n in missing_fields(body, ("mandateId", "idv", "error"))]
    if body.get("status") not in _STATUSES:
        problems.append(f"status: expected one of {', '.join(_STATUSES)}, got {body.get('status')!r}")
    if problems:
        raise Fail("; ".join(problems), mandate.create_answer.exchange)
    return f"session {body['status']}"


@check("cp.inquiry_mandate_session.shape", "cp", "MUST",
       "amp-protocol.md 2.5 step 12, 8.3; amp-reference-wire.md 3.5",
       "inquiryMandateSession of a completed mandate returns mandateId, mandateType, tokenId, l1Serialized and "
       "l2Serialized")
async def inquiry_shape(ctx: Ctx) -> str:
    m = await ctx.merchant()
    mandate = await ctx.mandate(2 * m.price_minor, purpose="inquiry shape")
    b = await ctx.binding()
    body = mandate.inquiry_answer.json
    problems = shape_problems(body, {"success": bool, "sessionId": str, "status": str, "mandateId": str,
                                     "mandateType": str, "tokenId": str, "l1Serialized": str, "l2Serialized": str})
    if body.get("mandateType") != "AUTONOMOUS":
        problems.append(f"mandateType: a constraints-only request is AUTONOMOUS, got {body.get('mandateType')!r}")
    if body.get("tokenId") != b.token_id:
        problems.append("tokenId: differs from the binding the mandate was requested for")
    if body.get("l1Serialized") != b.l1:
        problems.append("l1Serialized: differs from the binding's L1 (must be byte-identical)")
    if problems:
        raise Fail("; ".join(problems), mandate.inquiry_answer.exchange)
    return "COMPLETED with the byte-identical L1 and an L2"


@check("cp.apply_credential.shape", "cp", "MUST", "amp-protocol.md 2.5 step 15, 8.3; amp-reference-wire.md 3.7",
       "applyCredential with a correct L1+L2+L3 answers {success:true, paymentToken, mandateType:'AUTONOMOUS', error}")
async def apply_shape(ctx: Ctx) -> str:
    m = await ctx.merchant()
    mandate = await ctx.mandate(2 * m.price_minor, purpose="applyCredential shape")
    request = ctx.request_checkout(m, m.price_minor)
    ans = await ctx.apply(mandate, request, await ctx.l3(mandate, request))
    body = ans.json
    problems = shape_problems(body, {"success": bool, "paymentToken": str, "mandateType": str})
    problems += [f"{n}: missing" for n in missing_fields(body, ("error",))]
    if body.get("success") is not True:
        problems.insert(0, f"a correct request was refused: {ans.describe()}")
    elif body.get("mandateType") != "AUTONOMOUS":
        problems.append(f"mandateType: expected 'AUTONOMOUS', got {body.get('mandateType')!r}")
    if problems:
        raise Fail("; ".join(problems), ans.exchange)
    return "a payment token for a correct chain"


@check("cp.error_envelope", "cp", "MUST", "amp-protocol.md 11 item 1; amp-reference-wire.md 3, 4.1",
       "a business error is HTTP 200 with success:false, a readable error text and every field of the answer")
async def cp_error_envelope(ctx: Ctx) -> str:
    ans = await ctx.cp("inquiryMandateSession", {"sessionId": f"cps-conformance-{ctx.run_id}-unknown"})
    body = ans.json
    problems = []
    if ans.status != 200:
        problems.append(f"HTTP {ans.status}: business errors are HTTP 200 (only schema violations are 422)")
    if body.get("success") is not False:
        problems.append(f"success: expected false for an unknown session, got {body.get('success')!r}")
    if not isinstance(body.get("error"), str) or not body.get("error"):
        problems.append("error: expected a non-empty text saying what was wrong")
    absent = missing_fields(body, ("sessionId", "status", "mandateId", "mandateType", "tokenId", "l1Serialized",
                                   "l2Serialized"))
    if absent:
        problems.append(f"fields absent instead of null: {', '.join(absent)}")
    if problems:
        raise Fail("; ".join(problems), ans.exchange)
    return f"refused with {body.get('error')!r}"
