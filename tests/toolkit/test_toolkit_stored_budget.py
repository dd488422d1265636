"""A toolkit enforces its budget's stored policy, never a file of its own (both engines).

Two processes on budget `team` with different policy files: the first creates the budget, the second
refuses to start with the diff and the owner's command. A toolkit without a policy uses the stored one;
a reservation made under any other policy than the stored one is refused under the budget row lock.
"""

from __future__ import annotations

from typing import Any

import pytest

from amp_tools.errors import ConfigError, PolicyViolation
from amp_tools.ledger import LedgerBase
from amp_tools.money import Money
from amp_tools.policy import parse_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit
from amp_tools.toolkit.budget import PolicyDiffers, use_budget
from tests.ledger._ledger_helpers import intent, open_backend, policy

TEAM: dict[str, Any] = {"name": "team", "currency": "USD", "total_budget": "500.00"}


@pytest.fixture
def ledger(backend: str, target: str) -> Any:
    led = open_backend(backend, target)
    yield led
    led.close_sync()


def _toolkit(ledger: LedgerBase, data: dict[str, Any] | None, budget_id: str = "team") -> AmpToolkit:
    sandbox = Sandbox(SandboxConfig(idv_mode="auto", seed=3))
    return AmpToolkit.for_sandbox(sandbox, parse_policy(data) if data is not None else None, ledger=ledger,
                                  budget_id=budget_id)


def test_first_process_creates_the_budget_and_is_recorded(ledger: LedgerBase) -> None:
    kit = _toolkit(ledger, TEAM)
    stored = ledger.get_budget_sync("team")
    assert stored is not None and stored.policy_version == 1
    assert stored.created_by.startswith("toolkit amp-tools-agent (") and "pid" in stored.created_by
    assert kit.policy.total_budget == Money.parse("500.00", "USD")


def test_second_process_with_another_policy_refuses_with_the_diff(ledger: LedgerBase) -> None:
    _toolkit(ledger, TEAM)
    with pytest.raises(PolicyDiffers) as caught:
        _toolkit(ledger, {**TEAM, "total_budget": "5000.00", "windows": {"day": {"limit": "900.00"}}})
    text = str(caught.value)
    assert "total_budget: 500.00 -> 5000.00" in text
    assert "amp-tools budgets set-policy team --policy FILE" in text
    assert caught.value.details["version"] == 1
    stored = ledger.get_budget_sync("team")
    assert stored is not None and stored.policy_version == 1 and stored.policy.total_budget.minor == 50000


def test_no_policy_uses_the_stored_one(ledger: LedgerBase) -> None:
    ledger.create_budget_sync("alice", parse_policy({**TEAM, "name": "alice", "total_budget": "75.00"}), by="owner")
    kit = _toolkit(ledger, None, budget_id="alice")
    assert kit.policy.total_budget == Money.parse("75.00", "USD")
    assert kit.guard.policy.snapshot_hash() == kit.stored.policy_hash
    with pytest.raises(ConfigError, match="budgets create bob"):
        _toolkit(ledger, None, budget_id="bob")


def test_the_same_policy_in_another_spelling_is_accepted(ledger: LedgerBase) -> None:
    _toolkit(ledger, TEAM)
    again = _toolkit(ledger, {"total_budget": 500, "currency": "usd", "name": "team"})
    assert again.stored.policy_version == 1


def test_sub_budgets_are_stored_and_linked_to_their_parent(ledger: LedgerBase) -> None:
    crew = {**TEAM, "agents": {"hotel": {"total_budget": "200.00"}, "flight": {"total_budget": "300.00"}}}
    kit = _toolkit(ledger, crew)
    budgets = {b.budget_id: b for b in ledger.list_budgets_sync()}
    assert set(budgets) == {"team", "team/hotel", "team/flight"}
    assert budgets["team/hotel"].parent == "team" and budgets["team/hotel"].policy.total_budget.minor == 20000
    assert kit.for_agent("hotel").policy.total_budget == budgets["team/hotel"].policy.total_budget


def test_a_reservation_under_another_policy_is_refused(ledger: LedgerBase) -> None:
    ledger.create_budget_sync("team", policy(total_budget="50.00"), by="owner")
    with pytest.raises(PolicyViolation) as caught:
        ledger.reserve_sync(intent("40.00"), policy(total_budget="5000.00"), budget_id="team", idempotency_key="k")
    assert caught.value.rule == "budget.policy_changed"
    assert ledger.entries_sync("team") == []
    # Under the stored policy the same payment goes through.
    ok = ledger.reserve_sync(intent("40.00"), policy(total_budget="50.00"), budget_id="team", idempotency_key="k")
    assert ok.entry.budget_amount == Money.parse("40.00", "USD")


def test_owner_change_stops_a_running_process_until_it_rereads(ledger: LedgerBase) -> None:
    old = policy(total_budget="100.00")
    stored = use_budget(ledger, "team", old, by="agent")
    ledger.set_policy_sync("team", policy(total_budget="30.00"), by="owner", expected_version=stored.policy_version)
    with pytest.raises(PolicyViolation, match="stored policy"):
        ledger.reserve_sync(intent("60.00"), old, budget_id="team", idempotency_key="k")
    fresh = use_budget(ledger, "team", None, by="agent")
    with pytest.raises(PolicyViolation):  # the new, tighter total refuses 60.00
        ledger.reserve_sync(intent("60.00"), fresh.policy, budget_id="team", idempotency_key="k")
    assert ledger.entries_sync("team") == []


def _status(kit: AmpToolkit) -> dict[str, Any]:
    import asyncio

    spec = next(s for s in kit.specs() if s.name == "budget_status")
    result: dict[str, Any] = asyncio.run(spec.ainvoke({}))
    return result


def _freeze(ledger: LedgerBase, budget_id: str, frozen: bool, reason: str = "") -> None:
    from amp_tools.ledger.controls import freeze_steps

    at = ledger.clock.now()
    ledger.run_write_sync(lambda: freeze_steps(ledger.dialect, budget_id, frozen, by="owner", reason=reason, now=at))


def test_budget_status_shows_frozen_version_and_signed(ledger: LedgerBase) -> None:
    kit = _toolkit(ledger, TEAM)
    status = _status(kit)
    assert (status["frozen"], status["policy_version"], status["signed"]) == (False, 1, False)
    _freeze(ledger, "team", True, "trip cancelled")
    status = _status(kit)
    assert status["frozen"] is True
    assert status["frozen_by_owner"] == [{"budget": "team", "reason": "trip cancelled"}]
    ledger.set_policy_sync("team", parse_policy({**TEAM, "total_budget": "400.00"}), by="owner", expected_version=1)
    status = _status(kit)
    assert status["policy_version"] == 2 and "restarted" in status["policy_changed"]


def test_a_frozen_parent_stops_its_agents(ledger: LedgerBase) -> None:
    crew = {**TEAM, "agents": {"hotel": {"total_budget": "200.00"}}}
    kit = _toolkit(ledger, crew)
    hotel = kit.for_agent("hotel")
    _freeze(ledger, "team", True, "audit in progress")
    assert _status(hotel)["frozen_by_owner"] == [{"budget": "team", "reason": "audit in progress"}]
    assert hotel.path is not None
    with pytest.raises(PolicyViolation) as caught:
        ledger.reserve_sync(intent("10.00"), hotel.policy, budget_id="team/hotel", idempotency_key="k",
                            path=hotel.path)
    assert caught.value.rule == "budget.frozen" and "audit in progress" in caught.value.message
    assert ledger.entries_sync("team/hotel") == []


def test_a_budget_of_an_older_ledger_is_adopted_by_the_first_process(ledger: LedgerBase) -> None:
    ledger.reserve_sync(intent("25.00"), policy(name="team", total_budget="500.00"), budget_id="team",
                        idempotency_key="before-v6")
    _toolkit(ledger, TEAM)
    [version] = ledger.policy_history_sync("team")
    assert version.note.startswith("adopted by toolkit amp-tools-agent (") and version.note.endswith("from its policy")
    status = _status(_toolkit(ledger, None))
    assert status["total"]["used"]["amount"] == "25.00" and status["policy_version"] == 1
