"""LOAD through the real AMP path: 4 spawned agent processes x 8 concurrent payments drive the real
toolkit (L3 signing, applyCredential, startPayment with chain verification) against ONE sandbox
served by uvicorn on a free loopback port, sharing one ledger (SQLite and PostgreSQL).

The policy allows exactly 20 payments of 19.99 while every agent's mandate alone would allow the
whole 400.00, so only the shared ledger keeps the four agents inside the budget. Afterwards the
ledger is compared with the sandbox's own record, ``GET /_admin/payments``.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests._shared._served import served_sandbox
from tests.ledger._ledger_helpers import open_backend, raw_sync
from tests.reliability._tcp_support import MERCHANT, PRICE_MINOR, tcp_worker

AGENTS, PAYMENTS = 4, 8


@pytest.fixture
def served() -> Iterator[str]:
    with served_sandbox() as (_sandbox, url):
        yield url


@pytest.mark.slow
def test_agents_over_tcp_share_one_budget(engine_name: str, ledger_target: str, served: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    open_backend(engine_name, ledger_target).close_sync()  # migrate once, before four processes race to
    ctx = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with ctx.Pool(AGENTS) as pool:
        results: list[dict[str, Any]] = pool.map(
            tcp_worker, [(engine_name, ledger_target, served, w, PAYMENTS) for w in range(AGENTS)], chunksize=1)
    wall = time.perf_counter() - started

    paid = {c: t for r in results for c, t in r["paid"].items()}
    refused = [c for r in results for c in r["refused"]]
    assert len(paid) + len(refused) == AGENTS * PAYMENTS
    assert len(paid) == 20  # floor(400.00 / 19.99): exact, whatever the interleaving

    record = httpx.get(f"{served}/_admin/payments", timeout=10).json()["data"]
    succeeded = [p for p in record if p["status"] == "SUCCESS"]
    # The sandbox charged exactly what the agents were told was paid: one payment per checkout.
    assert sorted(p["checkoutId"] for p in succeeded) == sorted(paid)
    assert {p["checkoutId"]: p["transactionId"] for p in succeeded} == paid
    assert all(p["amount"] == {"cent": PRICE_MINOR, "currency": "USD"} for p in succeeded)
    assert all(p["merchantId"] == MERCHANT for p in succeeded)
    assert not set(refused) & {p["checkoutId"] for p in record}  # a refused payment never reached the network

    ledger = open_backend(engine_name, ledger_target)
    try:
        rows = raw_sync(ledger, "SELECT checkout_id, status, amount_minor, external_ref FROM entries "
                                "WHERE budget_id = 'default'")
    finally:
        ledger.close_sync()
    assert {str(r[1]) for r in rows} == {"committed"}
    assert {str(r[0]): str(r[3]) for r in rows} == paid  # the ledger agrees with the network, row for row
    assert sum(int(r[2]) for r in rows) == 20 * PRICE_MINOR <= 40000

    slowest = max(r["elapsed"] for r in results)
    with capsys.disabled():
        print(f"\n[reliability] served sandbox, {engine_name}: {AGENTS} agents x {PAYMENTS} full AMP payments, "
              f"{len(paid)} paid, {len(refused)} refused; {len(paid) + len(refused)} in {slowest:.1f}s "
              f"({(len(paid) + len(refused)) / slowest:.1f} payments/s), {wall:.1f}s with process start")
