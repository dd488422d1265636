"""HTML of the owner's web app: login, inbox and spending dashboard, rendered on the server.

Every dynamic value goes through `h()` (HTML escaping); forms carry the session's CSRF token.
Nothing is loaded from another origin: one stylesheet and one small script, both served by the app.
Only what a person needs is shown: no payment token, credential (L1/L2/L3) or key exists in the
data these functions receive, and the audit payloads shown are the ledger's redacted ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from html import escape
from typing import Any

from amp_tools.approvals import ApprovalRecord
from amp_tools.ledger import AuditRecord, Entry, VerifyReport
from amp_tools.ledger.controls import BudgetControl
from amp_tools.payments import state_of

__all__ = ["dashboard_page", "inbox_page", "login_page"]


def h(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _money(value: Mapping[str, Any] | None) -> str:
    return "-" if not value else h(f"{value['amount']} {value['currency']}")


def _layout(title: str, body: str, *, csrf: str | None, active: str = "", flash: Iterable[str] = ()) -> str:
    nav = ""
    if csrf is not None:
        links = "".join(f'<a href="{href}"{" aria-current=page" if key == active else ""}>{label}</a>'
                        for key, href, label in (("inbox", "/inbox", "Approvals"), ("dashboard", "/dashboard",
                                                                                       "Spending")))
        nav = (f'<nav>{links}<form method="post" action="/logout" class="inline">'
               f'<input type="hidden" name="csrf" value="{h(csrf)}"><button class="link">Log out</button></form></nav>')
    notes = "".join(f'<p class="flash" role="status">{h(text)}</p>' for text in flash)
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{h(title)} · amp-tools</title><link rel="icon" href="data:,">'
            '<link rel="stylesheet" href="/static/app.css">'
            '<script src="/static/app.js" defer></script></head>'
            f'<body><header><strong>amp-tools</strong> owner console{nav}</header><main>{notes}{body}</main>'
            "</body></html>")


def login_page(message: str = "", next_path: str = "") -> str:
    note = f'<p class="error" role="alert">{h(message)}</p>' if message else ""
    back = f'<input type="hidden" name="next" value="{h(next_path)}">' if next_path else ""
    body = (f'<section class="card narrow"><h1>Log in</h1>{note}<form method="post" action="/login">{back}'
            '<label>Passphrase or token <input type="password" name="passphrase" autocomplete="current-password" '
            'required autofocus maxlength="200"></label><button type="submit">Log in</button></form>'
            "<p class=hint>The passphrase was set when the inbox was started (or printed once in its terminal).</p>"
            "</section>")
    return _layout("Log in", body, csrf=None)


def _csrf_field(csrf: str) -> str:
    return f'<input type="hidden" name="csrf" value="{h(csrf)}">'


def _approval_card(rec: ApprovalRecord, csrf: str, now: datetime) -> str:
    req = rec.request
    items = "".join(f"<li>{h(i.quantity)} × {h(i.name)} <span class=muted>[{h(i.product_id)}]</span> at "
                    f"{h(i.unit_amount)}</li>" for i in req.items) or "<li class=muted>no item lines</li>"
    budget = (f" <span class=muted>= {h(req.budget_amount)} from the budget</span>"
              if req.budget_amount.currency != req.amount.currency else "")
    rules = "".join(f"<li>{h(rule)}</li>" for rule in req.rules) or "<li>-</li>"
    left = int((req.expires_at - now).total_seconds())
    verb = "Refund" if req.action == "refund" else "Pay"
    who = h(req.merchant_name or req.merchant_id)
    return (f'<article class="card approval" id="{h(req.id)}" data-approval="{h(req.id)}">'
            f'<h2>{verb} <span class="amount">{h(req.amount)}</span>{budget} to {who}'
            f' <span class=muted>({h(req.merchant_id)})</span></h2>'
            f"<ul class=items>{items}</ul>"
            f"<dl><dt>Budget</dt><dd>{h(rec.budget_id or '-')}</dd>"
            f"<dt>Why you are asked</dt><dd><ul>{rules}</ul></dd>"
            f'<dt>Budget left after</dt><dd class="left">{h(req.budget_left)}</dd>'
            f'<dt>Expires</dt><dd><time class="countdown" datetime="{h(req.expires_at.isoformat())}">'
            f"{max(left, 0) // 60} min {max(left, 0) % 60} s</time></dd></dl>"
            f'<div class="actions"><form method="post" action="/approvals/{h(req.id)}/approve">{_csrf_field(csrf)}'
            f'<button type="submit" class="approve">Approve</button></form>'
            f'<form method="post" action="/approvals/{h(req.id)}/deny">{_csrf_field(csrf)}'
            '<input type="text" name="reason" placeholder="Reason (optional)" maxlength="500" aria-label="Reason">'
            '<button type="submit" class="deny">Deny</button></form></div></article>')


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
    return _layout(f"Approval {rec.request.id}", f"<h1>Approval {h(rec.request.id)}</h1>{body}", csrf=csrf,
                   active="inbox", flash=flash)


def inbox_page(pending: list[ApprovalRecord], recent: list[ApprovalRecord], csrf: str, now: datetime,
               version: str, flash: Iterable[str] = ()) -> str:
    cards = "".join(_approval_card(rec, csrf, now) for rec in pending)
    if not cards:
        cards = '<p class="empty">No payment is waiting for you.</p>'
    rows = []
    for rec in recent:
        req = rec.request
        reopen = ""
        if rec.status == "denied":
            reopen = (f'<form method="post" action="/approvals/{h(req.id)}/reopen" class=inline>{_csrf_field(csrf)}'
                      '<button class="link">Let the agent ask again</button></form>')
        rows.append(f'<tr data-approval="{h(req.id)}" class="status-{h(rec.status)}"><td>{h(req.id)}</td>'
                    f'<td><span class="badge {h(rec.status)}">{h(rec.status)}</span></td>'
                    f"<td>{h(req.merchant_name or req.merchant_id)}</td><td>{h(req.amount)}</td>"
                    f"<td>{h(rec.decided_by or '')}</td><td>{h(rec.reason)}</td><td>{reopen}</td></tr>")
    table = ("<table><thead><tr><th>Approval</th><th>State</th><th>Merchant</th><th>Amount</th><th>By</th>"
             f"<th>Reason</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
             if rows else '<p class="muted">Nothing answered yet.</p>')
    body = (f'<h1>Approvals <span class="count" id="pending-count">{len(pending)}</span></h1>'
            f'<section id="pending" data-version="{h(version)}">{cards}</section>'
            f"<h2>Answered and expired</h2>{table}")
    return _layout("Approvals", body, csrf=csrf, active="inbox", flash=flash)


def _figure_rows(title: str, figures: Mapping[str, Any], label: str = "") -> str:
    if not figures:
        return ""
    rows = "".join(f"<tr><td>{h(value.get('name') or key) if label else h(key)}</td>"
                   f"<td>{_money(value.get('used'))}</td><td>{_money(value.get('limit'))}</td>"
                   f"<td>{_money(value.get('left'))}</td><td>{h(value.get('count', ''))}</td></tr>"
                   for key, value in figures.items())
    return (f"<h3>{h(title)}</h3><table><thead><tr><th>{h(label or 'Window')}</th><th>Used</th><th>Limit</th>"
            f"<th>Left</th><th>Payments</th></tr></thead><tbody>{rows}</tbody></table>")


def _payment_rows(entries: list[Entry], csrf: str, resolvable: Callable[[Entry], bool]) -> str:
    rows = []
    for e in entries:
        fx = f"{e.fx_rate}" if e.fx_rate is not None else ""
        resolve = ""
        state = str(state_of(e))
        if resolvable(e):
            resolve = (f'<details><summary>Resolve</summary><form method="post" action="/payments/{e.id}/resolve" '
                       f'class="resolve">{_csrf_field(csrf)}'
                       '<label><input type="radio" name="paid" value="yes" required> paid</label>'
                       '<label><input type="radio" name="paid" value="no"> not paid</label>'
                       '<input name="transaction_id" placeholder="Transaction id (if paid)" maxlength="128">'
                       '<input name="reason" placeholder="What the wallet says" required maxlength="500">'
                       "<button>Resolve</button></form></details>")
        rows.append(f'<tr data-entry="{e.id}"><td>{e.id}</td><td>{e.created_at:%Y-%m-%d %H:%M}</td>'
                    f'<td><span class="badge {h(e.status)}">{h(state)}</span></td>'
                    f"<td>{h(e.merchant_name or e.merchant_id)}</td><td>{h(e.mcc or '')}</td><td>{h(e.amount)}</td>"
                    f"<td>{h(e.budget_amount)}</td><td>{h(fx)}</td><td>{h(e.external_ref or '')}</td>"
                    f"<td>{h(e.refunded) if e.refunded.minor else ''}</td><td>{resolve}</td></tr>")
    if not rows:
        return '<p class="muted">No payments yet.</p>'
    return ("<table class=payments><thead><tr><th>#</th><th>When (UTC)</th><th>State</th><th>Merchant</th>"
            "<th>MCC</th><th>Amount</th><th>From budget</th><th>FX</th><th>Transaction</th><th>Refunded</th>"
            f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def budget_section(report: Mapping[str, Any], control: BudgetControl | None, chart: str, entries: list[Entry],
                   csrf: str, resolvable: Callable[[Entry], bool]) -> str:
    budget_id = str(report["budget_id"])
    frozen = control is not None and control.frozen
    total = report.get("total", {})
    state = (f'<p class="frozen" role="status">Frozen by {h(control.changed_by)}: {h(control.reason or "-")}. '
             "Every payment is refused until you unfreeze it.</p>" if frozen and control else "")
    action = "unfreeze" if frozen else "freeze"
    toggle = (f'<form method="post" action="/budgets/{h(budget_id)}/{action}" class="freeze">{_csrf_field(csrf)}'
              + ("" if frozen else '<input name="reason" placeholder="Why (optional)" maxlength="500" '
                                   'aria-label="Why freeze">')
              + f'<button class="{"approve" if frozen else "deny"}">{"Unfreeze" if frozen else "Freeze"} budget'
                "</button></form>")
    return (f'<section class="card budget" data-budget="{h(budget_id)}"><h2>Budget {h(budget_id)} '
            f'<span class="badge {"frozen" if frozen else "active"}">{"frozen" if frozen else "active"}</span></h2>'
            f"{state}{toggle}"
            f'<dl class="totals"><dt>Used</dt><dd class="used">{_money(total.get("used"))}</dd>'
            f'<dt>Limit</dt><dd>{_money(total.get("limit"))}</dd><dt>Left</dt><dd class="left">'
            f'{_money(total.get("left"))}</dd><dt>Payments</dt><dd>{h(total.get("count", 0))}</dd></dl>'
            f"{chart}"
            f"{_figure_rows('Per window', report.get('windows', {}))}"
            f"{_figure_rows('Per merchant', report.get('merchants', {}), 'Merchant')}"
            f"{_figure_rows('Per MCC', report.get('mccs', {}), 'MCC')}"
            f"<h3>Payments</h3>{_payment_rows(entries, csrf, resolvable)}</section>")


def _audit_section(report: VerifyReport, records: list[AuditRecord]) -> str:
    verdict = (f'<p class="ok" id="audit-verify">Audit chain verified: {report.records} records, head '
               f"{h(report.head_hash[:16])}…</p>" if report.ok else
               f'<p class="error" id="audit-verify">Audit chain BROKEN at record {h(report.first_bad_seq)}: '
               f"{h(report.problem)}</p>")
    rows = "".join(f"<tr><td>{r.seq}</td><td>{h(r.ts[:19])}</td><td>{h(r.kind)}</td><td>{h(r.budget_id)}</td>"
                   f"<td><code>{h(_brief(r.payload))}</code></td></tr>" for r in reversed(records))
    return (f'<section class="card"><h2>Audit trail</h2>{verdict}<table><thead><tr><th>#</th><th>When</th>'
            f"<th>Kind</th><th>Budget</th><th>Detail</th></tr></thead><tbody>{rows}</tbody></table></section>")


def _brief(payload: Mapping[str, Any]) -> str:
    keys = ("approval_id", "entry_id", "merchant_id", "amount", "approved", "by", "reason", "rule", "external_ref",
            "transaction_id", "status", "delivered")
    parts = []
    for key in keys:
        if key in payload and payload[key] not in (None, ""):
            value = payload[key]
            if isinstance(value, Mapping) and "minor" in value:
                value = f"{value['minor']} minor {value.get('currency', '')}"
            elif isinstance(value, Mapping) and "amount" in value:
                value = f"{value['amount']} {value.get('currency', '')}"
            parts.append(f"{key}={value}")
    return " ".join(parts)[:240]


def dashboard_page(sections: list[str], verify: VerifyReport, audit: list[AuditRecord], csrf: str,
                   network: bool, version: str, pending: int, flash: Iterable[str] = ()) -> str:
    revoke = ""
    if network:
        revoke = ('<section class="card"><h2>Revoke an AMP mandate</h2><form method="post" action="/mandates/revoke">'
                  f'{_csrf_field(csrf)}<input name="mandate_id" placeholder="Mandate id" required maxlength="128" '
                  'pattern="[A-Za-z0-9._:\\-]{1,128}" aria-label="Mandate id"><button class="deny">Revoke</button>'
                  "</form><p class=hint>The wallet stops every further payment under the mandate.</p></section>")
    waiting = (f'<p class="flash" data-version="{h(version)}"><a href="/inbox">{pending} payment(s) waiting for '
               "your approval</a></p>" if pending else f'<span hidden data-version="{h(version)}"></span>')
    body = ("<h1>Spending</h1>" + waiting + ("".join(sections) or '<p class="empty">No budget has been used yet.</p>')
            + revoke + _audit_section(verify, audit))
    return _layout("Spending", body, csrf=csrf, active="dashboard", flash=flash)
