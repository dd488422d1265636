"""One truth: the console's figures, `budget_status` and `amp-tools ledger tree` agree to the minor unit.

A crew with sub-budgets (one nested two deep) pays through the sandbox in foreign currencies
(SGD and MYR offers, counted in USD at the quoted rate), one payment is partly refunded, one is
released; the console (overview page, budget pages and ``/api/budgets``), the agents' own
``budget_status`` and the ledger tree (with each level's limit from the policy) are compared for
every level. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from amp_tools.ledger import LedgerBase
from amp_tools.money import Money
from amp_tools.policy import parse_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.server import ServeSettings, create_app
from amp_tools.toolkit import AmpToolkit
from tests.ledger._ledger_helpers import open_backend
from tests.server._server_helpers import BASE, PASSPHRASE_HASH, login

CREW: dict[str, Any] = {
    "name": "crew trip", "currency": "USD", "total_budget": "900.00", "windows": {"day": {"limit": "800.00"}},
    "agents": {
        "flight_booker": {"total_budget": "400.00"},
        "ground": {"total_budget": "300.00", "agents": {"driver": {"total_budget": "150.00"}}},
    },
}
LEVELS = ("trip", "trip/flight_booker", "trip/ground", "trip/ground/driver")


class Crew:
    def __init__(self, backend: str, target: str) -> None:
        self.backend, self.target = backend, target
        self.sandbox = Sandbox(SandboxConfig(seed=11))
        self.policy = parse_policy(CREW)
        self.ledger: LedgerBase = open_backend(backend, target, self.sandbox.clock)
        self.root = AmpToolkit.for_sandbox(self.sandbox, self.policy, ledger=self.ledger, budget_id="trip")
        self.app = create_app(ServeSettings(ledger=self.ledger, passphrase_hash=PASSPHRASE_HASH))

    def agent(self, name: str) -> AmpToolkit:
        return self.root if not name else self.root.for_agent(name)

    async def call(self, tk: AmpToolkit, name: str, **args: Any) -> dict[str, Any]:
        spec = next(s for s in tk.specs() if s.name == name)
        result: dict[str, Any] = await spec.ainvoke(args)
        return result

    async def buy(self, tk: AmpToolkit, query: str, category: str, words: str) -> dict[str, Any]:
        found = await self.call(tk, "search_offers", query=query, category=category)
        offer = next(o["offer_id"] for o in found["offers"] if words in o["name"])
        checkout = await self.call(tk, "checkout", offer_id=offer)
        return await self.call(tk, "pay", checkout_id=checkout["checkout_id"])


@pytest.fixture
async def crew(backend: str, target: str) -> AsyncIterator[Crew]:
    made = Crew(backend, target)
    yield made
    await made.root.aclose()
    await made.ledger.close()


def _minor(figure: dict[str, Any] | None) -> int | None:
    return None if figure is None else Money.parse(figure["amount"], figure["currency"]).minor


def _ledger_tree(crew: Crew, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, int]]:
    """budget id -> (used, limit) in minor units, read from what `amp-tools ledger tree` prints."""
    import io

    from rich.console import Console

    from amp_tools.cli import _budgets as cli_budgets

    printed = io.StringIO()
    monkeypatch.setattr(cli_budgets, "_out", Console(file=printed, width=300, color_system=None))
    monkeypatch.setattr(cli_budgets, "_open", lambda ledger, existing: open_backend(crew.backend, crew.target))
    cli_budgets.print_tree(None, "trip")
    found: dict[str, tuple[int, int]] = {}
    names = {b.rsplit("/", 1)[-1]: b for b in LEVELS}
    for line in printed.getvalue().splitlines():
        match = re.search(r"(\w+)  used (\S+) USD \(\d+ payments\)  of (\S+) USD, (\S+) USD left", line)
        if match:
            used, limit, left = (Money.parse(match.group(n), "USD").minor for n in (2, 3, 4))
            assert left == max(0, limit - used), line
            found[names[match.group(1)]] = (used, limit)
    return found


async def test_console_budget_status_and_ledger_tree_agree(crew: Crew, monkeypatch: pytest.MonkeyPatch) -> None:
    flights, driver, ground = crew.agent("flight_booker"), crew.agent("ground/driver"), crew.agent("ground")
    paid_flight = await crew.buy(flights, "flight Kuala Lumpur", "flight", "08:00")   # SGD, counted in USD
    assert paid_flight["status"] == "paid" and paid_flight["amount"]["currency"] != "USD"
    assert (await crew.buy(driver, "car", "car", "Compact"))["status"] == "paid"
    assert (await crew.buy(ground, "car", "car", "Compact"))["status"] == "paid"
    assert (await crew.buy(crew.root, "hotel Kuala Lumpur", "hotel", "Superior"))["status"] == "paid"
    # A partial refund of the flight, and a payment released before it was sent.
    [flight] = [e for e in await crew.ledger.entries("trip/flight_booker") if e.status == "committed"]
    await crew.ledger.refund(flight.id, Money(flight.amount.minor // 3, flight.amount.currency), external_ref="rf-1")
    from amp_tools.policy import SpendIntent

    held = await crew.ledger.reserve(
        SpendIntent(action="pay", merchant_id="X", merchant_name="X", mcc=None, amount=Money(1234, "USD"),
                    budget_amount=Money(1234, "USD"), fx_rate=None, items=(), human_present=False, checkout_id="c-x",
                    at=crew.sandbox.clock.now()),
        crew.policy, budget_id="trip", idempotency_key="k-released")
    await crew.ledger.release(held.id, reason="declined by the merchant")

    # budget_status of every level, from the agent's own toolkit.
    status: dict[str, dict[str, Any]] = {}
    for budget_id in LEVELS:
        agent = budget_id.partition("/")[2]
        status[budget_id] = (await crew.call(crew.agent(agent), "budget_status"))["total"]

    # `amp-tools ledger tree trip`, as printed: each level's used figure and its stored limit and room.
    tree = _ledger_tree(crew, monkeypatch)
    assert set(tree) == set(LEVELS)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=crew.app), base_url=BASE) as client:
        await login(client)
        api = {b["budget_id"]: b for b in (await client.get("/api/budgets")).json()["budgets"]}
        overview = (await client.get("/budgets")).text
        pages = {b: (await client.get(f"/budgets/{b}")).text for b in LEVELS}
    root_page = pages["trip"]
    assert "stored in the ledger" in root_page and "Version 1; not signed" in root_page

    for budget_id in LEVELS:
        used, limit = tree[budget_id]
        left = max(0, limit - used)
        mine = status[budget_id]
        assert (_minor(mine["used"]), _minor(mine["limit"]), _minor(mine["left"])) == (used, limit, left), budget_id
        row = api[budget_id]
        assert (_minor(row["used"]), _minor(row["limit"]), _minor(row["left"])) == (used, limit, left), budget_id
        total = row["total"]
        assert (_minor(total["used"]), _minor(total["limit"]), _minor(total["left"])) == (used, limit, left)
        shown = [str(Money(used, "USD")), str(Money(left, "USD"))]
        for text in shown:
            assert text in pages[budget_id], (budget_id, text)
        # The overview's row of this level (the crew's sub-budgets are listed inside its row).
        match = re.search(rf'<tr data-budget="{re.escape(budget_id)}".*?</tr>', overview)
        assert match is not None, budget_id
        assert all(text in match.group(0) for text in shown), (budget_id, match.group(0))
    # Each level counts its own payments and every level below it, nothing else.
    assert tree["trip"][0] > tree["trip/flight_booker"][0] + tree["trip/ground"][0]
    assert tree["trip/ground"][0] > tree["trip/ground/driver"][0] > 0
    assert api["trip"]["sub_budgets"] == ["trip/flight_booker", "trip/ground"]
    assert api["trip/ground"]["sub_budgets"] == ["trip/ground/driver"]
    # The refund shows on the flight booker's page with its legs: checkout in SGD, from the budget in USD.
    page = pages["trip/flight_booker"]
    assert "refunded" in page and "SGD" in page and "Rate" in page and "From budget" in page
    assert "not paid" in pages["trip"] and "declined by the merchant" in pages["trip"]
