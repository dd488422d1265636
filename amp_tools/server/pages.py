"""HTML of the budgets overview (the landing page) and of one budget's page.

Tables carry ``data-label`` on every cell so that on a phone each row stacks into a card
(CSS only; nothing scrolls sideways). Every value goes through `words` (escaped); forms carry
the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from amp_tools.ledger import AuditRecord, Entry, VerifyReport

from .budgets import BudgetRow, Limits
from .data import Detail
from .views import csrf_field, layout
from .words import approval_state, budget_href, h, money, payment_state, policy_words, released_why, when

__all__ = ["PAGE_SIZE", "Listing", "budget_page", "overview_page"]

PAGE_SIZE = 50
SORTS = {"name": "Budget", "used": "Used", "left": "Left", "pending": "Waiting", "last": "Last payment"}


@dataclass(frozen=True)
class Listing:
    """What the overview was asked for: a search, a sort column and direction, a page."""

    q: str = ""
    sort: str = "last"
    desc: bool = True
    page: int = 1

    @classmethod
    def parse(cls, q: str, sort: str, order: str, page: str) -> Listing:
        return cls(q.strip()[:100], sort if sort in SORTS else "last", order != "asc",
                   int(page) if page.isdigit() and 0 < len(page) < 6 else 1)

    def href(self, **changes: Any) -> str:
        values = {"q": self.q, "sort": self.sort, "order": "desc" if self.desc else "asc", "page": self.page,
                  **changes}
        return h("/budgets?" + urlencode({k: v for k, v in values.items() if v not in ("", None)}))

    def order(self, rows: list[BudgetRow]) -> list[BudgetRow]:
        def key(row: BudgetRow) -> tuple[Any, ...]:
            if self.sort == "name":
                return (row.budget_id.casefold(),)
            if self.sort == "used":
                return (row.used,)
            if self.sort == "left":
                return (row.left if row.left is not None else -1,)
            if self.sort == "pending":
                return (row.pending,)
            # never paid sorts before any payment; the time itself only compares among paid rows
            return (row.last_payment is not None, row.last_payment.isoformat() if row.last_payment else "")
        # Ties keep a stable, readable order: by budget id.
        return sorted(sorted(rows, key=lambda r: r.budget_id), key=key, reverse=self.desc)


def _figures(row: BudgetRow) -> str:
    used = money(row.money(row.used))
    if row.limit is None:
        return f'<span class="used">{used}</span> <span class=muted>(no limit known)</span>'
    share = min(100, row.used * 100 // row.limit) if row.limit else 100
    return (f'<span class="used">{used}</span> <span class=muted>of {money(row.money(row.limit))}</span>'
            f'<meter min="0" max="100" value="{share}" aria-label="share used"></meter>')


def _state(row: BudgetRow) -> str:
    if row.frozen:
        return f'<span class="badge frozen" title="{h(row.frozen_reason)}">frozen</span>'
    return '<span class="badge active">active</span>'


def _row(row: BudgetRow, depth: int = 0) -> str:
    name = h(row.budget_id if depth == 0 else row.budget_id.rsplit("/", 1)[-1])
    shown_name = row.budget_id.rsplit("/", 1)[-1]
    label = (f' <span class=muted>{h(row.name)}</span>' if row.name and row.name not in (row.budget_id, shown_name)
             else "")
    waiting = (f'<a href="/inbox" class="badge pending">{row.pending}</a>' if row.pending else "0")
    cells = (f'<td data-label="Budget"><a href="{budget_href(row.budget_id)}">{name}</a>{label}</td>'
             f'<td data-label="Used / limit">{_figures(row)}</td>'
             f'<td data-label="Left" class="left">{money(row.money(row.left))}</td>'
             f'<td data-label="State">{_state(row)}</td><td data-label="Waiting">{waiting}</td>'
             f'<td data-label="Last payment">{when(row.last_payment, rel=True)}</td>')
    out = f'<tr data-budget="{h(row.budget_id)}" class="depth-{min(depth, 3)}">{cells}</tr>'
    if row.children:
        inner = "".join(_row(child, depth + 1) for child in sorted(row.children, key=lambda r: r.budget_id))
        out += (f'<tr class="subs"><td colspan="6"><details><summary>{len(row.children)} sub-budget(s) of '
                f"{name}: each level's room</summary><table class=\"stack sub\"><tbody>{inner}</tbody></table>"
                "</details></td></tr>")
    return out


def _revoke(csrf: str) -> str:
    return ('<section class="card"><h2>Revoke an AMP mandate</h2><form method="post" action="/mandates/revoke" '
            f'class="actions">{csrf_field(csrf)}<input name="mandate_id" placeholder="Mandate id" required '
            'maxlength="128" pattern="[A-Za-z0-9._:\\-]{1,128}" aria-label="Mandate id"><button class="deny">Revoke'
            '</button></form><p class=hint>The wallet stops every further payment under the mandate.</p></section>')


def overview_page(rows: list[BudgetRow], listing: Listing, csrf: str, version: str, pending: int,
                  flash: Iterable[str] = (), network: bool = False) -> str:
    if listing.q:
        needle = listing.q.casefold()
        chosen = [r for r in rows if needle in r.budget_id.casefold() or needle in (r.name or "").casefold()]
    else:
        ids = {r.budget_id for r in rows}
        chosen = [r for r in rows if r.parent is None or r.parent not in ids]  # sub-budgets open under these
    chosen = listing.order(chosen)
    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    page = min(listing.page, pages)
    shown = chosen[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    waiting = (f'<p class="flash inbox-count"><a href="/inbox">{pending} payment(s) waiting for your approval</a>'
               "</p>" if pending else '<p class="muted inbox-count">Nothing is waiting for your approval.</p>')

    def head(key: str) -> str:
        if key not in SORTS:
            return f"<th>{key}</th>"
        current = listing.sort == key
        flip = "asc" if current and listing.desc else "desc"
        sort = f' aria-sort="{"descending" if listing.desc else "ascending"}"' if current else ""
        return f'<th{sort}><a href="{listing.href(sort=key, order=flip, page=1)}">{SORTS[key]}</a></th>'
    heads = "".join(head(k) for k in ("name", "used", "left", "State", "pending", "last"))
    search = (f'<form method="get" action="/budgets" class="search" role="search"><input type="search" name="q" '
              f'value="{h(listing.q)}" placeholder="Search budgets" aria-label="Search budgets" maxlength="100">'
              f'<input type="hidden" name="sort" value="{h(listing.sort)}"><input type="hidden" name="order" '
              f'value="{"desc" if listing.desc else "asc"}"><button>Search</button></form>')
    body_rows = "".join(_row(r) for r in shown)
    table = (f'<table class="stack budgets"><thead><tr>{heads}</tr></thead><tbody>{body_rows}</tbody></table>'
             if shown else
             '<p class="empty">No budget matches.</p>' if listing.q else
             '<p class="empty">No budget has been used yet.</p>')
    nav = ""
    if pages > 1:
        prev = f'<a href="{listing.href(page=page - 1)}" rel="prev">Previous</a>' if page > 1 else ""
        nxt = f'<a href="{listing.href(page=page + 1)}" rel="next">Next</a>' if page < pages else ""
        nav = f'<nav class="pages" aria-label="pages">{prev}<span>Page {page} of {pages}</span>{nxt}</nav>'
    count = f'<p class="muted">{len(chosen)} budget(s){" found" if listing.q else ""}.</p>'
    body = (f'<h1>Budgets</h1><div data-version="{h(version)}" data-pending="{pending}">{waiting}</div>'
            f"{search}{count}{table}{nav}{_revoke(csrf) if network else ''}")
    return layout("Budgets", body, csrf=csrf, active="budgets", flash=flash, pending=pending)


# ------------------------------------------------------------------ one budget
def _window_rows(title: str, figures: Mapping[str, Any], label: str) -> str:
    if not figures:
        return ""
    def named(key: str, value: Mapping[str, Any]) -> str:
        name = value.get("name")
        return h(key) if not name or name == key else f"{h(name)} <span class=muted>{h(key)}</span>"
    rows = "".join(f'<tr><td data-label="{h(label)}">{named(key, value)}'
                   f'</td><td data-label="Used">{money(value.get("used"))}</td>'
                   f'<td data-label="Limit">{money(value.get("limit"))}</td>'
                   f'<td data-label="Left">{money(value.get("left"))}</td>'
                   f'<td data-label="Payments">{h(value.get("count", ""))}</td></tr>'
                   for key, value in figures.items())
    return (f'<h3>{h(title)}</h3><table class="stack"><thead><tr><th>{h(label)}</th><th>Used</th><th>Limit</th>'
            f"<th>Left</th><th>Payments</th></tr></thead><tbody>{rows}</tbody></table>")


_LEGS = (("mandate_charge", "Mandate charge"), ("wallet_debit", "Wallet debit"), ("debited", "Debited"),
         ("locked_rate", "Locked rate"), ("quote_id", "Quote"), ("budget_rate", "Budget rate"),
         ("basis", "Counted from"))
_BASIS = {"checkout": "the checkout amount", "mandate_charge": "the mandate charge",
          "wallet_debit": "the wallet debit", "locked_quote": "the locked quote"}


def _legs(entry: Entry) -> str:
    """Every leg the entry records: what the merchant asked, what left the budget, the rate and ids."""
    parts = [f"<dt>Checkout</dt><dd>{money(entry.amount)}</dd>"]
    if entry.budget_amount != entry.amount:
        parts.append(f"<dt>From budget</dt><dd>{money(entry.budget_amount)}</dd>")
    if entry.reserved is not None and entry.reserved != entry.budget_amount:
        parts.append(f"<dt>Held</dt><dd>{money(entry.reserved)}</dd>")
    if entry.fx_rate is not None:
        parts.append(f"<dt>Rate</dt><dd>{h(entry.fx_rate)}</dd>")
    # The legs as the network reported them, when the payment path recorded them with the outcome
    # (``outcome["legs"]``); only what is there is shown, each value escaped (it came from the network).
    outcome = entry.outcome or {}
    legs = outcome.get("legs")
    recorded: Mapping[str, Any] = legs if isinstance(legs, Mapping) else outcome
    for key, label in _LEGS:
        value = recorded.get(key)
        if key == "basis" and isinstance(value, str):
            value = _BASIS.get(value, value)
        if isinstance(value, Mapping) and "currency" in value:
            parts.append(f"<dt>{label}</dt><dd>{money(value)}</dd>")
        elif isinstance(value, str | int) and not isinstance(value, bool) and value != "":
            parts.append(f"<dt>{label}</dt><dd>{h(value)}</dd>")
    if entry.external_ref:
        parts.append(f"<dt>Transaction</dt><dd><code>{h(entry.external_ref)}</code></dd>")
    if entry.refunded.minor:
        parts.append(f"<dt>Refunded</dt><dd>{money(entry.refunded)}</dd>")
    return f'<dl class="legs">{"".join(parts)}</dl>'


_STEP = {"reserve": "held", "commit": "paid", "release": "not paid", "refund": "refunded",
         "resolution": "resolved by hand", "transition": ""}


def _history(records: list[AuditRecord]) -> str:
    steps = []
    for record in records:
        word = _STEP.get(record.kind, record.kind.replace("_", " "))
        if record.kind == "transition":
            word = {"awaiting_approval": "asked you", "sending": "sent to the wallet",
                    "unknown": "no answer: outcome unknown"}.get(str(record.payload.get("to")), "moved on")
        amount = record.payload.get("amount") if record.kind == "refund" else None
        extra = f" {money(amount)}" if isinstance(amount, Mapping) else ""
        steps.append(f"<li>{h(word)}{extra} {when(record.ts)}</li>")
    return f'<ol class="history">{"".join(steps)}</ol>' if steps else ""


def _payments(detail: Detail, csrf: str, resolvable: Callable[[Entry], bool], crew: bool) -> str:
    rows = []
    for e in detail.entries:
        words, badge = payment_state(e)
        resolve = ""
        if resolvable(e):
            resolve = (f'<details><summary>Resolve</summary><form method="post" action="/payments/{e.id}/resolve" '
                       f'class="resolve">{csrf_field(csrf)}'
                       '<label><input type="radio" name="paid" value="yes" required> paid</label>'
                       '<label><input type="radio" name="paid" value="no"> not paid</label>'
                       '<input name="transaction_id" placeholder="Transaction id (if paid)" maxlength="128">'
                       '<input name="reason" placeholder="What the wallet says" required maxlength="500">'
                       "<button>Resolve</button></form></details>")
        why = f'<p class="muted">{h(released_why(e.reason))}</p>' if e.reason and e.status == "released" else ""
        who = f'<br><span class="muted">{h(e.budget_id)}</span>' if crew else ""
        rows.append(f'<tr data-entry="{e.id}"><td data-label="When">{when(e.created_at, rel=True)}'
                    f'<br><span class=muted>#{e.id}</span></td>'
                    f'<td data-label="Merchant">{h(e.merchant_name or e.merchant_id)}{who}'
                    f'{"<br><span class=muted>MCC " + h(e.mcc) + "</span>" if e.mcc else ""}</td>'
                    f'<td data-label="Amount" class="amount">{money(e.counted if e.action == "pay" else e.amount)}'
                    f"{_legs(e)}</td>"
                    f'<td data-label="State"><span class="badge {badge}">{h(words)}</span>{why}'
                    f"{_history(detail.history.get(e.id, []))}{resolve}</td></tr>")
    if not rows:
        return '<p class="muted">No payments yet.</p>'
    return ('<table class="stack payments"><thead><tr><th>When</th><th>Merchant</th><th>Counted / legs</th>'
            f"<th>State</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _approvals(detail: Detail) -> str:
    rows = []
    for rec, entry in detail.approvals:
        words, badge = approval_state(rec, entry)
        req = rec.request
        rows.append(f'<tr data-approval="{h(req.id)}"><td data-label="Asked">{when(req.created_at, rel=True)}</td>'
                    f'<td data-label="Payment">{money(req.amount)} to {h(req.merchant_name or req.merchant_id)}</td>'
                    f'<td data-label="State"><span class="badge {badge}">{h(words)}</span></td>'
                    f'<td data-label="Answered">{when(rec.decided_at, rel=True)}</td>'
                    f'<td data-label="By">{h(rec.decided_by or "")}</td>'
                    f'<td data-label="Why">{h(rec.reason or "; ".join(req.rules))}</td></tr>')
    if not rows:
        return '<p class="muted">No approval was asked for this budget.</p>'
    return ('<table class="stack"><thead><tr><th>Asked</th><th>Payment</th><th>State</th><th>Answered</th>'
            f"<th>By</th><th>Why</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


_AUDIT_KEYS = ("approval_id", "entry_id", "merchant_id", "amount", "budget_amount", "credited", "debited",
               "approved", "by", "reason", "rule", "external_ref", "transaction_id", "to", "status", "delivered")


def audit_detail(payload: Mapping[str, Any]) -> str:
    """The record's main facts, every amount in major units with its currency."""
    parts = []
    for key in _AUDIT_KEYS:
        value = payload.get(key)
        if value in (None, ""):
            continue
        shown = money(value) if isinstance(value, Mapping) and "currency" in value else h(value)
        parts.append(f"{h(key.replace('_', ' '))}: {shown}")
    return " · ".join(parts)[:600]


def audit_table(verify: VerifyReport, records: list[AuditRecord], crew: bool = False) -> str:
    verdict = (f'<p class="ok" id="audit-verify">Audit chain verified: {verify.records} records, head '
               f"{h(verify.head_hash[:16])}…</p>" if verify.ok else
               f'<p class="error" id="audit-verify">Audit chain BROKEN at record {h(verify.first_bad_seq)}: '
               f"{h(verify.problem)}</p>")
    rows = "".join(f'<tr><td data-label="When">{when(r.ts)}<br><span class=muted>#{r.seq}</span></td>'
                   f'<td data-label="What">{h(r.kind.replace("_", " "))}'
                   f'{"<br><span class=muted>" + h(r.budget_id) + "</span>" if crew else ""}</td>'
                   f'<td data-label="Detail" class="detail">{audit_detail(r.payload)}</td></tr>' for r in records)
    table = (f'<table class="stack audit"><thead><tr><th>When</th><th>What</th><th>Detail</th></tr></thead>'
             f"<tbody>{rows}</tbody></table>" if rows else '<p class="muted">No audit record yet.</p>')
    return f"{verdict}{table}"


def _freeze(row: BudgetRow, csrf: str) -> str:
    action = "unfreeze" if row.frozen else "freeze"
    state = (f'<p class="frozen" role="status">Frozen: {h(row.frozen_reason or "-")}. Every payment is refused '
             "until you unfreeze it.</p>" if row.frozen else "")
    return (f'{state}<form method="post" action="{budget_href(row.budget_id, "/" + action)}" class="freeze">'
            f"{csrf_field(csrf)}"
            + ("" if row.frozen else '<input name="reason" placeholder="Why (optional)" maxlength="500" '
                                     'aria-label="Why freeze">')
            + f'<button class="{"approve" if row.frozen else "deny"}">{"Unfreeze" if row.frozen else "Freeze"} budget'
              "</button></form>")


def _policy(limits: Limits) -> str:
    if limits.policy is None:
        return f'<p class="muted">No limits known: {h(limits.source)}.</p>'
    rules = "".join(f"<li>{line}</li>" for line in policy_words(limits.policy))
    signed = {True: "signed", False: "not signed", None: "not signed (a file, not a stored policy)"}[limits.signed]
    version = h(limits.version) if limits.version else "none"
    return (f'<ul class="rules">{rules}</ul><p class="muted">Version {version}; {signed}. '
            f"Source: {h(limits.source)}.</p>")


def budget_page(row: BudgetRow, limits: Limits, report: Mapping[str, Any], detail: Detail, verify: VerifyReport,
                csrf: str, resolvable: Callable[[Entry], bool], version: str, pending: int,
                flash: Iterable[str] = (), chart: str = "") -> str:
    total = report.get("total", {})
    held = total.get("held")
    crumbs = ""
    if row.parent:
        crumbs = f'<p class="muted">Sub-budget of <a href="{budget_href(row.parent)}">{h(row.parent)}</a></p>'
    subs = ""
    if row.children:
        items = "".join(f'<li><a href="{budget_href(c.budget_id)}">{h(c.budget_id)}</a>: used '
                        f"{money(c.money(c.used))}"
                        f"{', ' + money(c.money(c.left)) + ' left of ' + money(c.money(c.limit)) if c.limit else ''}"
                        "</li>" for c in sorted(row.children, key=lambda r: r.budget_id))
        subs = f"<h3>Sub-budgets (their spending counts here too)</h3><ul>{items}</ul>"
    figures = (f'<dl class="totals"><dt>Used</dt><dd class="used">{money(total.get("used"))}</dd>'
               f'<dt>Limit</dt><dd>{money(total.get("limit"))}</dd><dt>Left</dt><dd class="left">'
               f'{money(total.get("left"))}</dd><dt>Payments</dt><dd>{h(total.get("count", 0))}</dd>'
               + (f"<dt>Not yet settled</dt><dd>{money(held.get('amount'))} ({h(held.get('count'))})</dd>"
                  if isinstance(held, Mapping) else "") + "</dl>")
    velocity = report.get("velocity")
    speed = (f'<p>Payments in the last {h(velocity.get("per"))}: {h(velocity.get("count"))} of '
             f'{h(velocity.get("limit"))}.</p>' if isinstance(velocity, Mapping) and velocity.get("limit") else "")
    title = f"Budget {row.budget_id}"
    body = (f'<h1>{h(title)} {_state(row)}</h1><div data-version="{h(version)}" data-pending="{pending}"></div>'
            f"{crumbs}"
            f'<section class="card" data-budget="{h(row.budget_id)}">{figures}{_freeze(row, csrf)}</section>'
            f'<section class="card"><h2>Policy</h2>{_policy(limits)}</section>'
            f'<section class="card"><h2>Used and left</h2>{chart}{speed}'
            f"{_window_rows('Per window', report.get('windows', {}), 'Window')}"
            f"{_window_rows('Per merchant', report.get('merchants', {}), 'Merchant')}"
            f"{_window_rows('Per MCC', report.get('mccs', {}), 'MCC')}{subs}</section>"
            f'<section class="card"><h2>Payments</h2>{_payments(detail, csrf, resolvable, bool(row.children))}'
            "</section>"
            f'<section class="card"><h2>Approvals</h2>{_approvals(detail)}</section>'
            f'<section class="card"><h2>Audit trail</h2>{audit_table(verify, detail.audit, bool(row.children))}'
            "</section>")
    return layout(title, body, csrf=csrf, active="budgets", flash=flash, pending=pending)
