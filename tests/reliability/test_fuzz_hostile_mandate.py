"""A credential provider that hands back a garbage L2 for a "COMPLETED" mandate.

The toolkit stores what the CP returned and only reads it when it signs L3 at `pay`; an L2 it
cannot parse must end as a `ToolError` with the reservation released (nothing was sent), not
as a bare ValueError escaping the tool.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from amp_tools.amp.client import AmpClient
from amp_tools.errors import ToolError
from amp_tools.ledger import open_ledger
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit
from tests.reliability.fuzz_support import AGENT_KEY, fuzz_policy


class GarbageL2(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, l2: str) -> None:
        self.inner, self.l2 = inner, l2

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        real = await self.inner.handle_async_request(request)
        if not request.url.path.endswith("/inquiryMandateSession"):
            return real
        data = json.loads(await real.aread())
        if data.get("l2Serialized"):
            data["l2Serialized"] = self.l2
        return httpx.Response(200, json=data)


@pytest.mark.parametrize("l2", ["not-a-jwt", "a.b.c~", "eyJhbGciOiJub25lIn0.eyJtb2RlIjoiQVVUT05PTU9VUyJ9.~", "~~~"])
async def test_a_garbage_l2_fails_pay_cleanly_and_releases(l2: str, tmp_path: Path) -> None:
    sb = Sandbox(SandboxConfig(seed=3))
    sb.register_agent("fuzz-agent", AGENT_KEY.public_jwk())
    client = AmpClient("http://sandbox", transport=GarbageL2(sb.transport(), l2), agent_id="fuzz-agent",
                       clock=sb.clock)
    tk = AmpToolkit(client, fuzz_policy(), ledger=open_ledger(str(tmp_path / "l.db"), clock=sb.clock),
                    agent_key=AGENT_KEY, clock=sb.clock, agent_id="fuzz-agent", budget_id="default")
    specs = {s.name: s for s in tk.specs()}
    await specs["search_offers"].ainvoke({"query": "eSIM", "merchant_ids": ["SUNNY-TOURS"]})
    until = (sb.clock.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await specs["request_mandate"].ainvoke({"purpose": "eSIM", "expires_at": until, "merchant_ids": ["SUNNY-TOURS"]})
    ck = await specs["checkout"].ainvoke({"offer_id": "SUNNY-TOURS:SUN-ESIM-ASIA"})
    with pytest.raises(ToolError) as failed:
        await specs["pay"].ainvoke({"checkout_id": ck["checkout_id"]})
    assert "L2" in failed.value.message or "mandate" in failed.value.message
    assert [e.status for e in tk.ledger.entries_sync()] == ["released"]
    assert sb.payments() == [] and len(sb.state.payment_tokens) == 0
