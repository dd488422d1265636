"""The budgets overview (sorted, searched, paginated past 50) and hostile text on every page.

Budgets per end user from one template policy, each with its own spending; one budget's id and
one merchant's name carry markup. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from amp_tools.approvals import ApprovalStore
from amp_tools.approvals.request import make_request
from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase
from amp_tools.money import Money
from amp_tools.policy import BudgetPolicy, Verdict
from amp_tools.server import ServeSettings, create_app
from tests.ledger._ledger_helpers import intent
from tests.server._server_helpers import BASE, PASSPHRASE_HASH, login

EVIL_NAME = '<script>alert("name")</script>'
TEMPLATE = BudgetPolicy.model_validate({"name": EVIL_NAME, "currency": "USD", "total_budget": "100.00",
                                        "merchants": {"deny": ["<b>deny</b>"]}})
EVIL_BUDGET = '<img src=x onerror=alert(1)>"'
EVIL_MERCHANT = '<svg onload=alert(2)>'
USERS = 60


@pytest.fixture
async def client(ledger: LedgerBase, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    for n in range(USERS):
        clock.advance(minutes=1)
        await ledger.create_budget(f"user:{n:02d}", TEMPLATE, by="owner")
        res = await ledger.reserve(intent(f"{n + 1}.00", checkout=f"c{n}", at=clock.now()), TEMPLATE,
                                   budget_id=f"user:{n:02d}", idempotency_key=f"k{n}")
        await ledger.commit(res.id, external_ref=f"tx-{n}")
    clock.advance(minutes=1)
    await ledger.create_budget(EVIL_BUDGET, TEMPLATE, by="owner")
    res = await ledger.reserve(intent("7.50", merchant=EVIL_MERCHANT, checkout="evil", at=clock.now()), TEMPLATE,
                               budget_id=EVIL_BUDGET, idempotency_key="evil")
    await ledger.commit(res.id, external_ref="tx-evil")
    store = ApprovalStore(ledger, budget_id="user:07")
    ask = intent("60.00", merchant=EVIL_MERCHANT, checkout="ask", at=clock.now())
    await store.acreate(make_request(ask, Verdict(approval_reasons=(f"because {EVIL_NAME}",),
                                                  budget_left=Money.parse("32.00", "USD"), checked_rules=()),
                                     budget_id="user:07", clock=clock))
    app = create_app(ServeSettings(ledger=ledger, passphrase_hash=PASSPHRASE_HASH, store=store))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as made:
        await login(made)
        yield made


def _listed(page: str) -> list[str]:
    return re.findall(r'<tr data-budget="([^"]*)"', page)


async def test_overview_sorts_searches_and_pages_past_fifty(client: httpx.AsyncClient) -> None:
    first = (await client.get("/budgets")).text
    # Newest payment first by default: the hostile budget paid last, then user:59.
    listed = _listed(first)
    assert len(listed) == 50 and listed[1] == "user:59" and "Page 1 of 2" in first
    assert '1 payment(s) waiting for your approval' in first
    second = (await client.get("/budgets?page=2")).text
    assert len(_listed(second)) == USERS + 1 - 50 and set(_listed(second)).isdisjoint(listed)
    by_used = _listed((await client.get("/budgets?sort=used&order=desc")).text)
    assert by_used[:3] == ["user:59", "user:58", "user:57"]
    by_left = _listed((await client.get("/budgets?sort=left&order=desc")).text)
    assert by_left[:2] == ["user:00", "user:01"]  # 99.00 USD left, then 98.00
    waiting = _listed((await client.get("/budgets?sort=pending&order=desc")).text)
    assert waiting[0] == "user:07"
    by_name = _listed((await client.get("/budgets?sort=name&order=asc")).text)
    assert by_name[0] == EVIL_BUDGET.replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    found = (await client.get("/budgets?q=USER:0")).text
    assert sorted(_listed(found)) == [f"user:0{n}" for n in range(10)] and "10 budget(s) found" in found
    row = re.search(r'<tr data-budget="user:42".*?</tr>', first + second)
    assert row is not None
    for words in ("43.00 USD", "of 100.00 USD", "57.00 USD", "active"):
        assert words in row.group(0), words
    assert "No budget matches" in (await client.get("/budgets?q=nothing-like-this")).text
    # Odd parameters fall back to sane defaults instead of failing.
    assert (await client.get("/budgets?sort=drop%20table&order=x&page=-3")).status_code == 200


async def test_hostile_names_are_escaped_on_every_page(client: httpx.AsyncClient) -> None:
    from urllib.parse import quote

    pages = {path: (await client.get(path)).text for path in (
        "/budgets", "/budgets?sort=name&order=asc", "/inbox", "/budgets/user:07",
        "/budgets/" + quote(EVIL_BUDGET, safe="/:"), "/budgets?q=" + quote("<img"))}
    for path, page in pages.items():
        for raw in (EVIL_NAME, EVIL_BUDGET, EVIL_MERCHANT, "<b>deny</b>", "<img src=x"):
            assert raw not in page, (path, raw)
    evil_page = pages["/budgets/" + quote(EVIL_BUDGET, safe="/:")]
    assert "&lt;img src=x onerror=alert(1)&gt;&quot;" in evil_page and "7.50 USD" in evil_page
    assert "&lt;SVG ONLOAD=ALERT(2)&gt;" in evil_page  # the merchant name (upper-cased by the test intent)
    assert "Never these merchants: &lt;b&gt;deny&lt;/b&gt;" in pages["/budgets/user:07"]
    assert "because &lt;script&gt;" in pages["/budgets/user:07"]
    # The hostile budget can be frozen and unfrozen from its page like any other.
    csrf = re.findall(r'name="csrf" value="([^"]+)"', evil_page)[0]
    frozen = await client.post("/budgets/" + quote(EVIL_BUDGET, safe="/:") + "/freeze",
                               data={"csrf": csrf, "reason": "<i>why</i>"})
    assert frozen.status_code == 303
    again = (await client.get(frozen.headers["location"])).text
    assert "Frozen: &lt;i&gt;why&lt;/i&gt;" in again and "<i>why</i>" not in again


async def test_a_budget_page_answers_404_for_an_unknown_budget(client: httpx.AsyncClient) -> None:
    missing = await client.get("/budgets/nobody")
    assert missing.status_code == 404 and "no budget" in missing.text
    assert (await client.get("/budgets/a//b")).status_code == 404


async def test_manifest_icons_and_service_worker_need_no_session(ledger: LedgerBase) -> None:
    import json

    app = create_app(ServeSettings(ledger=ledger, passphrase_hash=PASSPHRASE_HASH))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as anon:
        manifest = await anon.get("/manifest.webmanifest")
        data: dict[str, Any] = json.loads(manifest.text)
        assert manifest.headers["content-type"].startswith("application/manifest+json")
        assert data["display"] == "standalone" and data["start_url"] == "/"
        sizes = {icon["sizes"] for icon in data["icons"]}
        assert {"192x192", "512x512"} <= sizes
        for icon in data["icons"]:
            got = await anon.get(icon["src"])
            assert got.status_code == 200, icon["src"]
            if icon["type"] == "image/png":
                side = int(icon["sizes"].split("x")[0])
                assert got.content[:8] == b"\x89PNG\r\n\x1a\n"
                assert int.from_bytes(got.content[16:20], "big") == side  # IHDR width
        assert "notificationclick" in (await anon.get("/sw.js")).text
        assert "manifest-src 'self'" in manifest.headers["content-security-policy"]
        assert (await anon.get("/budgets")).headers["location"] == "/login"


async def test_payment_legs_recorded_by_the_network_are_shown_escaped(ledger: LedgerBase, clock: ManualClock) -> None:
    await ledger.create_budget("legs", TEMPLATE, by="owner")
    paid = await ledger.reserve(intent("100.00", currency="SGD", rate="0.74", checkout="legs", at=clock.now()),
                                TEMPLATE, budget_id="legs", idempotency_key="legs")
    legs = {"checkout": {"amount": "100.00", "currency": "SGD"}, "budget": {"amount": "74.00", "currency": "USD"},
            "basis": "wallet_debit", "mandate_charge": {"amount": "74.10", "currency": "USD"},
            "wallet_debit": {"amount": "612.55", "currency": "MYR"}, "locked_rate": "3.24100000",
            "quote_id": "<q>QUOTE-1", "budget_rate": "0.74000000"}
    await ledger.commit(paid.id, external_ref="tx-legs", outcome={"legs": legs})
    odd = await ledger.reserve(intent("5.00", checkout="odd", merchant="shop-2", at=clock.now()), TEMPLATE,
                               budget_id="legs", idempotency_key="odd")
    await ledger.commit(odd.id, external_ref="tx-odd", outcome={"legs": {"wallet_debit": {"minor": "lots",
                                                                                            "currency": "USD"}}})
    app = create_app(ServeSettings(ledger=ledger, passphrase_hash=PASSPHRASE_HASH))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await login(client)
        page = await client.get("/budgets/legs")
    assert page.status_code == 200
    row = re.search(rf'<tr data-entry="{paid.id}".*?</tr>', page.text)
    assert row is not None
    for words in ("100.00 SGD", "74.00 USD", "Mandate charge", "74.10 USD", "Wallet debit", "612.55 MYR",
                  "3.24100000", "&lt;q&gt;QUOTE-1", "the wallet debit", "tx-legs"):
        assert words in row.group(0), words
    assert "<q>" not in page.text and "lots (minor units) USD" in page.text


async def test_an_unreadable_stored_policy_takes_down_no_page(ledger: LedgerBase, clock: ManualClock) -> None:
    from tests.ledger._ledger_helpers import raw

    await ledger.create_budget("stored-1", TEMPLATE, by="owner")
    await ledger.create_budget("stored-2", TEMPLATE, by="owner")
    # Someone who can write the database breaks one budget's stored policy.
    await raw(ledger, "UPDATE budget_policies SET policy = ? WHERE budget_id = ?", '{"currency": 5}', "stored-1")
    app = create_app(ServeSettings(ledger=ledger, passphrase_hash=PASSPHRASE_HASH))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await login(client)
        overview = await client.get("/budgets")
        broken = await client.get("/budgets/stored-1")
        fine = await client.get("/budgets/stored-2")
        api = await client.get("/api/budgets")
    assert overview.status_code == broken.status_code == fine.status_code == api.status_code == 200
    assert "its stored policy could not be read" in broken.text
    assert "At most 100.00 USD in total." in fine.text and "Version 1; not signed" in fine.text
    limits = {b["budget_id"]: b["limit"] for b in api.json()["budgets"]}
    assert limits == {"stored-1": None, "stored-2": {"amount": "100.00", "currency": "USD"}}


async def test_answered_approvals_say_what_became_of_the_payment(ledger: LedgerBase, clock: ManualClock) -> None:
    """An owner reads "failed after approval" or "approved and paid", never the store's "consumed"."""
    await ledger.create_budget("b1", TEMPLATE, by="owner")
    store = ApprovalStore(ledger, budget_id="b1")
    verdict = Verdict(approval_reasons=("above 5.00 USD",), budget_left=Money.parse("90.00", "USD"), checked_rules=())
    asked = {}
    for merchant in ("shop-fails", "shop-pays"):
        ask = intent("10.00", merchant=merchant, checkout=merchant, at=clock.now())
        asked[merchant] = await store.acreate(make_request(ask, verdict, budget_id="b1", clock=clock))
        await store.aapprove(asked[merchant].id, "alice")
        assert await store.aconsume(asked[merchant].request.binding) is not None  # the agent's retry takes it
        res = await ledger.reserve(ask, TEMPLATE, budget_id="b1", idempotency_key=merchant)
        if merchant == "shop-fails":
            await ledger.release(res.id, reason="card declined by the wallet")
        else:
            await ledger.commit(res.id, external_ref="tx-ok")
    app = create_app(ServeSettings(ledger=ledger, passphrase_hash=PASSPHRASE_HASH, store=store))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await login(client)
        pages = [(await client.get(path)).text for path in ("/budgets/b1", "/inbox")]
    for page in pages:
        failed = re.search(rf'<tr data-approval="{asked["shop-fails"].id}".*?</tr>', page)
        paid = re.search(rf'<tr data-approval="{asked["shop-pays"].id}".*?</tr>', page)
        assert failed is not None and paid is not None
        assert "failed after approval" in failed.group(0) and "alice" in failed.group(0)
        assert "approved and paid" in paid.group(0)
        assert ">consumed<" not in page
