"""Only the person approves: the default MCP approval is a URL elicitation to the owner console.

Driven by the SDK's own client on a `python -m amp_tools.mcp` subprocess. A client that answers
an elicitation by itself (accepting the link, sending a form's "approve", or declaring only form
mode and approving) never gets a payment through; the money moves only after a person approves
in the owner console (logged in) or with `amp-tools approvals approve`, and the approver recorded
is that person, never a name the client sent.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("mcp", reason="the [mcp] extra is not installed")

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.context import RequestContext
from mcp.shared.memory import create_connected_server_and_client_session

from amp_tools.approvals import ApprovalStore
from amp_tools.ledger import open_ledger
from amp_tools.mcp.backend import open_backend
from amp_tools.mcp.server import build_server
from amp_tools.server import ServeSettings, create_app, hash_secret
from tests.mcp._mcp_support import (
    CLIENT,
    Person,
    error,
    ledger_rows,
    negotiated_hotel,
    ok,
    server_args,
    server_env,
    stdio_session,
    text_of,
    write_policy,
)

CONFIRM = {"approval": {"confirm_above": "200.00"}}  # the negotiated hotel (231.42 USD) needs a person
PASSPHRASE = "correct horse battery staple"


def _pending(result: types.CallToolResult) -> dict[str, Any]:
    assert result.structuredContent is not None and result.structuredContent["error"] == "APPROVAL_PENDING", \
        text_of(result)
    details: dict[str, Any] = result.structuredContent["details"]
    return details


async def test_a_client_accepting_the_link_by_itself_pays_nothing_until_the_person_approves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    ledger = tmp_path / "ledger.db"
    # The client "accepts" every elicitation and even sends a form's approve: neither is a person's decision.
    bot = Person(["approve", "approve"])
    async with stdio_session(write_policy(tmp_path, **CONFIRM), ledger, tmp_path, elicit=bot) as session:
        hotel = await negotiated_hotel(session)
        first = _pending(await error(session, "pay", {"checkout_id": hotel}))
        again = _pending(await error(session, "pay", {"checkout_id": hotel}))
        # one payment, one row: held while the person decides, whatever the client answered
        assert [r[:2] for r in await ledger_rows(ledger)] == [("KL-GRAND-HOTEL", "reserved")]
        store = ApprovalStore(ledger)
        store.approve(first["approval_id"], "alice")  # `amp-tools approvals approve ID --by alice`
        store.close()
        paid = await ok(session, "pay", {"checkout_id": hotel})

    assert len(bot.asked) == 2 and all(isinstance(p, types.ElicitRequestURLParams) for p in bot.asked)
    link = bot.asked[0]
    assert isinstance(link, types.ElicitRequestURLParams)
    assert link.url == f"http://127.0.0.1:8787/approvals/{first['approval_id']}" == first["approval_url"]
    assert first["approval_id"] == again["approval_id"]  # one question, linked twice
    assert [p.elicitationId.partition(".")[0] for p in bot.asked] == [first["approval_id"]] * 2
    assert bot.asked[0].elicitationId != bot.asked[1].elicitationId  # each elicitation has its own id
    assert "Answering here approves nothing" in link.message and "1102.00 MYR" in link.message
    assert (paid["status"], paid["approved_by"]) == ("paid", "alice")
    assert [r[:2] for r in await ledger_rows(ledger)][-1] == ("KL-GRAND-HOTEL", "committed")


@asynccontextmanager
async def form_only_session(policy: Path, ledger: Path, home: Path, person: Person) -> AsyncIterator[ClientSession]:
    """A client declaring form-mode elicitation only (as many clients do today)."""
    params = StdioServerParameters(command=sys.executable, args=server_args(policy, ledger), env=server_env(home))
    with (home / "server-stderr.log").open("a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), \
                ClientSession(read, write, elicitation_callback=person, client_info=CLIENT) as session:
            original = session.send_request

            async def form_only(request: types.ClientRequest, *args: Any, **kwargs: Any) -> Any:
                if isinstance(request.root, types.InitializeRequest):
                    request.root.params.capabilities.elicitation = types.ElicitationCapability(
                        form=types.FormElicitationCapability())
                return await original(request, *args, **kwargs)

            session.send_request = form_only  # type: ignore[method-assign]
            await session.initialize()
            yield session


async def test_a_form_only_client_is_never_asked_and_its_payment_waits(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    bot = Person(["approve"])
    async with form_only_session(write_policy(tmp_path, **CONFIRM), ledger, tmp_path, bot) as session:
        pending = _pending(await error(session, "pay", {"checkout_id": await negotiated_hotel(session)}))
    assert bot.asked == []  # no form to self-approve: the payment waits for the inbox and the CLI
    assert pending["approval_url"].endswith(f"/approvals/{pending['approval_id']}")
    assert [r[:2] for r in await ledger_rows(ledger)] == [("KL-GRAND-HOTEL", "reserved")]  # held, not paid


async def test_the_person_approves_on_the_console_page_the_link_opens(tmp_path: Path) -> None:
    ledger_path = tmp_path / "ledger.db"
    console_ledger = open_ledger(str(ledger_path))
    app = create_app(ServeSettings(ledger=console_ledger, passphrase_hash=hash_secret(PASSPHRASE), owner="olivia"))
    seen: dict[str, httpx.Response] = {}

    async def person_opens_the_link(context: RequestContext[ClientSession, Any],
                                    params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        path = params.url.removeprefix("http://127.0.0.1:8787")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as browser:
            seen["anonymous"] = await browser.get(path)  # not logged in: the login form, coming back here
            login = await browser.post("/login", data={"passphrase": PASSPHRASE, "next": path})
            seen["login"] = login
            page = await browser.get(path)
            seen["page"] = page
            csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            seen["approve"] = await browser.post(f"{path}/approve", data={"csrf": csrf})
        return types.ElicitResult(action="accept")

    try:
        async with stdio_session(write_policy(tmp_path, **CONFIRM), ledger_path, tmp_path,
                                 elicit=person_opens_the_link) as session:
            paid = await ok(session, "pay", {"checkout_id": await negotiated_hotel(session)})
    finally:
        await console_ledger.close()

    assert seen["anonymous"].status_code == 200 and 'name="next" value="/approvals/apr_' in seen["anonymous"].text
    assert seen["login"].status_code == 303 and seen["login"].headers["location"].startswith("/approvals/apr_")
    assert seen["page"].status_code == 200 and "1102.00 MYR" in seen["page"].text
    assert seen["approve"].status_code == 303
    assert (paid["status"], paid["approved_by"]) == ("paid", "olivia (inbox)")  # the logged-in console user
    assert [r[:2] for r in await ledger_rows(ledger_path)] == [("KL-GRAND-HOTEL", "committed")]


async def test_the_login_never_redirects_off_the_approval_pages(tmp_path: Path) -> None:
    led = open_ledger(str(tmp_path / "ledger.db"))
    app = create_app(ServeSettings(ledger=led, passphrase_hash=hash_secret(PASSPHRASE)))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as browser:
            places = []
            for target in ("https://evil.example/", "//evil.example", "/approvals/../dashboard",
                           "/approvals/apr_1/approve"):
                resp = await browser.post("/login", data={"passphrase": PASSPHRASE, "next": target})
                places.append(resp.headers["location"])
            missing = await browser.get("/approvals/apr_nope")
    finally:
        await led.close()
    assert places == ["/"] * 4
    assert missing.status_code == 404 and "apr_nope" in missing.text


async def test_the_call_waits_for_a_decision_made_after_the_link_was_accepted(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    ledger = tmp_path / "ledger.db"
    backend = open_backend(write_policy(tmp_path, **CONFIRM), ledger=str(ledger), budget_id="trip", approval_wait=30)
    decided: list[str] = []

    async def person_later(approval_id: str) -> None:
        await backend.store.adeny(approval_id, "olivia (inbox)", "not this hotel")
        decided.append(approval_id)

    async def link_accepted(context: RequestContext[ClientSession, Any],
                            params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        # The client answers at once; the person decides afterwards, while the tool call still waits.
        tasks.append(asyncio.create_task(person_later(params.url.rsplit("/", 1)[-1])))
        return types.ElicitResult(action="accept")

    tasks: list[asyncio.Task[None]] = []
    try:
        async with create_connected_server_and_client_session(build_server(backend), client_info=CLIENT,
                                                              elicitation_callback=link_accepted) as session:
            denied = await error(session, "pay", {"checkout_id": await negotiated_hotel(session)})
    finally:
        await asyncio.gather(*tasks)
        await backend.aclose()

    assert len(decided) == 1
    assert text_of(denied).startswith("APPROVAL_DENIED") and "not this hotel" in text_of(denied)
    assert backend.sandbox is not None and backend.sandbox.payments() == []
