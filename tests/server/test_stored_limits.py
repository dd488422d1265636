"""The console shows each budget with its own stored policy's limits (issue 19, item 2), on both engines;
`serve --policy` no longer decides any budget's limits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from amp_tools.cli import app
from amp_tools.errors import ConfigError
from amp_tools.ledger import LedgerBase
from amp_tools.server.budgets import overview, policy_for, stored_budgets, subtree
from amp_tools.server.data import detail, report
from tests.ledger._ledger_helpers import intent, open_backend, policy


@pytest.fixture
def ledger(backend: str, target: str) -> Iterator[LedgerBase]:
    led = open_backend(backend, target)
    yield led
    led.close_sync()


def test_each_budget_shows_its_own_stored_limits(ledger: LedgerBase) -> None:
    ledger.create_budget_sync("alice", policy(total_budget="500.00"), by="owner")
    ledger.create_budget_sync("bob", policy(total_budget="1200.00"), by="owner")
    crew = policy(total_budget="300.00", agents={"booker": {"total_budget": "100.00"}})
    ledger.create_budget_sync("crew", crew, by="owner")
    ledger.create_budget_sync("crew/booker", policy(name="booker", total_budget="100.00"), by="owner", parent="crew")
    from amp_tools.policy.subbudgets import BudgetPath

    path = BudgetPath.of(crew, "crew", "booker")
    ledger.reserve_sync(intent("40.00"), path.leaf.policy, budget_id="crew/booker", idempotency_key="k", path=path)
    ledger.reserve_sync(intent("7.00", checkout="c2"), policy(total_budget="500.00"), budget_id="alice",
                        idempotency_key="k")
    from amp_tools.approvals import ApprovalStore

    async def read() -> dict[str, tuple[dict[str, Any], list[Any]]]:
        rows = await overview(ledger, {})
        stored = await stored_budgets(ledger)
        out = {}
        for row in rows:
            covers = subtree(rows, row.budget_id)
            figures = await report(ledger, row.budget_id, row.currency, policy_for(stored, row.budget_id), covers)
            out[row.budget_id] = (figures, (await detail(ledger, ApprovalStore(ledger), covers)).entries)
        return out

    reports = asyncio.run(read())
    assert reports["alice"][0]["total"]["limit"]["amount"] == "500.00"
    assert reports["alice"][0]["total"]["left"]["amount"] == "493.00"
    assert reports["bob"][0]["total"]["limit"]["amount"] == "1200.00"
    # A parent's figures and its payments agree: the agent's payment is in both.
    crew_report, crew_entries = reports["crew"]
    assert crew_report["total"]["used"]["amount"] == "40.00" and crew_report["total"]["limit"]["amount"] == "300.00"
    assert [e.budget_id for e in crew_entries] == ["crew/booker"]
    stored = asyncio.run(stored_budgets(ledger))
    assert policy_for(stored, "crew/booker").policy.total_budget.amount_str() == "100.00"
    assert policy_for(stored, "nobody").policy is None


def test_serve_policy_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--policy", str(tmp_path / "p.yaml"), "--ledger",
                                      str(tmp_path / "l.db")])
    assert result.exit_code != 0 and isinstance(result.exception, ConfigError)
    assert "stored policy" in str(result.exception) and not (tmp_path / "l.db").exists()
