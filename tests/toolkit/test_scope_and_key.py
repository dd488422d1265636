"""Issue 20, findings 2 and 5: a mandate's scope as the network reads it, and a key the network bound wrongly.

2. The network accepts a merchant when its name **and** its MCC are in the mandate (each list that is
   non-empty); the toolkit used to accept name **or** MCC, reserved, sent applyCredential and got
   MERCHANT_NOT_IN_CONSTRAINTS. Now one function decides, checked against the sandbox's own rule.
5. A network that binds another agent key in L2 ``cnf.jwk`` is caught when the mandate becomes ACTIVE.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amp_tools.amp.keys import AgentKey
from amp_tools.amp.scope import merchant_gaps, scope_gaps
from amp_tools.approvals import CallbackApprover
from amp_tools.errors import ToolError
from amp_tools.ledger import open_ledger
from amp_tools.money import Money
from amp_tools.policy import parse_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.sandbox.network import in_constraints
from amp_tools.toolkit import AmpToolkit

NAMES = st.sampled_from(["Zoom Car Rental", "Malaya Car Rental", "zoom car rental", "KL Grand Hotel", ""])
MCCS = st.sampled_from(["7512", "7011", "3011", "4722", ""])


@settings(max_examples=400, deadline=None)
@given(names=st.lists(NAMES, max_size=3), mccs=st.lists(MCCS, max_size=3), name=NAMES, mcc=MCCS,
       amount=st.integers(1, 5000), remaining=st.integers(0, 5000), ttl=st.integers(-5, 5))
def test_the_toolkit_scope_is_the_sandbox_networks_on_random_mandates(names: list[str], mccs: list[str], name: str,
                                                                     mcc: str, amount: int, remaining: int,
                                                                     ttl: int) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    merchant_ok = not merchant_gaps(names, mccs, name, mcc)
    assert merchant_ok == in_constraints(names, mccs, name, mcc)
    gaps = scope_gaps(names=names, mccs=mccs, remaining=Money(remaining, "SGD"), expires_at=now + timedelta(hours=ttl),
                      merchant_name=name, mcc=mcc, amount=Money(amount, "SGD"), now=now)
    assert (not gaps) == (merchant_ok and amount <= remaining and ttl > 0)


class Shop:
    def __init__(self, tmp: Path, *, agent_key: AgentKey | None = None) -> None:
        self.sandbox = Sandbox(SandboxConfig(seed=20))
        self.ledger = open_ledger(tmp / "ledger.db", clock=self.sandbox.clock)
        policy = parse_policy({"name": "scope", "currency": "USD", "total_budget": "500.00",
                               "mccs": {"allow": ["7512", "7011"]}})
        self.toolkit = AmpToolkit.for_sandbox(self.sandbox, policy, ledger=self.ledger, budget_id="scope",
                                              approver=CallbackApprover(lambda r: True),
                                              agent_key=agent_key or AgentKey.generate())
        self.tools = {s.name: s for s in self.toolkit.specs()}

    async def call(self, name: str, **args: Any) -> Any:
        return await self.tools[name].ainvoke(args)

    def until(self) -> str:
        return (self.sandbox.clock.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def close(self) -> None:
        await self.toolkit.aclose()
        await self.ledger.close()


@pytest.fixture
async def shop(tmp_path: Path) -> Any:
    made = Shop(tmp_path)
    yield made
    await made.close()


async def test_a_merchant_with_a_covered_mcc_but_another_name_is_refused_before_reserving(shop: Shop) -> None:
    await shop.call("discover_merchants")
    mandate = await shop.call("request_mandate", purpose="car in Tokyo", budget="200.00", expires_at=shop.until(),
                              merchant_ids=["ZOOM-CARS"])
    assert (mandate["merchants"], mandate["mccs"]) == (["Zoom Car Rental"], ["7512"])
    await shop.call("search_offers", query="economy car", merchant_ids=["MALAYA-CARS"])
    checkout = (await shop.call("checkout", offer_id="MALAYA-CARS:MAL-ECONOMY-DAY"))["checkout_id"]
    with pytest.raises(ToolError) as refused:
        await shop.call("pay", checkout_id=checkout)
    assert refused.value.code == "MANDATE_DOES_NOT_COVER"
    assert "merchant name 'Malaya Car Rental' is not in the mandate's merchant list (Zoom Car Rental)" in (
        refused.value.hint or "")
    assert "merchant category" not in (refused.value.hint or "")  # the MCC matched: only the name differs
    assert list(await shop.ledger.entries("scope")) == []  # nothing reserved
    assert shop.sandbox.state.payment_tokens == {}  # nothing sent to the network
    # The covered merchant still pays under the same mandate.
    await shop.call("search_offers", query="compact car", merchant_ids=["ZOOM-CARS"])
    ok = (await shop.call("checkout", offer_id="ZOOM-CARS:ZOOM-COMPACT-DAY"))["checkout_id"]
    assert (await shop.call("pay", checkout_id=ok))["status"] == "paid"


async def test_a_mandate_bound_to_another_key_fails_at_once_with_the_fix_and_nothing_reserved(tmp_path: Path) -> None:
    shop = Shop(tmp_path)
    try:
        # Like the reference: the network knows one agent key, not this toolkit's.
        other = AgentKey.generate()
        shop.sandbox.register_agent(shop.toolkit.agent_id, other.public_jwk())
        await shop.call("discover_merchants")
        with pytest.raises(ToolError) as failed:
            await shop.call("request_mandate", purpose="car in Tokyo", budget="200.00", expires_at=shop.until(),
                            merchant_ids=["ZOOM-CARS"])
        assert failed.value.code == "AGENT_KEY_NOT_BOUND"
        assert other.thumbprint() in failed.value.message
        assert shop.toolkit.agent_key.thumbprint() in failed.value.message
        assert "amp-tools agent-key show" in (failed.value.hint or "")
        status = await shop.call("mandate_status")
        assert status["status"] == "FAILED" and other.thumbprint() in status["next"]
        await shop.call("search_offers", query="compact car", merchant_ids=["ZOOM-CARS"])
        checkout = (await shop.call("checkout", offer_id="ZOOM-CARS:ZOOM-COMPACT-DAY"))["checkout_id"]
        with pytest.raises(ToolError) as refused:
            await shop.call("pay", checkout_id=checkout, mode="delegated")
        assert refused.value.code == "MANDATE_DOES_NOT_COVER"
        assert list(await shop.ledger.entries("scope")) == []
        assert shop.sandbox.state.payment_tokens == {}
    finally:
        await shop.close()
