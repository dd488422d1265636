"""HTML of the owner's web app: the page layout, login and the approval inbox, rendered on the server.

Every dynamic value goes through `h()` (HTML escaping); forms carry the session's CSRF token.
Nothing is loaded from another origin: one stylesheet and one small script, both served by the app.
Only what a person needs is shown: no payment token, credential (L1/L2/L3) or key exists in the
data these functions receive, and the audit payloads shown are the ledger's redacted ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from amp_tools.approvals import ApprovalRecord
from amp_tools.ledger import Entry

from .words import approval_state, budget_href, h, money, when

__all__ = ["csrf_field", "h", "inbox_page", "layout", "login_page"]


def layout(title: str, body: str, *, csrf: str | None, active: str = "", flash: Iterable[str] = (),
           pending: int = 0) -> str:
    """A whole page. `pending` prefixes the title with the waiting count (seen on a background tab)."""
    nav = ""
    if csrf is not None:
        links = "".join(f'<a href="{href}"{" aria-current=page" if key == active else ""}>{label}</a>'
                        for key, href, label in (("budgets", "/budgets", "Budgets"), ("inbox", "/inbox",
                                                                                        "Approvals")))
        nav = (f'<nav>{links}<button type="button" class="link" id="notify" hidden>Notify me</button>'
               f'<form method="post" action="/logout" class="inline">'
               f'<input type="hidden" name="csrf" value="{h(csrf)}"><button class="link">Log out</button></form></nav>')
    notes = "".join(f'<p class="flash" role="status">{h(text)}</p>' for text in flash)
    shown = f"({pending}) " if pending else ""
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{shown}{h(title)} · amp-tools</title>'
            '<link rel="icon" href="/static/icon.svg" type="image/svg+xml">'
            '<link rel="apple-touch-icon" href="/static/icon-180.png">'
            '<link rel="manifest" href="/manifest.webmanifest"><meta name="theme-color" content="#101828">'
            '<link rel="stylesheet" href="/static/app.css">'
            f'<script src="/static/app.js" defer></script></head><body data-title="{h(title)} · amp-tools">'
            f'<header><strong>amp-tools</strong><span class="sub">owner console</span>{nav}</header>'
            f"<main>{notes}{body}</main></body></html>")


def login_page(message: str = "", next_path: str = "") -> str:
    note = f'<p class="error" role="alert">{h(message)}</p>' if message else ""
    back = f'<input type="hidden" name="next" value="{h(next_path)}">' if next_path else ""
    body = (f'<section class="card narrow"><h1>Log in</h1>{note}<form method="post" action="/login">{back}'
            '<label>Passphrase or token <input type="password" name="passphrase" autocomplete="current-password" '
            'required autofocus maxlength="200"></label><button type="submit">Log in</button></form>'
            "<p class=hint>The passphrase was set when the inbox was started (or printed once in its terminal).</p>"
            "</section>")
    return layout("Log in", body, csrf=None)


def csrf_field(csrf: str) -> str:
    return f'<input type="hidden" name="csrf" value="{h(csrf)}">'


def _approval_card(rec: ApprovalRecord, csrf: str, now: datetime) -> str:
    req = rec.request
    items = "".join(f"<li>{h(i.quantity)} × {h(i.name)} <span class=muted>[{h(i.product_id)}]</span> at "
                    f"{money(i.unit_amount)}</li>" for i in req.items) or "<li class=muted>no item lines</li>"
    budget = (f" <span class=muted>= {money(req.budget_amount)} from the budget</span>"
              if req.budget_amount.currency != req.amount.currency else "")
    rules = "".join(f"<li>{h(rule)}</li>" for rule in req.rules) or "<li>-</li>"
    left = max(0, int((req.expires_at - now).total_seconds()))
    verb = "Refund" if req.action == "refund" else "Pay"
    who = h(req.merchant_name or req.merchant_id)
    where = (f'<a href="{budget_href(rec.budget_id)}">{h(rec.budget_id)}</a>' if rec.budget_id else "-")
    # The decision comes first on the card: on a phone both buttons are on screen without scrolling.
    return (f'<article class="card approval" id="{h(req.id)}" data-approval="{h(req.id)}">'
            f'<h2>{verb} <span class="amount">{money(req.amount)}</span>{budget} to {who}'
            f' <span class=muted>({h(req.merchant_id)})</span></h2>'
            f'<div class="actions"><form method="post" action="/approvals/{h(req.id)}/approve">{csrf_field(csrf)}'
            f'<button type="submit" class="approve">Approve</button></form>'
            f'<form method="post" action="/approvals/{h(req.id)}/deny">{csrf_field(csrf)}'
            '<input type="text" name="reason" placeholder="Reason (optional)" maxlength="500" aria-label="Reason">'
            '<button type="submit" class="deny">Deny</button></form></div>'
            f"<ul class=items>{items}</ul>"
            f"<dl><dt>Budget</dt><dd>{where}</dd>"
            f"<dt>Why you are asked</dt><dd><ul>{rules}</ul></dd>"
            f'<dt>Budget left after</dt><dd class="left">{money(req.budget_left)}</dd>'
            f"<dt>Asked</dt><dd>{when(req.created_at, rel=True)}</dd>"
            f'<dt>Expires</dt><dd><time class="countdown" datetime="{h(req.expires_at.isoformat())}">'
            f"in {left // 60} min {left % 60} s</time></dd></dl></article>")


def approval_page(rec: ApprovalRecord, csrf: str, now: datetime, flash: Iterable[str] = ()) -> str:
    """One approval: its card while pending, else its outcome (the page an MCP client links to)."""
    if rec.status == "pending":
        body = _approval_card(rec, csrf, now)
    else:
        req = rec.request
        body = (f'<article class="card approval" data-approval="{h(req.id)}"><h2>{h(req.amount)} to '
                f"{h(req.merchant_name or req.merchant_id)}</h2><p>This approval is "
                f'<span class="badge {h(rec.status)}">{h(rec.status)}</span>'
                f"{' by ' + h(rec.decided_by) if rec.decided_by else ''}.</p></article>")
    return layout(f"Approval {rec.request.id}", f"<h1>Approval {h(rec.request.id)}</h1>{body}", csrf=csrf,
                  active="inbox", flash=flash)


def inbox_page(pending: list[ApprovalRecord], recent: list[ApprovalRecord], csrf: str, now: datetime,
               version: str, flash: Iterable[str] = (), outcomes: Mapping[str, Entry | None] | None = None) -> str:
    cards = "".join(_approval_card(rec, csrf, now) for rec in pending)
    if not cards:
        cards = '<p class="empty">No payment is waiting for you.</p>'
    rows = []
    for rec in recent:
        req = rec.request
        words, badge = approval_state(rec, (outcomes or {}).get(rec.id))
        reopen = ""
        if rec.status == "denied":
            reopen = (f'<form method="post" action="/approvals/{h(req.id)}/reopen" class=inline>{csrf_field(csrf)}'
                      '<button class="link">Let the agent ask again</button></form>')
        rows.append(f'<tr data-approval="{h(req.id)}" class="status-{h(rec.status)}">'
                    f'<td data-label="Answered">{when(rec.decided_at or req.expires_at, rel=True)}</td>'
                    f'<td data-label="State"><span class="badge {badge}">{h(words)}</span></td>'
                    f'<td data-label="Payment">{money(req.amount)} to {h(req.merchant_name or req.merchant_id)}'
                    f'<br><span class=muted>{h(rec.budget_id)} · {h(req.id)}</span></td>'
                    f'<td data-label="By">{h(rec.decided_by or "")}</td><td data-label="Reason">{h(rec.reason)}</td>'
                    f'<td data-label="">{reopen}</td></tr>')
    table = ('<table class="stack"><thead><tr><th>Answered</th><th>State</th><th>Payment</th><th>By</th>'
             f"<th>Reason</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
             if rows else '<p class="muted">Nothing answered yet.</p>')
    body = (f'<h1>Approvals <span class="count" id="pending-count">{len(pending)}</span></h1>'
            f'<section id="pending" data-version="{h(version)}" data-pending="{len(pending)}">{cards}</section>'
            f"<h2>Answered and expired</h2>{table}")
    return layout("Approvals", body, csrf=csrf, active="inbox", flash=flash, pending=len(pending))
