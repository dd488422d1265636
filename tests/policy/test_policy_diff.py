"""The canonical form of a stored policy and the readable diff between two versions."""

from __future__ import annotations

from amp_tools.policy import parse_policy
from amp_tools.policy.diff import canonical_text, diff_policies, policy_hash


def test_equal_policies_spelled_differently_hash_equal() -> None:
    one = parse_policy({"currency": "usd", "total_budget": "100", "windows": {"day": {"limit": "20.0"}},
                        "merchants": {"deny": ["Evil Shop"]}})
    two = parse_policy({"merchants": {"deny": ["Evil Shop"]}, "windows": {"day": {"limit": 20}},
                        "total_budget": "100.00", "currency": "USD"})
    assert canonical_text(one) == canonical_text(two)
    assert policy_hash(canonical_text(one)) == one.snapshot_hash() == two.snapshot_hash()
    assert diff_policies(one, two) == []


def test_diff_names_each_changed_field_with_old_and_new() -> None:
    old = parse_policy({"currency": "USD", "total_budget": "100.00", "windows": {"day": {"limit": "20.00"}}})
    new = parse_policy({"currency": "USD", "total_budget": "250.00", "per_transaction_max": "50.00",
                        "windows": {"day": {"limit": "90.00"}}, "merchants": {"deny": ["x"]}})
    lines = diff_policies(old, new)
    assert "total_budget: 100.00 -> 250.00" in lines
    assert "per_transaction_max: (none) -> 50.00" in lines
    assert "windows.day.limit: 20.00 -> 90.00" in lines
    assert 'merchants.deny: [] -> ["x"]' in lines
    assert len(lines) == 4
    assert diff_policies(new, old)[0].endswith("-> []") or "total_budget: 250.00 -> 100.00" in diff_policies(new, old)


def test_first_version_diff_lists_what_is_set() -> None:
    lines = diff_policies(None, parse_policy({"currency": "USD", "total_budget": "5.00"}))
    assert "total_budget: (not set) -> 5.00" in lines and "currency: (not set) -> USD" in lines
