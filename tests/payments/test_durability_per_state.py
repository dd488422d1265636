"""Durability per state (`states.DURABILITY`): which writes wait for the disk flush, on both engines.

Each write transaction of a payment's life is observed from the inside: the first statement of the
transaction reads the engine's flush setting (SQLite ``PRAGMA synchronous``, PostgreSQL
``current_setting('synchronous_commit')``), then the real steps run. A reservation and the move to
``awaiting_approval`` commit without waiting for the flush; ``sending``, ``unknown``, the commit, a
release, a refund and an owner's freeze wait for it. The SQLite ordering argument is checked on the
files themselves: a copy of the database taken right after a flushed ``sending`` commit holds the
unflushed reservation before it.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.ledger._sql import Q, Steps, StepsFactory
from amp_tools.ledger.controls import freeze_steps
from amp_tools.payments import DURABILITY, PaymentState
from amp_tools.payments.lifecycle import Lifecycle
from amp_tools.payments.states import must_flush
from tests.ledger._ledger_helpers import intent, open_backend, policy, usd

_PROBE = {"sqlite": "PRAGMA synchronous", "postgresql": "SELECT current_setting('synchronous_commit')"}


def _observe(ledger: LedgerBase) -> list[str]:
    """Wrap the ledger's write primitive: every write transaction first reads the flush setting it runs with."""
    seen: list[str] = []
    inner: Callable[..., Any] = ledger._run_write
    probe = _PROBE[ledger.dialect.name]

    def wrapped(factory: StepsFactory[Any]) -> Steps[Any]:
        rows = yield Q(probe)
        seen.append(str(rows[0][0]))
        return (yield from factory())

    async def run_write(factory: StepsFactory[Any], flush: bool = True) -> Any:
        return await inner(lambda: wrapped(factory), flush)

    ledger._run_write = run_write  # type: ignore[method-assign]
    return seen


def _settings(ledger: LedgerBase) -> tuple[str, str]:
    """(the setting of a flushed transaction, of an unflushed one) on this engine and server."""
    if ledger.dialect.name == "sqlite":
        return "2", "1"  # FULL, NORMAL
    from tests.ledger._ledger_helpers import raw_sync

    default = str(raw_sync(ledger, "SELECT current_setting('synchronous_commit')")[0][0])
    assert default != "off", "the test server must flush commits by default"
    return default, "off"


def test_the_declaration_covers_every_state() -> None:
    assert set(DURABILITY) == set(PaymentState)
    assert [s for s in PaymentState if not must_flush(s)] == [PaymentState.RESERVED, PaymentState.AWAITING_APPROVAL]


async def test_each_write_of_a_payment_flushes_as_declared(engine_name: str, ledger_target: str) -> None:
    ledger = open_backend(engine_name, ledger_target, ManualClock(intent().at))
    try:
        flushed, unflushed = _settings(ledger)
        seen = _observe(ledger)
        life = Lifecycle(ledger, clock=ledger.clock, owner="test-owner")
        pol = policy()

        paid = await life.reserve(intent("10.00", checkout="a"), pol, budget_id="b", key="k-a")
        await life.awaiting_approval(paid.id)
        await life.sending(paid.id)
        await life.commit(paid.id, external_ref="tx-a")
        await ledger.refund(paid.id, usd("4.00"), external_ref="rf-a")
        freed = await life.reserve(intent("5.00", checkout="b"), pol, budget_id="b", key="k-b")
        await life.release(freed.id, "declined")
        lost = await life.reserve(intent("6.00", checkout="c"), pol, budget_id="b", key="k-c")
        await life.sending(lost.id)
        await life.unknown(lost.id, "answer lost")
        await ledger.run_write(lambda: freeze_steps(ledger.dialect, "b", True, by="owner", reason="audit",
                                                   now=ledger.clock.now()))

        assert seen == [unflushed, unflushed, flushed, flushed, flushed,  # reserve, approval, sending, commit, refund
                        unflushed, flushed,  # reserve, release
                        unflushed, flushed, flushed,  # reserve, sending, unknown
                        flushed]  # the owner's freeze
        # The writes did what they say, whatever their flush: amounts and states are in the rows.
        entries = {e.checkout_id: e for e in await ledger.entries("b")}
        assert (entries["a"].status, entries["a"].refunded.minor, entries["a"].budget_amount.minor) == (
            "committed", 400, 1000)
        assert entries["b"].status == "released" and entries["b"].counted.minor == 0
        assert (entries["c"].status, entries["c"].phase) == ("reserved", "unknown")
        assert (await ledger.audit.verify()).ok
    finally:
        await ledger.close()


async def test_a_normal_durability_ledger_never_flushes(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "l.db", durability="normal", clock=ManualClock(intent().at))
    try:
        seen = _observe(ledger)
        life = Lifecycle(ledger, clock=ledger.clock, owner="o")
        res = await life.reserve(intent(), policy(), budget_id="b", key="k")
        await life.sending(res.id)
        await life.commit(res.id, external_ref="tx")
        assert seen == ["1", "1", "1"]
    finally:
        await ledger.close()


def _copy_files(src: Path, dst: Path) -> Path:
    """The database and its WAL as they are on disk now (no -shm: SQLite rebuilds it from the WAL)."""
    dst.mkdir()
    for suffix in ("", "-wal"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", dst / f"{src.name}{suffix}")
    return dst / src.name


@pytest.mark.parametrize("via", ["async", "sync"])
async def test_sqlite_unflushed_reservation_is_on_disk_once_sending_returns(tmp_path: Path, via: str) -> None:
    path = tmp_path / "l.db"
    ledger = open_ledger(path, clock=ManualClock(intent().at))
    try:
        seen = _observe(ledger)
        if via == "async":
            life = Lifecycle(ledger, clock=ledger.clock, owner="o")
            res = await life.reserve(intent("7.00"), policy(), budget_id="b", key="k")
            await life.sending(res.id)
            assert seen == ["1", "2"]
        else:
            res = ledger.reserve_sync(intent("7.00"), policy(), budget_id="b", idempotency_key="k", flush=False)
            # A flushed write of anything (here a second, flushed reservation) carries the first to disk.
            ledger.reserve_sync(intent("2.00", checkout="co-2"), policy(), budget_id="b", idempotency_key="k2")
        copy = _copy_files(path, tmp_path / "copy")
        # Right after the flushed commit returned, before anything else: the copy holds both writes.
        conn = sqlite3.connect(copy)
        try:
            rows = conn.execute("SELECT idempotency_key, status, phase, budget_minor FROM entries "
                                "ORDER BY id").fetchall()
            kinds = [r[0] for r in conn.execute("SELECT kind FROM audit WHERE budget_id = 'b' ORDER BY n")]
            used = conn.execute("SELECT used_minor, used_count FROM budgets WHERE budget_id = 'b'").fetchone()
        finally:
            conn.close()
        if via == "async":
            assert rows == [("k", "reserved", "sending", 700)]
            assert kinds == ["reserve", "transition"] and used == (700, 1)
        else:
            assert rows == [("k", "reserved", "reserved", 700), ("k2", "reserved", "reserved", 200)]
            assert kinds == ["reserve", "reserve"] and used == (900, 2)
        # The copy is a valid ledger: it opens, migrates nothing, and its audit chain verifies.
        reopened = open_ledger(copy)
        try:
            assert (await reopened.audit.verify()).ok
        finally:
            await reopened.close()
    finally:
        await ledger.close()


async def test_sqlite_group_commit_flushes_a_batch_with_any_flushed_caller(tmp_path: Path) -> None:
    """32 concurrent reservations (unflushed) and one flushed write share batches: every batch that holds the
    flushed write commits at FULL, the reservation-only batches at NORMAL, and nothing is lost either way."""
    import asyncio

    ledger = open_ledger(tmp_path / "l.db", clock=ManualClock(intent().at))
    try:
        seen = _observe(ledger)
        life = Lifecycle(ledger, clock=ledger.clock, owner="o")
        pol = policy(total_budget="1000.00")
        first = await life.reserve(intent("1.00", checkout="x"), pol, budget_id="b", key="kx")
        results = await asyncio.gather(
            *(life.reserve(intent("1.00", checkout=f"c{n}"), pol, budget_id="b", key=f"k{n}") for n in range(32)),
            life.sending(first.id))
        assert len({r.id for r in results}) == 33
        assert seen.count("2") >= 1 and seen.count("1") >= 1 and len(seen) == 34
        used = await ledger.usage_report(pol, "b")
        assert used["total"]["used"]["amount"] == "33.00" and used["total"]["count"] == 33
    finally:
        await ledger.close()
