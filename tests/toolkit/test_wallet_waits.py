"""The toolkit waits for the person in their wallet on its clock, never on real time.

Against a reference-like wallet that answers half a second after it asks, a toolkit on a
`ManualClock` polls every 250 ms by moving that clock: the waits are exact (two polls per
confirmation), and a person who never answers ends the wait after `idv_wait` clock seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amp_tools.amp.keys import AgentKey
from amp_tools.clock import ManualClock
from amp_tools.errors import ToolError
from amp_tools.ledger import open_ledger
from amp_tools.policy import parse_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit, WalletAction

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = {"currency": "USD", "total_budget": "500.00", "per_transaction_max": "200.00"}


class Person:
    """A toolkit on a reference-like sandbox's `ManualClock`, and the wallet prompts it showed."""

    def __init__(self, tmp: Path, *, idv_mode: str = "auto", idv_wait: float = 5.0, prompt: bool = True) -> None:
        self.sandbox = Sandbox(SandboxConfig.reference_like(idv_delay_seconds=0.5, idv_mode=idv_mode, seed=9,
                                                            start_time=START))
        assert isinstance(self.sandbox.clock, ManualClock)
        self.clock = self.sandbox.clock
        self.asked: list[str] = []

        async def wallet(action: WalletAction) -> None:
            self.asked.append(action.kind)  # the person answers in the wallet app, after the wallet's delay

        self.toolkit = AmpToolkit.for_sandbox(
            self.sandbox, parse_policy(POLICY), ledger=open_ledger(tmp / "ledger.db", clock=self.clock),
            budget_id="waits", agent_key=AgentKey.generate(), wallet_prompt=wallet if prompt else None,
            idv_wait=idv_wait, clock=self.clock)
        self.tools = {s.name: s for s in self.toolkit.specs()}

    async def call(self, name: str, **args: Any) -> dict[str, Any]:
        return await self.tools[name].ainvoke(args)

    def moved(self) -> float:
        return (self.clock.now() - START).total_seconds()

    async def checkout(self) -> str:
        found = await self.call("search_offers", query="adapter")
        offer = next(o["offer_id"] for o in found["offers"] if o["offer_id"].startswith("SUNNY-TOURS:"))
        return str((await self.call("checkout", offer_id=offer))["checkout_id"])

    async def request_mandate(self) -> dict[str, Any]:
        return await self.call("request_mandate", purpose="Buy a travel adapter", budget="100.00",
                               expires_at=(START + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                               merchant_ids=["SUNNY-TOURS"])


async def test_each_confirmation_is_awaited_on_the_toolkit_clock(tmp_path: Path) -> None:
    person = Person(tmp_path)
    try:
        await person.call("discover_merchants")
        mandate = await person.request_mandate()
        # Linking the wallet, then confirming the mandate: each answered on the second poll, 0.5 s later.
        assert person.asked == ["bind_wallet", "confirm_mandate"]
        assert mandate["status"] == "ACTIVE" and person.moved() == 1.0
        paid = await person.call("pay", checkout_id=await person.checkout(), mode="human_present")
        assert person.asked[-1] == "confirm_purchase"
        assert (paid["status"], paid["mode"]) == ("paid", "human_present") and person.moved() == 1.5
        paid = await person.call("pay", checkout_id=await person.checkout())
        assert (paid["status"], paid["mode"]) == ("paid", "delegated") and person.moved() == 1.5  # nobody asked
    finally:
        await person.toolkit.aclose()


async def test_a_person_who_never_answers_ends_the_wait_after_idv_wait(tmp_path: Path) -> None:
    person = Person(tmp_path, idv_mode="manual", idv_wait=3.0)
    try:
        await person.call("discover_merchants")
        with pytest.raises(ToolError) as pending:
            await person.request_mandate()
        assert pending.value.code == "WALLET_CONFIRMATION_REQUIRED"
        assert person.asked == ["bind_wallet"] and person.moved() == 3.0
    finally:
        await person.toolkit.aclose()


async def test_without_a_wallet_prompt_nothing_is_awaited_but_a_pending_mandate_before_pay(tmp_path: Path) -> None:
    person = Person(tmp_path, prompt=False)
    try:
        await person.call("discover_merchants")
        with pytest.raises(ToolError) as linking:
            await person.request_mandate()
        assert linking.value.code == "WALLET_CONFIRMATION_REQUIRED" and person.moved() == 0.0
        person.clock.advance(0.5)  # the person links the wallet; the model asks again
        assert (await person.request_mandate())["status"] == "PENDING_IDV" and person.moved() == 0.5
        checkout = await person.checkout()
        paid = await person.call("pay", checkout_id=checkout)  # waits for the mandate rather than pay otherwise
        assert (paid["status"], paid["mode"]) == ("paid", "delegated") and person.moved() == 1.0
    finally:
        await person.toolkit.aclose()
