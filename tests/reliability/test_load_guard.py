"""LOAD: 16 spawned processes x 2 asyncio tasks each hammer the real Guard against one policy
(total + day + per-merchant caps + velocity): 10,240 payments on SQLite and on PostgreSQL alike
(about 50 s on PostgreSQL on the 2-core CI machine since its reserve is pipelined).

Proves: the committed total never exceeds any limit, exactly the expected number succeed, nothing
is charged twice (not even tried twice), and the ledger agrees row for row with the payment
network's own record (see `_load_support` for the design and why the count is exact).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import pytest

from tests.ledger._ledger_helpers import open_backend, raw_sync
from tests.reliability._load_support import (
    BUDGET_ID,
    CAPPED,
    DAY,
    MERCHANT_CAP,
    MERCHANTS,
    SEEDED,
    TOTAL,
    VELOCITY,
    init_worker,
    load_worker,
    seed_yesterday,
)
from tests.reliability._network_record import NetworkRecord

PROCESSES, TASKS = 16, 2
PER_TASK = {"sqlite": 320, "postgres": 320}


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """Sixteen spawned processes shared by both engines' runs (spawning and importing is the slow part)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES, initializer=init_worker, initargs=(ctx.Barrier(PROCESSES),)) as workers:
        yield workers


def _expected(results: list[dict[str, Any]]) -> int:
    tried = {m: sum(int(r["tried"][m]) for r in results) for m in MERCHANTS}
    per_merchant = sum(min(MERCHANT_CAP // 100, n) if m in CAPPED else n for m, n in tried.items())
    return min((TOTAL // 100) - SEEDED, DAY // 100, VELOCITY, per_merchant)


@pytest.mark.slow
def test_ten_thousand_payments_never_overspend(engine_name: str, ledger_target: str, pool: Pool, tmp_path: Path,
                                               record_property: Any, capsys: pytest.CaptureFixture[str]) -> None:
    seed_yesterday(engine_name, ledger_target)
    network_path = str(tmp_path / "network.db")
    NetworkRecord(network_path).close()  # create the table before 16 processes race to

    started = time.perf_counter()
    results = pool.map(load_worker, [(engine_name, ledger_target, network_path, w, TASKS, PER_TASK[engine_name])
                                     for w in range(PROCESSES)], chunksize=1)
    wall = time.perf_counter() - started

    attempts = sum(r["attempts"] for r in results)
    ok = sum(r["ok"] for r in results)
    assert attempts == PROCESSES * TASKS * PER_TASK[engine_name]
    assert engine_name != "sqlite" or attempts >= 10_000
    assert len({r["pid"] for r in results}) == PROCESSES  # really 16 processes at once
    assert ok + sum(r["refused"] for r in results) == attempts
    assert ok == _expected(results) == 100
    # Every paid payment was repeated: the repeat answered already_paid and charged nothing.
    assert sum(r["replayed"] for r in results) == ok
    assert sum(r["replay_charged"] for r in results) == 0

    ledger = open_backend(engine_name, ledger_target)
    network = NetworkRecord(network_path)
    try:
        rows = raw_sync(ledger, "SELECT idempotency_key, merchant_id, amount_minor, status, external_ref, "
                                "counted_minor FROM entries WHERE budget_id = ? AND run_id <> 'seed'", BUDGET_ID)
        charges = {c.idem_key: c for c in network.all()}
    finally:
        ledger.close_sync()
        network.close()

    # Limits, from the ledger rows themselves.
    today = sum(int(r[5]) for r in rows)
    assert {str(r[3]) for r in rows} == {"committed"}  # no reservation left behind, none released
    assert len(rows) == ok
    assert today + SEEDED * 100 <= TOTAL and today <= DAY and len(rows) <= VELOCITY
    per_merchant = {m: sum(int(r[2]) for r in rows if r[1] == m) for m in MERCHANTS}
    assert all(per_merchant[m] <= MERCHANT_CAP for m in CAPPED), per_merchant

    # Zero double charges: one network charge per committed entry, none attempted twice.
    assert len(charges) == ok
    assert all(c.attempts == 1 for c in charges.values())
    # The ledger and the network agree row for row: key, merchant, amount and the network's charge id.
    assert {str(r[0]): (str(r[1]), int(r[2]), str(r[4])) for r in rows} == {
        k: (c.merchant_id, c.minor, c.charge_id) for k, c in charges.items()}
    assert sum(c.minor for c in charges.values()) == today == 10000

    worker_time = max(r["elapsed"] for r in results)
    figures = (f"{engine_name}: {attempts} attempts, {ok} paid, {attempts - ok} refused by policy, "
               f"{len(charges)} network charges, 0 double; {wall:.1f}s wall, {attempts / worker_time:.0f} "
               f"attempts/s across {PROCESSES} processes")
    record_property("load", figures)
    with capsys.disabled():
        print(f"\n[reliability] {figures}")
