"""S2 at ``applyCredential``: what a Credential Provider must refuse before issuing a payment token.

Each check sends one deliberately wrong request on a fresh mandate, then the same request done
right as a control: the check passes only when the wrong one is refused **and** the right one
is accepted, so a refusal for some unrelated reason never counts as conformance.
"""

from __future__ import annotations

from typing import Any

from amp_tools.amp.keys import AgentKey
from amp_tools.conformance.context import Ctx, Fail, Mandate, Skip
from amp_tools.conformance.probe import Answer
from amp_tools.conformance.registry import check


def _issued(ans: Answer) -> bool:
    return ans.ok and isinstance(ans.json.get("paymentToken"), str) and bool(ans.json["paymentToken"])


async def _refused_with_control(ctx: Ctx, mandate: Mandate, request: dict[str, Any], bad: Answer, what: str) -> str:
    if _issued(bad):
        raise Fail(f"{what} was accepted: a payment token was issued", bad.exchange)
    good = await ctx.apply(mandate, request, await ctx.l3(mandate, request))
    if not _issued(good):
        raise Skip(f"inconclusive: {what} was refused, but so was the correct control request ({good.describe()})")
    return f"refused ({bad.describe()}); the correct request was accepted"


async def _setup(ctx: Ctx, purpose: str, times: int = 2) -> tuple[Mandate, dict[str, Any]]:
    m = await ctx.merchant()
    mandate = await ctx.mandate(times * m.price_minor, purpose=purpose)
    return mandate, ctx.request_checkout(m, m.price_minor)


@check("token.cgcp_format", "token", "MUST", "amp-protocol.md 4.2, 9 item 20",
       "the payment token is a CGCP code: routing prefix 28, business type 23 (digits 7-8), at least 16 more "
       "characters")
async def cgcp_format(ctx: Ctx) -> str:
    mandate, request = await _setup(ctx, "token format")
    token, _, ans = await ctx.token(mandate, request)
    problems = []
    if not token.startswith("28"):
        problems.append(f"prefix {token[:2]!r} is not the AMP routing prefix '28'")
    if token[6:8] != "23":
        problems.append(f"business type {token[6:8]!r} is not '23' (AMP)")
    if len(token) < 24:
        problems.append(f"{len(token)} characters: the 8-character header needs a payload of at least 16")
    if problems:
        raise Fail("; ".join(problems), ans.exchange)
    return f"{len(token)}-character token with header {token[:8]}"


@check("token.autonomous_requires_l3", "token", "MUST",
       "amp-protocol.md 2.3 step 7, 3.3 (L3), 9 items 13-14; amp-reference-wire.md 5 item 8, 9",
       "an AUTONOMOUS mandate issues no payment token without the agent's L3")
async def requires_l3(ctx: Ctx) -> str:
    mandate, request = await _setup(ctx, "no L3")
    await ctx.bound_key(mandate)
    bad = await ctx.apply(mandate, request, None)
    return await _refused_with_control(ctx, mandate, request, bad, "an AUTONOMOUS request without L3")


@check("token.l3_kid_bound", "token", "MUST", "amp-protocol.md 3.3 (L3 kid), 9 item 10; amp-reference-wire.md 9",
       "an L3 whose header kid is not L2 cnf.jwk.kid is refused, even when the signature itself verifies")
async def l3_kid(ctx: Ctx) -> str:
    mandate, request = await _setup(ctx, "L3 kid")
    bad = await ctx.apply(mandate, request, await ctx.l3(mandate, request, kid=f"not-{ctx.key.kid}"))
    return await _refused_with_control(ctx, mandate, request, bad, "an L3 with a kid that L2 does not bind")


@check("token.l3_signature", "token", "MUST", "amp-protocol.md 3.5 step 5, 9 item 12",
       "an L3 signed by a key other than the one L2 cnf binds is refused")
async def l3_signature(ctx: Ctx) -> str:
    mandate, request = await _setup(ctx, "L3 signature")
    other = AgentKey.generate(kid=ctx.key.kid)
    bad = await ctx.apply(mandate, request, await ctx.l3(mandate, request, key=other))
    return await _refused_with_control(ctx, mandate, request, bad, "an L3 signed by another key")


@check("token.l3_sd_hash", "token", "MUST", "amp-protocol.md 3.5 step 5, 9 item 12",
       "an L3 whose sd_hash is not the hash of this L2 is refused")
async def l3_sd_hash(ctx: Ctx) -> str:
    mandate, request = await _setup(ctx, "L3 sd_hash")
    bad = await ctx.apply(mandate, request, await ctx.l3(mandate, request, hash_over=mandate.l2 + "x~"))
    return await _refused_with_control(ctx, mandate, request, bad, "an L3 bound to another L2")


@check("token.l3_expired", "token", "MUST", "amp-protocol.md 3.3 (L3 exp), 3.5, 7.2",
       "an L3 that expired more than the 60 s leeway ago is refused")
async def l3_expired(ctx: Ctx) -> str:
    mandate, request = await _setup(ctx, "L3 expiry")
    bad = await ctx.apply(mandate, request, await ctx.l3(mandate, request, iat=ctx.now() - 1000))
    return await _refused_with_control(ctx, mandate, request, bad, "an L3 that expired 700 s ago")


@check("token.l3_audience", "token", "MUST", "amp-protocol.md 3.3 (L3 aud), 3.5",
       "an L3 addressed to another audience is refused")
async def l3_audience(ctx: Ctx) -> str:
    mandate, request = await _setup(ctx, "L3 audience")
    bad = await ctx.apply(mandate, request, await ctx.l3(mandate, request, aud="conformance.invalid"))
    return await _refused_with_control(ctx, mandate, request, bad, "an L3 with aud 'conformance.invalid'")


@check("token.l3_nonce_replay", "token", "MUST", "amp-protocol.md 3.3 (L3 nonce: replay protection), 3.5 [GAP]",
       "the same L3 (same nonce) presented a second time issues no second token")
async def l3_replay(ctx: Ctx) -> str:
    mandate, request = await _setup(ctx, "L3 replay")
    _, l3, _ = await ctx.token(mandate, request)
    again = await ctx.apply(mandate, request, l3)
    if _issued(again):
        raise Fail("the replayed L3 was accepted: a second payment token was issued", again.exchange)
    return f"replay refused ({again.describe()})"


@check("token.l3_checkout_matches_request", "token", "MUST", "amp-protocol.md 9 items 18 and 21, 3.5 [GAP]",
       "a request whose checkout differs from the checkout the agent signed in L3 is refused")
async def l3_checkout(ctx: Ctx) -> str:
    m = await ctx.merchant()
    mandate, request = await _setup(ctx, "L3 checkout")
    signed = ctx.request_checkout(m, max(1, m.price_minor // 2))
    bad = await ctx.apply(mandate, request, await ctx.l3(mandate, signed))
    return await _refused_with_control(ctx, mandate, request, bad,
                                       f"a request for {m.price_minor} under an L3 signed for {signed['totalAmount']}")


@check("token.merchant_cross_checked", "token", "MUST",
       "amp-protocol.md 3.6 (S2 merchant scope), 9 item 6; amp-reference-wire.md 9",
       "a checkout naming the merchant with another name or MCC than it is registered under is refused, even "
       "when the mandate's constraints list that name or MCC")
async def merchant_cross_checked(ctx: Ctx) -> str:
    m = await ctx.merchant()
    fake_name = "Conformance Impostor Store"
    fake_mcc = "0742" if m.mcc != "0742" else "0763"
    mandate = await ctx.mandate(3 * m.price_minor, names=[m.name, fake_name], mccs=[m.mcc, fake_mcc],
                                purpose="merchant cross-check")
    notes = []
    for label, name, mcc in (("name", fake_name, m.mcc), ("MCC", m.name, fake_mcc)):
        lie = ctx.request_checkout(m, m.price_minor, name=name, mcc=mcc)
        ans = await ctx.apply(mandate, lie, await ctx.l3(mandate, lie))
        if _issued(ans):
            raise Fail(f"merchant {m.merchant_id} asserted with {label} {name if label == 'name' else mcc!r} "
                       f"(registered: {m.name!r} / {m.mcc!r}) got a payment token", ans.exchange)
        notes.append(f"{label}: {ans.describe()}")
    request = ctx.request_checkout(m, m.price_minor)
    good = await ctx.apply(mandate, request, await ctx.l3(mandate, request))
    if not _issued(good):
        raise Skip(f"inconclusive: the correct control request was refused too ({good.describe()})")
    return "; ".join(notes)
