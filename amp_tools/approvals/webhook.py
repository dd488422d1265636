"""Reaching the person: a webhook approver that announces each new approval request.

`WebhookApprover` is an `OutOfBandApprover` (the question is parked in the shared store and the
person answers in the inbox or the CLI) that also announces every *new* question to a URL the
owner configures: a phone notification service, a chat, their own endpoint.

* Body: ``format="json"`` (an ``approval_request`` object), ``format="slack"`` (a Slack-compatible
  incoming-webhook payload: ``text`` plus ``blocks``; merchant and model text escaped so it can neither
  link nor mention) or ``format="ntfy"`` (plain text for an ntfy server, https://host/topic, with
  ``Title``, ``Click`` (the approval's page in the console), ``Priority`` and ``Tags`` headers). Each
  carries the merchant, the amount, why the policy asks, the expiry and the link; never a token, a
  credential or a key.
* Signature: ``X-AMP-Tools-Timestamp: <unix seconds>`` and
  ``X-AMP-Tools-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``. A receiver checks
  it with `verify_signature` (constant-time, with a freshness window against replays).
* Delivery never blocks the payment: `announce` only writes the notification to the outbox
  (`outbox`, in the ledger's database, in the caller's transaction time) and wakes a background worker
  (`courier`), which posts it under an overall deadline per attempt and per delivery and retries with
  backoff. The URL is never stored or logged: the outbox and the audit keep its host, and the worker
  finds its rows by a hash of the URL keyed with the webhook secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from amp_tools.approvals.approvers import OutOfBandApprover
from amp_tools.approvals.courier import BackgroundCourier, Courier
from amp_tools.approvals.outbox import Delivery, enqueue_steps
from amp_tools.approvals.request import ApprovalRequest
from amp_tools.approvals.store import ApprovalRecord, ApprovalStore
from amp_tools.clock import Clock
from amp_tools.errors import ConfigError
from amp_tools.untrusted import clean_text

__all__ = ["FORMATS", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookApprover", "approval_link", "render_payload",
           "sign", "slack_escape", "verify_signature"]

TIMESTAMP_HEADER = "X-AMP-Tools-Timestamp"
SIGNATURE_HEADER = "X-AMP-Tools-Signature"
Format = Literal["json", "slack", "ntfy"]
FORMATS = ("json", "slack", "ntfy")


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return "v1=" + digest


def verify_signature(secret: bytes, timestamp: str, body: bytes, signature: str, *, tolerance: float = 300,
                     now: float | None = None) -> bool:
    """True when `signature` is ours for this body and the timestamp is within `tolerance` seconds."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature.strip())


def slack_escape(value: object) -> str:
    """Text for Slack mrkdwn: cleaned, and ``&``, ``<``, ``>`` escaped, so nothing in it can become a link
    (``<https://..|..>``), a mention (``<!channel>``, ``<@U..>``) or a broken entity."""
    return clean_text(value, 500).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def approval_link(console_url: str, approval_id: str) -> str:
    """The approval's place in the owner console, or "" without a console URL."""
    return f"{console_url.rstrip('/')}/inbox#{approval_id}" if console_url else ""


def _lines(request: ApprovalRequest, esc: Any) -> list[str]:
    refund = request.action == "refund"
    lines = [f"{'Refund of' if refund else 'Pay'} {request.amount_text()} {'from' if refund else 'to'} "
             f"{esc(request.merchant_text())}"]
    lines += [f"- {item.quantity} x {esc(item.name)} at {item.unit_amount}" for item in request.items]
    if request.rules:
        lines.append("Asked because: " + esc("; ".join(request.rules)))
    lines.append(f"Budget left after: {request.budget_left} · expires {request.expires_at:%Y-%m-%d %H:%M} UTC")
    return lines


def render_payload(request: ApprovalRequest, inbox_url: str, fmt: Format) -> dict[str, Any]:
    """The JSON body for one request (json and slack formats); only what a person needs to decide."""
    link = approval_link(inbox_url, request.id)
    if fmt == "slack":
        lines = _lines(request, slack_escape)
        lines[0] = "*Approval needed*: " + lines[0]
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]
        if link:
            blocks.append({"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open the approval inbox"}, "url": link}]})
        # The link is ours, but escaped too: a `|` or `>` in a configured URL must not reshape the message.
        tail = f" <{slack_escape(link).replace('|', '%7C')}|open inbox>" if link else ""
        return {"text": f"Approval needed: {request.amount_text()} to {slack_escape(request.merchant_text())}"
                        + tail, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}
    public = request.to_public()
    public.pop("binding", None)  # an internal hash; of no use to a person
    return {"type": "approval_request", "approval": public, "summary": request.summary(), "inbox_url": link}


def render_ntfy(request: ApprovalRequest, inbox_url: str) -> tuple[bytes, dict[str, str]]:
    """The plain-text body and the ntfy headers (ASCII only: the merchant's name stays in the body)."""
    link = approval_link(inbox_url, request.id)
    headers = {"Title": f"Approval needed: {request.amount}", "Priority": "high", "Tags": "moneybag",
               "Content-Type": "text/plain; charset=utf-8"}
    if link:
        headers["Click"] = link
    return "\n".join(_lines(request, clean_text)).encode("utf-8"), headers


def _ascii_header(value: str) -> str:
    return value.encode("ascii", "replace").decode("ascii")


class WebhookApprover(OutOfBandApprover):
    """Parks each request in the store and queues every new one for a signed POST to `url`.

    `token` (optional) is sent as ``Authorization: Bearer`` (an ntfy access token, for instance); like the
    URL it is held in memory only. `background=False` leaves delivery to `deliver_due` (tests, or a
    separate ``amp-tools approvals deliver`` / ``serve`` process with the same URL and secret).
    """

    name = "webhook"

    def __init__(self, store: ApprovalStore, url: str, secret: str | bytes, *, inbox_url: str = "",
                 fmt: Format = "json", attempts: int = 6, backoff: float = 2.0, max_backoff: float = 300.0,
                 attempt_timeout: float = 10.0, deadline: float = 900.0, token: str | None = None,
                 clock: Clock | None = None, budget_id: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, background: bool = True) -> None:
        super().__init__(store, clock=clock, budget_id=budget_id)
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError("the webhook url must be an http(s) URL such as https://hooks.example/approvals")
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        if len(key) < 16:
            raise ConfigError("the webhook secret must be at least 16 bytes; generate one with "
                              "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        if fmt not in FORMATS:
            raise ConfigError(f"webhook format {clean_text(fmt, 20)!r} must be 'json', 'slack' or 'ntfy'")
        if attempts < 1:
            raise ConfigError(f"webhook attempts {attempts} must be at least 1")
        if attempt_timeout <= 0 or deadline < attempt_timeout:
            raise ConfigError("the webhook's attempt_timeout must be positive and its deadline at least as long")
        self.url, self._secret, self.inbox_url, self.fmt, self._token = url, key, inbox_url, fmt, token
        # Only the host is ever written down (the path or query may be the secret: Slack, ntfy topics).
        self.host = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.dest = hmac.new(key, b"amp-tools-webhook-dest\x00" + url.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
        self.courier = Courier(store.ledger, self.dest, self._send, attempts=attempts, backoff=backoff,
                               max_backoff=max_backoff, attempt_timeout=attempt_timeout, deadline=deadline,
                               clock=self.clock, transport=transport)
        self.background = BackgroundCourier(self.courier) if background else None

    def render(self, request: ApprovalRequest) -> str:
        """The stored body of a notification: the JSON payload, or for ntfy its text and headers (no secrets)."""
        if self.fmt == "ntfy":
            text, headers = render_ntfy(request, self.inbox_url)
            return json.dumps({"text": text.decode("utf-8"), "headers": headers}, sort_keys=True, ensure_ascii=False)
        return json.dumps(render_payload(request, self.inbox_url, self.fmt), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False)

    async def announce(self, record: ApprovalRecord) -> None:
        body, now = self.render(record.request), self.clock.now()
        await self.store.ledger.run_write(lambda: enqueue_steps(record.id, record.budget_id, self.dest, self.host,
                                                                self.fmt, body, now))
        if self.background is not None:
            self.background.kick()  # returns at once; the worker thread does the network part

    async def deliver_due(self) -> list[Delivery]:
        """One attempt at each notification due now, in the calling task; returns them as they stand."""
        return await self.courier.run_once()

    def close(self, timeout: float = 5.0) -> None:
        """Give due notifications up to `timeout` seconds, then stop the background worker (what is still owed
        stays in the outbox for ``amp-tools approvals deliver`` or the console)."""
        if self.background is not None:
            self.background.close(timeout)

    async def _send(self, client: httpx.AsyncClient, delivery: Delivery) -> int:
        extra = {"Content-Type": "application/json"}
        body = delivery.body.encode("utf-8")
        if delivery.format == "ntfy":
            stored = json.loads(delivery.body)
            body, extra = str(stored["text"]).encode("utf-8"), {k: _ascii_header(str(v))
                                                                 for k, v in stored["headers"].items()}
        ts = int(time.time())
        headers = {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(self._secret, ts, body),
                   "User-Agent": "amp-tools-webhook", **extra}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        resp = await client.post(self.url, content=body, headers=headers)
        return resp.status_code
