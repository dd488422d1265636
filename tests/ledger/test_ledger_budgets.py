"""Stored budgets (schema version 6): create, read, version with optimistic concurrency, history and audit,
adoption of a budget seen only in entries; on SQLite and PostgreSQL, sync and async."""

from __future__ import annotations

import asyncio

import pytest

from amp_tools.errors import ConfigError, InvalidArguments, NotFound
from amp_tools.ledger import BudgetExists, LedgerBase, StaleVersion
from tests.ledger._ledger_helpers import intent, policy, raw_sync, usd


def test_create_then_read_the_stored_policy(ledger: LedgerBase) -> None:
    assert ledger.get_budget_sync("alice") is None
    made = ledger.create_budget_sync("alice", policy(total_budget="500.00"), by="owner")
    assert (made.budget_id, made.currency, made.policy_version, made.created_by) == ("alice", "USD", 1, "owner")
    assert made.policy.total_budget == usd("500.00")
    assert made.policy_hash == policy(total_budget="500.00").snapshot_hash()
    assert not made.frozen and made.signature is None and made.parent is None
    again = ledger.get_budget_sync("alice")
    assert again == made
    assert [b.budget_id for b in ledger.list_budgets_sync()] == ["alice"]
    [record] = [r for r in list(ledger.audit._iter_sync()) if r.budget_id == "alice"]
    assert record.kind == "budget_create" and record.payload["by"] == "owner" and record.payload["version"] == 1
    assert "total_budget: (not set) -> 500.00" in record.payload["diff"]


def test_creating_twice_is_refused_and_changes_nothing(ledger: LedgerBase) -> None:
    ledger.create_budget_sync("alice", policy(), by="owner")
    with pytest.raises(BudgetExists, match="set-policy alice"):
        ledger.create_budget_sync("alice", policy(total_budget="900.00"), by="mallory")
    stored = ledger.get_budget_sync("alice")
    assert stored is not None and stored.policy.total_budget == usd("100.00") and stored.created_by == "owner"
    assert len(ledger.policy_history_sync("alice")) == 1


def test_set_policy_versions_diffs_and_audits(ledger: LedgerBase) -> None:
    ledger.create_budget_sync("team", policy(), by="owner")
    newer = ledger.set_policy_sync("team", policy(total_budget="250.00", windows={"day": {"limit": "90.00"}}),
                                   by="carol", expected_version=1, note="Q3 travel")
    assert newer.policy_version == 2 and newer.updated_by == "carol" and newer.created_by == "owner"
    assert newer.policy.total_budget == usd("250.00")
    history = ledger.policy_history_sync("team")
    assert [v.version for v in history] == [1, 2]
    assert history[1].note == "Q3 travel" and history[1].created_by == "carol"
    assert "total_budget: 100.00 -> 250.00" in history[1].diff
    assert any(line.startswith("windows.day.limit: (none) -> 90.00") or "windows.day" in line
               for line in history[1].diff)
    assert history[0].policy.total_budget == usd("100.00")  # every version is kept
    records = [r for r in list(ledger.audit._iter_sync()) if r.kind == "budget_policy"]
    assert len(records) == 1 and records[0].payload["by"] == "carol"
    assert records[0].payload["previous_version"] == 1 and records[0].payload["version"] == 2
    assert ledger.audit.verify_sync().ok


def test_set_policy_refuses_a_stale_version(ledger: LedgerBase) -> None:
    ledger.create_budget_sync("team", policy(), by="owner")
    ledger.set_policy_sync("team", policy(total_budget="200.00"), by="a", expected_version=1)
    with pytest.raises(StaleVersion, match="version 2, not 1"):
        ledger.set_policy_sync("team", policy(total_budget="999.00"), by="b", expected_version=1)
    stored = ledger.get_budget_sync("team")
    assert stored is not None and stored.policy_version == 2 and stored.policy.total_budget == usd("200.00")


def test_same_policy_makes_no_new_version(ledger: LedgerBase) -> None:
    ledger.create_budget_sync("team", policy(), by="owner")
    same = ledger.set_policy_sync("team", policy(), by="owner", expected_version=1)
    assert same.policy_version == 1 and len(ledger.policy_history_sync("team")) == 1


def test_bad_input_changes_nothing(ledger: LedgerBase) -> None:
    with pytest.raises(NotFound, match="budgets create ghost"):
        ledger.set_policy_sync("ghost", policy(), by="owner", expected_version=1)
    for bad in ("", " alice", "a\nb", "x" * 201):
        with pytest.raises(InvalidArguments):
            ledger.create_budget_sync(bad, policy(), by="owner")
    with pytest.raises(InvalidArguments):
        ledger.create_budget_sync("alice", policy(), by="")
    with pytest.raises(NotFound, match="parent budget 'team'"):
        ledger.create_budget_sync("team/a", policy(), by="owner", parent="team")
    ledger.create_budget_sync("eur", policy(currency="EUR"), by="owner")
    with pytest.raises(ConfigError, match="kept in EUR"):
        ledger.set_policy_sync("eur", policy(), by="owner", expected_version=1)
    assert [b.budget_id for b in ledger.list_budgets_sync()] == ["eur"]
    assert raw_sync(ledger, "SELECT COUNT(*) FROM budgets") == [(1,)]


def test_sub_budget_links_to_its_parent(ledger: LedgerBase) -> None:
    ledger.create_budget_sync("team", policy(total_budget="300.00"), by="owner")
    child = ledger.create_budget_sync("team/hotel", policy(total_budget="100.00"), by="owner", parent="team")
    assert child.parent == "team"
    assert [(b.budget_id, b.parent) for b in ledger.list_budgets_sync()] == [("team", None), ("team/hotel", "team")]


def test_a_budget_seen_in_entries_is_adopted(ledger: LedgerBase) -> None:
    ledger.reserve_sync(intent("10.00"), policy(), budget_id="legacy", idempotency_key="k1")
    assert ledger.get_budget_sync("legacy") is None  # entries alone do not make a stored budget
    adopted = ledger.create_budget_sync("legacy", policy(total_budget="80.00"), by="pid 42")
    assert adopted.policy_version == 1
    [version] = ledger.policy_history_sync("legacy")
    assert version.note == "adopted by pid 42 from its policy"
    assert [r.kind for r in list(ledger.audit._iter_sync()) if r.kind.startswith("budget_")] == ["budget_adopt"]
    assert raw_sync(ledger, "SELECT used_minor FROM budgets WHERE budget_id = 'legacy'") == [(1000,)]


def test_async_twins(ledger: LedgerBase) -> None:
    async def run() -> None:
        await ledger.create_budget("bob", policy(), by="owner")
        await ledger.set_policy("bob", policy(total_budget="50.00"), by="owner", expected_version=1)
        stored = await ledger.get_budget("bob")
        assert stored is not None and stored.policy_version == 2
        assert [b.budget_id for b in await ledger.list_budgets()] == ["bob"]
        assert [v.version for v in await ledger.policy_history("bob")] == [1, 2]

    asyncio.run(run())
