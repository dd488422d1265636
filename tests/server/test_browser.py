"""The owner console in a real headless Chromium (the OS package, driven by Playwright).

The app runs on uvicorn on a loopback port; the agent is a real toolkit on the sandbox with an
out-of-band approver, sharing the ledger file with the inbox. Skipped (with the reason) when
Chromium or Playwright is missing; under CI=true a missing browser fails the run instead.

Set AMP_TOOLS_SCREENSHOT_DIR to keep the screenshots of every page at phone and desktop width (the docs use them).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from _server_helpers import PASSPHRASE, World

from amp_tools.errors import ApprovalDenied, ApprovalPending, PolicyViolation

CHROMIUM = os.environ.get("AMP_TOOLS_CHROMIUM", "/usr/bin/chromium")


def _browser_missing() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (install the OS package: apt-get install chromium)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _need_browser() -> None:
    reason = _browser_missing()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run; .ci/browser.sh installs Chromium)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """An ASGI app on uvicorn in a thread, on a free loopback port."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        import uvicorn

        self.port = _free_port()
        self.url = f"http://{host}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def served(world: World) -> Iterator[Served]:
    with Served(world.app) as running:
        yield running


@pytest.fixture
async def page(served: Served) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = await browser.new_context(viewport={"width": 1200, "height": 900})
        tab = await context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        yield tab
        await browser.close()
        # A CSP violation or a script error would show here; loading EventSource 401s after logout is fine.
        assert [e for e in errors if "401" not in e] == []


async def _login(page: Any, served: Served) -> None:
    response = await page.goto(f"{served.url}/inbox")  # sent to the login form: a redirect, no 401
    assert response.status == 200 and page.url == f"{served.url}/login"
    await page.fill("input[name=passphrase]", PASSPHRASE)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{served.url}/")
    assert (await page.locator("h1").inner_text()).startswith("Budgets")
    await page.goto(f"{served.url}/inbox")


def _shots() -> Path | None:
    where = os.environ.get("AMP_TOOLS_SCREENSHOT_DIR")
    return Path(where) if where else None


async def test_login_live_request_approve_then_agent_pays_exactly_once(world: World, served: Served, page: Any,
                                                                       tmp_path: Path) -> None:
    await _login(page, served)
    assert await page.locator("h1").inner_text() == "Approvals 0"
    checkout = await world.flight_checkout()
    asked = await world.try_pay(checkout)
    assert isinstance(asked, ApprovalPending)
    approval_id = asked.details["approval_id"]
    card = page.locator(f'article[data-approval="{approval_id}"]')
    await card.wait_for(timeout=15_000)  # arrives live (server-sent events), no manual reload
    text = await card.inner_text()
    for words in ("189.00 SGD", "139.86 USD from the budget", "Skylark Air", "100.00 USD", "860.14 USD", "in 14 min"):
        assert words in text, words
    shot = await page.screenshot(full_page=True, path=str(tmp_path / "inbox.png"))
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    await card.locator("button.approve").click()
    await page.wait_for_selector("p.flash")
    assert "Approved 189.00 SGD to Skylark Air" in await page.locator("p.flash").inner_text()
    assert await page.locator("article.approval").count() == 0
    paid = await world.try_pay(checkout)
    assert isinstance(paid, dict) and paid["status"] == "paid"
    again = await world.try_pay(checkout)
    assert isinstance(again, dict) and again["status"] == "already_paid"
    assert [p["checkoutId"] for p in world.paid()] == [checkout]

    # The budget's page shows what was spent, the chart, the payment with its transaction id, the audit result.
    car = await world.call("search_offers", query="car", category="car")
    compact = next(o["offer_id"] for o in car["offers"] if "Compact" in o["name"])
    small = await world.call("checkout", offer_id=compact)
    assert (await world.try_pay(small["checkout_id"]))["status"] == "paid"  # type: ignore[index]
    await page.click("header >> text=Budgets")
    await page.wait_for_url(f"{served.url}/budgets")
    await page.click('tr[data-budget="trip"] a')
    await page.wait_for_url(f"{served.url}/budgets/trip")
    body = await page.locator("main").inner_text()
    for words in ("Budget trip", paid["transaction_id"], "SKYLARK-AIR", "Audit chain verified", "Per merchant",
                  "approved and paid"):
        assert words in body, words
    assert await page.locator("svg.chart rect.bar").count() == 7  # a week: spending began today


async def test_deny_in_the_browser_is_final_for_the_agent(world: World, served: Served, page: Any) -> None:
    await _login(page, served)
    checkout = await world.flight_checkout()
    asked = await world.try_pay(checkout)
    assert isinstance(asked, ApprovalPending)
    await page.reload()
    card = page.locator(f'article[data-approval="{asked.details["approval_id"]}"]')
    await card.locator("input[name=reason]").fill("we go by train")
    await card.locator("button.deny").click()
    await page.wait_for_selector("p.flash")
    row = page.locator(f'tr[data-approval="{asked.details["approval_id"]}"]')
    assert "denied" in await row.inner_text() and "we go by train" in await row.inner_text()
    for _ in range(2):
        refused = await world.try_pay(checkout)
        assert isinstance(refused, ApprovalDenied) and "we go by train" in refused.message
    assert world.paid() == []


async def test_expired_request_shows_expired(world: World, served: Served, page: Any) -> None:
    await _login(page, served)
    asked = await world.try_pay(await world.flight_checkout())
    assert isinstance(asked, ApprovalPending)
    world.clock.advance(minutes=16)
    # The console's own sweeper denies it (audited) without anyone opening a page.
    for _ in range(100):
        if (await world.agent_store.aget(asked.details["approval_id"])).decided_by == "expiry":
            break  # stored as expired (a pending one past its expiry only *reads* as expired)
        await asyncio.sleep(0.05)
    kinds = [r.kind for r in await world.agent_ledger.audit.records()]
    assert "approval_expired" in kinds
    await page.reload()
    assert await page.locator("article.approval").count() == 0
    row = page.locator(f'tr[data-approval="{asked.details["approval_id"]}"]')
    assert "expired" in await row.inner_text()
    assert (await world.agent_store.aget(asked.details["approval_id"])).status == "expired"


async def test_freeze_from_the_budget_page_stops_the_agent(world: World, served: Served, page: Any) -> None:
    checkout = await world.flight_checkout()
    await world.try_pay(checkout)  # creates the budget row (the payment waits for approval)
    await _login(page, served)
    await page.goto(f"{served.url}/budgets/trip")
    section = page.locator('section[data-budget="trip"]')
    await section.locator("input[name=reason]").fill("going offline")
    await section.locator("button", has_text="Freeze budget").click()
    await page.wait_for_selector("p.frozen")
    assert "going offline" in await page.locator("p.frozen").inner_text()
    refused = await world.try_pay(checkout)
    assert isinstance(refused, PolicyViolation) and refused.rule == "budget.frozen"
    await page.locator('section[data-budget="trip"] button', has_text="Unfreeze budget").click()
    await page.wait_for_selector('h1 .badge.active')
    assert isinstance(await world.try_pay(checkout), ApprovalPending)


async def test_unauthenticated_and_cross_site_requests_are_refused(world: World, served: Served, page: Any) -> None:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    asked = await world.try_pay(await world.flight_checkout())
    assert isinstance(asked, ApprovalPending)
    approval_id = asked.details["approval_id"]
    # Not logged in: every page leads to the login form.
    response = await page.goto(f"{served.url}/budgets/trip")
    assert response.status == 200 and await page.locator("input[name=passphrase]").count() == 1
    await _login(page, served)
    # A page on another site posts the approve form with the owner's browser: the cookie stays home
    # (SameSite=Strict), the Origin is foreign and there is no CSRF token, so nothing is approved.
    target = f"{served.url}/approvals/{approval_id}/approve"

    async def evil(_: Any) -> HTMLResponse:
        return HTMLResponse(f'<form id=f method=post action="{target}"><input name=csrf value=guess></form>'
                            "<script>document.getElementById('f').submit()</script>")

    with Served(Starlette(routes=[Route("/", evil)]), host="localhost") as attacker:
        async with page.expect_navigation(url=target) as navigation:
            await page.goto(attacker.url)
        answer = await navigation.value
        assert answer.status in (401, 403)
    assert (await world.agent_store.aget(approval_id)).status == "pending"
    assert world.paid() == []
