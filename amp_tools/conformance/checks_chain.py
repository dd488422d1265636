"""The mandate chain as the target issues it: L1 (Alipay+) and L2 (the wallet), read independently.

amp-protocol.md 3.3 fixes each layer's header and claims, 3.5 the verification order; the
checker re-derives every binding itself (kid, signature, sd_hash, disclosures) instead of
trusting the target's own verdict.
"""

from __future__ import annotations

from typing import Any

from amp_tools.amp.chain import sd_hash
from amp_tools.amp.keys import public_jwk_equal
from amp_tools.conformance.chainread import cnf_jwk, disclosed, read, signature_problem
from amp_tools.conformance.context import Ctx, Fail, Skip
from amp_tools.conformance.registry import check
from amp_tools.conformance.shapes import obj

_L1_CLAIMS = ("iss", "sub", "iat", "exp", "cnf", "isp_type", "isp_name")
_L2_CLAIMS = ("nonce", "aud", "iat", "exp", "sd_hash", "idv_result", "idv_time", "mode", "_sd_alg", "_sd")


def _header_problems(header: dict[str, object], layer: str) -> list[str]:
    out = []
    if header.get("alg") != "ES256":
        out.append(f"{layer} header alg is {header.get('alg')!r}, expected 'ES256'")
    if header.get("typ") != "sd+jwt":
        out.append(f"{layer} header typ is {header.get('typ')!r}, expected 'sd+jwt'")
    if not isinstance(header.get("kid"), str) or not header.get("kid"):
        out.append(f"{layer} header has no kid")
    return out


@check("chain.l1.claims", "chain", "MUST", "amp-protocol.md 3.3 (L1), 9 item 10",
       "L1 has header alg ES256, typ sd+jwt and a kid; claims iss, sub, iat, exp, cnf (ISP key with kid), "
       "isp_type, isp_name; no _sd or _sd_alg; not expired")
async def l1_claims(ctx: Ctx) -> str:
    b = await ctx.binding()
    p, why = read(b.l1, "L1")
    if p is None:
        raise Fail(f"L1 is not an SD-JWT: {why}", b.list_answer.exchange)
    problems = _header_problems(p.header, "L1")
    problems += [f"L1 lacks the {c} claim" for c in _L1_CLAIMS if c not in p.payload]
    problems += [f"L1 carries {c}, which MUST NOT be present" for c in ("_sd", "_sd_alg") if c in p.payload]
    if p.disclosures:
        problems.append("L1 carries disclosures; it must be <jwt>~ alone")
    jwk = cnf_jwk(p)
    if jwk is None or not isinstance(jwk.get("kid"), str):
        problems.append("L1 cnf.jwk with a kid is missing (it binds the ISP key that signs L2)")
    exp = p.payload.get("exp")
    if isinstance(exp, int) and exp <= ctx.now():
        problems.append(f"L1 is already expired (exp={exp})")
    if problems:
        raise Fail("; ".join(problems), b.list_answer.exchange)
    return f"L1 by kid {p.header.get('kid')!r} binds ISP key {jwk.get('kid') if jwk else None!r}"


@check("chain.l1.signature", "chain", "MUST", "amp-protocol.md 3.5 step 1, 1.2",
       "L1 verifies under the Alipay+ public key (pinned, or as the network publishes it)")
async def l1_signature(ctx: Ctx) -> str:
    b = await ctx.binding()
    p, why = read(b.l1, "L1")
    if p is None:
        raise Fail(f"L1 is not an SD-JWT: {why}", b.list_answer.exchange)
    key, how = ctx.target.aplus_jwk, "the pinned Alipay+ key"
    url = ctx.target.aplus_jwks_url
    if key is None and url:
        ans = await ctx.probe.get(url)
        keys = ans.json.get("keys")
        listed: list[Any] = keys if isinstance(keys, list) else [ans.json]
        kid = p.header.get("kid")
        found = [k for k in listed if isinstance(k, dict) and k.get("kid") == kid]
        if not found:
            raise Skip(f"{url} publishes no key with L1's kid {kid!r} ({ans.describe()})")
        key, how = found[0], f"the key {kid!r} published at {url}"
    if key is None:
        raise Skip("no Alipay+ public key to verify L1 with (pass --aplus-jwk FILE or URL)")
    problem = signature_problem(p, key)
    if problem:
        raise Fail(f"{problem} under {how}", b.list_answer.exchange)
    return f"verified under {how}"


@check("chain.l2.binding", "chain", "MUST", "amp-protocol.md 3.3 (L2 kid), 3.5 step 4, 9 items 10 and 12",
       "L2's header kid equals L1 cnf.jwk.kid, L2 verifies under that ISP key, and L2 sd_hash is the hash of L1")
async def l2_binding(ctx: Ctx) -> str:
    m = await ctx.merchant()
    mandate = await ctx.mandate(2 * m.price_minor, purpose="L2 binding")
    p1, why = read(mandate.l1, "L1")
    if p1 is None:
        raise Skip(f"L1 is not an SD-JWT ({why})")
    p2 = mandate.parsed_l2
    isp = cnf_jwk(p1)
    if isp is None:
        raise Skip("L1 has no cnf.jwk, so L2's signer cannot be checked (see chain.l1.claims)")
    problems = []
    if p2.header.get("kid") != isp.get("kid"):
        problems.append(f"L2 header kid {p2.header.get('kid')!r} != L1 cnf.jwk.kid {isp.get('kid')!r}")
    sig = signature_problem(p2, isp)
    if sig:
        problems.append(sig + " under the ISP key L1 binds")
    if p2.payload.get("sd_hash") != sd_hash(mandate.l1):
        problems.append("L2 sd_hash is not B64U(SHA-256(L1 as serialized))")
    if problems:
        raise Fail("; ".join(problems), mandate.inquiry_answer.exchange)
    return "kid, signature and sd_hash bind L2 to L1"


@check("chain.l2.claims", "chain", "MUST", "amp-protocol.md 3.3 (L2), 3.5",
       "L2 carries nonce, aud, iat, exp, sd_hash, idv_result, idv_time, mode, _sd_alg sha-256 and _sd; every "
       "disclosure is bound to _sd; intent, token_info and mandate_info are disclosed; not expired")
async def l2_claims(ctx: Ctx) -> str:
    m = await ctx.merchant()
    mandate = await ctx.mandate(2 * m.price_minor, purpose="L2 claims")
    p2 = mandate.parsed_l2
    problems = _header_problems(p2.header, "L2")
    problems += [f"L2 lacks the {c} claim" for c in _L2_CLAIMS if c not in p2.payload]
    if p2.payload.get("_sd_alg") != "sha-256":
        problems.append(f"L2 _sd_alg is {p2.payload.get('_sd_alg')!r}, expected 'sha-256'")
    if p2.payload.get("aud") != ctx.target.audience:
        problems.append(f"L2 aud is {p2.payload.get('aud')!r}, expected {ctx.target.audience!r}")
    disc, bad = disclosed(p2)
    problems += bad
    problems += [f"L2 does not disclose {n}" for n in ("intent", "token_info", "mandate_info") if n not in disc]
    exp = p2.payload.get("exp")
    if isinstance(exp, int) and exp <= ctx.now():
        problems.append(f"a fresh L2 is already expired (exp={exp})")
    if problems:
        raise Fail("; ".join(problems), mandate.inquiry_answer.exchange)
    return f"{len(disc)} disclosures, all bound"


@check("chain.l2.autonomous", "chain", "MUST", "amp-protocol.md 3.3 (AUTONOMOUS), 2.3 step 4, 9 item 11",
       "an AUTONOMOUS L2 has mode AUTONOMOUS, cnf binding the registered agent key, intent.expiry_time and the "
       "requested constraints, and no checkout")
async def l2_autonomous(ctx: Ctx) -> str:
    m = await ctx.merchant()
    registered, how = await ctx.registration()
    budget = 2 * m.price_minor
    mandate = await ctx.mandate(budget, purpose="AUTONOMOUS L2")
    p2 = mandate.parsed_l2
    disc, _ = disclosed(p2)
    problems = []
    if p2.payload.get("mode") != "AUTONOMOUS":
        problems.append(f"L2 mode is {p2.payload.get('mode')!r}, expected 'AUTONOMOUS'")
    jwk = cnf_jwk(p2)
    if jwk is None:
        problems.append("L2 has no cnf.jwk: nothing binds the agent that may sign L3")
    elif not public_jwk_equal(jwk, ctx.key.public_jwk()):
        if not registered:
            raise Skip(f"L2 binds agent key {jwk.get('kid')!r}; the checker could not register its own ({how})")
        problems.append(f"L2 cnf.jwk (kid {jwk.get('kid')!r}) is not the agent key registered for "
                        f"{ctx.agent_id} (kid {ctx.key.kid!r})")
    intent = obj(disc.get("intent"))
    if not intent.get("expiry_time"):
        problems.append("intent.expiry_time is not disclosed")
    constraints = intent.get("constraints")
    if not isinstance(constraints, dict):
        problems.append("intent.constraints is not disclosed")
    else:
        amount = constraints.get("budget_amount")
        if not isinstance(amount, dict) or amount.get("amount") != budget or amount.get("currency") != m.currency:
            problems.append(f"intent.constraints.budget_amount is {amount!r}, the user authorized "
                            f"{{currency:{m.currency!r}, amount:{budget}}}")
    if "checkout" in disc:
        problems.append("an AUTONOMOUS L2 discloses a checkout, which MUST NOT be present")
    if problems:
        raise Fail("; ".join(problems), mandate.inquiry_answer.exchange)
    return f"cnf binds {jwk.get('kid') if jwk else None!r}; budget {budget} {m.currency}"
