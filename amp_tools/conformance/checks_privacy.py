"""One user's wallet bindings hidden from another agent's queries.

The CP contract authenticates no caller (amp-reference-wire.md 9), and a binding's tokenId and
L1 are what mandate requests are made with (amp-protocol.md 4.1, 9 item 15): a listing must
never hand them to anyone but the agent the wallet was bound to.
"""

from __future__ import annotations

import json

from amp_tools.conformance.context import Binding, Ctx, Fail
from amp_tools.conformance.registry import check


@check("privacy.tokens_isolated", "privacy", "MUST",
       "amp-protocol.md 4.1, 9 items 15-16; amp-reference-wire.md 9",
       "queryPaymentMethodList never lists one agent's wallet binding to a query that names no agent or "
       "another agent")
async def tokens_isolated(ctx: Ctx) -> str:
    a = await ctx.binding()
    b: Binding = await ctx.once("binding_b", lambda: ctx.enroll(f"{ctx.agent_id}-b"))
    probes = [{}, {"walletName": ctx.target.wallet_name}, {"agentId": b.agent_id},
              {"agentId": b.agent_id, "tokenId": a.token_id}]
    seen = []
    for body in probes:
        ans = await ctx.cp("queryPaymentMethodList", body)
        if a.token_id in json.dumps(ans.body) or a.l1 in json.dumps(ans.body):
            raise Fail(f"queryPaymentMethodList {json.dumps(body)} handed agent {a.agent_id}'s binding "
                       f"(tokenId and L1) to a caller that is not {a.agent_id}", ans.exchange)
        methods = ans.json.get("paymentMethods")
        seen.append(f"{'/'.join(body) or '{}'}: " + (f"{len(methods)} listed" if isinstance(methods, list) and ans.ok
                                                     else ans.describe()))
    return "; ".join(seen)
