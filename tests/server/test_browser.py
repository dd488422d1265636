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

from amp_tools.errors import ApprovalDenied, ApprovalPending, PolicyViolation
from tests.server._server_helpers import PASSPHRASE, World

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


CREW_POLICY: dict[str, Any] = {
    "name": "KL trip", "currency": "USD", "total_budget": "1000.00", "windows": {"day": {"limit": "800.00"}},
    "merchants": {"deny": ["Casino Royale"]}, "approval": {"confirm_above": "100.00"},
    # Each agent repeats the threshold: a stored policy whose agents leave it unset does not load back yet.
    "agents": {"flight_booker": {"total_budget": "600.00", "approval": {"confirm_above": "100.00"}},
               "ground": {"total_budget": "200.00", "approval": {"confirm_above": "100.00"}}},
}
WIDTHS = ((390, 844), (1280, 900))


@pytest.fixture
async def crew_world(tmp_path: Path) -> AsyncIterator[World]:
    made = World(tmp_path, policy=CREW_POLICY)
    yield made
    await made.close()


async def _spend_like_a_crew(world: World) -> str:
    """A car for the ground agent (refunded in part), a car for the crew, the flight waiting for approval;
    a second budget with a hostile merchant name. Returns the pending approval's id."""
    from amp_tools.money import Money
    from amp_tools.policy import SpendIntent, parse_policy

    ground = world.toolkit.for_agent("ground")
    for tk in (ground, world.toolkit):
        spec = {s.name: s for s in tk.specs()}
        car = await spec["search_offers"].ainvoke({"query": "car", "category": "car"})
        offer = next(o["offer_id"] for o in car["offers"] if "Compact" in o["name"])
        checkout = await spec["checkout"].ainvoke({"offer_id": offer})
        assert (await spec["pay"].ainvoke({"checkout_id": checkout["checkout_id"]}))["status"] == "paid"
    [car_entry] = [e for e in await world.agent_ledger.entries("trip/ground") if e.status == "committed"]
    await world.agent_ledger.refund(car_entry.id, Money(car_entry.amount.minor // 4, car_entry.amount.currency),
                                    external_ref="rf-car")
    flights = world.toolkit.for_agent("flight_booker")
    spec = {s.name: s for s in flights.specs()}
    found = await spec["search_offers"].ainvoke({"query": "flight Kuala Lumpur", "category": "flight"})
    offer = next(o["offer_id"] for o in found["offers"] if "08:00" in o["name"])
    checkout = await spec["checkout"].ainvoke({"offer_id": offer})
    try:
        await spec["pay"].ainvoke({"checkout_id": checkout["checkout_id"]})
    except ApprovalPending as asked:
        approval_id = str(asked.details["approval_id"])
    else:
        raise AssertionError("the flight should wait for the owner")
    other = parse_policy({"name": "<b>Team</b> offsite", "currency": "EUR", "total_budget": "50.00"})
    evil = "<img src=x onerror=alert(1)> Very Long Merchant Name Without Any Breaks AAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    intent = SpendIntent(action="pay", merchant_id="EVIL-LONG-MERCHANT-ID-0123456789", merchant_name=evil, mcc="5812",
                         amount=Money.parse("12.40", "EUR"), budget_amount=Money.parse("12.40", "EUR"), fx_rate=None,
                         items=(), human_present=False, checkout_id="co-evil", at=world.clock.now())
    res = await world.agent_ledger.reserve(intent, other, budget_id="offsite-2026", idempotency_key="evil")
    await world.agent_ledger.commit(res.id, external_ref="TX-EVIL-0000000000000000000000000000000000000000")
    return approval_id


async def test_every_page_fits_a_phone_and_a_desktop(crew_world: World, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    world = crew_world
    approval_id = await _spend_like_a_crew(world)
    shots = _shots()
    with Served(world.app) as served:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                               args=["--no-sandbox", "--disable-dev-shm-usage"])
            problems: list[str] = []
            for width, height in WIDTHS:
                context = await browser.new_context(viewport={"width": width, "height": height},
                                                    timezone_id="Asia/Kuala_Lumpur", locale="en-GB")
                page = await context.new_page()
                page.on("pageerror", lambda exc: problems.append(str(exc)))
                page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning")
                        else None)
                page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
                await page.goto(f"{served.url}/login")
                await _measure(page, width, "login", shots)
                await page.fill("input[name=passphrase]", PASSPHRASE)
                await page.click("button[type=submit]")
                await page.wait_for_url(f"{served.url}/")
                pages = [("budgets", "/budgets"), ("inbox", "/inbox"), ("budget", "/budgets/trip"),
                         ("sub-budget", "/budgets/trip/ground"), ("other-budget", "/budgets/offsite-2026")]
                for name, path in pages:
                    await page.goto(served.url + path)
                    await _measure(page, width, name, shots)
                # The crew's row opens onto its agents' rooms.
                await page.goto(f"{served.url}/budgets")
                await page.locator("tr.subs summary").first.click()
                sub = page.locator('tr[data-budget="trip/flight_booker"]')
                assert await sub.is_visible()
                assert "of 600.00 USD" in await sub.inner_text()
                await _measure(page, width, "budgets-open", shots)
                # Times read in the owner's zone (the browser's): Kuala Lumpur is UTC+8.
                await page.goto(f"{served.url}/budgets/trip")
                stamp = page.locator("table.audit time").first
                assert "UTC" not in await stamp.inner_text() and "GMT+8" in (await stamp.get_attribute("title") or "")
                # Approve and deny are on the first screen, large enough for a thumb, without zooming.
                await page.goto(f"{served.url}/inbox")
                card = page.locator(f'article[data-approval="{approval_id}"]')
                for button in ("button.approve", "button.deny"):
                    box = await card.locator(button).bounding_box()
                    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
                    assert box["y"] + box["height"] <= height and box["height"] >= 40, (width, button, box)
                await context.close()
            await browser.close()
    # Nothing failed in the browser: no script error, no CSP report, no 4xx (the login page included).
    assert problems == []


async def _measure(page: Any, width: int, name: str, shots: Path | None) -> None:
    sizes = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1] == width, (name, width, sizes)
    if width < 700:
        # Fitting is not enough: on a phone every shown table cell is a readable line, not a sliver.
        narrow = await page.evaluate(
            "Array.from(document.querySelectorAll('table.stack td'))"
            ".filter(function (td) { return td.offsetParent !== null && td.textContent.trim(); })"
            ".map(function (td) { return td.clientWidth; }).filter(function (w) { return w < 250; }).length")
        assert narrow == 0, (name, narrow)
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
        await page.screenshot(full_page=True, path=str(shots / f"{name}-{width}.png"))


async def test_background_tab_gets_the_count_in_its_title_and_a_notification(world: World, served: Served) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = await browser.new_context(viewport={"width": 390, "height": 844})
        await context.grant_permissions(["notifications"], origin=served.url)
        # The tab is in the background, and notifications are recorded instead of shown.
        await context.add_init_script("""
            Object.defineProperty(document, "hidden", {get: function () { return true; }});
            window.__told = [];
            window.Notification = function (title, options) { window.__told.push(title); };
            window.Notification.permission = "granted";
            if (window.ServiceWorkerRegistration) {
                ServiceWorkerRegistration.prototype.showNotification = function (title) {
                    window.__told.push(title); return Promise.resolve();
                };
            }
        """)
        page = await context.new_page()
        await page.goto(f"{served.url}/login")
        await page.fill("input[name=passphrase]", PASSPHRASE)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{served.url}/")
        assert not (await page.title()).startswith("(")
        asked = await world.try_pay(await world.flight_checkout())
        assert isinstance(asked, ApprovalPending)
        for _ in range(300):  # the strict CSP forbids wait_for_function's eval: poll the title instead
            if (await page.title()).startswith("(1) "):
                break
            await asyncio.sleep(0.05)
        assert (await page.title()).startswith("(1) Budgets")
        told = await page.evaluate("window.__told")
        assert told == ["1 payment is waiting for your approval"]
        assert page.url == f"{served.url}/"  # not reloaded while hidden: it reloads when the owner looks
        await browser.close()
