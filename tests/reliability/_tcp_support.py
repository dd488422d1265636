"""Worker of the served-sandbox load test: one agent process driving the real toolkit over TCP.

Each spawned process registers its own agent key with the network (as an operator would),
binds the wallet, asks for an AUTONOMOUS mandate at one merchant, then checks out and pays
concurrently through the `pay` tool spec. All processes share ONE ledger and budget, so the
policy is enforced across them while every mandate alone would allow more.

Imported by spawned workers: no pytest here.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from typing import Any

import httpx

from amp_tools.amp.client import AmpClient
from amp_tools.amp.keys import AgentKey
from amp_tools.clock import SYSTEM_CLOCK
from amp_tools.errors import PolicyViolation, ToolError
from amp_tools.policy import BudgetPolicy
from amp_tools.toolkit import AmpToolkit
from tests.ledger._ledger_helpers import open_backend

__all__ = ["MERCHANT", "OFFER", "PRICE_MINOR", "TCP_POLICY", "tcp_worker"]

MERCHANT, OFFER, PRICE_MINOR = "SUNNY-TOURS", "SUNNY-TOURS:SUN-ESIM-ASIA", 1999
#: 400.00 allows exactly 20 payments of 19.99 (399.80) whatever the order.
TCP_POLICY: dict[str, Any] = {"name": "tcp-load", "currency": "USD", "total_budget": "400.00"}


async def _agent(backend: str, where: str, base_url: str, worker: int, payments: int) -> dict[str, Any]:
    key = AgentKey.generate()
    agent_id = f"load-agent-{worker}"
    async with httpx.AsyncClient(base_url=base_url) as admin:
        answer = (await admin.post("/network/agents/register",
                                   json={"agentId": agent_id, "publicJwk": key.public_jwk()})).json()
        assert answer.get("success") is not False, answer
    ledger = open_backend(backend, where)  # wall clock: the served sandbox runs on it too
    client = AmpClient(base_url, agent_id=agent_id, timeout=30.0)
    tk = AmpToolkit(client, BudgetPolicy.model_validate(TCP_POLICY), ledger=ledger, agent_key=key,
                    agent_id=agent_id, run_id=f"tcp-{worker}", clock=SYSTEM_CLOCK, budget_id="default")
    specs = {s.name: s for s in tk.specs()}
    try:
        await specs["discover_merchants"].ainvoke({})
        await specs["search_offers"].ainvoke({"query": "eSIM"})
        until = (SYSTEM_CLOCK.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        mandate = await specs["request_mandate"].ainvoke({"purpose": "Buy eSIMs for the team", "expires_at": until,
                                                          "merchant_ids": [MERCHANT]})
        assert mandate["status"] == "ACTIVE", mandate

        async def buy(n: int) -> tuple[str, str | None]:
            ck = await specs["checkout"].ainvoke({"offer_id": OFFER, "quantity": 1})
            try:
                paid = await specs["pay"].ainvoke({"checkout_id": ck["checkout_id"]})
            except PolicyViolation:
                return ck["checkout_id"], None
            except ToolError as exc:
                # This agent's mandate was sized by what the shared budget had left when it was requested, so it
                # never allows more than the ledger does: when it cannot cover a payment, the budget could not either.
                assert exc.code == "MANDATE_DOES_NOT_COVER", exc
                return ck["checkout_id"], None
            assert paid["status"] == "paid", paid
            return ck["checkout_id"], str(paid["transaction_id"])

        started = time.perf_counter()
        done = await asyncio.gather(*(buy(n) for n in range(payments)))
        elapsed = time.perf_counter() - started
    finally:
        await tk.aclose()
        await ledger.close()
    return {"paid": {c: t for c, t in done if t is not None}, "refused": [c for c, t in done if t is None],
            "elapsed": elapsed, "pid": os.getpid()}


def tcp_worker(args: tuple[str, str, str, int, int]) -> dict[str, Any]:
    backend, where, base_url, worker, payments = args
    return asyncio.run(_agent(backend, where, base_url, worker, payments))
