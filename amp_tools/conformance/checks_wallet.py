"""The wallet's (MPP's) trusted-surface contract, probed without touching any real session."""

from __future__ import annotations

from amp_tools.conformance.context import Ctx, Fail, Skip
from amp_tools.conformance.registry import check
from amp_tools.conformance.shapes import obj, shape_problems


@check("wallet.error_envelope", "wallet", "MUST", "amp-protocol.md 8.3 (MPP), 11 item 1; amp-reference-wire.md 3.2",
       "completeIdv for an unknown authSessionId is refused in the MPP envelope {result:{resultCode, "
       "resultStatus:'F', resultMessage}}")
async def wallet_error_envelope(ctx: Ctx) -> str:
    url = f"{ctx.wallet_base()}/completeIdv"
    ans = await ctx.probe.post(url, {"authSessionId": "0" * 32})
    if ans.status in (404, 405) or ans.error:
        raise Skip(f"no wallet answers at {url} ({ans.describe()}); pass --wallet URL")
    result = obj(ans.json.get("result"))
    problems = [f"result.{p}" for p in shape_problems(result, {"resultCode": str, "resultStatus": str,
                                                               "resultMessage": str})]
    if result.get("resultStatus") != "F":
        problems.append(f"result.resultStatus is {result.get('resultStatus')!r}; an unknown session must be 'F'")
    if ans.json.get("idvResult") == "PASS":
        problems.append("idvResult is PASS for a session that does not exist")
    if problems:
        raise Fail("; ".join(problems), ans.exchange)
    return f"{result['resultCode']}: {result['resultMessage']}"
