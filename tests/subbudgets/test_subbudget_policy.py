"""Policy files with `agents:`: sub-budgets that only tighten, field-level errors that name the path,
the JSON Schema, effective policies, and unchanged hashes for policies without sub-budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from amp_tools.errors import ConfigError
from amp_tools.money import Money
from amp_tools.policy import check_policy_file, load_policy, parse_policy, policy_json_schema
from amp_tools.policy.subbudgets import BudgetPath, agent_names

BASE: dict[str, Any] = {"name": "trip", "currency": "USD", "total_budget": "1000.00",
                        "per_transaction_max": "600.00", "windows": {"day": {"limit": "900.00"}},
                        "merchants": {"allow": ["SKYLARK-AIR", "KL-GRAND-HOTEL", "ZOOM-CARS"]},
                        "mccs": {"allow": ["3000-3299", "7011"]},
                        "approval": {"confirm_above": "500.00", "confirm_new_merchants": True}}


def _refused(agents: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_policy({**BASE, "agents": agents}, source="crew.yaml")
    return exc.value.message.splitlines()


def test_a_valid_tree_loads_with_effective_policies(tmp_path: Path) -> None:
    path = tmp_path / "crew.yaml"
    path.write_text(
        "name: trip\ncurrency: USD\ntotal_budget: '1000.00'\nper_transaction_max: '600.00'\n"
        "approval: {confirm_above: '500.00'}\nmerchants: {deny: [SUNNY-TOURS]}\n"
        "agents:\n  flight_booker: {total_budget: '800.00'}\n"
        "  hotel_booker:\n    total_budget: '400.00'\n    per_transaction_max: '200.00'\n"
        "    windows: {day: {limit: '150.00'}}\n    approval: {confirm_above: '100.00'}\n"
        "    agents: {scout: {total_budget: '50.00'}}\n", encoding="utf-8")
    policy = load_policy(path)
    assert agent_names(policy) == ["flight_booker", "hotel_booker", "hotel_booker/scout"]
    hotel = BudgetPath.of(policy, "trip", "hotel_booker")
    assert [lv.budget_id for lv in hotel.levels] == ["trip", "trip/hotel_booker"]
    assert hotel.levels[0].covers == ("trip", "trip/flight_booker", "trip/hotel_booker", "trip/hotel_booker/scout")
    own = hotel.leaf.policy
    assert own.total_budget == Money.parse("400.00", "USD") and own.per_transaction_max == Money.parse("200", "USD")
    assert own.approval.confirm_above == Money.parse("100.00", "USD")
    assert own.merchants.deny == ["SUNNY-TOURS"]  # the parent's deny list still applies
    scout = BudgetPath.of(policy, "trip", "hotel_booker/scout")
    assert scout.parents == ("trip", "trip/hotel_booker") and scout.leaf.rule_prefix == \
        "agents.hotel_booker.agents.scout."
    flights = BudgetPath.of(policy, "trip", ["flight_booker"]).leaf.policy
    assert flights.per_transaction_max == Money.parse("600.00", "USD")  # inherited from the crew


def test_each_loosening_is_refused_with_its_path() -> None:
    lines = _refused({"hotel_booker": {
        "total_budget": "1200.00", "per_transaction_max": "700.00", "windows": {"day": {"limit": "950.00"}},
        "merchants": {"allow": ["KL-GRAND-HOTEL", "SUNNY-TOURS"]}, "mccs": {"allow": ["7011", "4722"]},
        "approval": {"confirm_above": "800.00", "confirm_new_merchants": False}}})
    text = "\n".join(lines)
    assert lines[0] == "crew.yaml: policy has 7 problems:"
    for path in ("agents.hotel_booker.total_budget", "agents.hotel_booker.per_transaction_max",
                 "agents.hotel_booker.windows.day.limit", "agents.hotel_booker.merchants.allow.1",
                 "agents.hotel_booker.mccs.allow.1", "agents.hotel_booker.approval.confirm_above",
                 "agents.hotel_booker.approval.confirm_new_merchants"):
        assert f"crew.yaml: {path}: " in text, path
    assert "1200.00 USD is above its parent's total budget 1000.00 USD" in text
    assert "'SUNNY-TOURS'" in text and "MCC 4722" in text


def test_nested_levels_are_checked_against_their_own_parent() -> None:
    lines = _refused({"team": {"total_budget": "300.00", "agents": {"scout": {"total_budget": "400.00"}}}})
    assert lines == ["crew.yaml: agents.team.agents.scout.total_budget: agent 'scout' total_budget 400.00 USD is "
                     "above its parent's total budget 300.00 USD; a sub-budget may only be smaller"]


def test_tightening_and_omitting_are_fine() -> None:
    policy = parse_policy({**BASE, "agents": {
        "a": {"approval": {"confirm_above": "0", "confirm_all": True}, "mccs": {"allow": ["3000-3100"]}},
        "b": {}}})
    assert list(policy.agents) == ["a", "b"]
    assert BudgetPath.of(policy, "trip", "b").leaf.policy.approval.confirm_above == Money.parse("500.00", "USD")


def test_bad_agent_names_and_types_are_field_errors() -> None:
    assert _refused({"hotel/booker": {}})[0].startswith("crew.yaml: agents: agent name 'hotel/booker' is not usable")
    text = "\n".join(_refused({"a": {"total_budget": 12.5, "windowz": {}}}))
    assert "agents.a.total_budget: amount 12.5 is written as a float" in text
    assert "agents.a.windowz: unknown field 'windowz' (did you mean 'windows'?); expected one of: agents," in text


def test_json_schema_describes_sub_budgets() -> None:
    schema = policy_json_schema()
    agents = schema["properties"]["agents"]
    assert agents["type"] == "object" and agents["additionalProperties"] == {"$ref": "#/$defs/AgentBudget"}
    sub = schema["$defs"]["AgentBudget"]
    assert {"total_budget", "per_transaction_max", "windows", "merchants", "mccs", "approval", "agents"} <= set(
        sub["properties"])
    assert sub["properties"]["agents"]["additionalProperties"] == {"$ref": "#/$defs/AgentBudget"}
    assert sub["additionalProperties"] is False


def test_a_policy_without_agents_keeps_its_hash() -> None:
    plain = parse_policy(BASE)
    assert '"agents"' not in plain.canonical_json()
    with_agents = parse_policy({**BASE, "agents": {"a": {}}})
    assert with_agents.snapshot_hash() != plain.snapshot_hash()


def test_policy_check_lists_the_sub_budgets() -> None:
    summary = check_policy_file(Path(__file__).resolve().parents[2] / "examples" / "policies" / "crew_budgets.yaml")
    assert "total budget 700.00 SGD" in summary
    assert "sub-budgets: flight_booker 300.00 SGD, hotel_booker 400.00 SGD, researcher 20.00 SGD" in summary


def test_every_level_may_ask_a_person_and_the_smallest_room_is_reported() -> None:
    from datetime import UTC, datetime

    from amp_tools.policy import SpendIntent
    from amp_tools.policy.decide import Usage, UsageFigure, usage_queries

    policy = parse_policy({"name": "trip", "currency": "USD", "total_budget": "1000.00",
                           "approval": {"confirm_above": "500.00"},
                           "agents": {"a": {"total_budget": "300.00",
                                            "approval": {"confirm_above": "100.00", "confirm_new_merchants": True}}}})
    path = BudgetPath.of(policy, "trip", "a")
    amount = Money.parse("200.00", "USD")
    spend = SpendIntent(action="pay", merchant_id="SHOP", merchant_name="Shop", mcc=None, amount=amount,
                        budget_amount=amount, fx_rate=None, items=(), human_present=False, checkout_id="c",
                        at=datetime(2025, 6, 11, tzinfo=UTC))
    usages = [Usage({q.name: UsageFigure(q.name, Money.parse(used, "USD"), 1) for q in usage_queries(lv.policy, spend)},
                    merchant_seen=True) for lv, used in zip(path.levels, ("650.00", "50.00"), strict=True)]
    verdict = path.decide(spend, usages)
    assert verdict.approval_reasons == ("the amount 200.00 USD is above the confirmation threshold 100.00 USD",)
    assert verdict.budget_left == Money.parse("50.00", "USD")  # the agent has 50.00 left, the crew 150.00
    assert "agents.a.total_budget" in verdict.checked_rules and "total_budget" in verdict.checked_rules
