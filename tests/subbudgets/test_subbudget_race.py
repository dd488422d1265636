"""16 spawned processes, four agents of one crew (four processes each), race on SQLite and on
PostgreSQL: no level is ever exceeded (the crew's total, each agent's total, the hotel booker's day
cap), exactly the crew's total is paid once declined payments are released, and every level's
running aggregates equal the sums over the entries themselves."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.pool import Pool
from typing import Any

import pytest

from tests.ledger._ledger_helpers import open_backend, raw_sync
from tests.subbudgets._race_support import AGENTS, ROOT, init_worker, race_worker

PROCESSES, ATTEMPTS = 16, 20
LIMITS = {"flight_booker": 2500, "hotel_booker": 1800, "car_booker": 2500, "researcher": 1000}


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES, initializer=init_worker, initargs=(ctx.Barrier(PROCESSES),)) as workers:
        yield workers


def test_sixteen_processes_never_exceed_any_level(backend: str, target: str, pool: Pool,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    results: list[dict[str, Any]] = pool.map(race_worker, [(backend, target, w, ATTEMPTS) for w in range(PROCESSES)],
                                             chunksize=1)
    wall = time.perf_counter() - started
    assert len({r["pid"] for r in results}) == PROCESSES
    ok = sum(r["ok"] for r in results)
    refused: dict[str, int] = {}
    for r in results:
        for rule, n in r["refused"].items():
            refused[rule] = refused.get(rule, 0) + n
    assert ok + sum(r["released"] for r in results) + sum(refused.values()) == PROCESSES * ATTEMPTS

    ledger = open_backend(backend, target)
    try:
        rows = raw_sync(ledger, "SELECT budget_id, status, counted_minor, parents FROM entries")
        budgets = {str(b): (int(m), int(c)) for b, m, c in raw_sync(
            ledger, "SELECT budget_id, used_minor, used_count FROM budgets")}
    finally:
        ledger.close_sync()
    spent = {a: sum(int(r[2]) for r in rows if r[0] == f"{ROOT}/{a}" and r[1] == "committed") for a in AGENTS}
    # No level exceeded: each agent's own limit (the hotel booker's day cap is below its total) and the crew's.
    assert all(spent[a] <= LIMITS[a] for a in AGENTS), spent
    assert sum(spent.values()) == 6000 == ok * 100  # the crew's total, exactly: releases gave their room back
    assert {str(r[1]) for r in rows} <= {"committed", "released"}
    assert all(str(r[3]) == f'["{ROOT}"]' for r in rows)
    assert "total_budget" in refused  # the agents' limits sum past the crew's total, so it refuses some
    # Whether an agent's own limit refused too depends on the order the processes ran in (the crew's
    # level is checked first); every refusal names one of the levels' rules.
    assert all(rule == "total_budget" or rule.startswith("agents.") for rule in refused), refused
    # Every level's running aggregate equals the entries' own sum (the child's counted once per level).
    assert budgets[ROOT] == (6000, ok)
    for a in AGENTS:
        if f"{ROOT}/{a}" in budgets:
            assert budgets[f"{ROOT}/{a}"][0] == spent[a]
    with capsys.disabled():
        print(f"\n[subbudgets] {backend}: {PROCESSES * ATTEMPTS} attempts by 16 processes, {ok} paid, "
              f"refused {refused}; {wall:.1f}s")
