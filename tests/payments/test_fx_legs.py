"""Issue 20, finding 1: every leg of a payment recorded, and the budget counting the network's own charge.

A budget in another currency than the wallet's used to be committed at the wallet's debit converted
back with a cached quote: 140.95 SGD for a 149.00 SGD charge. Now the amount counted is the
checkout (when in the budget currency), the mandate's charge or the wallet's debit (when the network
reports them in the budget currency), else what was held at the quote locked for the payment; the
network's rates move between every step here, on both engines.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from amp_tools.approvals import CallbackApprover
from amp_tools.errors import AmpToolsError
from amp_tools.money import ROUND_UP, Money
from amp_tools.policy import parse_policy
from amp_tools.sandbox import SandboxConfig
from tests.payments._support import Lab

FLIGHT = ("SKYLARK-AIR", "SKYLARK-AIR:SKY-SIN-KUL-1900", "flight")  # 149.00 SGD
ADAPTER = ("SUNNY-TOURS", "SUNNY-TOURS:SUN-ADAPTER", "adapter")  # 29.99 USD
ROOM = ("KL-GRAND-HOTEL", "KL-GRAND-HOTEL:KLG-SUPERIOR-NIGHT", "superior room")  # 580.00 MYR
CAR = ("ZOOM-CARS", "ZOOM-CARS:ZOOM-COMPACT-DAY", "compact car")  # 8,800 JPY
ECONOMY = ("MALAYA-CARS", "MALAYA-CARS:MAL-ECONOMY-DAY", "economy car")  # 130.00 MYR
HOTEL_SG = ("MARINA-HOTEL", "MARINA-HOTEL:MBH-DELUXE-NIGHT", "deluxe")  # 420.00 SGD
GOODS = [FLIGHT, ADAPTER, ROOM, CAR, ECONOMY, HOTEL_SG]
BASE_USD = {"SGD": "0.74", "MYR": "0.21", "EUR": "1.08", "JPY": "0.0067", "USD": "1"}


def _policy(currency: str, total: str) -> Any:
    return parse_policy({"name": "fx-legs", "currency": currency, "total_budget": total}, "fx-legs")


def _set(lab: Lab, currency: str, usd: str) -> None:
    lab.sandbox.roles.ctx.fx.set_usd_rate(currency, usd)


def _charge(lab: Lab, checkout: str) -> dict[str, Any]:
    [paid] = lab.charges(checkout)
    return paid


async def _mandate_agent(lab: Lab, currency: str, total: str, budget: str, merchants: list[str],
                         budget_id: str) -> Any:
    agent = lab.agent(_policy(currency, total), CallbackApprover(lambda r: True), budget_id=budget_id)
    await agent.call("discover_merchants")
    mandate = await agent.call("request_mandate", purpose="trip", budget=budget, expires_at=lab.until(),
                               merchant_ids=merchants)
    assert mandate["status"] == "ACTIVE", mandate
    return agent


async def _checkout(agent: Any, good: tuple[str, str, str]) -> str:
    await agent.call("search_offers", query=good[2], merchant_ids=[good[0]])
    return str((await agent.call("checkout", offer_id=good[1], quantity=1))["checkout_id"])


@pytest.fixture
async def lab(engine_name: str, ledger_target: str) -> Any:
    made = Lab(engine_name, ledger_target, SandboxConfig(seed=20, wallet_currency="USD"))
    yield made
    await made.close()


async def test_the_issue_sgd_budget_usd_wallet_counts_the_mandate_charge_not_a_cached_rate(lab: Lab) -> None:
    agent = await _mandate_agent(lab, "SGD", "2000.00", "1000.00", ["SUNNY-TOURS", "SKYLARK-AIR"], "sgd")
    shown = await agent.call("search_offers", query="flight", merchant_ids=["SKYLARK-AIR"])  # caches USD->SGD
    assert shown["offers"]
    adapter = await _checkout(agent, ADAPTER)
    await agent.call("pay", checkout_id=adapter)
    _set(lab, "SGD", "0.70")  # the SGD moves after the cached quote
    flight = await _checkout(agent, FLIGHT)
    paid = await agent.call("pay", checkout_id=flight)
    network = _charge(lab, flight)
    assert Money.from_wire(network["mandateAmount"]) == Money.parse("149.00", "SGD")
    assert Money.from_wire(network["walletAmount"]) == Money.parse("104.30", "USD")
    entries = {e.checkout_id: e for e in await lab.ledger.entries("sgd")}
    flight_entry = entries[flight]
    assert flight_entry.budget_amount == Money.parse("149.00", "SGD")  # was 140.95, converted back at 0.74
    assert flight_entry.legs == {"checkout": {"amount": "149.00", "currency": "SGD"},
                                 "budget": {"amount": "149.00", "currency": "SGD"}, "basis": "checkout",
                                 "mandate_charge": {"amount": "149.00", "currency": "SGD"},
                                 "wallet_debit": {"amount": "104.30", "currency": "USD"},
                                 "locked_rate": "0.70000000"}  # no quote: the checkout needed no conversion
    assert paid["legs"]["wallet_debit"] == {"amount": "104.30", "currency": "USD"}
    assert flight_entry.to_public()["legs"] == flight_entry.legs  # what the owner's console reads
    # The USD adapter counted as the network charged the SGD mandate for it, to the cent.
    adapter_charge = Money.from_wire(_charge(lab, adapter)["mandateAmount"])
    assert entries[adapter].budget_amount == adapter_charge
    assert entries[adapter].legs is not None and entries[adapter].legs["basis"] == "mandate_charge"
    assert await lab.used(agent.toolkit.policy, "sgd") == (adapter_charge + Money.parse("149.00", "SGD")).amount_str()
    status = await agent.call("budget_status")
    assert status["legs"]["payments_by_basis"] == {"checkout": 1, "mandate_charge": 1}
    assert status["legs"]["wallet_debited"] == [
        (Money.from_wire(_charge(lab, adapter)["walletAmount"]) + Money.parse("104.30", "USD")).to_public()]


class _Mover:
    """Moves one currency's network rate before every call the payment makes (quote, token, charge)."""

    def __init__(self, lab: Lab, rng: random.Random) -> None:
        self.lab, self.rng, self.moves = lab, rng, 0

    def move(self) -> None:
        currency = self.rng.choice(["SGD", "MYR", "EUR", "JPY"])
        base = float(BASE_USD[currency])
        _set(self.lab, currency, f"{base * self.rng.uniform(0.9, 1.1):.6f}")
        self.moves += 1

    def wrap(self, client: Any) -> None:
        for name in ("fx_rate", "apply_credential", "start_payment"):
            real = getattr(client, name)

            async def moved(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
                self.move()
                return await _real(*args, **kwargs)

            setattr(client, name, moved)


@pytest.mark.parametrize("wallet", ["SGD", "MYR", "EUR", "USD"])
async def test_every_payment_counts_the_network_charge_with_rates_moving_between_every_step(
        engine_name: str, ledger_target: str, wallet: str) -> None:
    lab = Lab(engine_name, ledger_target, SandboxConfig(seed=21, wallet_currency=wallet))
    rng = random.Random(f"{wallet}-{engine_name}")
    mover = _Mover(lab, rng)
    try:
        budgets = {}
        # Tight enough that budgets fill up: the last payments meet the limits while the rates move.
        for currency, total in (("SGD", "1100.00"), ("MYR", "3300.00"), ("EUR", "700.00"), ("USD", "800.00")):
            agent = await _mandate_agent(lab, currency, total, total, [g[0] for g in GOODS], f"b-{currency}")
            mover.wrap(agent.toolkit.client)
            budgets[currency] = agent
        paid_count = refused = 0
        for _ in range(32):
            currency = rng.choice(list(budgets))
            agent = budgets[currency]
            checkout = await _checkout(agent, rng.choice(GOODS))
            mode = rng.choice(["delegated", "delegated", "human_present"])
            try:
                await agent.call("pay", checkout_id=checkout, mode=mode)
            except AmpToolsError:
                refused += 1  # a rate move past the mandate's room: refused, nothing committed
                assert lab.charges(checkout) == []
                continue
            paid_count += 1
            network = _charge(lab, checkout)
            [entry] = [e for e in await lab.ledger.entries(f"b-{currency}") if e.checkout_id == checkout]
            mandate_charge = Money.from_wire(network["mandateAmount"])
            wallet_debit = Money.from_wire(network["walletAmount"])
            # What the network charged, in the budget currency: under a delegated mandate (always in the
            # budget currency) its charge; human-present (the mandate is in the checkout's currency) the
            # checkout or the wallet's debit when in the budget currency, else the quote locked at reserve.
            if mode == "delegated" or mandate_charge.currency == currency:
                expected = mandate_charge
            elif wallet_debit.currency == currency:
                expected = wallet_debit
            else:
                assert entry.reserved is not None and entry.legs is not None
                assert entry.legs["basis"] == "locked_quote" and entry.fx_rate is not None
                expected = entry.amount.convert(currency, entry.fx_rate, rounding=ROUND_UP)
            assert expected.currency == currency
            assert (entry.status, entry.budget_amount) == ("committed", expected), (entry.legs, network)
            assert entry.legs is not None and entry.legs["wallet_debit"] == wallet_debit.to_public()
        assert paid_count >= 12 and refused >= 1 and mover.moves >= 3 * paid_count
        for currency, agent in budgets.items():
            status = await agent.call("budget_status")
            used = Money.parse(status["total"]["used"]["amount"], currency)
            flagged = status["total"].get("debited_above_reservations", {}).get("amount")
            over = Money.parse(flagged["amount"], currency) if flagged else Money.zero(currency)
            counted = sum(e.budget_amount.minor for e in await lab.ledger.entries(f"b-{currency}")
                          if e.status == "committed")
            assert used.minor == counted
            assert used <= agent.toolkit.policy.total_budget + over
    finally:
        await lab.close()


async def test_human_present_in_a_third_currency_counts_the_quote_locked_for_it(lab: Lab) -> None:
    agent = lab.agent(_policy("EUR", "500.00"), CallbackApprover(lambda r: True), budget_id="eur")
    await agent.call("discover_merchants")
    await agent.toolkit.fx_quote("MYR", "EUR")  # a shown price caches a quote...
    _set(lab, "MYR", "0.25")  # ...that the network's move makes stale
    checkout = await _checkout(agent, ECONOMY)
    paid = await agent.call("pay", checkout_id=checkout, mode="human_present")
    assert paid["status"] == "paid"
    [entry] = await lab.ledger.entries("eur")
    # 130.00 MYR at the fresh quote 0.25/1.08 = 0.23148148, rounded up: 30.10 EUR (the cached 0.21 gave 25.28).
    assert entry.budget_amount == entry.reserved == Money.parse("30.10", "EUR")
    assert entry.legs is not None and entry.legs["basis"] == "locked_quote"
    assert entry.legs["budget_rate"] == "0.23148148" and entry.legs["budget_quote_id"].startswith("FXQ-")
    assert entry.legs["wallet_debit"] == Money.from_wire(_charge(lab, checkout)["walletAmount"]).to_public()


async def test_ledger_show_prints_the_legs_and_agent_key_show_prints_the_public_key(
        lab: Lab, engine_name: str, ledger_target: str, tmp_path: Any) -> None:
    if engine_name != "sqlite":
        pytest.skip("the CLI reads a ledger file here; the legs on PostgreSQL are asserted above")
    import os
    import subprocess
    import sys
    from pathlib import Path

    agent = await _mandate_agent(lab, "SGD", "2000.00", "1000.00", ["SKYLARK-AIR"], "sgd")
    _set(lab, "SGD", "0.70")
    await agent.call("pay", checkout_id=await _checkout(agent, FLIGHT))
    cli = str(Path(sys.executable).parent / "amp-tools")
    env = {**os.environ, "COLUMNS": "200", "AMP_TOOLS_HOME": str(tmp_path)}
    shown = subprocess.run([cli, "ledger", "show", "--ledger", ledger_target, "--budget", "sgd"],
                           capture_output=True, text=True, timeout=120, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "network legs" in shown.stdout
    assert "mandate 149.00 SGD" in shown.stdout and "wallet 104.30 USD @ 0.70000000" in shown.stdout
    assert "counted 149.00 SGD from the checkout" in shown.stdout
    keys = [subprocess.run([cli, name, "show"], capture_output=True, text=True, timeout=120, env=env)
            for name in ("agent-key", "key")]
    assert [k.returncode for k in keys] == [0, 0]
    assert keys[0].stdout == keys[1].stdout and '"d"' not in keys[0].stdout and '"kid"' in keys[0].stdout
