"""Property: over random budget trees and random spend sequences (reserves, commits, releases and
partial refunds, with the clock moving so rolling windows drop old payments), the ledger allows and
refuses exactly what a brute-force model over a plain list of payments allows and refuses, names the
same level and rule, and every level's figures equal the model's sums. No level is ever exceeded."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from amp_tools.clock import ManualClock
from amp_tools.errors import PolicyViolation
from amp_tools.money import Money
from amp_tools.policy import BudgetPolicy
from amp_tools.policy.subbudgets import BudgetLevel, BudgetPath, agent_names
from amp_tools.policy.windows import window_start
from tests.ledger._ledger_helpers import START, backend_target, intent, open_backend

ROOT = "crew"


@st.composite
def _caps(draw: st.DrawFn, ceiling: int, *, required: bool) -> dict[str, Any]:
    """Limits (whole dollars) at most `ceiling`: a total, maybe a per-payment max and a window."""
    out: dict[str, Any] = {}
    total = draw(st.integers(20, ceiling))
    if required or draw(st.booleans()):
        out["total_budget"] = f"{total}.00"
    if draw(st.booleans()):
        out["per_transaction_max"] = f"{draw(st.integers(5, total))}.00"
    if draw(st.booleans()):
        period = draw(st.sampled_from(["hour", "day"]))
        out["windows"] = {period: {"limit": f"{draw(st.integers(10, total))}.00",
                                   "mode": draw(st.sampled_from(["rolling", "calendar"]))}}
    return out


def _room(limits: dict[str, Any], parent: int) -> int:
    return int(str(limits.get("total_budget", f"{parent}.00")).split(".")[0])


@st.composite
def trees(draw: st.DrawFn) -> dict[str, Any]:
    """A root with 1-3 agents, each with up to 2 sub-agents; every child within its parent's limits."""
    root = {"name": ROOT, "currency": "USD", **draw(_caps(300, required=True))}
    agents: dict[str, Any] = {}
    for a in range(draw(st.integers(1, 3))):
        child = draw(_caps(_room(root, 300), required=False))
        _fit(child, root)
        subs = {}
        for b in range(draw(st.integers(0, 2))):
            sub = draw(_caps(_room(child, _room(root, 300)), required=False))
            _fit(sub, {**root, **child} if "windows" not in child else child)
            _fit(sub, root)
            subs[f"s{b}"] = sub
        if subs:
            child["agents"] = subs
        agents[f"a{a}"] = child
    root["agents"] = agents
    return root


def _fit(child: dict[str, Any], parent: dict[str, Any]) -> None:
    """Lower the child's limits to its parent's where the generator overshot (tighten-only is the rule)."""
    def minor(text: str) -> int:
        return int(Money.parse(text, "USD").minor)

    if "total_budget" in child and "total_budget" in parent and minor(child["total_budget"]) > minor(
            parent["total_budget"]):
        child["total_budget"] = parent["total_budget"]
    if "per_transaction_max" in child and "per_transaction_max" in parent and minor(
            child["per_transaction_max"]) > minor(parent["per_transaction_max"]):
        child["per_transaction_max"] = parent["per_transaction_max"]
    for period, cap in child.get("windows", {}).items():
        above = parent.get("windows", {}).get(period)
        if above is not None and minor(cap["limit"]) > minor(above["limit"]):
            cap["limit"] = above["limit"]


@dataclass
class _Payment:
    entry_id: int
    budget_id: str
    created_at: datetime
    amount: int
    refunded: int = 0
    status: str = "reserved"

    @property
    def counted(self) -> int:
        return 0 if self.status == "released" else self.amount - self.refunded


def _used(payments: list[_Payment], level: BudgetLevel, since: datetime | None) -> int:
    return sum(p.counted for p in payments if p.budget_id in level.covers and (since is None or p.created_at >= since))


def _expected_refusal(path: BudgetPath, payments: list[_Payment], amount: int, now: datetime) -> str | None:
    """The rule the brute force refuses with (root first; per payment, total, then windows), or None."""
    for level in path.levels:
        pol = level.policy
        if pol.per_transaction_max is not None and amount > pol.per_transaction_max.minor:
            return level.rule_prefix + "per_transaction_max"
        if _used(payments, level, None) + amount > pol.total_budget.minor:
            return level.rule_prefix + "total_budget"
        for period, cap in pol.windows.configured():
            since = window_start(period, cap.mode, now, pol.tz)
            if _used(payments, level, since) + amount > cap.limit.minor:
                return level.rule_prefix + f"windows.{period}"
    return None


def _declared_limits_hold(policy: BudgetPolicy, payments: list[_Payment], now: datetime) -> None:
    """Independently of `decide`: no level's own total or window is exceeded by what counts there."""
    for agent in ["", *agent_names(policy)]:
        level = BudgetPath.of(policy, ROOT, agent).leaf
        assert _used(payments, level, None) <= level.policy.total_budget.minor
        for period, cap in level.policy.windows.configured():
            assert _used(payments, level, window_start(period, cap.mode, now, level.policy.tz)) <= cap.limit.minor


OPS = st.lists(st.tuples(st.sampled_from(["pay", "pay", "pay", "commit", "commit", "release", "refund", "refund"]),
                         st.integers(0, 50), st.integers(1, 12_000), st.integers(0, 900)), min_size=5, max_size=40)


def _run(backend: str, where: str, tree: dict[str, Any], ops: list[tuple[str, int, int, int]]) -> None:
    policy = BudgetPolicy.model_validate(tree)
    paths = [BudgetPath.of(policy, ROOT, agent) for agent in ["", *agent_names(policy)]]
    clock = ManualClock(START)
    ledger = open_backend(backend, where, clock)
    payments: list[_Payment] = []
    counter = itertools.count()
    try:
        for op, pick, amount, seconds in ops:
            clock.advance(seconds)
            now = clock.now()
            if op == "pay":
                path = paths[pick % len(paths)]
                expected = _expected_refusal(path, payments, amount, now)
                n = next(counter)
                spend = intent(str(Money(amount, "USD").amount_str()), checkout=f"c{n}", at=now)
                try:
                    res = ledger.reserve_sync(spend, path.leaf.policy, budget_id=path.budget_id,
                                              idempotency_key=f"k{n}", now=now, path=path)
                except PolicyViolation as exc:
                    event("refused by an agent's level" if exc.rule.startswith("agents.") else "refused by the crew")
                    assert exc.rule == expected, (exc.rule, expected, str(exc))
                    assert exc.details["budget_id"] in {level.budget_id for level in path.levels}
                else:
                    assert expected is None, (expected, amount)
                    assert res.entry.budget_id == path.budget_id and res.entry.parents == path.parents
                    payments.append(_Payment(res.id, path.budget_id, now, amount))
                continue
            live = [p for p in payments if p.status == "reserved"]
            if op in ("commit", "release") and live:
                chosen = live[pick % len(live)]
                if op == "commit":
                    ledger.commit_sync(chosen.entry_id, external_ref=f"tx-{chosen.entry_id}")
                    chosen.status = "committed"
                else:
                    ledger.release_sync(chosen.entry_id, reason="declined")
                    chosen.status = "released"
                    event("released")
            paid = [p for p in payments if p.status == "committed" and p.counted > 0]
            if op == "refund" and paid:
                chosen = paid[pick % len(paid)]
                part = 1 + amount % chosen.counted
                ledger.refund_sync(chosen.entry_id, Money(part, "USD"), external_ref=f"rf{next(counter)}")
                chosen.refunded += part
                event("refunded")
            _declared_limits_hold(policy, payments, now)
        now = clock.now()
        for path in paths:
            level = path.leaf
            report = ledger.usage_report_sync(level.policy, level.budget_id, now, covers=level.covers)
            assert Money.parse(report["total"]["used"]["amount"], "USD").minor == _used(payments, level, None)
            for period, figure in report["windows"].items():
                cap = getattr(level.policy.windows, period)
                since = window_start(period, cap.mode, now, level.policy.tz)
                assert Money.parse(figure["used"]["amount"], "USD").minor == _used(payments, level, since), period
    finally:
        ledger.close_sync()


def _targets(backend: str, tmp_path: Path) -> Iterator[str]:
    yield from backend_target(backend, tmp_path)


@settings(max_examples=40, deadline=None)
@given(tree=trees(), ops=OPS)
def test_tree_matches_brute_force_sqlite(tree: dict[str, Any], ops: list[tuple[str, int, int, int]],
                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    where = str(tmp_path_factory.mktemp("tree") / "ledger.db")
    _run("sqlite", where, tree, ops)


@pytest.mark.postgres
@settings(max_examples=12, deadline=None)
@given(tree=trees(), ops=OPS)
def test_tree_matches_brute_force_postgres(tree: dict[str, Any], ops: list[tuple[str, int, int, int]],
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    for where in _targets("postgres", tmp_path_factory.mktemp("pg")):
        _run("postgres", where, tree, ops)


def test_brute_force_model_sees_descendants() -> None:
    """The model itself: a grandchild's payment counts at its parent and the root, not at a sibling."""
    policy = BudgetPolicy.model_validate({"name": ROOT, "currency": "USD", "total_budget": "100.00", "agents": {
        "a0": {"agents": {"s0": {"total_budget": "10.00"}}}, "a1": {}}})
    pay = _Payment(1, "crew/a0/s0", START, 700)
    assert [_used([pay], BudgetPath.of(policy, ROOT, a).leaf, None) for a in ("", "a0", "a0/s0", "a1")] == [
        700, 700, 700, 0]
    assert _expected_refusal(BudgetPath.of(policy, ROOT, "a0/s0"), [pay], 400, START) == \
        "agents.a0.agents.s0.total_budget"
    assert _expected_refusal(BudgetPath.of(policy, ROOT, "a1"), [pay], 9400, START) == "total_budget"
    assert _expected_refusal(BudgetPath.of(policy, ROOT, "a1"), [pay], 9300, START) is None
