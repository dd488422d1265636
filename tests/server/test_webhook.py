"""The webhook approver: each new request is POSTed once, signed, retried with backoff, secret-free.

The receiver is a test endpoint that checks the signature the way a real receiver would
(`verify_signature` over the raw body and the timestamp header) before it accepts anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from amp_tools.approvals import WebhookApprover
from amp_tools.approvals.outbox import list_steps
from amp_tools.approvals.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify_signature
from amp_tools.errors import ApprovalPending, ConfigError
from tests.server._server_helpers import World

SECRET = "a-webhook-secret-of-32-characters!"


class Receiver:
    """Answers with the scripted statuses, then 200; keeps what arrived and whether it verified."""

    def __init__(self, statuses: list[int] | None = None, secret: str = SECRET) -> None:
        self.statuses = list(statuses or [])
        self.secret = secret.encode()
        self.got: list[tuple[bool, dict[str, Any], httpx.Headers]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        ok = verify_signature(self.secret, request.headers.get(TIMESTAMP_HEADER, ""), body,
                              request.headers.get(SIGNATURE_HEADER, ""))
        self.got.append((ok, json.loads(body), request.headers))
        if not ok:
            return httpx.Response(401, json={"error": "bad signature"})
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200, json={"ok": True})


def _world(tmp_path: Path, receiver: Receiver, **options: Any) -> tuple[World, WebhookApprover]:
    holder: dict[str, Any] = {}
    world = World(tmp_path, approver=_Late(holder))
    holder["approver"] = WebhookApprover(world.agent_store, "https://hooks.example/amp?token=abc", SECRET,
                                         inbox_url="http://127.0.0.1:8787", budget_id="trip", background=False,
                                         transport=httpx.MockTransport(receiver.handler), **options)
    return world, holder["approver"]


async def _drain(world: World, approver: WebhookApprover) -> list[float]:
    """Deliver until nothing is owed, advancing the clock to each retry; returns the waits between attempts."""
    waits: list[float] = []
    while True:
        await approver.deliver_due()
        due = await approver.courier.next_due()
        if due is None:
            return waits
        wait = (due - world.clock.now()).total_seconds()
        waits.append(wait)
        world.clock.advance(wait)


class _Late:
    """Lets the test build the approver after the world (it needs the world's store)."""

    def __init__(self, holder: dict[str, Any]) -> None:
        self.holder = holder

    async def __call__(self, request: Any) -> Any:
        return await self.holder["approver"](request)


async def test_new_request_is_posted_signed_once_with_a_link_and_no_secrets(tmp_path: Path) -> None:
    receiver = Receiver()
    world, approver = _world(tmp_path, receiver)
    try:
        checkout = await world.flight_checkout()
        first = await world.try_pay(checkout)
        assert isinstance(first, ApprovalPending)
        assert receiver.got == []  # queued, not sent inside pay
        again = await world.try_pay(checkout)  # still waiting: no second notification
        assert isinstance(again, ApprovalPending)
        slept = await _drain(world, approver)
        [(verified, body, headers)] = receiver.got
        approval_id = first.details["approval_id"]
        assert verified and slept == []
        assert body["type"] == "approval_request" and body["approval"]["id"] == approval_id
        assert body["approval"]["budget_amount"] == {"amount": "139.86", "currency": "USD"}
        assert body["inbox_url"] == f"http://127.0.0.1:8787/inbox#{approval_id}"
        assert "binding" not in body["approval"] and "Skylark Air" in body["summary"]
        text = json.dumps(body).lower()
        assert not any(word in text for word in ("token", "l1", "l3serialized", "secret", "jwk"))
        assert headers[SIGNATURE_HEADER].startswith("v1=")
        [audit] = [r for r in await world.agent_ledger.audit.records() if r.kind == "approval_notified"]
        assert audit.payload == {"approval_id": approval_id, "host": "hooks.example", "format": "json",
                                 "delivered": True, "http_status": 200, "attempts": 1, "error": ""}
        [row] = await approver.courier.ledger.run_read(lambda: list_steps())
        assert (row.status, row.attempts, row.host) == ("delivered", 1, "hooks.example")
    finally:
        await world.close()


async def test_retries_with_backoff_then_gives_up_without_failing_the_agent(tmp_path: Path) -> None:
    receiver = Receiver([503, 429, 200])
    world, approver = _world(tmp_path, receiver, backoff=0.5)
    try:
        asked = await world.try_pay(await world.flight_checkout())
        assert isinstance(asked, ApprovalPending)
        slept = await _drain(world, approver)
        assert [ok for ok, _, _ in receiver.got] == [True, True, True] and slept == [0.5, 1.0]
    finally:
        await world.close()
    down = Receiver([500, 500, 500, 500])
    world, approver = _world(tmp_path / "down", down, attempts=3, backoff=0.5)
    try:
        asked = await world.try_pay(await world.flight_checkout())
        assert isinstance(asked, ApprovalPending)  # the question still waits in the inbox
        slept = await _drain(world, approver)
        assert len(down.got) == 3 and slept == [0.5, 1.0]
        [audit] = [r for r in await world.agent_ledger.audit.records() if r.kind == "approval_notified"]
        assert (audit.payload["delivered"], audit.payload["error"], audit.payload["attempts"]) == (False, "HTTP 500", 3)
    finally:
        await world.close()


async def test_a_receiver_that_refuses_is_not_retried(tmp_path: Path) -> None:
    receiver = Receiver(secret="another-secret-of-enough-length")  # signatures will not verify
    world, approver = _world(tmp_path, receiver)
    try:
        await world.try_pay(await world.flight_checkout())
        slept = await _drain(world, approver)
        [(verified, _, _)] = receiver.got
        assert verified is False and slept == []
    finally:
        await world.close()


async def test_slack_format(tmp_path: Path) -> None:
    receiver = Receiver()
    world, approver = _world(tmp_path, receiver, fmt="slack")
    try:
        asked = await world.try_pay(await world.flight_checkout())
        assert isinstance(asked, ApprovalPending)
        await _drain(world, approver)
        [(verified, body, _)] = receiver.got
        assert verified and set(body) == {"text", "blocks", "unfurl_links", "unfurl_media"}
        assert body["text"].startswith("Approval needed: 189.00 SGD (= 139.86 USD from the budget) to Skylark Air")
        section, actions = body["blocks"]
        assert section["type"] == "section" and "Asked because" in section["text"]["text"]
        assert actions["elements"][0]["url"].endswith(f"/inbox#{asked.details['approval_id']}")
    finally:
        await world.close()


def test_signature_checks_body_secret_and_freshness() -> None:
    body, key = b'{"a":1}', SECRET.encode()
    good = sign(key, 1_700_000_000, body)
    assert verify_signature(key, "1700000000", body, good, now=1_700_000_100)
    assert not verify_signature(key, "1700000000", b'{"a":2}', good, now=1_700_000_100)
    assert not verify_signature(b"x" * 32, "1700000000", body, good, now=1_700_000_100)
    assert not verify_signature(key, "1700000000", body, good, now=1_700_001_000)  # a replay, too late
    assert not verify_signature(key, "soon", body, good)


async def test_configuration_is_checked(tmp_path: Path) -> None:
    world = World(tmp_path)
    try:
        with pytest.raises(ConfigError, match="http"):
            WebhookApprover(world.agent_store, "ftp://x", SECRET)
        with pytest.raises(ConfigError, match="at least 16 bytes"):
            WebhookApprover(world.agent_store, "https://x.example", "short")
        with pytest.raises(ConfigError, match="'json', 'slack' or 'ntfy'"):
            WebhookApprover(world.agent_store, "https://x.example", SECRET, fmt="xml")  # type: ignore[arg-type]
    finally:
        await world.close()
