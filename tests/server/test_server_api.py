"""The owner console's HTTP API through httpx (ASGI): login, inbox, controls and what is refused.

The agent is a real toolkit on the in-process sandbox with an out-of-band approver; it and the
inbox share one ledger file through two separate ledger handles, as two hosts would.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from amp_tools.errors import ApprovalDenied, ApprovalPending, PolicyViolation
from amp_tools.ledger import Entry
from amp_tools.money import Money
from tests.server._server_helpers import BASE, PASSPHRASE, World, login

WRITES = [("post", "/approvals/apr_x/approve"), ("post", "/approvals/apr_x/deny"),
          ("post", "/approvals/apr_x/reopen"), ("post", "/budgets/trip/freeze"), ("post", "/budgets/trip/unfreeze"),
          ("post", "/payments/1/resolve"), ("post", "/payments/not-a-number/resolve"),
          ("post", "/mandates/revoke"), ("post", "/api/budgets/trip/freeze"),
          ("post", "/logout")]
PAGES = ["/", "/budgets", "/budgets/trip", "/inbox"]
READS = ["/api/approvals", "/api/approvals/version", "/api/budgets", "/api/events"]


async def _pending(world: World) -> tuple[str, str]:
    """The agent asks to pay the flight; returns (checkout id, approval id)."""
    checkout = await world.flight_checkout()
    asked = await world.try_pay(checkout)
    assert isinstance(asked, ApprovalPending), asked
    return checkout, str(asked.details["approval_id"])


async def test_every_route_needs_a_login_and_nothing_changes(world: World) -> None:
    _, approval_id = await _pending(world)
    async with world.client() as client:
        for path in PAGES:  # a page sends the browser to the login form (no 401 logged in its console)
            resp = await client.get(path)
            assert (resp.status_code, resp.headers["location"]) == (303, "/login"), path
            assert "trip" not in resp.text and "SKYLARK" not in resp.text
        for path in READS:
            resp = await client.get(path)
            assert resp.status_code == 401, path
        for _, path in WRITES:
            resp = await client.post(path.replace("apr_x", approval_id), data={"reason": "x", "paid": "yes"})
            assert resp.status_code == 401, path
        client.cookies.set("amp_session", "forged-session-id")
        forged = await client.post(f"/api/approvals/{approval_id}/approve", json={})
        assert forged.status_code == 401
        client.cookies.clear()
        page = await client.get("/inbox", follow_redirects=True)
        assert 'name="passphrase"' in page.text and "Marina" not in page.text
        wrong = await client.post("/login", data={"passphrase": "not the passphrase"})
        assert wrong.status_code == 200 and "Wrong passphrase" in wrong.text
        assert "amp_session" not in wrong.headers.get("set-cookie", "")
        wrong_json = await client.post("/login", json={"passphrase": "not the passphrase"})
        assert wrong_json.status_code == 401 and "amp_session" not in wrong_json.headers.get("set-cookie", "")
    assert (await world.agent_store.aget(approval_id)).status == "pending"
    assert world.paid() == []
    assert not any(r.kind in ("budget_freeze", "budget_unfreeze", "budget_policy")
                   for r in await world.agent_ledger.audit.records())


async def test_cross_site_and_csrf_less_requests_are_refused(world: World) -> None:
    _, approval_id = await _pending(world)
    async with world.client() as client:
        csrf = await login(client)
        path = f"/approvals/{approval_id}/approve"
        # Another site's page posting the form with the owner's cookie: refused by Origin and Fetch metadata.
        evil = await client.post(path, data={"csrf": csrf}, headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403 and "cross-site" in evil.text
        fetch_meta = await client.post(path, data={"csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"})
        assert fetch_meta.status_code == 403
        no_token = await client.post(path, data={})
        assert no_token.status_code == 403 and "CSRF" in no_token.text
        bad_token = await client.post(path, data={"csrf": csrf[:-2] + "xx"})
        assert bad_token.status_code == 403
        rebinding = await client.get("/inbox", headers={"Host": "attacker.example"})
        assert rebinding.status_code == 421
        cross_login = await client.post("/login", data={"passphrase": PASSPHRASE},
                                        headers={"Origin": "https://evil.example"})
        assert cross_login.status_code == 403
        assert (await world.agent_store.aget(approval_id)).status == "pending"
        ok = await client.post(path, data={"csrf": csrf}, headers={"Origin": BASE})
        assert ok.status_code == 303 and ok.headers["location"] == "/inbox"
    assert (await world.agent_store.aget(approval_id)).status == "approved"


async def test_inbox_shows_the_request_then_approve_pays_exactly_once(world: World) -> None:
    checkout, approval_id = await _pending(world)
    async with world.client() as client:
        csrf = await login(client)
        listed = (await client.get("/api/approvals")).json()["approvals"]
        [item] = listed
        assert (item["id"], item["merchant_id"], item["budget_id"]) == (approval_id, "SKYLARK-AIR", "trip")
        assert item["budget_amount"] == {"amount": "139.86", "currency": "USD"}
        assert "100.00 USD" in " ".join(item["rules"]) and "binding" not in item
        page = (await client.get("/inbox")).text
        assert approval_id in page and "139.86 USD" in page and "860.14 USD" in page  # budget left after
        assert 'class="countdown"' in page
        resp = await client.post(f"/api/approvals/{approval_id}/approve", headers={"X-CSRF-Token": csrf})
        assert resp.json() == {"id": approval_id, "status": "approved"}
        again = await client.post(f"/api/approvals/{approval_id}/approve", headers={"X-CSRF-Token": csrf})
        assert again.status_code == 409 and "already approved" in again.json()["message"]
    paid = await world.try_pay(checkout)
    assert isinstance(paid, dict) and paid["status"] == "paid" and paid["approved_by"] == "owner (inbox)"
    replay = await world.try_pay(checkout)
    assert isinstance(replay, dict) and replay["status"] == "already_paid"
    assert [(p["merchantId"], p["checkoutId"]) for p in world.paid()] == [("SKYLARK-AIR", checkout)]
    assert (await world.agent_store.aget(approval_id)).status == "consumed"
    kinds = [r.kind for r in await world.inbox_ledger.audit.records()]
    assert kinds.index("approval_request") < kinds.index("approval_decision") < kinds.index("commit")


async def test_deny_is_final_until_reopened(world: World) -> None:
    checkout, approval_id = await _pending(world)
    async with world.client() as client:
        csrf = await login(client)
        resp = await client.post(f"/approvals/{approval_id}/deny", data={"csrf": csrf, "reason": "not this airline"})
        assert resp.status_code == 303
        page = (await client.get("/inbox")).text
        assert "Denied 189.00 SGD to Skylark Air." in page and "not this airline" in page
        for _ in range(3):  # the model asks again and again: refused at once, no new question
            refused = await world.try_pay(checkout)
            assert isinstance(refused, ApprovalDenied) and "not this airline" in refused.message
        assert [r.id for r in await world.agent_store.alist()] == [approval_id]
        reopened = await client.post(f"/api/approvals/{approval_id}/reopen", headers={"X-CSRF-Token": csrf})
        assert reopened.json()["status"] == "reopened"
    asked = await world.try_pay(checkout)
    assert isinstance(asked, ApprovalPending) and asked.details["approval_id"] != approval_id
    assert world.paid() == []


async def test_expired_requests_are_denied_automatically_and_audited(world: World) -> None:
    checkout, approval_id = await _pending(world)
    world.clock.advance(minutes=16)  # the default approval lives 15 minutes
    async with world.client() as client:
        csrf = await login(client)
        page = (await client.get("/inbox")).text
        assert "No payment is waiting for you." in page and 'expired unanswered' in page
        late = await client.post(f"/api/approvals/{approval_id}/approve", headers={"X-CSRF-Token": csrf})
        assert late.status_code == 409 and "already expired" in late.json()["message"]
    record = await world.agent_store.aget(approval_id)
    assert (record.status, record.approved, record.reason) == ("expired", False, "expired without an answer")
    [audit] = [r for r in await world.inbox_ledger.audit.records() if r.kind == "approval_expired"]
    assert audit.payload["approval_id"] == approval_id and audit.budget_id == "trip"
    asked = await world.try_pay(checkout)  # expiry is not a person's "no": the agent may ask afresh
    assert isinstance(asked, ApprovalPending) and asked.details["approval_id"] != approval_id


async def test_freeze_refuses_every_payment_until_unfrozen(world: World) -> None:
    checkout = await world.flight_checkout()
    async with world.client() as client:
        csrf = await login(client)
        # The budget row exists once the agent has reserved; freezing a budget never used works too.
        resp = await client.post("/api/budgets/trip/freeze", json={"reason": "card stolen"},
                                 headers={"X-CSRF-Token": csrf})
        assert resp.json()["frozen"] is True and resp.json()["reason"] == "card stolen"
        refused = await world.try_pay(checkout)
        assert isinstance(refused, PolicyViolation) and refused.rule == "budget.frozen"
        assert "card stolen" in refused.message
        small = await world.call("search_offers", query="car", category="car")
        assert small["offers"]  # looking around is still allowed; paying is not
        budgets = (await client.get("/api/budgets")).json()
        assert [(b["budget_id"], b["frozen"]) for b in budgets["budgets"]] == [("trip", True)]
        page = (await client.get("/budgets/trip")).text
        assert "Frozen: card stolen" in page and "Unfreeze budget" in page
        assert 'class="badge frozen"' in (await client.get("/budgets")).text
        resp = await client.post("/budgets/trip/unfreeze", data={"csrf": csrf})
        assert resp.status_code == 303
    asked = await world.try_pay(checkout)
    assert isinstance(asked, ApprovalPending)
    kinds = [r.kind for r in await world.inbox_ledger.audit.records()]
    assert kinds.count("budget_freeze") == 1 and kinds.count("budget_unfreeze") == 1
    assert "refusal" in kinds
    assert world.paid() == []


async def test_dashboard_shows_spending_payments_and_audit_without_secrets(world: World) -> None:
    checkout, approval_id = await _pending(world)
    await world.agent_store.aapprove(approval_id, "alice")
    paid = await world.try_pay(checkout)
    assert isinstance(paid, dict)
    async with world.client() as client:
        await login(client)
        page = (await client.get("/budgets/trip")).text
        data = (await client.get("/api/budgets")).json()
    [budget] = data["budgets"]
    assert budget["total"]["used"] == {"amount": "139.86", "currency": "USD"}
    assert budget["total"]["left"] == {"amount": "860.14", "currency": "USD"}
    assert budget["windows"]["day"]["left"] == {"amount": "660.14", "currency": "USD"}
    assert budget["merchants"]["SKYLARK-AIR"]["used"] == {"amount": "139.86", "currency": "USD"}
    # One payment, one row: held while the person was asked, the approved retry committed it.
    assert [p["status"] for p in budget["payments"]] == ["committed"]
    payment = budget["payments"][0]
    assert payment["external_ref"] == paid["transaction_id"] and payment["fx_rate"] is not None
    assert data["audit"]["ok"] is True
    for text in ("139.86 USD", "860.14 USD", "SKYLARK-AIR", paid["transaction_id"], "Audit chain verified",
                 "<svg", "Per merchant", "Per MCC", ">paid<", "approved and paid", "alice"):
        assert text in page, text
    lowered = page.lower()
    for secret in ("paymenttoken", "l1serialized", "l2serialized", "l3serialized", "private", "\"d\":"):
        assert secret not in lowered
    assert world.toolkit.agent_key.public_jwk()["x"] not in page


async def test_resolve_unknown_payment_is_validated_and_audited(world: World) -> None:
    checkout = await world.flight_checkout()
    # A reservation whose outcome is unknown (the request left, no answer came back).
    from amp_tools.policy import SpendIntent

    intent = SpendIntent(action="pay", merchant_id="SKYLARK-AIR", merchant_name="Skylark Air", mcc="3000",
                         amount=Money.parse("50.00", "USD"), budget_amount=Money.parse("50.00", "USD"),
                         fx_rate=None, items=(), human_present=False, checkout_id=checkout, at=world.clock.now())
    held = await world.agent_ledger.reserve(intent, world.policy, budget_id="trip", idempotency_key="k-unknown")
    async with world.client() as client:
        csrf = await login(client)
        page = (await client.get("/budgets/trip")).text
        assert f'action="/payments/{held.entry.id}/resolve"' in page
        missing = await client.post(f"/api/payments/{held.entry.id}/resolve", json={"paid": "yes", "reason": "seen"},
                                    headers={"X-CSRF-Token": csrf})
        assert missing.status_code == 400 and "transaction id" in missing.json()["message"]
        evil = await client.post(f"/api/payments/{held.entry.id}/resolve",
                                 json={"paid": "yes", "transaction_id": "<script>", "reason": "x"},
                                 headers={"X-CSRF-Token": csrf})
        assert evil.status_code == 400
        assert (await world.agent_ledger.get(held.entry.id)).status == "reserved"
        ok = await client.post(f"/api/payments/{held.entry.id}/resolve",
                               json={"paid": "yes", "transaction_id": "TX-42", "reason": "wallet shows it paid"},
                               headers={"X-CSRF-Token": csrf})
        assert ok.json() == {"id": held.entry.id, "status": "committed"}
        twice = await client.post(f"/api/payments/{held.entry.id}/resolve",
                                  json={"paid": "no", "reason": "changed my mind"}, headers={"X-CSRF-Token": csrf})
        assert twice.status_code == 400 and "is committed" in twice.json()["message"]
    entry: Entry = await world.agent_ledger.get(held.entry.id)
    assert (entry.status, entry.external_ref) == ("committed", "TX-42")
    [record] = [r for r in await world.agent_ledger.audit.records() if r.kind == "resolution"]
    assert record.payload == {"entry_id": held.entry.id, "paid": True, "by": "owner", "reason": "wallet shows it paid",
                              "transaction_id": "TX-42"}


async def test_revoke_mandate_through_the_sandbox(world: World) -> None:
    await world.call("discover_merchants", region="MY")
    mandate = await world.call("request_mandate", purpose="KL trip",
                               expires_at=(world.clock.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    async with world.client() as client:
        csrf = await login(client)
        bad = await client.post("/api/mandates/revoke", json={"mandate_id": "../../x"}, headers={"X-CSRF-Token": csrf})
        assert bad.status_code == 400
        unknown = await client.post("/api/mandates/revoke", json={"mandate_id": "MDT-none"},
                                    headers={"X-CSRF-Token": csrf})
        assert unknown.status_code == 400 and "refused" in unknown.json()["message"]
        resp = await client.post("/api/mandates/revoke", json={"mandate_id": mandate["mandate_id"]},
                                 headers={"X-CSRF-Token": csrf})
        assert resp.json() == {"mandate_id": mandate["mandate_id"], "status": "REVOKED"}
    assert world.sandbox.mandate(mandate["mandate_id"])["mandateStatus"] == "REVOKED"
    [record] = [r for r in await world.inbox_ledger.audit.records() if r.kind == "mandate_revoked"]
    assert record.payload["mandate_id"] == mandate["mandate_id"]


async def test_bad_inputs_are_refused_with_a_reason(world: World) -> None:
    _, approval_id = await _pending(world)
    async with world.client() as client:
        csrf = await login(client)
        headers = {"X-CSRF-Token": csrf}
        cases: list[tuple[str, Any, int, str]] = [
            (f"/api/approvals/{approval_id}/deny", {"reason": "x" * 501}, 400, "at most 500"),
            ("/api/approvals/apr_missing/approve", {}, 404, "does not exist"),
            ("/api/budgets/trip/freeze", {"reason": "line\nbreak"}, 400, "one line"),
            ("/api/payments/999/resolve", {"paid": "maybe", "reason": "x"}, 400, "paid=yes or paid=no"),
            ("/api/payments/x1/resolve", {"paid": "no", "reason": "x"}, 400, "whole number"),
            ("/api/payments/999/resolve", {"paid": "no", "reason": "x"}, 404, "does not exist"),
        ]
        for path, body, status, words in cases:
            resp = await client.post(path, json=body, headers=headers)
            assert resp.status_code == status, (path, resp.text)
            assert words in resp.json()["message"], (path, resp.text)
        huge = await client.post(f"/api/approvals/{approval_id}/deny", content=b"{" + b" " * 20000 + b"}",
                                 headers={**headers, "Content-Type": "application/json"})
        assert huge.status_code == 413
        odd = await client.post(f"/api/approvals/{approval_id}/deny", content=b"x",
                                headers={**headers, "Content-Type": "text/plain"})
        assert odd.status_code == 415
        assert (await client.get("/api/approvals?status=nope")).status_code == 400
    assert (await world.agent_store.aget(approval_id)).status == "pending"


async def test_security_headers_and_session_cookie(world: World) -> None:
    async with world.client() as client:
        resp = await client.post("/login", data={"passphrase": PASSPHRASE})
        cookie = resp.headers["set-cookie"].lower()
        assert resp.status_code == 303 and "httponly" in cookie and "samesite=strict" in cookie
        page = await client.get("/inbox")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
        assert "http://" not in page.text.replace(BASE, "") and "https://" not in page.text  # nothing from a CDN
        logout = await client.post("/logout", data={"csrf": page.text.split('name="csrf" value="')[1].split('"')[0]})
        assert logout.status_code == 303
        assert (await client.get("/inbox")).status_code == 303


@pytest.mark.parametrize("status", ["pending", "all"])
async def test_events_stream_announces_the_pending_set(world: World, status: str) -> None:
    world.settings.events_for = 1.0
    _, approval_id = await _pending(world)
    async with world.client() as client:
        await login(client)
        version = (await client.get("/api/approvals/version")).json()
        assert version["pending"] == 1
        async with client.stream("GET", "/api/events") as stream:
            body = "".join([chunk async for chunk in stream.aiter_text()])
        assert "event: approvals" in body and version["version"] in body
        listed = (await client.get(f"/api/approvals?status={status}")).json()["approvals"]
        assert [a["id"] for a in listed] == [approval_id]


@pytest.mark.postgres
async def test_the_console_over_postgresql(tmp_path: Path) -> None:
    from tests.ledger._ledger_helpers import PG_URL, drop_schema, new_schema, require_pg

    require_pg()
    schema = new_schema()
    world = World(tmp_path, ledger_url=PG_URL, schema=schema)
    try:
        checkout, approval_id = await _pending(world)
        async with world.client() as client:
            csrf = await login(client)
            [item] = (await client.get("/api/approvals")).json()["approvals"]
            assert item["id"] == approval_id
            await client.post(f"/api/approvals/{approval_id}/approve", headers={"X-CSRF-Token": csrf})
            paid = await world.try_pay(checkout)
            assert isinstance(paid, dict) and paid["status"] == "paid"
            frozen = await client.post("/api/budgets/trip/freeze", json={"reason": "done for today"},
                                       headers={"X-CSRF-Token": csrf})
            assert frozen.json()["frozen"] is True
            again = await world.try_pay(await world.flight_checkout())
            assert isinstance(again, PolicyViolation) and again.rule == "budget.frozen"
            [budget] = (await client.get("/api/budgets")).json()["budgets"]
            assert budget["total"]["used"] == {"amount": "139.86", "currency": "USD"} and budget["frozen"] is True
            assert (await client.get("/budgets/trip")).status_code == 200
        assert (await world.inbox_ledger.audit.verify()).ok
    finally:
        await world.close()
        drop_schema(schema)


async def test_text_from_merchants_is_escaped(world: World) -> None:
    from amp_tools.approvals.request import make_request
    from amp_tools.policy import Item, SpendIntent, Verdict

    evil = "<script>alert(1)</script>"
    intent = SpendIntent(action="pay", merchant_id="EVIL-1", merchant_name=evil, mcc="5999",
                         amount=Money.parse("120.00", "USD"), budget_amount=Money.parse("120.00", "USD"), fx_rate=None,
                         items=(Item("P-1", f'"><img src=x onerror=alert(2)>{evil}', 1, Money.parse("120.00", "USD")),),
                         human_present=False, checkout_id="co-evil", at=world.clock.now())
    verdict = Verdict(approval_reasons=(f"rule {evil}",), budget_left=Money.parse("880.00", "USD"), checked_rules=())
    await world.agent_store.acreate(make_request(intent, verdict, budget_id="default", clock=world.clock))
    async with world.client() as client:
        await login(client)
        page = (await client.get("/inbox")).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(2)&gt;" in page
