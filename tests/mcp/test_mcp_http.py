"""`amp-tools mcp --transport http`: streamable HTTP on a loopback port, one toolkit per client session,
every request with a bearer token.

The server runs in this event loop (uvicorn on a free port), so the tests also read the
sandbox's own record of payments, not only what the client was told.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from mcp import types

pytest.importorskip("mcp", reason="the [mcp] extra is not installed")

from tests.mcp._mcp_support import (
    Person,
    error,
    flight,
    http_backend,
    http_session,
    ledger_rows,
    list_price_hotel,
    negotiated_hotel,
    ok,
    text_of,
    write_policy,
)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))


async def test_shop_negotiate_pay_and_refusal_over_http(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    async with http_backend(write_policy(tmp_path, per_transaction_max="240.00"), ledger) as served, \
            http_session(served.url, served.token) as session:
        backend = served.backend
        names = [t.name for t in (await session.list_tools()).tools]
        paid = await ok(session, "pay", {"checkout_id": await negotiated_hotel(session)})
        refused = await error(session, "pay", {"checkout_id": await list_price_hotel(session)})
        assert backend.sandbox is not None
        payments = [(p["merchantId"], p["amount"]["cent"], p["status"]) for p in backend.sandbox.payments()]

    assert "pay" in names and len(names) == 12
    assert (paid["status"], paid["amount"]["amount"], paid["budget_amount"]["amount"]) == ("paid", "1102.00", "231.42")
    assert "[policy: per_transaction_max]" in text_of(refused) and "243.60 USD" in text_of(refused)
    assert payments == [("KL-GRAND-HOTEL", 110200, "SUCCESS")]
    assert [r[:2] for r in await ledger_rows(ledger)] == [("KL-GRAND-HOTEL", "committed")]


async def test_each_client_has_its_own_session_and_both_spend_one_budget(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    async with http_backend(write_policy(tmp_path), ledger) as served, \
            http_session(served.url, served.token) as alice, http_session(served.url, served.new_token()) as bob:
        backend = served.backend
        hotel, seat = await asyncio.gather(negotiated_hotel(alice), flight(bob))
        # A checkout lives in the session that made it: the other client cannot pay it.
        stranger = await error(bob, "pay", {"checkout_id": hotel})
        paid_hotel, paid_seat = await asyncio.gather(ok(alice, "pay", {"checkout_id": hotel}),
                                                     ok(bob, "pay", {"checkout_id": seat}))
        left_for_bob = (await ok(bob, "budget_status"))["total"]["left"]
        sessions = backend.sessions
        assert backend.sandbox is not None and backend.agent_key is not None
        # Both sessions are the one agent the network knows, with the one key (a second key would replace it).
        registered = backend.sandbox.state.agents["amp-tools-agent"]["publicJwk"]["kid"]
        assert registered == backend.agent_key.public_jwk()["kid"]

    assert sessions == 2
    assert text_of(stranger).startswith("NOT_FOUND")
    assert (paid_hotel["merchant"], paid_seat["merchant"]) == ("KL Grand Hotel", "Skylark Air")
    assert left_for_bob == {"amount": "658.32", "currency": "USD"}  # 1000.00 - 231.42 - 110.26
    assert sorted(r[:2] for r in await ledger_rows(ledger)) == [("KL-GRAND-HOTEL", "committed"),
                                                                ("SKYLARK-AIR", "committed")]


async def test_url_elicitation_over_http_the_person_decides_in_the_store(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    policy = write_policy(tmp_path, approval={"confirm_above": "200.00"})
    async with http_backend(policy, ledger) as served:
        backend = served.backend

        async def in_the_console(approval_id: str) -> None:
            await backend.store.aapprove(approval_id, "owner (inbox)")  # what the console's Approve button does

        person = Person(["approve", "approve"], console=in_the_console)
        async with http_session(served.url, served.token, elicit=person) as session:
            paid = await ok(session, "pay", {"checkout_id": await negotiated_hotel(session)})
        assert backend.sandbox is not None
        payments = [p["merchantId"] for p in backend.sandbox.payments() if p["status"] == "SUCCESS"]

    [asked] = person.asked
    assert isinstance(asked, types.ElicitRequestURLParams)
    approval_id = asked.elicitationId.partition(".")[0]
    assert asked.url == f"http://127.0.0.1:8787/approvals/{approval_id}" and approval_id.startswith("apr_")
    assert (paid["status"], paid["approved_by"]) == ("paid", "owner (inbox)")
    assert payments == ["KL-GRAND-HOTEL"]
    assert [r[:2] for r in await ledger_rows(ledger)] == [("KL-GRAND-HOTEL", "committed")]


async def test_a_foreign_host_header_is_refused(tmp_path: Path) -> None:
    async with http_backend(write_policy(tmp_path), tmp_path / "ledger.db") as served:
        url = served.url
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "x", "version": "1"}}}
        headers = {"Accept": "application/json, text/event-stream", "Host": "evil.example:80",
                   "Authorization": f"Bearer {served.token}"}
        async with httpx.AsyncClient() as client:
            rebound = await client.post(url, json=body, headers=headers)
    assert rebound.status_code == 421


async def test_pending_over_http_until_a_person_approves_in_the_store(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    policy = write_policy(tmp_path, approval={"confirm_above": "200.00"})
    async with http_backend(policy, ledger) as served, http_session(served.url, served.token) as session:
        backend = served.backend
        hotel = await negotiated_hotel(session)
        pending = await error(session, "pay", {"checkout_id": hotel})
        assert pending.structuredContent is not None
        approval_id = pending.structuredContent["details"]["approval_id"]
        backend.store.approve(approval_id, "carol")  # what `amp-tools approvals approve` does
        paid = await ok(session, "pay", {"checkout_id": hotel})

    assert text_of(pending).startswith("APPROVAL_PENDING") and approval_id in text_of(pending)
    assert (paid["status"], paid["approved_by"]) == ("paid", "carol")
    # One payment, one row: held while the person decided, then committed (issue 20).
    assert [r[:2] for r in await ledger_rows(ledger)] == [("KL-GRAND-HOTEL", "committed")]
