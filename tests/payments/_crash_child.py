"""The agent process the transition crash tests kill: the real toolkit over TCP, stopped at one state.

It shops on a served (reference-like) sandbox, then pays one checkout and hangs at the point its
scenario names, after writing a marker file with the checkout id, until the parent kills it with
SIGKILL. Imported by spawned processes: no pytest here.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from amp_tools.amp.client import AmpClient
from amp_tools.amp.keys import AgentKey
from amp_tools.approvals import ApprovalRequest, CallbackApprover
from amp_tools.clock import SYSTEM_CLOCK
from amp_tools.errors import AmpError
from amp_tools.policy import parse_policy
from amp_tools.toolkit import AmpToolkit
from tests.ledger._ledger_helpers import open_backend

__all__ = ["AGENT_ID", "BUDGET", "CRASH_POLICY", "SCENARIOS", "SESSION", "build", "crash_child"]

AGENT_ID, BUDGET, SESSION = "crash-agent", "crash", "crash-thread"
CRASH_POLICY: dict[str, Any] = {"name": "crash", "currency": "USD", "total_budget": "100.00",
                                "approval": {"confirm_above": "10.00"}}
#: Where the agent process dies: the payment's state then, as recovery finds it.
SCENARIOS = ("reserved", "awaiting_approval", "sending_before_charge", "charged_before_commit", "unknown")


async def _notified(action: Any) -> None:
    """The person is told on their phone; the reference-like wallet confirms by itself a moment later."""


def build(backend: str, where: str, base_url: str, key_path: str, merchants: list[dict[str, Any]],
          approver: Any) -> AmpToolkit:
    client = AmpClient(base_url, agent_id=AGENT_ID, timeout=30.0)
    return AmpToolkit(client, parse_policy(CRASH_POLICY, "crash"), ledger=open_backend(backend, where),
                      approver=approver, agent_key=AgentKey.load(key_path), agent_id=AGENT_ID, clock=SYSTEM_CLOCK,
                      budget_id=BUDGET, session_id=SESSION, merchants=merchants, idv_wait=5.0,
                      wallet_prompt=_notified)


async def _hang(marker: Path, text: str) -> None:
    # Written aside and renamed: the parent reads the checkout id as soon as the marker exists, and a
    # marker created but not yet written would read as no checkout at all.
    aside = marker.with_suffix(".part")
    aside.write_text(text)
    os.replace(aside, marker)
    await asyncio.Event().wait()


async def _agent(backend: str, where: str, base_url: str, key_path: str, merchants: list[dict[str, Any]],
                 scenario: str, marker: str) -> None:
    mark = Path(marker)
    checkout: list[str] = []

    async def person(request: ApprovalRequest) -> bool:
        if scenario == "awaiting_approval":
            await _hang(mark, checkout[0])
        return True

    tk = build(backend, where, base_url, key_path, merchants, CallbackApprover(person))
    specs = {s.name: s for s in tk.specs()}
    until = (SYSTEM_CLOCK.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await specs["search_offers"].ainvoke({"query": "eSIM", "merchant_ids": ["SUNNY-TOURS"]})
    mandate = await specs["request_mandate"].ainvoke({"purpose": "Buy an eSIM for the trip", "budget": "50.00",
                                                      "expires_at": until, "merchant_ids": ["SUNNY-TOURS"]})
    ck = await specs["checkout"].ainvoke({"offer_id": "SUNNY-TOURS:SUN-ESIM-ASIA", "quantity": 1})
    checkout.append(str(ck["checkout_id"]))
    await tk.save_session()
    assert mandate["status"] in ("ACTIVE", "PENDING_IDV"), mandate

    lifecycle, client = tk.guard.lifecycle, tk.client
    real_asking, real_start = lifecycle.awaiting_approval, client.start_payment

    async def awaiting_approval(entry_id: int) -> Any:
        if scenario == "reserved":  # reserved, the next move not yet written
            await _hang(mark, checkout[0])
        return await real_asking(entry_id)

    async def start_payment(*args: Any, **kw: Any) -> Any:
        if scenario == "sending_before_charge":
            await _hang(mark, checkout[0])
        paid = await real_start(*args, **kw)
        if scenario == "charged_before_commit":
            await _hang(mark, checkout[0])
        if scenario == "unknown":
            raise AmpError("startPayment: the answer was lost", code="TIMEOUT")
        return paid

    lifecycle.awaiting_approval = awaiting_approval  # type: ignore[method-assign]
    client.start_payment = start_payment  # type: ignore[method-assign]
    try:
        await specs["pay"].ainvoke({"checkout_id": checkout[0]})
    except AmpError as exc:
        assert scenario == "unknown" and exc.code == "OUTCOME_UNKNOWN", exc
        await _hang(mark, checkout[0])


def crash_child(backend: str, where: str, base_url: str, key_path: str, merchants: list[dict[str, Any]],
                scenario: str, marker: str) -> None:
    asyncio.run(_agent(backend, where, base_url, key_path, merchants, scenario, marker))
