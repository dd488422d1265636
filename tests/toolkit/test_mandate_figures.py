"""Issue 20, finding 3: a mandate's remaining budget comes from the credential provider, not stale arithmetic.

After every payment, order status and reconcile the toolkit asks the CP's inquiry; where the CP
reports the budget that figure wins (source "credential provider"); where it does not (the
reference's answer shape) the local arithmetic counts an issued token as the reference does, and
says it is a local estimate.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from amp_tools.amp.keys import AgentKey
from amp_tools.approvals import CallbackApprover
from amp_tools.errors import AmpError, ToolError
from amp_tools.ledger import open_ledger
from amp_tools.money import Money
from amp_tools.policy import parse_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit

ESIM = "SUNNY-TOURS:SUN-ESIM-ASIA"  # 19.99 USD
ADAPTER = "SUNNY-TOURS:SUN-ADAPTER"  # 29.99 USD


class Shop:
    def __init__(self, tmp: Path, config: SandboxConfig) -> None:
        self.sandbox = Sandbox(config)
        self.ledger = open_ledger(tmp / "ledger.db", clock=self.sandbox.clock)
        policy = parse_policy({"name": "figures", "currency": "USD", "total_budget": "500.00"})
        self.toolkit = AmpToolkit.for_sandbox(self.sandbox, policy, ledger=self.ledger, budget_id="figures",
                                              approver=CallbackApprover(lambda r: True), agent_key=AgentKey.generate())
        self.tools = {s.name: s for s in self.toolkit.specs()}

    async def call(self, name: str, **args: Any) -> Any:
        return await self.tools[name].ainvoke(args)

    async def mandate(self, budget: str = "100.00") -> dict[str, Any]:
        await self.call("discover_merchants")
        until = (self.sandbox.clock.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        made = await self.call("request_mandate", purpose="gear", budget=budget, expires_at=until,
                               merchant_ids=["SUNNY-TOURS"])
        assert made["status"] == "ACTIVE"
        return dict(made)

    async def checkout(self, offer: str) -> str:
        await self.call("search_offers", query="esim adapter", merchant_ids=["SUNNY-TOURS"])
        return str((await self.call("checkout", offer_id=offer))["checkout_id"])

    def network_remaining(self, mandate_id: str) -> Money:
        return Money.from_wire(self.sandbox.mandate(mandate_id)["budget"]["remainingAmount"])

    async def close(self) -> None:
        await self.toolkit.aclose()
        await self.ledger.close()


@pytest.mark.parametrize("reports", [True, False], ids=["cp-reports-budget", "reference-shape"])
async def test_an_issued_unused_token_is_counted_as_the_credential_provider_counts_it(tmp_path: Path,
                                                                                     reports: bool) -> None:
    shop = Shop(tmp_path, SandboxConfig(seed=3, deviations=("budget_not_released",), extension_fields=reports))
    try:
        made = await shop.mandate()
        checkout = await shop.checkout(ESIM)
        shop.sandbox.faults.arm("network.pay", "decline")  # the token was issued; the charge is refused
        with pytest.raises(AmpError):
            await shop.call("pay", checkout_id=checkout)
        network = shop.network_remaining(made["mandate_id"])
        assert network == Money.parse("80.01", "USD")  # like the reference: the unused token keeps its budget
        status = await shop.call("mandate_status")
        assert status["remaining"] == network.to_public()
        assert status["remaining_source"].startswith("credential provider" if reports else "local estimate")
    finally:
        await shop.close()


async def test_stale_figures_after_a_restart_are_refreshed_and_a_pay_beyond_them_is_not_sent(tmp_path: Path) -> None:
    shop = Shop(tmp_path, SandboxConfig(seed=4))
    try:
        made = await shop.mandate("65.00")
        paid = await shop.call("pay", checkout_id=await shop.checkout(ADAPTER))
        assert paid["mandate_remaining"] == {"amount": "35.01", "currency": "USD"}
        assert paid["mandate_remaining_source"] == "credential provider"
        # A session restored from an older snapshot: it believes nothing was spent.
        [ref] = shop.toolkit.state.mandates
        ref.spent, ref.reported_remaining = Money.zero("USD"), None
        assert (await shop.call("budget_status"))["mandates"][0]["remaining"]["amount"] == "65.00"
        status = await shop.call("mandate_status", mandate_id=made["mandate_id"])
        assert status["remaining"] == {"amount": "35.01", "currency": "USD"} == \
            shop.network_remaining(made["mandate_id"]).to_public()
        await shop.call("search_offers", query="adapter", merchant_ids=["SUNNY-TOURS"])
        big = (await shop.call("checkout", offer_id=ADAPTER, quantity=2))["checkout_id"]  # 59.98 > 35.01
        tokens = len(shop.sandbox.state.payment_tokens)
        with pytest.raises(ToolError) as refused:
            await shop.call("pay", checkout_id=big, mode="delegated")
        assert refused.value.code == "MANDATE_DOES_NOT_COVER" and "35.01" in refused.value.message
        assert len(shop.sandbox.state.payment_tokens) == tokens  # never sent to the CP
    finally:
        await shop.close()


async def test_reconcile_refreshes_the_mandate_figures(tmp_path: Path) -> None:
    shop = Shop(tmp_path, SandboxConfig(seed=5))
    try:
        made = await shop.mandate("65.00")
        await shop.call("pay", checkout_id=await shop.checkout(ADAPTER))
        [ref] = shop.toolkit.state.mandates
        ref.spent, ref.reported_remaining = Money.zero("USD"), None
        await shop.toolkit.reconcile()
        assert ref.remaining == shop.network_remaining(made["mandate_id"]) == Money.parse("35.01", "USD")
    finally:
        await shop.close()


async def test_the_mandate_figures_are_in_the_reply_not_in_the_ledger_and_a_failed_inquiry_changes_no_payment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The inquiry runs while the ledger records the payment: the figures describe the mandate, so the reply
    # carries them and the entry's recorded outcome does not; an inquiry that fails leaves the payment paid.
    shop = Shop(tmp_path, SandboxConfig(seed=6))
    try:
        made = await shop.mandate("65.00")
        checkout = await shop.checkout(ADAPTER)
        paid = await shop.call("pay", checkout_id=checkout)
        assert paid["status"] == "paid" and paid["mandate_remaining_source"] == "credential provider"
        assert paid["mandate_remaining"] == shop.network_remaining(made["mandate_id"]).to_public()
        entry_id = shop.toolkit.state.checkouts[checkout].entry_id
        assert entry_id is not None
        entry = await shop.ledger.get(entry_id)
        assert entry.status == "committed" and entry.outcome is not None
        assert entry.outcome["mode"] == "delegated" and "mandate_remaining" not in entry.outcome

        async def down(*_args: Any, **_kwargs: Any) -> Any:
            raise AmpError("the credential provider is down", code="NETWORK_ERROR")

        monkeypatch.setattr(shop.toolkit.client, "inquiry_mandate_session", down)
        second = await shop.checkout(ESIM)
        again = await shop.call("pay", checkout_id=second)
        assert again["status"] == "paid" and again["mandate_remaining_source"] != "credential provider"
        second_id = shop.toolkit.state.checkouts[second].entry_id
        assert second_id is not None and (await shop.ledger.get(second_id)).status == "committed"
    finally:
        await shop.close()
