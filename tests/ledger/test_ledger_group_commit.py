"""Group commit of the SQLite ledger's async writes: concurrent payers share transactions, yet each
payment is decided as if alone, a refusal rolls back only itself, and everything returned is on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

from amp_tools.clock import ManualClock
from amp_tools.errors import PolicyViolation
from amp_tools.ledger import Reservation
from amp_tools.money import Money
from tests.ledger._ledger_helpers import START, intent, open_backend, policy, raw_sync


async def test_concurrent_payers_never_overspend_and_refusals_roll_back_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.db")
    ledger = open_backend("sqlite", path, ManualClock(START))
    pol = policy(total_budget="20.00")  # room for exactly 20 payments of 1.00

    async def pay(n: int) -> Reservation | PolicyViolation:
        try:
            res = await ledger.reserve(intent("1.00", checkout=f"c{n}"), pol, budget_id="b",
                                       idempotency_key=f"k{n}", run_id="r")
        except PolicyViolation as exc:
            return exc
        await ledger.commit(res.id, external_ref=f"pay-{n}")
        return res

    try:
        outcomes = await asyncio.gather(*(pay(n) for n in range(32)))
        group = ledger._group  # type: ignore[attr-defined]
        assert group is not None and group.callers >= 32 + 20  # every write went through group commit
    finally:
        await ledger.close()
    paid = [o for o in outcomes if isinstance(o, Reservation)]
    refused = [o for o in outcomes if isinstance(o, PolicyViolation)]
    assert (len(paid), len(refused)) == (20, 12)
    assert all(r.rule == "total_budget" for r in refused)
    # Reopened from disk: every payment that returned is there, committed, and nothing else is.
    again = open_backend("sqlite", path, ManualClock(START))
    try:
        entries = again.entries_sync("b", limit=100)
        assert sorted(e.idempotency_key for e in entries) == sorted(p.entry.idempotency_key for p in paid)
        assert {e.status for e in entries} == {"committed"}
        assert sum((e.budget_amount for e in entries), Money(0, "USD")) == Money(2000, "USD")
        report = again.audit.verify_sync()
        assert (report.ok, report.entries, report.records) == (True, 20, 40)
    finally:
        again.close_sync()


async def test_what_returned_is_on_disk_and_what_failed_is_not(tmp_path: Path) -> None:
    """A write whose COMMIT fails takes its whole batch down: whoever shared it gets the error, and a
    caller that got a result is on disk (whether it shared the batch depends on timing; both hold)."""
    ledger = open_backend("sqlite", str(tmp_path / "ledger.db"), ManualClock(START))
    try:
        outcomes = await asyncio.gather(
            *(ledger.reserve(intent("1.00", checkout=f"c{n}"), policy(), budget_id="b", idempotency_key=f"k{n}",
                             run_id="r") for n in range(3)),
            ledger.run_write(_defer_fk_violation),
            *(ledger.reserve(intent("1.00", checkout=f"c{n}"), policy(), budget_id="b", idempotency_key=f"k{n}",
                             run_id="r") for n in range(3, 6)),
            return_exceptions=True)
    finally:
        await ledger.close()
    failed = outcomes[3]
    assert isinstance(failed, Exception) and "FOREIGN KEY" in str(failed)
    returned = {o.entry.idempotency_key for o in outcomes if isinstance(o, Reservation)}
    errors = [o for o in outcomes[:3] + outcomes[4:] if not isinstance(o, Reservation)]
    assert all("FOREIGN KEY" in str(e) for e in errors) and len(returned) + len(errors) == 6
    again = open_backend("sqlite", str(tmp_path / "ledger.db"), ManualClock(START))
    try:
        assert {e.idempotency_key for e in again.entries_sync("b")} == returned
        assert raw_sync(again, "SELECT COUNT(*) FROM refunds")[0][0] == 0
        assert again.audit.verify_sync().ok
    finally:
        again.close_sync()


def _defer_fk_violation():  # type: ignore[no-untyped-def]
    from amp_tools.ledger._sql import Q

    yield Q("PRAGMA defer_foreign_keys = ON")
    yield Q("INSERT INTO refunds (entry_id, budget_id, amount_minor, currency, budget_minor, budget_currency, "
            "external_ref, created_at) VALUES (999, 'b', 1, 'USD', 1, 'USD', 'x', 0)")
    return None
