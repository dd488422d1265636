"""Budgets per end user and per agent: reserve latency against the number of budgets, and the cost
of checking a crew's levels.

``python -m benchmarks.budgets [--pg URL] [--budgets 2000] [--samples 200]``

* **Per end user**: one template policy, budgets ``user:<n>`` created by their first reservation
  (no other setup). Reserve latency on a fresh and on an existing user budget is sampled
  alternately in a ledger holding one user and in one holding `--budgets` users (two payments
  each); the ratios ``reserve_ms(N budgets) / reserve_ms(1)`` should stay near 1.
* **Per agent**: a reserve of an agent of a crew (two levels checked and moved in one transaction)
  beside a reserve of a single-level budget, interleaved in one run.

Medians in milliseconds; every reservation is released again so no limit is reached.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.money import Money
from amp_tools.policy import BudgetPolicy, SpendIntent
from amp_tools.policy.subbudgets import BudgetPath

__all__ = ["main", "measure"]

NOW = datetime(2025, 6, 11, 12, tzinfo=UTC)
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
TEMPLATE: dict[str, Any] = {"name": "user", "currency": "USD", "total_budget": "500.00",
                            "per_transaction_max": "100.00", "windows": {"day": {"limit": "200.00"}}}
CREW: dict[str, Any] = {**TEMPLATE, "name": "crew", "total_budget": "100000.00", "per_transaction_max": None,
                        "windows": {"day": {"limit": "100000.00"}},
                        "agents": {"booker": {"total_budget": "50000.00", "windows": {"day": {"limit": "50000.00"}}},
                                   "scout": {"total_budget": "100.00"}}}

_counter = iter(range(10**12))


def _intent(amount: str = "1.00") -> SpendIntent:
    n = next(_counter)
    money = Money.parse(amount, "USD")
    return SpendIntent(action="pay", merchant_id=f"m{n % 7}", merchant_name=f"Merchant {n % 7}", mcc="5812",
                       amount=money, budget_amount=money, fx_rate=None, items=(), human_present=False,
                       checkout_id=f"c{n}", at=NOW)


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _reserve_release(ledger: LedgerBase, policy: BudgetPolicy, budget_id: str,
                     path: BudgetPath | None = None) -> float:
    spend = _intent()
    key = uuid.uuid4().hex
    ms = _timed(lambda: ledger.reserve_sync(spend, policy, budget_id=budget_id, idempotency_key=key, now=NOW,
                                            path=path))
    entry = ledger.get_by_key_sync(budget_id, key)
    assert entry is not None
    ledger.release_sync(entry.id, reason="benchmark")
    return ms


def _fill(ledger: LedgerBase, policy: BudgetPolicy, start: int, stop: int) -> None:
    for n in range(start, stop):
        for _ in range(2):
            res = ledger.reserve_sync(_intent("3.00"), policy, budget_id=f"user:{n}",
                                      idempotency_key=uuid.uuid4().hex, now=NOW)
            ledger.commit_sync(res.id, external_ref=f"tx-{uuid.uuid4().hex}")


def _per_user(empty: LedgerBase, full: LedgerBase, budgets: int, samples: int) -> dict[str, Any]:
    """Two ledgers, one empty and one with `budgets` users, sampled alternately (same machine state)."""
    policy = BudgetPolicy.model_validate(TEMPLATE)
    _fill(full, policy, 0, budgets)
    _fill(empty, policy, 0, 1)
    times: dict[str, list[float]] = {"fresh_0": [], "fresh_n": [], "existing_0": [], "existing_n": []}
    for n in range(samples):
        times["fresh_0"].append(_reserve_release(empty, policy, f"user:new-{uuid.uuid4().hex[:12]}"))
        times["fresh_n"].append(_reserve_release(full, policy, f"user:new-{uuid.uuid4().hex[:12]}"))
        times["existing_0"].append(_reserve_release(empty, policy, "user:0"))
        times["existing_n"].append(_reserve_release(full, policy, f"user:{n % budgets}"))
    med = {name: round(statistics.median(values), 3) for name, values in times.items()}
    return {"budgets": budgets, "reserve_ms": med,
            "ratio_fresh": round(med["fresh_n"] / med["fresh_0"], 3),
            "ratio_existing": round(med["existing_n"] / med["existing_0"], 3)}


def _per_agent(ledger: LedgerBase, samples: int) -> dict[str, Any]:
    crew = BudgetPolicy.model_validate(CREW)
    single = BudgetPolicy.model_validate({**CREW, "agents": {}})
    path = BudgetPath.of(crew, "crew", "booker")
    flat, tree = [], []
    for _ in range(samples):  # interleaved, so both see the same machine
        flat.append(_reserve_release(ledger, single, "flat"))
        tree.append(_reserve_release(ledger, path.leaf.policy, path.budget_id, path))
    out = {"single_level_ms": round(statistics.median(flat), 3), "agent_of_crew_ms": round(statistics.median(tree), 3)}
    out["ratio"] = round(out["agent_of_crew_ms"] / out["single_level_ms"], 3)
    return out


def measure(engine: str, target: str, *, budgets: int, samples: int) -> dict[str, Any]:
    schemas = [f"bench_budgets_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    if engine == "postgres":
        empty = open_ledger(target, clock=ManualClock(NOW), schema=schemas[0])
        full = open_ledger(target, clock=ManualClock(NOW), schema=schemas[1])
    else:
        empty = open_ledger(target + ".empty", clock=ManualClock(NOW))
        full = open_ledger(target, clock=ManualClock(NOW))
    try:
        return {"engine": engine, "per_user": _per_user(empty, full, budgets, samples),
                "per_agent": _per_agent(empty, samples)}
    finally:
        empty.close_sync()
        full.close_sync()
        if engine == "postgres":
            for schema in schemas:
                _drop(target, schema)


def _drop(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.budgets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=PG_URL, help="PostgreSQL URL ('' skips PostgreSQL)")
    parser.add_argument("--budgets", type=int, default=2000, help="end-user budgets to create")
    parser.add_argument("--samples", type=int, default=200, help="reservations timed per figure")
    parser.add_argument("--sqlite", action="store_true", help="also measure a SQLite file ledger")
    args = parser.parse_args(argv)
    results = []
    if args.pg:
        results.append(measure("postgres", args.pg, budgets=args.budgets, samples=args.samples))
    if args.sqlite or not args.pg:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(measure("sqlite", str(Path(tmp) / "ledger.db"), budgets=args.budgets,
                                   samples=args.samples))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
