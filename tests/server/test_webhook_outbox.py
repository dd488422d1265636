"""The webhook outbox on both engines: `pay` only queues; workers deliver each notification once,
retry with backoff, give up at the delivery's deadline, and never write the URL down anywhere."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from amp_tools.approvals import WebhookApprover
from amp_tools.approvals.outbox import list_steps
from amp_tools.errors import ApprovalPending
from amp_tools.ledger._sql import Q, Steps
from tests.ledger._ledger_helpers import PG_URL
from tests.server._server_helpers import World, login

SECRET = "a-webhook-secret-of-32-characters!"
URL = "https://hooks.example/services/T0SECRET/B0SECRET/XXXXSECRETPATH?token=SECRETQUERY"


class _Late:
    def __init__(self, holder: dict[str, Any]) -> None:
        self.holder = holder

    async def __call__(self, request: Any) -> Any:
        return await self.holder["approver"](request)


def _world(backend: str, where: str, tmp_path: Path, handler: Any, **options: Any) -> tuple[World, WebhookApprover]:
    holder: dict[str, Any] = {}
    extra: dict[str, Any] = {} if backend == "sqlite" else {"ledger_url": PG_URL, "schema": where}
    world = World(tmp_path, approver=_Late(holder), **({"ledger_url": where} if backend == "sqlite" else extra))
    holder["approver"] = WebhookApprover(world.agent_store, URL, SECRET, inbox_url="http://127.0.0.1:8787",
                                         budget_id="trip", background=False,
                                         transport=httpx.MockTransport(handler), **options)
    return world, holder["approver"]


def _dump() -> Steps[list[str]]:
    rows = yield Q("SELECT * FROM webhook_outbox")
    audit = yield Q("SELECT payload FROM audit")
    return [json.dumps([str(v) for v in row]) for row in rows] + [str(r[0]) for r in audit]


async def test_two_workers_deliver_each_notification_once(backend: str, where: str, tmp_path: Path) -> None:
    got: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        got.append(request.content)
        return httpx.Response(200)

    world, approver = _world(backend, where, tmp_path, handler)
    other = WebhookApprover(world.agent_store.__class__(world.inbox_ledger, budget_id="trip"), URL, SECRET,
                            background=False, transport=httpx.MockTransport(handler))
    try:
        asked = await world.try_pay(await world.flight_checkout())
        assert isinstance(asked, ApprovalPending) and got == []
        [queued] = await world.inbox_ledger.run_read(lambda: list_steps())
        assert (queued.status, queued.attempts, queued.approval_id) == ("pending", 0, asked.details["approval_id"])
        first, second = await asyncio.gather(approver.deliver_due(), other.deliver_due())
        assert len(got) == 1 and len(first) + len(second) == 1  # one worker took it; the other found nothing due
        [done] = await world.inbox_ledger.run_read(lambda: list_steps())
        assert (done.status, done.attempts, done.http_status, done.host) == ("delivered", 1, 200, "hooks.example")
        assert await approver.courier.next_due() is None
        text = "\n".join(await world.inbox_ledger.run_read(_dump))
        assert "SECRET" not in text and "services" not in text  # neither the URL's path nor its query, anywhere
    finally:
        await world.close()


async def test_retries_with_backoff_until_the_deadline_then_fails(backend: str, where: str, tmp_path: Path) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503)

    world, approver = _world(backend, where, tmp_path, handler, attempts=10, backoff=60, deadline=300)
    try:
        await world.try_pay(await world.flight_checkout())
        waits = []
        while (due := await approver.courier.next_due()) is not None:
            wait = (due - world.clock.now()).total_seconds()
            waits.append(wait)
            world.clock.advance(max(wait, 0))
            await approver.deliver_due()
        # 60 then 120 s; the next wait (240 s) would end past the 300 s deadline, so the third attempt is the last.
        assert waits == [0, 60, 120] and len(calls) == 3
        [row] = await world.inbox_ledger.run_read(lambda: list_steps(status="failed"))
        assert (row.attempts, row.http_status, row.error) == (3, 503, "HTTP 503")
        [audit] = [r for r in await world.inbox_ledger.audit.records() if r.kind == "approval_notified"]
        assert audit.payload["delivered"] is False and audit.payload["host"] == "hooks.example"
    finally:
        await world.close()


async def test_the_console_lists_deliveries(backend: str, where: str, tmp_path: Path) -> None:
    world, approver = _world(backend, where, tmp_path, lambda request: httpx.Response(404))
    try:
        asked = await world.try_pay(await world.flight_checkout())
        await approver.deliver_due()
        async with world.client() as client:
            assert (await client.get("/api/deliveries")).status_code == 401
            await login(client)
            [item] = (await client.get("/api/deliveries")).json()["deliveries"]
        assert item["approval_id"] == asked.details["approval_id"]
        assert (item["status"], item["attempts"], item["http_status"], item["host"]) == ("failed", 1, 404,
                                                                                         "hooks.example")
        assert "body" not in item
    finally:
        await world.close()


async def test_the_background_worker_delivers_and_close_lets_it_finish(backend: str, where: str,
                                                                      tmp_path: Path) -> None:
    got: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        got.append(request.content)
        return httpx.Response(204)

    world, _ = _world(backend, where, tmp_path, handler)
    background = WebhookApprover(world.agent_store, URL, SECRET, budget_id="trip",
                                 transport=httpx.MockTransport(handler))
    world.toolkit.guard.approver = background  # type: ignore[attr-defined]
    try:
        asked = await world.try_pay(await world.flight_checkout())
        assert isinstance(asked, ApprovalPending)
        await asyncio.to_thread(background.close, 30)  # waits until nothing due is left, then stops
        assert len(got) == 1
        [row] = await world.inbox_ledger.run_read(lambda: list_steps())
        assert (row.status, row.attempts, row.http_status) == ("delivered", 1, 204)
    finally:
        await world.close()
