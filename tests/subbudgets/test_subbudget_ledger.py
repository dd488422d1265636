"""The ledger side of sub-budgets and of budgets per end user, on SQLite and PostgreSQL.

Budgets per end user come from one template policy and are created by their first reservation:
thousands are isolated from one another and a reservation costs the same statements in the
first budget as in the 2,000th (latency is measured by ``python -m benchmarks.budgets``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from amp_tools.errors import PolicyViolation
from amp_tools.ledger import LedgerBase
from amp_tools.ledger._sql import Steps
from amp_tools.ledger.schema import SCHEMA_VERSION
from amp_tools.money import Money
from amp_tools.policy import BudgetPolicy
from amp_tools.policy.subbudgets import BudgetPath
from tests.ledger._ledger_helpers import (
    START,
    downgrade_audit_to_legacy,
    downgrade_to_v3,
    intent,
    open_backend,
    raw_sync,
)

TEMPLATE = BudgetPolicy.model_validate({"name": "user", "currency": "USD", "total_budget": "20.00",
                                        "windows": {"day": {"limit": "15.00"}}})
CREW = BudgetPolicy.model_validate({"name": "crew", "currency": "USD", "total_budget": "100.00", "agents": {
    "booker": {"total_budget": "80.00"}, "scout": {"total_budget": "30.00"}}})


@pytest.fixture
def ledger(backend: str, target: str) -> Iterator[LedgerBase]:
    led = open_backend(backend, target)
    yield led
    led.close_sync()


def _statements(ledger: LedgerBase, budget_id: str, key: str, amount: str = "1.00") -> int:
    """How many statements one reserve runs (the steps are counted as the engine executes them)."""
    factory = ledger._reserve(intent(amount, checkout=key), TEMPLATE, budget_id, key, "", START)
    seen = [0]

    def counted() -> Steps[Any]:
        steps = factory()
        reply: Any = None
        try:
            while True:
                query = steps.send(reply)
                seen[0] += 1
                reply = yield query
        except StopIteration as done:
            return done.value

    ledger._run_write_sync(counted)
    return seen[0]


def test_budgets_per_end_user_are_isolated_and_cost_the_same(backend: str, ledger: LedgerBase) -> None:
    users = 2000 if backend == "postgres" else 300
    first = _statements(ledger, "user:0", "k0")
    for n in range(1, users):
        ledger.reserve_sync(intent("1.00", checkout=f"c{n}"), TEMPLATE, budget_id=f"user:{n}",
                            idempotency_key=f"k{n}", now=START)
    # A new budget after thousands costs exactly what the first did: no setup that grows with them.
    assert _statements(ledger, f"user:{users}", "kn") == first
    assert _statements(ledger, "user:7", "k7-again") == first  # and an existing one the same
    assert raw_sync(ledger, "SELECT COUNT(*) FROM budgets")[0][0] == users + 1

    # Isolation: user 3 fills its day cap; its refusal touches nobody else.
    for n in range(14):
        ledger.reserve_sync(intent("1.00", checkout=f"u3-{n}"), TEMPLATE, budget_id="user:3",
                            idempotency_key=f"u3-{n}", now=START)
    with pytest.raises(PolicyViolation) as refused:
        ledger.reserve_sync(intent("1.00", checkout="u3-x"), TEMPLATE, budget_id="user:3", idempotency_key="u3-x",
                            now=START)
    assert refused.value.rule == "windows.day"
    assert ledger.reserve_sync(intent("14.00", checkout="u4"), TEMPLATE, budget_id="user:4", idempotency_key="u4",
                               now=START).entry.budget_id == "user:4"
    used = {b: ledger.usage_report_sync(TEMPLATE, b, START)["total"]["used"]["amount"]
            for b in ("user:3", "user:4", "user:5")}
    assert used == {"user:3": "15.00", "user:4": "15.00", "user:5": "1.00"}


def test_agent_entry_is_written_once_and_moves_every_level(backend: str, ledger: LedgerBase) -> None:
    booker = BudgetPath.of(CREW, "crew", "booker")
    res = ledger.reserve_sync(intent("30.00", checkout="a"), booker.leaf.policy, budget_id=booker.budget_id,
                              idempotency_key="k", now=START, path=booker)
    assert [tuple(r) for r in raw_sync(ledger, "SELECT budget_id, parents, root_id FROM entries")] == [
        ("crew/booker", '["crew"]', "crew")]

    def used() -> dict[str, int]:
        return {str(b): int(m) for b, m in raw_sync(ledger, "SELECT budget_id, used_minor FROM budgets")}

    assert used() == {"crew": 3000, "crew/booker": 3000}
    again = ledger.reserve_sync(intent("30.00", checkout="a"), booker.leaf.policy, budget_id=booker.budget_id,
                                idempotency_key="k", now=START, path=booker)
    assert again.replayed and again.id == res.id and used() == {"crew": 3000, "crew/booker": 3000}
    ledger.commit_sync(res.id, external_ref="tx-1", debited=Money.parse("31.00", "USD"))
    assert used() == {"crew": 3100, "crew/booker": 3100}
    ledger.refund_sync(res.id, Money.parse("11.00", "USD"), external_ref="rf-1")
    assert used() == {"crew": 1964, "crew/booker": 1964}  # 11 of 30 refunded: 31.00 x 11/30 rounded down
    scout = BudgetPath.of(CREW, "crew", "scout")
    held = ledger.reserve_sync(intent("30.00", checkout="b"), scout.leaf.policy, budget_id=scout.budget_id,
                               idempotency_key="k2", now=START, path=scout)
    assert used() == {"crew": 4964, "crew/booker": 1964, "crew/scout": 3000}
    ledger.release_sync(held.id, reason="declined")
    assert used() == {"crew": 1964, "crew/booker": 1964, "crew/scout": 0}
    assert [row[:2] for row in ledger.budget_tree_sync("crew")] == [("crew", None), ("crew/booker", "crew"),
                                                                    ("crew/scout", "crew")]
    assert ledger.audit.verify_sync().ok


def test_version_3_database_migrates_to_4(backend: str, target: str) -> None:
    led = open_backend(backend, target)
    try:
        old = led.reserve_sync(intent("5.00"), TEMPLATE, budget_id="solo", idempotency_key="old", now=START)
        downgrade_audit_to_legacy(led)  # version 5 first (per-budget audit chains), then 4
        downgrade_to_v3(led)
    finally:
        led.close_sync()
    led = open_backend(backend, target)
    try:
        assert raw_sync(led, "SELECT MAX(version) FROM schema_version")[0][0] == SCHEMA_VERSION >= 5
        assert led.get_sync(old.id).parents == ()
        booker = BudgetPath.of(CREW, "crew", "booker")
        res = led.reserve_sync(intent("5.00", checkout="n"), booker.leaf.policy, budget_id=booker.budget_id,
                               idempotency_key="new", now=START, path=booker)
        assert res.entry.parents == ("crew",)
    finally:
        led.close_sync()
