"""Mandates the wallet must never activate (S1), and the IMMEDIATE mandate bound to one checkout.

An IMMEDIATE mandate carries the confirmed checkout in L2 and backs exactly one payment of
exactly that checkout (amp-protocol.md 2.1, 2.2, 3.3, 3.8); an AUTONOMOUS one whose stated
expiry has passed must be refused before the person ever sees it (3.6, S1).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from amp_tools.conformance.chainread import cnf_jwk, disclosed
from amp_tools.conformance.context import Ctx, Fail, Skip
from amp_tools.conformance.probe import Answer
from amp_tools.conformance.registry import check
from amp_tools.conformance.shapes import obj


async def _expired_intent(ctx: Ctx) -> tuple[Answer, Answer | None]:
    async def make() -> tuple[Answer, Answer | None]:
        b = await ctx.binding()
        m = await ctx.merchant()
        await ctx.registration()
        past = datetime.now(UTC) + timedelta(seconds=ctx.clock_offset) - timedelta(hours=1)
        body = ctx.mandate_body(b, "an intent that expired an hour ago", expire=past)
        body["constraints"] = {"budgetAmount": {"cent": m.price_minor, "currency": m.currency},
                               "merchantNameList": [m.name], "merchantMccList": [m.mcc]}
        return await ctx.submit_mandate(body)
    return await ctx.once("expired_intent", make)


@check("mandate.expired_intent_never_active", "mandate", "MUST", "amp-protocol.md 3.6 (S1), 7.2, 9 items 1 and 3",
       "an AUTONOMOUS mandate whose intentExpireTime has already passed never becomes COMPLETED")
async def expired_never_active(ctx: Ctx) -> str:
    create, inquiry = await _expired_intent(ctx)
    final = inquiry or create
    if final.json.get("status") == "COMPLETED" or final.json.get("l2Serialized"):
        raise Fail("a mandate whose stated expiry had passed was authorized and signed", create.exchange,
                   final.exchange)
    return f"not activated ({final.describe()}, status {final.json.get('status')!r})"


@check("mandate.refusal_visible", "mandate", "SHOULD",
       "amp-protocol.md 3.6; amp-reference-wire.md 5 item 9, 9",
       "the refusal of such a mandate reaches the agent (success:false or status FAILED) instead of a session "
       "left pending")
async def refusal_visible(ctx: Ctx) -> str:
    create, inquiry = await _expired_intent(ctx)
    final = inquiry or create
    if final.json.get("success") is False or final.json.get("status") == "FAILED":
        return f"refused visibly: {final.describe()}"
    raise Fail(f"after {ctx.target.idv_timeout_seconds:g} s the session still answers status "
               f"{final.json.get('status')!r}; the agent cannot tell that the wallet refused it",
               create.exchange, final.exchange)


@check("chain.l2.immediate", "chain", "MUST", "amp-protocol.md 3.3 (IMMEDIATE), 2.2 step 6, 9 item 11",
       "an IMMEDIATE L2 has mode IMMEDIATE, no cnf, no intent expiry_time or constraints, and discloses the "
       "checkout the person confirmed (amount and merchant)")
async def l2_immediate(ctx: Ctx) -> str:
    m = await ctx.merchant()
    request = ctx.request_checkout(m, m.price_minor)
    mandate = await ctx.immediate_mandate(request, "IMMEDIATE L2")
    p2 = mandate.parsed_l2
    disc, bad = disclosed(p2)
    problems = list(bad)
    if p2.payload.get("mode") != "IMMEDIATE":
        problems.append(f"L2 mode is {p2.payload.get('mode')!r}, expected 'IMMEDIATE'")
    if cnf_jwk(p2) is not None or "cnf" in p2.payload:
        problems.append("an IMMEDIATE L2 carries cnf, which MUST NOT be present")
    intent = obj(disc.get("intent"))
    problems += [f"intent.{k} is disclosed in an IMMEDIATE L2" for k in ("expiry_time", "constraints") if k in intent]
    checkout = obj(disc.get("checkout"))
    total = obj(checkout.get("total_amount"))
    merchant = obj(checkout.get("merchant"))
    if not checkout:
        problems.append("the checkout is not disclosed")
    else:
        if total.get("amount") != m.price_minor or total.get("currency") != m.currency:
            problems.append(f"checkout.total_amount is {total!r}, the person confirmed "
                            f"{{currency:{m.currency!r}, amount:{m.price_minor}}}")
        if (merchant.get("reference_merchant_id"), merchant.get("merchant_name"), merchant.get("merchant_mcc")) != (
                m.merchant_id, m.name, m.mcc):
            problems.append(f"checkout.merchant is {merchant!r}, the person confirmed {m.merchant_id}/{m.name}/{m.mcc}")
    if problems:
        raise Fail("; ".join(problems), mandate.inquiry_answer.exchange)
    return f"IMMEDIATE L2 for {m.price_minor} {m.currency} at {m.merchant_id}"


@check("token.immediate_checkout_bound", "token", "MUST", "amp-protocol.md 2.2 step 6, 3.8, 9 items 18 and 21",
       "an IMMEDIATE mandate issues no token for a checkout other than the one confirmed, and one for it")
async def immediate_checkout_bound(ctx: Ctx) -> str:
    m = await ctx.merchant()
    request = ctx.request_checkout(m, m.price_minor)
    mandate = await ctx.immediate_mandate(request, "IMMEDIATE checkout binding")
    changed = ctx.request_checkout(m, m.price_minor - 1)
    bad = await ctx.apply(mandate, changed, None)
    if bad.ok and bad.json.get("paymentToken"):
        raise Fail(f"a token was issued for {m.price_minor - 1} under a mandate the person confirmed for "
                   f"{m.price_minor}", bad.exchange)
    good = await ctx.apply(mandate, request, None)
    if not (good.ok and good.json.get("paymentToken")):
        raise Fail(f"the confirmed checkout itself was refused: {good.describe()}", good.exchange)
    return f"changed checkout refused ({bad.describe()}); the confirmed one got a token"


@check("token.immediate_single_use", "token", "MUST", "amp-protocol.md 2.1, 3.2 (finished), 9 items 4-5",
       "after an IMMEDIATE mandate paid its checkout, it issues no further payment token")
async def immediate_single_use(ctx: Ctx) -> str:
    m = await ctx.merchant()
    cid, amount, _ = await ctx.new_checkout()
    request = ctx.request_checkout(m, amount)
    mandate = await ctx.immediate_mandate(request, "IMMEDIATE single use")
    first = await ctx.apply(mandate, request, None)
    token = first.json.get("paymentToken")
    if not first.ok or not isinstance(token, str):
        raise Skip(f"the confirmed checkout got no token ({first.describe()})")
    paid = await ctx.pay(cid, token, mandate, None)
    if not paid.ok:
        raise Skip(f"inconclusive: the IMMEDIATE payment was refused ({paid.describe()})")
    again = await ctx.apply(mandate, request, None)
    if again.ok and again.json.get("paymentToken"):
        raise Fail("the IMMEDIATE mandate issued a second payment token after paying its checkout",
                   paid.exchange, again.exchange)
    return f"second token refused ({again.describe()})"
