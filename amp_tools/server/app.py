"""The owner's web app (`amp-tools serve`): budgets overview, each budget's page, approval inbox, controls.

`create_app(settings)` builds a FastAPI app over one ledger (SQLite file or PostgreSQL) and the
approval store inside it. Pages are rendered on the server; a JSON API mirrors every action.

Security: every route but ``/login``, the static files and the web app manifest needs a session
(else a page redirects to the login form, the API answers 401, and nothing changes). Every POST
must also come from this site (``Origin`` / ``Sec-Fetch-Site``) and carry the session's CSRF token.
The ``Host`` header must name an allowed host (DNS rebinding).
Responses forbid framing and caching and allow scripts and styles from this origin only.
A background task denies expired approval requests (audited) every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse

from amp_tools.approvals import ApprovalStore
from amp_tools.approvals.courier import Courier
from amp_tools.approvals.outbox import list_steps as list_deliveries
from amp_tools.errors import AmpToolsError, InvalidArguments, NotFound
from amp_tools.ledger import Entry, LedgerBase

from . import data, pages, views
from .assets import APP_CSS, APP_JS, SW_JS
from .auth import COOKIE, Session, SessionStore, csrf_ok, verify_secret
from .budgets import BudgetRow, overview, policy_for, stored_budgets, subtree
from .chart import spend_chart
from .control import freeze, resolvable, resolve_unknown, revoke_mandate
from .icons import ICON_SVG, MANIFEST, SIZES, icon_png
from .recovery import link_page, spend_link
from .web import (
    HEADERS,
    MAX_BODY,
    Refused,
    declared_too_large,
    form_of,
    host_of,
    same_site,
    valid_budget_id,
    valid_id,
    wants_json,
)

__all__ = ["ServeSettings", "create_app"]


@dataclass
class ServeSettings:
    """What `create_app` needs. `passphrase_hash` comes from `auth.hash_secret` (never the plain text)."""

    ledger: LedgerBase
    passphrase_hash: str
    store: ApprovalStore | None = None
    owner: str = "owner"
    network_url: str | None = None
    secure_cookies: bool = False
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]")
    expire_every: float = 5.0
    events_for: float = 25.0
    network_transport: httpx.AsyncBaseTransport | None = None
    sessions: SessionStore = field(default_factory=SessionStore)
    courier: Courier | None = None  # delivers queued approval notifications while the console runs


def _budget_path(budget_id: str) -> str:
    return "/budgets/" + quote(budget_id, safe="/:")


def create_app(settings: ServeSettings) -> FastAPI:
    ledger = settings.ledger
    store = settings.store or ApprovalStore(ledger)
    sessions = settings.sessions
    flashes: dict[str, list[str]] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async def sweep() -> None:
            while True:
                with contextlib.suppress(Exception):  # a database hiccup must not kill the sweeper
                    await store.aexpire_due()
                await asyncio.sleep(settings.expire_every)

        tasks = [asyncio.create_task(sweep())]
        if settings.courier is not None:
            tasks.append(asyncio.create_task(settings.courier.serve(poll=settings.expire_every)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(title="amp-tools owner console", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)

    # ------------------------------------------------------------------ plumbing
    @app.middleware("http")
    async def security(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        host = host_of(request.headers.get("host") or "")
        if host not in settings.allowed_hosts:
            response: Response = JSONResponse({"error": "HOST_NOT_ALLOWED",
                                               "message": f"host {host[:60]!r} is not served here"}, 421)
        elif declared_too_large(request):
            # Refused on the headers alone: not one byte of an oversized body is read.
            response = JSONResponse({"error": "BODY_TOO_LARGE",
                                     "message": f"the request body is larger than {MAX_BODY} bytes"}, 413,
                                    headers={"Connection": "close"})
        else:
            response = await call_next(request)
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    def session_of(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(COOKIE))

    def refuse(request: Request, status: int, message: str) -> Response:
        if wants_json(request):
            return JSONResponse({"error": {401: "UNAUTHENTICATED", 403: "FORBIDDEN"}.get(status, "BAD_REQUEST"),
                                 "message": message}, status)
        if status == 401 and request.method == "GET":
            # A page asked without a session goes to the login form (a redirect, not a 401 the browser logs).
            return RedirectResponse("/login", 303)
        if status == 401:
            return HTMLResponse(views.login_page(message), 401)
        return HTMLResponse(f"<!doctype html><title>Refused</title><p>{views.h(message)}</p>", status)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return refuse(request, exc.status, exc.message)

    # Every handler raises `Refused` (unauthenticated, cross-site, bad CSRF or form) and this one answer says so.
    app.add_exception_handler(Refused, refused)

    async def writer(request: Request) -> tuple[Session, dict[str, str]]:
        """Authenticate, refuse cross-site requests, check CSRF; then the validated form."""
        session = session_of(request)
        if session is None:
            raise Refused(401, "log in first")
        if not same_site(request):
            raise Refused(403, "cross-site request refused")
        form = await form_of(request)
        if not csrf_ok(session, request.headers.get("x-csrf-token") or form.get("csrf")):
            raise Refused(403, "missing or wrong CSRF token; reload the page and try again")
        return session, form

    def done(request: Request, session: Session, back: str, message: str, data: dict[str, Any]) -> Response:
        if wants_json(request):
            return JSONResponse(data)
        flashes.setdefault(session.csrf, []).append(message)
        return RedirectResponse(back, 303)

    async def act(request: Request, back: str,
                  work: Callable[[Session, dict[str, str]], Awaitable[tuple[str, dict[str, Any]]]]) -> Response:
        session, form = await writer(request)
        try:
            message, data = await work(session, form)
        except NotFound as exc:
            return _error(request, session, back, 404, exc)
        except (AmpToolsError, ValueError) as exc:
            return _error(request, session, back, 409 if "APPROVAL_STATE" in str(exc) else 400, exc)
        return done(request, session, back, message, data)

    def _error(request: Request, session: Session, back: str, status: int, exc: Exception) -> Response:
        message = exc.message if isinstance(exc, AmpToolsError) else str(exc)
        code = exc.code if isinstance(exc, AmpToolsError) else "INVALID_INPUT"
        if wants_json(request):
            return JSONResponse({"error": code, "message": message}, status)
        flashes.setdefault(session.csrf, []).append(f"Not done: {message}")
        return RedirectResponse(back, 303)

    def pop_flash(session: Session) -> list[str]:
        return flashes.pop(session.csrf, [])

    async def version() -> tuple[str, int]:
        pending = await store.alist("pending")
        text = ",".join(sorted(r.id for r in pending))
        return hashlib.sha256(text.encode()).hexdigest()[:16], len(pending)

    # ------------------------------------------------------------------ static + login
    @app.get("/static/app.js")
    async def app_js() -> Response:
        return Response(APP_JS, media_type="text/javascript; charset=utf-8")

    @app.get("/static/app.css")
    async def app_css() -> Response:
        return Response(APP_CSS, media_type="text/css; charset=utf-8")

    @app.get("/static/icon.svg")
    async def icon_svg() -> Response:
        return Response(ICON_SVG, media_type="image/svg+xml")

    for size in SIZES:
        def png(size: int = size) -> Response:
            return Response(icon_png(size), media_type="image/png")
        app.add_api_route(f"/static/icon-{size}.png", png, methods=["GET"])

    @app.get("/sw.js")
    async def service_worker() -> Response:
        return Response(SW_JS, media_type="text/javascript; charset=utf-8")

    @app.get("/manifest.webmanifest")
    async def manifest() -> Response:
        # Browsers fetch the manifest without the session cookie: it names nothing private.
        return Response(MANIFEST, media_type="application/manifest+json")

    @app.get("/login")
    async def login_form() -> Response:
        return HTMLResponse(views.login_page())

    def signed_in(request: Request, back: str = "/") -> Response:
        cookie, session = sessions.create(settings.owner)
        response: Response = (JSONResponse({"csrf": session.csrf}) if wants_json(request)
                              else RedirectResponse(back, 303))
        response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", secure=settings.secure_cookies,
                            max_age=int(sessions.ttl), path="/")
        return response

    @app.post("/login")
    async def login(request: Request) -> Response:
        if not same_site(request):
            return refuse(request, 403, "cross-site request refused")
        form = await form_of(request)
        given = form.get("passphrase", "")
        wrong: Response = (JSONResponse({"error": "UNAUTHENTICATED", "message": "wrong passphrase"}, 401)
                           if wants_json(request) else HTMLResponse(views.login_page("Wrong passphrase."), 200))
        # (the form again with the error: a 401 page would be logged as an error in the browser's console)
        if not given or len(given) > 200:
            return wrong  # nothing to check: no scrypt run, no slot taken
        # Counted before the check runs, under one lock: concurrent guesses cannot all slip in.
        slot = sessions.throttle.admit(request.client.host if request.client else "")
        if slot is None:
            return refuse(request, 429, "too many failed logins; wait a minute, or log in with a one-time link "
                                        "(`amp-tools serve --login-link`)")
        ok = False
        try:
            ok = await asyncio.to_thread(verify_secret, given, settings.passphrase_hash)
        finally:
            sessions.throttle.done(slot, ok)
        # Back to the one approval page the person came from (an MCP client's link), never anywhere else.
        back = form.get("next", "")
        back = back if back.startswith("/approvals/") and _is_id(back.removeprefix("/approvals/")) else "/"
        return signed_in(request, back) if ok else wrong

    @app.get("/login/link/{token}")
    async def login_link_page(token: str) -> Response:
        return HTMLResponse(link_page(token))

    @app.post("/login/link")
    async def login_link(request: Request) -> Response:
        if not same_site(request):
            return refuse(request, 403, "cross-site request refused")
        form = await form_of(request)
        if not await spend_link(ledger, form.get("token", "")):
            return refuse(request, 401, "this login link is unknown, used or expired; make a new one with "
                                        "`amp-tools serve --login-link`")
        return signed_in(request)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await writer(request)
        sessions.drop(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # ------------------------------------------------------------------ pages
    def page_session(request: Request) -> Session:
        session = session_of(request)
        if session is None:
            raise Refused(401, "log in first")
        return session

    async def pending_by_budget() -> dict[str, int]:
        counts: dict[str, int] = {}
        for rec in await store.alist("pending"):
            counts[rec.budget_id] = counts.get(rec.budget_id, 0) + 1
        return counts

    @app.get("/")
    @app.get("/budgets")
    async def budgets_overview(request: Request, q: str = "", sort: str = "last", order: str = "desc",
                               page: str = "1") -> Response:
        session = page_session(request)
        await store.aexpire_due()
        rows = await overview(ledger, await pending_by_budget())
        ver, count = await version()
        listing = pages.Listing.parse(q, sort, order, page)
        return HTMLResponse(pages.overview_page(rows, listing, session.csrf, ver, count, pop_flash(session),
                                                settings.network_url is not None))

    @app.get("/dashboard")
    async def dashboard() -> Response:
        return RedirectResponse("/budgets", 303)  # the page's old address

    async def one_budget(budget_id: str) -> tuple[BudgetRow, list[BudgetRow]]:
        rows = await overview(ledger, await pending_by_budget())
        found = next((r for r in rows if r.budget_id == budget_id), None)
        if found is None:
            raise NotFound(f"no budget {budget_id[:80]!r} in this ledger")
        return found, rows

    @app.get("/budgets/{budget_id:path}")
    async def budget_view(request: Request, budget_id: str) -> Response:
        session = page_session(request)
        try:
            row, rows = await one_budget(valid_budget_id(budget_id))
        except (NotFound, InvalidArguments) as exc:
            return HTMLResponse(views.layout("Not found", f'<p class="error">{views.h(exc.message)}</p>'
                                             '<p><a href="/budgets">All budgets</a></p>', csrf=session.csrf), 404)
        covers = subtree(rows, row.budget_id)
        limits = policy_for(await stored_budgets(ledger), row.budget_id)
        report = await data.report(ledger, row.budget_id, row.currency, limits, covers)
        detail = await data.detail(ledger, store, covers)
        verify = await ledger.audit.verify()
        ver, count = await version()
        now = ledger.clock.now()
        points = [(e.created_at, e.counted.minor) for e in detail.entries if e.action == "pay"]
        chart = spend_chart(points, row.currency, now) if row.currency and points else ""
        return HTMLResponse(pages.budget_page(row, limits, report, detail, verify, session.csrf,
                                              lambda e: resolvable(e, now), ver, count, pop_flash(session), chart))

    @app.get("/inbox")
    async def inbox(request: Request) -> Response:
        session = page_session(request)
        await store.aexpire_due()
        records = await store.alist(limit=200)
        pending = [r for r in records if r.status == "pending"]
        recent = [r for r in records if r.status != "pending"][:50]
        entries: dict[str, list[Entry]] = {}
        for rec in recent:
            if rec.status == "consumed" and rec.budget_id not in entries:
                entries[rec.budget_id] = await ledger.entries(rec.budget_id, limit=data.PAYMENTS_READ)
        seqs = await data.decisions_of(ledger, tuple(entries))
        outcomes = {rec.id: data.paid_under(rec, entries.get(rec.budget_id, []), seqs.get(rec.id)) for rec in recent}
        ver, _ = await version()
        return HTMLResponse(views.inbox_page(pending, recent, session.csrf, ledger.clock.now(), ver,
                                             pop_flash(session), outcomes))

    @app.get("/approvals/{approval_id}")
    async def approval(request: Request, approval_id: str) -> Response:
        session = session_of(request)
        if session is None:
            path = f"/approvals/{approval_id}" if _is_id(approval_id) else ""
            # the form itself, not a 401: a browser logs a 401 page as an error
            return HTMLResponse(views.login_page("Log in to answer this approval.", path), 200)
        await store.aexpire_due()
        try:
            rec = await store.aget(valid_id(approval_id, "approval id"))
        except (NotFound, InvalidArguments) as exc:
            return HTMLResponse(f"<!doctype html><title>Not found</title><p>{views.h(exc.message)}</p>", 404)
        return HTMLResponse(views.approval_page(rec, session.csrf, ledger.clock.now(), pop_flash(session)))

    # ------------------------------------------------------------------ JSON reads
    def authed(request: Request) -> Session:
        session = session_of(request)
        if session is None:
            raise Refused(401, "log in first")
        return session

    @app.get("/api/approvals")
    async def api_approvals(request: Request, status: str = "pending") -> Response:
        authed(request)
        if status not in ("pending", "approved", "denied", "consumed", "expired", "reopened", "all"):
            return JSONResponse({"error": "INVALID_ARGUMENTS", "message": f"status {status[:20]!r} must be pending, "
                                 "approved, denied, consumed, expired, reopened or all"}, 400)
        records = await store.alist(None if status == "all" else status)  # type: ignore[arg-type]
        return JSONResponse({"approvals": [
            {"status": r.status, "budget_id": r.budget_id, "decided_by": r.decided_by, "reason": r.reason,
             **{k: v for k, v in r.request.to_public().items() if k != "binding"}} for r in records]})

    @app.get("/api/approvals/version")
    async def api_version(request: Request) -> Response:
        authed(request)
        ver, count = await version()
        return JSONResponse({"version": ver, "pending": count})

    @app.get("/api/deliveries")
    async def api_deliveries(request: Request, status: str = "all") -> Response:
        """How each approval notification stands (queued, delivered, failed and why); no body, no URL."""
        authed(request)
        if status not in ("pending", "delivered", "failed", "all"):
            return JSONResponse({"error": "INVALID_ARGUMENTS", "message": f"status {status[:20]!r} must be pending, "
                                 "delivered, failed or all"}, 400)
        rows = await ledger.run_read(lambda: list_deliveries(200, status=None if status == "all" else status))
        return JSONResponse({"deliveries": [d.to_public() for d in rows]})

    @app.get("/api/budgets")
    async def api_budgets(request: Request) -> Response:
        authed(request)
        rows = await overview(ledger, await pending_by_budget())
        stored = await stored_budgets(ledger)
        out = []
        for row in rows:
            covers = subtree(rows, row.budget_id)
            limits = policy_for(stored, row.budget_id)
            report = await data.report(ledger, row.budget_id, row.currency, limits, covers)
            entries = await ledger.entries(row.budget_id, limit=100)
            out.append({**report, **row.to_public(), "total": report.get("total", {}),
                        "payments": [{**e.to_public(), "fx_rate": None if e.fx_rate is None else str(e.fx_rate)}
                                     for e in entries]})
        verify = await ledger.audit.verify()
        return JSONResponse({"budgets": out, "audit": {"ok": verify.ok, "records": verify.records,
                                                       "problem": verify.problem}})

    @app.get("/api/events")
    async def events(request: Request) -> Response:
        authed(request)

        async def stream() -> AsyncIterator[str]:
            last, waited = "", 0.0
            yield "retry: 2000\n\n"
            while waited < settings.events_for:
                ver, count = await version()
                if ver != last:
                    last = ver
                    yield f"event: approvals\ndata: {json.dumps({'version': ver, 'pending': count})}\n\n"
                if await request.is_disconnected():
                    return
                await asyncio.sleep(1.0)
                waited += 1.0

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # ------------------------------------------------------------------ actions
    @app.post("/approvals/{approval_id}/approve")
    @app.post("/api/approvals/{approval_id}/approve")
    async def approve(request: Request, approval_id: str) -> Response:
        async def work(session: Session, form: dict[str, str]) -> tuple[str, dict[str, Any]]:
            rec = await store.aapprove(valid_id(approval_id, "approval id"), f"{session.user} (inbox)")
            return (f"Approved {rec.request.amount} to {rec.request.merchant_name or rec.request.merchant_id}.",
                    {"id": rec.id, "status": rec.status})
        return await act(request, "/inbox", work)

    @app.post("/approvals/{approval_id}/deny")
    @app.post("/api/approvals/{approval_id}/deny")
    async def deny(request: Request, approval_id: str) -> Response:
        async def work(session: Session, form: dict[str, str]) -> tuple[str, dict[str, Any]]:
            reason = form.get("reason", "").strip() or "denied by the owner"
            rec = await store.adeny(valid_id(approval_id, "approval id"), f"{session.user} (inbox)", reason)
            return (f"Denied {rec.request.amount} to {rec.request.merchant_name or rec.request.merchant_id}. "
                    "The agent cannot ask again for this payment unless you let it.",
                    {"id": rec.id, "status": rec.status, "reason": rec.reason})
        return await act(request, "/inbox", work)

    @app.post("/approvals/{approval_id}/reopen")
    @app.post("/api/approvals/{approval_id}/reopen")
    async def reopen(request: Request, approval_id: str) -> Response:
        async def work(session: Session, form: dict[str, str]) -> tuple[str, dict[str, Any]]:
            rec = await store.areopen(valid_id(approval_id, "approval id"), f"{session.user} (inbox)")
            return "The agent may ask again about this payment.", {"id": rec.id, "status": rec.status}
        return await act(request, "/inbox", work)

    async def _freeze(request: Request, budget_id: str, frozen: bool) -> Response:
        async def work(session: Session, form: dict[str, str]) -> tuple[str, dict[str, Any]]:
            control = await freeze(ledger, valid_budget_id(budget_id), frozen, by=session.user,
                                   reason=form.get("reason", ""), signer=store.owner_signer)
            word = "frozen: every payment is refused" if frozen else "unfrozen"
            return f"Budget {control.budget_id} {word}.", control.to_public()
        return await act(request, _budget_path(budget_id), work)

    @app.post("/budgets/{budget_id:path}/freeze")
    @app.post("/api/budgets/{budget_id:path}/freeze")
    async def freeze_budget(request: Request, budget_id: str) -> Response:
        return await _freeze(request, budget_id, True)

    @app.post("/budgets/{budget_id:path}/unfreeze")
    @app.post("/api/budgets/{budget_id:path}/unfreeze")
    async def unfreeze_budget(request: Request, budget_id: str) -> Response:
        return await _freeze(request, budget_id, False)

    @app.post("/payments/{entry_id}/resolve")
    @app.post("/api/payments/{entry_id}/resolve")
    async def resolve(request: Request, entry_id: str) -> Response:
        back = "/budgets"
        if entry_id.isdigit() and len(entry_id) <= 18:
            with contextlib.suppress(AmpToolsError):
                back = _budget_path((await ledger.get(int(entry_id))).budget_id)

        async def work(session: Session, form: dict[str, str]) -> tuple[str, dict[str, Any]]:
            if not entry_id.isdigit() or len(entry_id) > 18:
                raise InvalidArguments(f"payment id {entry_id[:20]!r} must be a whole number, as on the budget's page")
            paid = form.get("paid", "")
            if paid not in ("yes", "no", "true", "false"):
                raise InvalidArguments("say whether the payment was made: paid=yes or paid=no")
            entry = await resolve_unknown(ledger, int(entry_id), paid=paid in ("yes", "true"),
                                          transaction_id=form.get("transaction_id", ""), by=session.user,
                                          reason=form.get("reason", ""))
            return f"Payment {entry.id} is now {entry.status}.", {"id": entry.id, "status": entry.status}
        return await act(request, back, work)

    @app.post("/mandates/revoke")
    @app.post("/api/mandates/revoke")
    async def revoke(request: Request) -> Response:
        async def work(session: Session, form: dict[str, str]) -> tuple[str, dict[str, Any]]:
            if settings.network_url is None:
                raise InvalidArguments("this inbox was started without --network-url, so it cannot reach the wallet")
            result = await revoke_mandate(settings.network_url, form.get("mandate_id", ""),
                                          transport=settings.network_transport)
            await ledger.audit.append("mandate_revoked", {**result, "by": session.user})
            return f"Mandate {result['mandate_id']} is {result['status']}.", result
        return await act(request, "/budgets", work)

    app.state.store = store
    return app


def _is_id(value: str) -> bool:
    try:
        valid_id(value, "approval id")
    except InvalidArguments:
        return False
    return True
