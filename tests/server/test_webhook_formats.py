"""What a notification says, in each format, when the merchant is hostile; ntfy; and where deliveries run
(the console's worker, ``amp-tools approvals deliver``), with no secret in the logs."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from amp_tools.approvals import ApprovalStore, WebhookApprover
from amp_tools.approvals.outbox import list_steps
from amp_tools.approvals.webhook import render_ntfy, render_payload, slack_escape
from amp_tools.cli import app as cli_app
from amp_tools.clock import ManualClock
from amp_tools.errors import ApprovalPending
from amp_tools.money import Money
from amp_tools.policy import Item
from amp_tools.server import create_app
from tests.approvals.approvals_helpers import request
from tests.server._server_helpers import World, login

SECRET = "a-webhook-secret-of-32-characters!"
EVIL = "<https://evil.example/inbox|Open the approval inbox> <!channel> <@U024BE7LH> <!here|here> &amp; Fish & Chips"


def _evil_request() -> Any:
    return request(merchant_name=EVIL, merchant_id="EVIL<!everyone>",
                   items=(Item("R", "<!subteam^S123> room", 1, Money.parse("180.00", "SGD")),))


def test_slack_text_can_neither_link_nor_mention() -> None:
    body = render_payload(_evil_request(), "http://127.0.0.1:8787", "slack")
    texts = [body["text"], body["blocks"][0]["text"]["text"]]
    for text in texts:
        # Every `<` that remains opens our own inbox link; nothing from the merchant can open a tag.
        assert text.count("<") == text.count("<http://127.0.0.1:8787/inbox#")
        assert "<!" not in text and "<@" not in text and "<https://evil" not in text
        assert "&lt;https://evil.example/inbox|Open the approval inbox&gt; &lt;!channel&gt;" in text or \
               "&lt;!subteam^S123&gt;" in text
    assert "&amp;amp; Fish &amp; Chips" in texts[0]
    assert body["unfurl_links"] is False
    assert slack_escape("a<b>&c") == "a&lt;b&gt;&amp;c"


def test_ntfy_is_plain_text_with_a_click_link_and_ascii_headers() -> None:
    req = _evil_request()
    body, headers = render_ntfy(req, "https://console.example")
    text = body.decode("utf-8")
    assert text.startswith("Pay 180.00 SGD (= 134.29 USD from the budget) to <https://evil.example/inbox|Open")
    assert "Asked because: the amount 134.29 USD is above the confirmation threshold" in text
    assert headers["Click"] == f"https://console.example/inbox#{req.id}"
    assert headers["Title"] == "Approval needed: 180.00 SGD"
    assert (headers["Priority"], headers["Tags"]) == ("high", "moneybag")
    assert all(value.isascii() for value in headers.values())


async def test_an_ntfy_delivery_end_to_end(world: World) -> None:
    got: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        got.append(req)
        return httpx.Response(200, json={"id": "x"})

    approver = WebhookApprover(world.agent_store, "https://ntfy.example/amp-Q7x9secret-topic", SECRET, fmt="ntfy",
                               inbox_url="https://console.example", token="tk_secrettoken", background=False,
                               transport=httpx.MockTransport(handler))
    world.toolkit.guard.approver = approver  # type: ignore[attr-defined]
    asked = await world.try_pay(await world.flight_checkout())
    assert isinstance(asked, ApprovalPending)
    await approver.deliver_due()
    [sent] = got
    assert sent.headers["Click"] == f"https://console.example/inbox#{asked.details['approval_id']}"
    assert sent.headers["Authorization"] == "Bearer tk_secrettoken"
    assert sent.content.decode().startswith("Pay 189.00 SGD (= 139.86 USD from the budget) to Skylark Air")
    stored = json.dumps([d.to_public() | {"body": d.body} for d in
                         await world.inbox_ledger.run_read(lambda: list_steps())])
    assert "secret" not in stored.lower() and "ntfy.example" in stored


async def test_the_console_delivers_while_it_runs(world: World, caplog: pytest.LogCaptureFixture) -> None:
    got: list[bytes] = []

    def handler(req: httpx.Request) -> httpx.Response:
        got.append(req.content)
        return httpx.Response(500)

    url = "https://hooks.example/services/T0/B0/PATHSECRET"
    agent_side = WebhookApprover(world.agent_store, url, SECRET, background=False)
    world.toolkit.guard.approver = agent_side  # type: ignore[attr-defined]
    console_side = WebhookApprover(ApprovalStore(world.inbox_ledger), url, SECRET, background=False, attempts=2,
                                   backoff=0.01, transport=httpx.MockTransport(handler))
    world.settings.courier = console_side.courier
    world.settings.expire_every = 0.05
    app = create_app(world.settings)
    asked = await world.try_pay(await world.flight_checkout())
    assert isinstance(asked, ApprovalPending)
    caplog.set_level(logging.WARNING, logger="amp_tools.webhook")
    async with app.router.lifespan_context(app):
        for _ in range(400):
            rows = await world.inbox_ledger.run_read(lambda: list_steps(status="failed"))
            if rows:
                break
            await asyncio.sleep(0.05)
            world.clock.advance(1)
    [row] = rows
    assert (row.attempts, row.error, len(got)) == (2, "HTTP 500", 2)
    assert "hooks.example" in caplog.text and "PATHSECRET" not in caplog.text and "services" not in caplog.text
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        await login(client)
        [item] = (await client.get("/api/deliveries?status=failed")).json()["deliveries"]
        assert item["approval_id"] == asked.details["approval_id"]
        assert (await client.get("/api/deliveries?status=nope")).status_code == 400


def test_cli_deliver_lists_and_login_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    monkeypatch.delenv("AMP_TOOLS_LEDGER_URL", raising=False)
    store = ApprovalStore(tmp_path / "ledger.db")
    req = request(clock=ManualClock(datetime.now(UTC)), merchant_name="[/oops] Hotel")
    record = store.create(req)
    url = "http://127.0.0.1:9/hook/SECRETPATH"  # discard port: nothing answers
    asyncio.run(WebhookApprover(store, url, SECRET, background=False).announce(record))
    runner = CliRunner()
    monkeypatch.setenv("AMP_TOOLS_WEBHOOK_URL", url)
    monkeypatch.setenv("AMP_TOOLS_WEBHOOK_SECRET", SECRET)
    delivered = runner.invoke(cli_app, ["approvals", "deliver"])
    assert delivered.exit_code == 0, delivered.output
    assert f"{req.id} -> 127.0.0.1:9: pending after 1 attempt(s): ConnectError" in delivered.output
    listed = runner.invoke(cli_app, ["approvals", "deliveries"])
    assert listed.exit_code == 0 and "pending" in listed.output and "SECRETPATH" not in listed.output
    monkeypatch.delenv("AMP_TOOLS_WEBHOOK_SECRET")
    refused = runner.invoke(cli_app, ["approvals", "deliver"])
    assert refused.exit_code != 0 and "AMP_TOOLS_WEBHOOK_SECRET" in str(refused.exception)
    link = runner.invoke(cli_app, ["serve", "--login-link", "--port", "8799"])
    assert link.exit_code == 0, link.output
    assert "http://127.0.0.1:8799/login/link/" in link.output and "works once" in link.output
    store.close()
