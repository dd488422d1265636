"""The one-command example: the owner console beside an agent, answered over real HTTP."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx

from amp_examples.owner_console import run

TOKEN = "an-owner-passphrase-for-the-test"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _one_run(ledger: Path) -> tuple[str, dict[str, object], list[str]]:
    port, said = _port(), []
    base = f"http://127.0.0.1:{port}"

    async def owner() -> str:
        async with httpx.AsyncClient(base_url=base) as client:
            while not any("waiting for your approval" in line for line in said):
                await asyncio.sleep(0.05)
            csrf = (await client.post("/login", json={"passphrase": TOKEN})).json()["csrf"]
            [pending] = (await client.get("/api/approvals")).json()["approvals"]
            assert pending["budget_amount"] == {"amount": "243.60", "currency": "USD"}
            resp = await client.post(f"/api/approvals/{pending['id']}/approve", headers={"X-CSRF-Token": csrf})
            assert resp.json()["status"] == "approved"
            return str(pending["id"])

    approval_id, paid = await asyncio.gather(
        owner(), run(ledger_url=str(ledger), port=port, token=TOKEN, every=0.1, wait=30, say=said.append))
    assert said[0].startswith(f"Ledger {ledger}, budget owner-console-")
    assert said[1] == f"Owner console: {base}/  (log in with: {TOKEN})"
    assert sum(approval_id in line for line in said) >= 1
    return approval_id, paid, said


async def test_agent_waits_for_the_inbox_then_pays_once(tmp_path: Path) -> None:
    _, paid, said = await _one_run(tmp_path / "ledger.db")
    assert paid["status"] == "paid" and paid["amount"] == {"amount": "1160.00", "currency": "MYR"}
    assert said[-1].startswith("Agent: paid 1160.00 MYR, transaction ")


async def test_a_second_run_on_the_same_ledger_asks_and_pays_anew(tmp_path: Path) -> None:
    first = await _one_run(tmp_path / "ledger.db")
    second = await _one_run(tmp_path / "ledger.db")
    assert first[0] != second[0]  # a new approval: the second run did not ride on the first one's
    assert second[1]["status"] == "paid" and second[1]["transaction_id"] != first[1]["transaction_id"]
    budgets = [said[0].split(", budget ", 1)[1].split()[0] for said in (first[2], second[2])]
    assert budgets[0] != budgets[1]
