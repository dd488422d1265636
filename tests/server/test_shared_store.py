"""Approvals and the kill switch in the ledger's engine, on SQLite and PostgreSQL.

Two ledger handles on one database stand for an agent's host and the owner's inbox host.
"""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from amp_tools.approvals import ApprovalDecision, ApprovalStore
from amp_tools.approvals.request import make_request
from amp_tools.clock import ManualClock
from amp_tools.errors import ConfigError, PolicyViolation
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.ledger._sql import to_us
from amp_tools.ledger.controls import controls_steps, freeze_steps
from amp_tools.policy import Verdict
from tests.ledger._ledger_helpers import START, intent, policy, usd

VERDICT = Verdict(approval_reasons=("above 5.00 USD",), budget_left=usd("90.00"), checked_rules=("total_budget",))


def ask(clock: ManualClock, amount: str = "10.00", merchant: str = "shop-1"):  # type: ignore[no-untyped-def]
    return make_request(intent(amount, merchant=merchant), VERDICT, budget_id="b1", clock=clock)


async def test_agent_and_inbox_share_one_question_and_one_grant(ledger: LedgerBase, second: LedgerBase,
                                                                  clock: ManualClock) -> None:
    agent, inbox = ApprovalStore(ledger, budget_id="b1"), ApprovalStore(second)
    first = await agent.aconsult(ask(clock))
    assert first.decision is None and first.created and first.record is not None
    again = await agent.aconsult(ask(clock))  # a retry while waiting: the same question, not a new one
    assert again.record is not None and again.record.id == first.record.id and not again.created
    [seen] = await inbox.alist("pending")
    assert (seen.id, seen.budget_id, seen.request.amount) == (first.record.id, "b1", usd("10.00"))
    await inbox.aapprove(seen.id, "alice")
    granted = await agent.aconsult(ask(clock))
    assert granted.decision == ApprovalDecision(True, "", "alice")
    fresh = await agent.aconsult(ask(clock))  # single use: the next identical payment asks again
    assert fresh.decision is None and fresh.record is not None and fresh.record.id != seen.id
    kinds = [r.kind for r in await ledger.audit.records()]
    assert kinds == ["approval_request", "approval_decision", "approval_request"]
    assert (await ledger.audit.verify()).ok


async def test_concurrent_askers_open_exactly_one_question(ledger: LedgerBase, second: LedgerBase,
                                                           clock: ManualClock) -> None:
    stores = [ApprovalStore(ledger), ApprovalStore(second)]
    found = await asyncio.gather(*(stores[i % 2].aconsult(ask(clock)) for i in range(8)))
    ids = {f.record.id for f in found if f.record is not None}
    assert len(ids) == 1 and sum(f.created for f in found) == 1
    assert len(await stores[0].alist("pending")) == 1


async def test_denial_stands_until_reopened_and_expiry_is_audited(ledger: LedgerBase, second: LedgerBase,
                                                                  clock: ManualClock) -> None:
    agent, inbox = ApprovalStore(ledger), ApprovalStore(second)
    asked = await agent.aconsult(ask(clock))
    assert asked.record is not None
    await inbox.adeny(asked.record.id, "bob", "not now")
    for _ in range(3):
        again = await agent.aconsult(ask(clock))
        assert again.decision == ApprovalDecision(False, "not now", "bob")
    other = await agent.aconsult(ask(clock, "12.00"))  # another amount is another question
    assert other.record is not None and other.decision is None
    clock.advance(minutes=16)
    assert await inbox.aexpire_due() == [other.record.id]
    assert await inbox.aexpire_due() == []
    expired = await inbox.aget(other.record.id)
    assert (expired.status, expired.approved, expired.decided_by) == ("expired", False, "expiry")
    await inbox.areopen(asked.record.id, "bob")
    reopened = await agent.aconsult(ask(clock))
    assert reopened.decision is None and reopened.created
    kinds = [r.kind for r in await second.audit.records()]
    assert kinds == ["approval_request", "approval_decision", "approval_request", "approval_expired",
                     "approval_reopened", "approval_request"]


async def test_freeze_refuses_reserve_atomically_and_is_audited(ledger: LedgerBase, second: LedgerBase,
                                                                clock: ManualClock) -> None:
    pol = policy()
    done = await ledger.reserve(intent("10.00"), pol, budget_id="b1", idempotency_key="k1")
    await ledger.commit(done.entry.id, external_ref="TX-1")
    await second.run_write(lambda: freeze_steps(second.dialect, "b1", True, by="owner", reason="lost phone",
                                                now=clock.now()))
    with pytest.raises(PolicyViolation) as refused:
        await ledger.reserve(intent("1.00", checkout="co-2"), pol, budget_id="b1", idempotency_key="k2")
    assert refused.value.rule == "budget.frozen" and "lost phone" in refused.value.message
    # A replay of a payment already made is not a new payment: it still answers.
    replay = await ledger.reserve(intent("10.00"), pol, budget_id="b1", idempotency_key="k1")
    assert replay.replayed and replay.entry.status == "committed"
    # Other budgets are untouched.
    other = await ledger.reserve(intent("1.00", checkout="co-3"), pol, budget_id="b2", idempotency_key="k3")
    assert other.entry.status == "reserved"
    assert [e.idempotency_key for e in await ledger.entries("b1")] == ["k1"]
    await second.run_write(lambda: freeze_steps(second.dialect, "b1", False, by="owner", reason="",
                                                now=clock.now()))
    later = await ledger.reserve(intent("1.00", checkout="co-2"), pol, budget_id="b1", idempotency_key="k2")
    assert later.entry.status == "reserved"
    controls = await ledger.run_read(controls_steps)
    assert controls["b1"].frozen is False and controls["b1"].changed_by == "owner"
    kinds = [r.kind for r in await ledger.audit.records()]
    assert kinds.count("budget_freeze") == 1 and kinds.count("budget_unfreeze") == 1


def test_legacy_approvals_db_is_imported_once(tmp_path: Path) -> None:
    legacy = tmp_path / "approvals.db"
    clock = ManualClock(START)
    pending, denied = ask(clock), ask(clock, "20.00")
    conn = sqlite3.connect(legacy)
    conn.executescript("""CREATE TABLE approvals (id TEXT PRIMARY KEY, binding TEXT NOT NULL, status TEXT NOT NULL,
        approved INTEGER, request TEXT NOT NULL, created_us INTEGER NOT NULL, expires_us INTEGER NOT NULL,
        decided_us INTEGER, decided_by TEXT, reason TEXT NOT NULL DEFAULT '', consumed_us INTEGER);""")
    for req, status, approved, by, reason in ((pending, "pending", None, None, ""),
                                              (denied, "denied", 0, "bob", "too much")):
        conn.execute("INSERT INTO approvals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                     (req.id, req.binding, status, approved, json.dumps(req.to_public()), to_us(req.created_at),
                      to_us(req.expires_at), None if by is None else to_us(START), by, reason))
    conn.commit()
    conn.close()
    store = ApprovalStore(open_ledger(tmp_path / "ledger.db"), clock=clock)
    assert store.import_legacy(legacy) == 2
    assert store.import_legacy(legacy) == 0  # idempotent
    assert {r.id: r.status for r in store.list()} == {pending.id: "pending", denied.id: "denied"}
    assert store.consume(denied.binding) == ApprovalDecision(False, "too much", "bob")
    # The old file itself is not a ledger: opening it as the store's database is refused (never a second
    # database) with the way to import it, and the file is left as it was.
    with pytest.raises(ConfigError, match="import_legacy"):
        ApprovalStore(legacy, clock=clock)
    tables = sqlite3.connect(legacy).execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == [("approvals",)]
    out = io.StringIO()
    store.ledger.audit.export_jsonl_sync(out)
    [record] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (record["kind"], record["payload"]) == ("approvals_imported", {"count": 2})
    store.close()


def test_sync_api_and_deadline_in_the_past(ledger: LedgerBase, clock: ManualClock) -> None:
    store = ApprovalStore(ledger)
    req = ask(clock)
    store.create(req)
    clock.advance(minutes=20)
    assert [r.status for r in store.list("expired")] == ["expired"]  # shown expired before any sweep
    assert store.expire_due() == [req.id]
    assert store.get(req.id).reason == "expired without an answer"
    assert timedelta(minutes=15) == req.expires_at - req.created_at
