"""The payment path: the merchant's chain verification, idempotency, token binding, single use,
expiry, and the budget a failed payment must give back.

Every purchase uses the merchant's cheapest product under the run's test-amount cap.
"""

from __future__ import annotations

from dataclasses import dataclass

from amp_tools.conformance.context import Ctx, Fail, Mandate, Skip
from amp_tools.conformance.probe import Answer
from amp_tools.conformance.registry import check
from amp_tools.conformance.shapes import shape_problems
from amp_tools.money import Money


def _paid(ans: Answer) -> bool:
    data = ans.json.get("data")
    return ans.ok and isinstance(data, dict) and data.get("success") is not False and bool(data.get("transactionId"))


def _txn(ans: Answer) -> object:
    data = ans.json.get("data")
    return data.get("transactionId") if isinstance(data, dict) else None


@dataclass
class Paid:
    mandate: Mandate
    checkout_id: str
    token: str
    l3: str
    bare: Answer  # startPayment in the reference shape, without the chain
    chained: Answer | None  # startPayment with L1, L2, L3 (when the bare one was refused)

    @property
    def final(self) -> Answer:
        return self.chained or self.bare

    @property
    def with_chain(self) -> bool:
        return self.chained is not None


async def _pay_once(ctx: Ctx) -> Paid:
    async def make() -> Paid:
        m = await ctx.merchant()
        mandate = await ctx.mandate(3 * m.price_minor, purpose="a purchase")
        cid, amount, _ = await ctx.new_checkout()
        token, l3, _ = await ctx.token(mandate, ctx.request_checkout(m, amount), checkout_id=cid)
        bare = await ctx.pay(cid, token, None, None)
        chained = None if _paid(bare) else await ctx.pay(cid, token, mandate, l3)
        return Paid(mandate, cid, token, l3, bare, chained)
    return await ctx.once("paid", make)


@check("merchant.verifies_chain", "merchant", "MUST", "amp-protocol.md 9 item 22, 2.3 step 8",
       "startPayment without the mandate chain is refused; with L1, L2 and L3 it is accepted")
async def verifies_chain(ctx: Ctx) -> str:
    paid = await _pay_once(ctx)
    if not paid.with_chain:
        raise Fail("the merchant charged a payment token presented without L1, L2 or L3", paid.bare.exchange)
    if not _paid(paid.final):
        raise Skip(f"inconclusive: the payment with the full chain was refused too ({paid.final.describe()})")
    return f"without the chain: {paid.bare.describe()}"


@check("payment.start_payment.shape", "payment", "MUST", "amp-protocol.md 4.3; amp-reference-wire.md 3.6",
       "startPayment with a valid token answers {success:true, data:{success:true, transactionId, message}}")
async def start_payment_shape(ctx: Ctx) -> str:
    paid = await _pay_once(ctx)
    ans = paid.final
    if not ans.ok:
        raise Fail(f"a correct payment was refused: {ans.describe()}", ans.exchange)
    problems = [f"data.{p}" for p in shape_problems(ans.json.get("data"), {"success": bool, "transactionId": str})]
    if problems:
        raise Fail("; ".join(problems), ans.exchange)
    return f"paid {paid.checkout_id}"


@check("payment.idempotent_replay", "payment", "MUST", "amp-protocol.md 4.3 (idempotency key checkoutId), 8.4 item 11",
       "repeating startPayment for a paid checkout returns the same transactionId and charges nothing more")
async def idempotent_replay(ctx: Ctx) -> str:
    paid = await _pay_once(ctx)
    if not _paid(paid.final):
        raise Skip(f"no payment succeeded to replay ({paid.final.describe()})")
    again = await ctx.pay(paid.checkout_id, paid.token, paid.mandate if paid.with_chain else None,
                          paid.l3 if paid.with_chain else None)
    if not _paid(again):
        raise Fail(f"the replay was refused ({again.describe()}): a client that lost the answer cannot learn "
                   "the outcome", paid.final.exchange, again.exchange)
    if _txn(again) != _txn(paid.final):
        raise Fail(f"the replay answered transactionId {_txn(again)!r}, the payment was {_txn(paid.final)!r}: "
                   "a second payment", paid.final.exchange, again.exchange)
    return "same transactionId" + (" (idempotent:true)" if again.json["data"].get("idempotent") else "")


@check("payment.token_single_use", "payment", "MUST", "amp-protocol.md 4.2 (one-time use), 3.6 (S3: no reuse)",
       "a payment token that paid once is refused for another checkout")
async def single_use(ctx: Ctx) -> str:
    paid = await _pay_once(ctx)
    if not _paid(paid.final):
        raise Skip(f"no payment succeeded, so there is no used token ({paid.final.describe()})")
    m = await ctx.merchant()
    cid, amount, _ = await ctx.new_checkout()
    l3 = await ctx.l3(paid.mandate, ctx.request_checkout(m, amount), checkout_id=cid)
    ans = await ctx.pay(cid, paid.token, paid.mandate, l3)
    if _paid(ans):
        raise Fail(f"the used token paid checkout {cid} as well", ans.exchange)
    return f"second use refused ({ans.describe()})"


@check("payment.amount_bound_to_token", "payment", "MUST",
       "amp-protocol.md 3.6 (S3), 9 items 7, 21 and 23; amp-reference-wire.md 9",
       "a token issued for a small amount cannot pay a checkout of a larger amount")
async def amount_bound(ctx: Ctx) -> str:
    m = await ctx.merchant()
    mandate = await ctx.mandate(2 * m.price_minor, purpose="token amount binding")
    small = max(1, m.price_minor // 10)
    small_request = ctx.request_checkout(m, small)
    l3 = await ctx.l3(mandate, small_request)
    issued = await ctx.apply(mandate, small_request, l3)
    token = issued.json.get("paymentToken")
    cid, amount, _ = await ctx.new_checkout()
    if not issued.ok or not isinstance(token, str):
        await ctx.token(mandate, ctx.request_checkout(m, amount), checkout_id=cid)  # control: SKIP if refused too
        return f"the CP refused a token for an amount no checkout has ({issued.describe()})"
    ans = await ctx.pay(cid, token, mandate, l3)
    if _paid(ans):
        raise Fail(f"a token issued for {Money(small, m.currency)} paid checkout {cid} of {Money(amount, m.currency)}",
                   issued.exchange, ans.exchange)
    good_token, good_l3, _ = await ctx.token(mandate, ctx.request_checkout(m, amount), checkout_id=cid)
    control = await ctx.pay(cid, good_token, mandate, good_l3)
    if not _paid(control):
        raise Skip(f"inconclusive: a token for the right amount could not pay either ({control.describe()})")
    return f"refused ({ans.describe()}); a token for {Money(amount, m.currency)} paid"


async def _substitute(ctx: Ctx, mandate: Mandate) -> tuple[str, str, str, Answer]:
    """Pay checkout C2 with a token bound to checkout C1 (same amount). Returns (C1, C2, token, answer)."""
    m = await ctx.merchant()
    c1, amount, _ = await ctx.new_checkout()
    c2, _, _ = await ctx.new_checkout()
    token, l3, _ = await ctx.token(mandate, ctx.request_checkout(m, amount), checkout_id=c1)
    return c1, c2, token, await ctx.pay(c2, token, mandate, l3)


@check("payment.no_substitution", "payment", "MUST", "amp-protocol.md 3.6 (S3: no substitution), 9 item 23",
       "a token bound to one checkout cannot pay another checkout, even of the same amount and merchant")
async def no_substitution(ctx: Ctx) -> str:
    m = await ctx.merchant()
    mandate = await ctx.mandate(2 * m.price_minor, purpose="checkout substitution")
    c1, c2, _, ans = await _substitute(ctx, mandate)
    if _paid(ans):
        raise Fail(f"a token bound (in L3) to checkout {c1} paid checkout {c2}", ans.exchange)
    return f"refused ({ans.describe()})"


@check("payment.budget_released_after_failure", "payment", "SHOULD",
       "amp-protocol.md 3.7 [GAP], 3.6 (S2/S4 budget), 11 item 4; amp-reference-wire.md 9",
       "when a payment fails at the network (or, where none can be made to fail, its token expires unused), the "
       "amount the token reserved returns to the mandate's budget")
async def budget_released(ctx: Ctx) -> str:
    m = await ctx.merchant()
    mandate = await ctx.mandate(m.price_minor, purpose="budget release")  # exactly one purchase
    c1, _, token, failed = await _substitute(ctx, mandate)
    evidence = [failed.exchange]
    if not _paid(failed):
        fresh = await ctx.l3(mandate, ctx.request_checkout(m, m.price_minor), checkout_id=c1)
        retry = await ctx.pay(c1, token, mandate, fresh)
        if _paid(retry):
            raise Skip("inconclusive: the token survived the failed payment and paid its own checkout, so its "
                       "budget was rightly still reserved")
        how = f"after the payment failed ({failed.describe()})"
    else:
        # No S3 binding to make a payment fail: an unused token that expires must give its amount back too.
        mandate = await ctx.mandate(m.price_minor, purpose="budget release after expiry")
        cid, amount, _ = await ctx.new_checkout()
        _, _, issued = await ctx.token(mandate, ctx.request_checkout(m, amount), checkout_id=cid)
        how = f"after its token expired unused ({await ctx.advance_clock(ctx.expiry_wait())})"
        evidence = [issued.exchange]
    cid, amount, _ = await ctx.new_checkout()
    request = ctx.request_checkout(m, amount)
    again = await ctx.apply(mandate, request, await ctx.l3(mandate, request, checkout_id=cid))
    if not (again.ok and again.json.get("paymentToken")):
        raise Fail(f"{how}, the mandate of {Money(m.price_minor, m.currency)} could not back a new token for "
                   f"{Money(amount, m.currency)}: {again.describe()}", *evidence, again.exchange)
    return f"the reservation came back {how}"


@check("payment.token_expiry", "payment", "MUST", "amp-protocol.md 4.2 (limited validity, 10 min), 8.4 item 9",
       "a payment token presented after its validity period is refused")
async def token_expiry(ctx: Ctx) -> str:
    m = await ctx.merchant()
    mandate = await ctx.mandate(2 * m.price_minor, purpose="token expiry")
    cid, amount, _ = await ctx.new_checkout()
    token, l3, _ = await ctx.token(mandate, ctx.request_checkout(m, amount), checkout_id=cid, ttl=600)
    how = await ctx.advance_clock(ctx.expiry_wait())
    ans = await ctx.pay(cid, token, mandate, l3)
    if _paid(ans):
        raise Fail(f"a token {ctx.expiry_wait()} s old paid checkout {cid} ({how})", ans.exchange)
    return f"refused, {how} ({ans.describe()})"
