"""The PostgreSQL ledger's connection pool: bounded across tasks, loops, threads and processes;
exhaustion and a server that refuses or cuts connections off fail as ToolErrors with nothing
half-written; configuration mistakes stay ConfigErrors.

Connections are counted on the server (``pg_stat_activity`` filtered by an application_name each
test sets), not by asking the pool.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from amp_tools.clock import ManualClock
from amp_tools.errors import ConfigError, LedgerBusy, LedgerUnavailable, ToolError
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.ledger._pgpool import pool_settings
from amp_tools.ledger._sql import Q, Row, Steps, StepsFactory
from amp_tools.payments import ExecutionOutcome, Guard, PaymentHandle
from tests.ledger._ledger_helpers import (
    PG_URL,
    START,
    drop_schema,
    intent,
    new_schema,
    policy,
    raw,
    raw_sync,
    require_pg,
)
from tests.ledger._pool_support import (
    ConnectionWatch,
    apay,
    app_name,
    init_worker,
    pay,
    pay_steps,
    process_worker,
    run_in_thread,
    sleeping_steps,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def schema() -> Iterator[str]:
    require_pg()
    name = new_schema()
    try:
        yield name
    finally:
        drop_schema(name)


def _open(schema: str, name: str, **options: Any) -> LedgerBase:
    return open_ledger(PG_URL, clock=ManualClock(START), schema=schema, application_name=name, **options)


def _rows(ledger: LedgerBase) -> dict[str, Any]:
    """Everything a payment writes: entries, the budget head, running totals, the audit chain."""
    return {
        "entries": raw_sync(ledger, "SELECT idempotency_key, status, amount_minor FROM entries ORDER BY id"),
        "budgets": raw_sync(ledger, "SELECT budget_id, used_minor, used_count FROM budgets ORDER BY budget_id"),
        "totals": raw_sync(ledger, "SELECT scope, key, used_minor FROM usage_totals ORDER BY scope, key"),
        "audit": raw_sync(ledger, "SELECT COUNT(*) FROM audit"),
    }


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize(("size", "timeout", "problem"), [
    (0, None, "pool_size 0 must be a whole number of connections from 1 to 1000"),
    (2.5, None, "pool_size 2.5"),
    (True, None, "pool_size True"),
    (4, 0, "pool_timeout 0 must be a positive number of seconds"),
    (4, float("inf"), "pool_timeout inf"),
])
def test_bad_pool_settings_are_config_errors(size: Any, timeout: Any, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        pool_settings(size, timeout)


def test_pool_settings_come_from_arguments_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMP_TOOLS_LEDGER_POOL_SIZE", raising=False)
    monkeypatch.delenv("AMP_TOOLS_LEDGER_POOL_TIMEOUT", raising=False)
    assert pool_settings(None, None) == (4, 10.0)
    monkeypatch.setenv("AMP_TOOLS_LEDGER_POOL_SIZE", "12")
    monkeypatch.setenv("AMP_TOOLS_LEDGER_POOL_TIMEOUT", "2.5")
    assert pool_settings(None, None) == (12, 2.5)
    assert pool_settings(3, 1) == (3, 1.0)
    monkeypatch.setenv("AMP_TOOLS_LEDGER_POOL_SIZE", "four")
    with pytest.raises(ConfigError, match=r"AMP_TOOLS_LEDGER_POOL_SIZE='four' is not a whole number such as 4"):
        pool_settings(None, None)


def test_unreachable_server_at_open_is_unavailable_not_a_config_error() -> None:
    # Port 1: nothing listens there, the connection is refused.
    with pytest.raises(LedgerUnavailable, match="cannot connect to the PostgreSQL ledger") as caught:
        open_ledger("postgresql://postgres@127.0.0.1:1/test", pool_size=2)
    assert isinstance(caught.value, ToolError) and caught.value.code == "LEDGER_UNAVAILABLE"
    assert "Connection refused" in caught.value.message


def test_configuration_mistakes_at_open_stay_config_errors() -> None:
    with pytest.raises(ConfigError, match="the PostgreSQL ledger URL is not valid"):
        open_ledger("postgresql://postgres@127.0.0.1:5432/test?bogus=1")
    with pytest.raises(ConfigError, match="pool_size 0"):
        open_ledger(PG_URL, pool_size=0)
    require_pg()
    with pytest.raises(ConfigError, match='database "amp_no_such_db" does not exist'):
        open_ledger("postgresql://postgres@127.0.0.1:5432/amp_no_such_db")


def test_sqlite_ignores_the_pool_options(tmp_path: Any) -> None:
    ledger = open_ledger(tmp_path / "l.db", pool_size=2, pool_timeout=1)
    try:
        assert pay(ledger, 1) == 1
    finally:
        ledger.close_sync()


# ----------------------------------------------------------------------------- the bound
async def test_64_tasks_plus_other_loops_and_threads_share_four_connections(schema: str) -> None:
    name = app_name()
    ledger = _open(schema, name, pool_size=4)
    try:
        with ConnectionWatch(name) as watch:
            # Sync twins in threads, and tool calls on their own event loops (as sync adapters run them),
            # at the same time as 64 tasks on this loop.
            threads = [run_in_thread(lambda n=n: pay(ledger, 1000 + n)) for n in range(4)]
            threads += [run_in_thread(lambda n=n: asyncio.run(apay(ledger, 2000 + n))) for n in range(4)]
            ids = await asyncio.gather(*(apay(ledger, n) for n in range(64)))
            for thread, _ in threads:
                thread.join()
        outcomes = [out[0] for _, out in threads]
        assert all(isinstance(x, int) for x in outcomes), outcomes
        assert len(set(ids) | set(outcomes)) == 72
        assert 1 <= watch.peak <= 4 and watch.samples > 3
        used = raw_sync(ledger, "SELECT used_minor, used_count, committed_count FROM budgets WHERE budget_id = 'pool'")
        assert used == [(72, 72, 72)]  # 72 payments of 0.01, all committed
        assert (await ledger.audit.verify()).records == 144
    finally:
        await ledger.close()
    assert ConnectionWatch(name).settled() == 0  # close() gave every connection back to the server


async def test_exhausted_pool_waits_then_fails_busy_with_nothing_written(schema: str) -> None:
    name = app_name()
    ledger = _open(schema, name, pool_size=1, pool_timeout=0.3)
    try:
        await apay(ledger, 0)
        before = _rows(ledger)
        holder = asyncio.create_task(ledger.run_write(lambda: sleeping_steps(1.5)))
        await asyncio.sleep(0.2)  # the holder has the only connection
        started = time.monotonic()
        with pytest.raises(LedgerBusy) as caught:
            await apay(ledger, 1)
        waited = time.monotonic() - started
        thread, out = run_in_thread(lambda: pay(ledger, 2))  # the sync twins wait on the same pool
        thread.join()
        assert 0.25 <= waited < 1.3
        err = caught.value
        assert isinstance(err, ToolError) and err.code == "LEDGER_BUSY"
        assert "all 1 connections of the ledger's pool stayed in use for 0.3 s; nothing was written" in err.message
        assert err.hint == "Wait a few seconds and try the same call again."
        assert err.to_dict()["details"] == {"pool_size": 1, "pool_timeout": 0.3}
        assert isinstance(out[0], LedgerBusy)
        await holder
        assert _rows(ledger) == before
        assert await apay(ledger, 3) > 0  # the connection is free again
        assert ConnectionWatch(name).count() == 1
    finally:
        await ledger.close()


async def test_guard_pay_on_an_exhausted_pool_is_a_tool_error_and_sends_nothing(schema: str) -> None:
    name = app_name()
    ledger = _open(schema, name, pool_size=1, pool_timeout=0.2)
    pol = policy(total_budget="100.00")
    guard = Guard(pol, ledger, clock=ManualClock(START), budget_id="pool")
    sent: list[str] = []

    async def execute(handle: PaymentHandle) -> ExecutionOutcome:
        await handle.sending()
        sent.append("charge")
        return ExecutionOutcome(external_ref="TX-1")

    try:
        holder = asyncio.create_task(ledger.run_write(lambda: sleeping_steps(1.0)))
        await asyncio.sleep(0.2)
        with pytest.raises(ToolError) as caught:
            await guard.pay(intent("10.00"), execute, run_id="run")
        assert isinstance(caught.value, LedgerBusy) and not isinstance(caught.value, ConfigError)
        await holder
        assert sent == []
        assert raw_sync(ledger, "SELECT COUNT(*) FROM entries") == [(0,)]
        paid = await guard.pay(intent("10.00"), execute, run_id="run")
        assert paid.status == "paid" and sent == ["charge"]
        assert raw_sync(ledger, "SELECT status, amount_minor FROM entries") == [("committed", 1000)]
    finally:
        await ledger.close()


@pytest.mark.slow
def test_16_processes_of_6_tasks_stay_within_their_pools(schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reported failure: 16 processes x 6 tasks used to need 96 connections of the server's 100."""
    monkeypatch.delenv("AMP_TOOLS_LEDGER_POOL_SIZE", raising=False)
    name = app_name()
    _open(schema, name).close_sync()  # migrate once, outside the race
    procs, tasks, each = 16, 6, 2
    ctx = multiprocessing.get_context("spawn")
    with ConnectionWatch(name) as watch, ctx.Pool(procs, initializer=init_worker,
                                                  initargs=(ctx.Barrier(procs),)) as workers:
        results = workers.map(process_worker, [(schema, name, w, tasks, each) for w in range(procs)], chunksize=1)
    assert [r["errors"] for r in results] == [[]] * procs
    assert {r["pool_size"] for r in results} == {4}  # the default
    assert sum(r["done"] for r in results) == procs * tasks * each
    assert 1 <= watch.peak <= 4 * procs
    ledger = _open(schema, name)
    try:
        count = procs * tasks * each
        assert raw_sync(ledger, "SELECT used_minor, used_count, committed_count FROM budgets") == [
            (count, count, count)]
        report = ledger.audit.verify_sync()
        assert report.ok and report.records == 2 * count
    finally:
        ledger.close_sync()


# ----------------------------------------------------------------------------- connections cut off
def _killing(factory: StepsFactory[Any], kills: list[int], *, times: int) -> StepsFactory[Any]:
    """`factory`'s steps, then, with every write sent and executed but before COMMIT, the server
    terminates this transaction's connection (the first `times` runs)."""

    def steps() -> Steps[Any]:
        pid = (yield Q("SELECT pg_backend_pid()"))[0][0]
        result = yield from factory()
        inside = yield Q("SELECT COUNT(*) FROM entries")
        if len(kills) < times:
            assert inside[0][0] >= 1  # the reservation's rows exist inside the transaction
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            kills.append(pid)
        yield Q("SELECT 1")
        return result

    return steps


async def test_connection_killed_before_commit_is_retried_once_on_a_fresh_connection(schema: str) -> None:
    name = app_name()
    ledger = _open(schema, name, pool_size=2)
    try:
        await apay(ledger, 0)
        kills: list[int] = []
        reservation = await ledger.run_write(_killing(pay_steps(ledger, 1), kills, times=1))
        assert len(kills) == 1 and reservation.entry.status == "reserved" and not reservation.replayed
        assert raw_sync(ledger, "SELECT idempotency_key, status FROM entries ORDER BY id") == [
            ("k0", "committed"), ("k1", "reserved")]  # once, not twice
        assert raw_sync(ledger, "SELECT used_minor, used_count FROM budgets") == [(2, 2)]
        report = await ledger.audit.verify()
        assert report.ok and report.records == 3
        alive = raw_sync(ledger, "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = ?", kills[0])
        assert alive == [(0,)]
    finally:
        await ledger.close()


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_connection_killed_every_time_is_unavailable_with_nothing_written(schema: str, mode: str) -> None:
    name = app_name()
    ledger = _open(schema, name, pool_size=2)
    try:
        await apay(ledger, 0)
        before = _rows(ledger)
        kills: list[int] = []
        factory = _killing(pay_steps(ledger, 1, amount="5.00"), kills, times=2)
        with pytest.raises(LedgerUnavailable) as caught:
            if mode == "async":
                await ledger.run_write(factory)
            else:
                await asyncio.to_thread(ledger._run_write_sync, factory)
        err = caught.value
        assert isinstance(err, ToolError) and not isinstance(err, LedgerBusy)
        assert err.code == "LEDGER_UNAVAILABLE" and len(kills) == 2
        assert "the ledger's database cut the connection off twice" in err.message
        assert "nothing was written" in err.message and "outcome" not in err.details
        assert _rows(ledger) == before  # no entry, no budget change, no running total, no audit record
        # The pool replaced the dead connections: the next payment works, on at most two connections.
        assert await apay(ledger, 2) > 0
        assert raw_sync(ledger, "SELECT idempotency_key, status FROM entries ORDER BY id") == [
            ("k0", "committed"), ("k2", "committed")]
        assert 1 <= ConnectionWatch(name).count() <= 2
    finally:
        await ledger.close()


async def test_all_idle_connections_dead_after_a_server_restart_the_next_call_still_works(schema: str) -> None:
    name = app_name()
    ledger = _open(schema, name, pool_size=3)
    try:
        await asyncio.gather(*(apay(ledger, n) for n in range(6)))
        with psycopg.connect(PG_URL, autocommit=True) as admin:  # what a restart does to every session
            killed = admin.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                                   "WHERE application_name = %s", (name,)).fetchall()
        assert len(killed) >= 1
        assert await apay(ledger, 10) > 0
        assert raw_sync(ledger, "SELECT COUNT(*), SUM(amount_minor) FROM entries") == [(7, 7)]
    finally:
        await ledger.close()


# ----------------------------------------------------------------------------- the server refusing
@pytest.fixture
def limited_role(schema: str) -> Iterator[str]:
    """A login role the server lets hold only one connection at a time."""
    role = f"amp_pool_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 1')
        admin.execute(f'GRANT CREATE ON DATABASE "{admin.info.dbname}" TO "{role}"')
    try:
        yield role
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s", (role,))
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')


async def test_server_refusing_new_connections_is_unavailable_not_busy(schema: str, limited_role: str) -> None:
    url = PG_URL.replace("postgres@", f"{limited_role}@", 1)
    assert url != PG_URL
    name = app_name()
    ledger = open_ledger(url, clock=ManualClock(START), schema=schema, application_name=name, pool_size=2,
                         pool_timeout=0.5)
    try:
        deadline = time.monotonic() + 20
        while True:  # until the pool holds the role's one connection (the migration's may linger a moment)
            try:
                await apay(ledger, 0)
                break
            except LedgerUnavailable:
                assert time.monotonic() < deadline
        before = _rows(ledger)
        holder = asyncio.create_task(ledger.run_write(lambda: sleeping_steps(1.5)))
        await asyncio.sleep(0.2)
        with pytest.raises(LedgerUnavailable) as caught:
            await apay(ledger, 1)  # needs a second connection: the server says no
        err = caught.value
        assert type(err) is LedgerUnavailable and err.code == "LEDGER_UNAVAILABLE"
        assert err.message.startswith("the ledger's PostgreSQL server refused new connections (")
        assert f'too many connections for role "{limited_role}"' in err.message
        assert err.message.endswith("for 0.5 s while the pool held 1 of 2; nothing was written")
        await holder
        assert _rows(ledger) == before
        assert await apay(ledger, 2) > 0
    finally:
        await ledger.close()


async def test_raw_helper_still_runs_on_the_pool(schema: str) -> None:
    """Tests and tools compose their own statements through run_write: they share the same pool."""
    name = app_name()
    ledger = _open(schema, name, pool_size=1)
    try:
        rows: list[Row] = await raw(
            ledger, "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        assert rows == [(name,)]
        plan = ledger.explain("SELECT * FROM entries WHERE id = ?", (1,))
        assert any("entries" in line for line in plan)
    finally:
        await ledger.close()


async def test_ledgers_of_one_process_share_one_pool(schema: str) -> None:
    """A toolkit per user session opens a ledger each: together they still hold `pool_size` connections."""
    name = app_name()
    sessions = [_open(schema, name, pool_size=3) for _ in range(5)]
    other = _open(schema, name, pool_size=2)  # other settings, its own pool
    try:
        with ConnectionWatch(name) as watch:
            await asyncio.gather(*(apay(led, 100 * s + n) for s, led in enumerate(sessions) for n in range(8)))
        assert 1 <= watch.peak <= 3 + 1  # the five sessions' pool, and `other`'s one idle connection
        await sessions[0].close()
        with pytest.raises(ConfigError, match="the ledger is closed"):
            await apay(sessions[0], 999)
        assert await apay(sessions[1], 998) > 0  # the others keep the shared pool
        await apay(other, 997)
        assert raw_sync(other, "SELECT COUNT(*) FROM entries WHERE status = 'committed'") == [(42,)]
    finally:
        for led in [*sessions, other]:
            await led.close()
    assert ConnectionWatch(name).settled() == 0


def test_a_ledger_inherited_through_fork_refuses_clearly_and_the_parent_keeps_working(schema: str) -> None:
    name = app_name()
    ledger = _open(schema, name, pool_size=2)
    try:
        pay(ledger, 1)
        ctx = multiprocessing.get_context("fork")
        answers = ctx.Queue()

        def child() -> None:
            try:
                ledger.entries_sync()
                answers.put("used the parent's pool")
            except ConfigError as exc:
                answers.put(str(exc))

        proc = ctx.Process(target=child)
        proc.start()
        proc.join(30)
        assert answers.get(timeout=5) == ("INVALID_CONFIG: a PostgreSQL ledger cannot be used across fork(); open a "
                                          "new ledger in the child process")
        assert pay(ledger, 2) > 0
        assert [e.idempotency_key for e in ledger.entries_sync("pool")] == ["k2", "k1"]
    finally:
        ledger.close_sync()
