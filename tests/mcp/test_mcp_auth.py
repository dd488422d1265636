"""MCP over HTTP is authenticated: bearer tokens bound to one budget, stored hashed, on both engines.

No token (or a wrong, malformed or revoked one) gets 401 and no tools; a session answers only the
token that opened it; a token holds a bounded number of live sessions; Host and Origin stay
checked when serving remotely; two clients on two budgets never share sessions, checkouts or
approvals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("mcp", reason="the [mcp] extra is not installed")

from typer.testing import CliRunner

from amp_tools import config
from amp_tools.approvals import ApprovalStore
from amp_tools.cli import app
from amp_tools.errors import NotFound
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.mcp.backend import open_backend
from amp_tools.mcp.http import CappedSessionManager, build_http_app
from amp_tools.mcp.tokens import TokenStore
from amp_tools.policy import load_policy, parse_policy
from tests.ledger._ledger_helpers import open_backend as open_ledger_on
from tests.mcp._mcp_support import (
    BUDGET,
    error,
    http_backend,
    http_session,
    negotiated_hotel,
    ok,
    text_of,
    write_policy,
)

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream"}


async def _initialize(url: str, token: str | None, **headers: str) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx.AsyncClient() as client:
        return await client.post(url, json=INIT, headers={**ACCEPT, **auth, **headers})


def _secret_of(token: str) -> str:
    """The random part of ``ampmcp_<12 hex id>_<secret>`` (the secret itself may contain ``_``)."""
    return token[len("ampmcp_") + 13:]


def _ledger(backend: str, target: str) -> LedgerBase:
    return open_ledger_on(backend, target)


async def test_tokens_are_stored_hashed_verified_and_revoked(backend: str, target: str) -> None:
    led = _ledger(backend, target)
    try:
        for budget in ("alice", "bob"):
            led.create_budget_sync(budget, parse_policy({"currency": "USD", "total_budget": "100.00"}), by="owner")
        tokens = TokenStore(led)
        unknown = None
        try:
            tokens.create("carol")
        except NotFound as exc:
            unknown = exc.message
        issued = tokens.create("alice", label="Alice's Cursor", by="olivia")
        other = tokens.create("bob")
        secret = issued.token
        found = await tokens.verify(secret)
        malformed = await tokens.verify("not a token")
        tampered = await tokens.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
        swapped = await tokens.verify(f"ampmcp_{other.record.token_id}_{_secret_of(secret)}")
        rows = await led.run_read(lambda: _all_rows())
        tokens.revoke(issued.record.token_id, by="olivia")
        after = await tokens.verify(secret)
        listed = [(r.token_id, r.budget_id, r.active) for r in tokens.list(include_revoked=True)]
        audit = [r.kind for r in await led.audit.records(since_seq=0, limit=50)]
    finally:
        await led.close()

    assert found is not None
    assert (found.budget_id, found.label, found.created_by) == ("alice", "Alice's Cursor", "olivia")
    assert tampered is None and swapped is None and after is None and malformed is None
    assert unknown is not None and "budget 'carol' is not in this ledger" in unknown
    stored = json.dumps(rows, default=str)
    assert secret not in stored and _secret_of(secret) not in stored  # only the hash is kept
    assert sorted(listed) == sorted([(issued.record.token_id, "alice", False), (other.record.token_id, "bob", True)])
    assert audit.count("mcp_token.created") == 2 and audit.count("mcp_token.revoked") == 1


def _all_rows() -> Any:
    from amp_tools.ledger._sql import Q

    rows = yield Q("SELECT * FROM mcp_tokens")
    return [list(r) for r in rows]


async def test_no_valid_token_no_tools(tmp_path: Path) -> None:
    async with http_backend(write_policy(tmp_path), tmp_path / "ledger.db") as served:
        revoked = served.new_token()
        TokenStore(served.backend.ledger).revoke(revoked.split("_")[1])
        answers = {name: await _initialize(served.url, token) for name, token in (
            ("none", None), ("garbage", "hello"), ("unknown", "ampmcp_000000000000_" + "A" * 43),
            ("revoked", revoked), ("valid", served.token))}
        # A live session stops answering the moment its token is revoked.
        session_id = answers["valid"].headers["mcp-session-id"]
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        headers = {**ACCEPT, "Authorization": f"Bearer {served.token}", "mcp-session-id": session_id,
                   "mcp-protocol-version": "2025-06-18"}
        async with httpx.AsyncClient() as client:
            before = await client.post(served.url, json=listing, headers=headers)
            TokenStore(served.backend.ledger).revoke(served.token.split("_")[1])
            after = await client.post(served.url, json=listing, headers=headers)
        sessions = served.backend.sessions

    assert {name: r.status_code for name, r in answers.items()} == {
        "none": 401, "garbage": 401, "unknown": 401, "revoked": 401, "valid": 200}
    assert answers["none"].json()["error"] == "invalid_token"
    assert "www-authenticate" in answers["none"].headers
    assert (before.status_code, after.status_code) == (200, 401) and '"pay"' in before.text and "pay" not in after.text
    assert sessions == 1  # no toolkit was ever made for a refused request


async def test_a_session_answers_only_the_token_that_opened_it(tmp_path: Path) -> None:
    async with http_backend(write_policy(tmp_path), tmp_path / "ledger.db") as served:
        opened = await _initialize(served.url, served.token)
        session_id = opened.headers["mcp-session-id"]
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        async with httpx.AsyncClient() as client:
            stranger = await client.post(served.url, json=listing, headers={
                **ACCEPT, "Authorization": f"Bearer {served.new_token()}", "mcp-session-id": session_id,
                "mcp-protocol-version": "2025-06-18"})
            owner = await client.post(served.url, json=listing, headers={
                **ACCEPT, "Authorization": f"Bearer {served.token}", "mcp-session-id": session_id,
                "mcp-protocol-version": "2025-06-18"})
    assert stranger.status_code == 404 and "tools" not in stranger.text
    assert owner.status_code == 200


async def test_live_sessions_per_token_are_capped(tmp_path: Path) -> None:
    async with http_backend(write_policy(tmp_path), tmp_path / "ledger.db", sessions_per_token=2) as served:
        flood = [await _initialize(served.url, served.token) for _ in range(5)]
        other = await _initialize(served.url, served.new_token())
    assert [r.status_code for r in flood] == [200, 200, 503, 503, 503]
    assert other.status_code == 200  # one token's flood does not lock out another client


async def test_remote_serving_checks_host_and_origin_against_the_allowed_names(tmp_path: Path) -> None:
    async with http_backend(write_policy(tmp_path), tmp_path / "ledger.db",
                            allowed_hosts=["mcp.example.com"]) as served:
        named = await _initialize(served.url, served.token, Host="mcp.example.com")
        rebound = await _initialize(served.url, served.token, Host="attacker.example")
        foreign = await _initialize(served.url, served.token, Host="mcp.example.com", Origin="https://attacker.example")
        own = await _initialize(served.url, served.token, Host="mcp.example.com", Origin="https://mcp.example.com")
    assert [named.status_code, rebound.status_code, foreign.status_code, own.status_code] == [200, 421, 403, 200]


async def test_two_budgets_paying_identical_baskets_never_share_approvals(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    policy = write_policy(tmp_path, approval={"confirm_above": "200.00"})
    async with http_backend(policy, ledger) as served:
        alice_token, bob_token = served.new_token("alice"), served.new_token("bob")
        async with http_session(served.url, alice_token) as alice, http_session(served.url, bob_token) as bob:
            alice_hotel, bob_hotel = await negotiated_hotel(alice), await negotiated_hotel(bob)
            alice_wait = await error(alice, "pay", {"checkout_id": alice_hotel})
            bob_wait = await error(bob, "pay", {"checkout_id": bob_hotel})
            assert alice_wait.structuredContent is not None and bob_wait.structuredContent is not None
            alice_id = alice_wait.structuredContent["details"]["approval_id"]
            bob_id = bob_wait.structuredContent["details"]["approval_id"]
            served.backend.store.approve(alice_id, "olivia")
            alice_paid = await ok(alice, "pay", {"checkout_id": alice_hotel})
            bob_still = await error(bob, "pay", {"checkout_id": bob_hotel})
            alice_status = await ok(alice, "budget_status")
            bob_status = await ok(bob, "budget_status")
        records = {r.id: (r.budget_id, r.status) for r in ApprovalStore(served.backend.ledger).list()}

    assert alice_id != bob_id
    assert records == {alice_id: ("alice", "consumed"), bob_id: ("bob", "pending")}
    assert alice_paid["approved_by"] == "olivia"
    assert text_of(bob_still).startswith("APPROVAL_PENDING") and bob_id in text_of(bob_still)
    assert alice_status["total"]["left"] == {"amount": "768.58", "currency": "USD"}
    # Bob's payment is held while his approval waits (one row), never paid with Alice's grant
    assert bob_status["total"]["left"] == {"amount": "768.58", "currency": "USD"}
    assert bob_status["total"]["used"] == alice_status["total"]["used"]
    assert BUDGET not in records.values()


def test_tokens_cli_prints_the_token_once_and_lists_ids_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    runner = CliRunner()
    no_budget = runner.invoke(app, ["mcp", "tokens", "create", "--budget", "team-travel"])
    assert no_budget.exit_code != 0 and "not in this ledger" in str(no_budget.exception)
    owner_side = open_ledger(config.ledger_url())  # what `amp-tools budgets create team-travel` does
    owner_side.create_budget_sync("team-travel", load_policy(write_policy(tmp_path)), by="owner")
    owner_side.close_sync()
    created = runner.invoke(app, ["mcp", "tokens", "create", "--budget", "team-travel", "--label", "Cursor"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("ampmcp_")
    listed = runner.invoke(app, ["mcp", "tokens", "list"])
    token_id = token.split("_")[1]
    assert listed.exit_code == 0 and token_id in listed.stdout and "team-travel" in listed.stdout
    assert _secret_of(token) not in listed.stdout
    revoked = runner.invoke(app, ["mcp", "tokens", "revoke", token_id])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    assert token_id not in runner.invoke(app, ["mcp", "tokens", "list"]).stdout
    assert token_id in runner.invoke(app, ["mcp", "tokens", "list", "--all"]).stdout
    marked = runner.invoke(app, ["mcp", "tokens", "create", "--budget", "team-travel", "--label", "[/oops]"])
    assert marked.exit_code == 0, marked.output
    shown = runner.invoke(app, ["mcp", "tokens", "list"])
    assert shown.exit_code == 0 and "[/oops]" in shown.stdout  # terminal markup shown as text
    control = runner.invoke(app, ["mcp", "tokens", "create", "--budget", "team-travel", "--label", "a\x1b[2Jb"])
    assert control.exit_code != 0 and "printable" in str(control.exception)
    bad = runner.invoke(app, ["mcp", "tokens", "create", "--budget", "bad budget!"])
    assert bad.exit_code != 0 and "is not valid" in str(bad.exception)
    missing = runner.invoke(app, ["mcp", "tokens", "revoke", "000000000000"])
    assert missing.exit_code != 0 and "there is no MCP token" in str(missing.exception)


def test_the_session_manager_gets_the_idle_expiry_and_the_cap(tmp_path: Path) -> None:
    backend = open_backend(write_policy(tmp_path), ledger=str(tmp_path / "ledger.db"), budget_id=BUDGET)
    try:
        app_ = build_http_app(backend, idle_seconds=120.0, sessions_per_token=3)
        [route] = app_.routes
        manager = route.app.app.manager  # type: ignore[attr-defined]  # RequireAuthMiddleware -> endpoint
    finally:
        backend.store.close()
        backend.ledger.close_sync()
    # The SDK closes a session after this many idle seconds (its own tested timer); ours only configures it.
    assert isinstance(manager, CappedSessionManager)
    assert (manager.session_idle_timeout, manager.sessions_per_token) == (120.0, 3)
