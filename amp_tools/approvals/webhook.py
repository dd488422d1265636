"""Reaching the person: a webhook approver that POSTs each new approval request.

`WebhookApprover` is an `OutOfBandApprover` (the question is parked in the shared store and the
person answers in the inbox or the CLI) that also announces every *new* question to a URL the
owner configures: a phone notification service, a chat, their own endpoint.

* Body: ``format="json"`` (an ``approval_request`` object) or ``format="slack"`` (a Slack-compatible
  incoming-webhook payload: ``text`` plus ``blocks``). Both carry the merchant, the amount, why the
  policy asks, the expiry and a link to the inbox; never a token, a credential or a key.
* Signature: ``X-AMP-Tools-Timestamp: <unix seconds>`` and
  ``X-AMP-Tools-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``. A receiver checks
  it with `verify_signature` (constant-time, with a freshness window against replays).
* Delivery: up to `attempts` tries with exponential backoff on network errors, 429 and 5xx; other
  4xx answers stop at once. The outcome (never the URL's query or the secret) goes to the audit
  trail. A failed delivery does not fail the payment flow: the question still waits in the inbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from amp_tools.approvals.approvers import OutOfBandApprover
from amp_tools.approvals.request import ApprovalRequest
from amp_tools.approvals.store import ApprovalRecord, ApprovalStore
from amp_tools.clock import Clock
from amp_tools.errors import ConfigError

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookApprover", "render_payload", "sign", "verify_signature"]

TIMESTAMP_HEADER = "X-AMP-Tools-Timestamp"
SIGNATURE_HEADER = "X-AMP-Tools-Signature"
Format = Literal["json", "slack"]


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


def _money(value: Any) -> str:
    return f"{value.amount_text()}" if isinstance(value, ApprovalRequest) else str(value)


def render_payload(request: ApprovalRequest, inbox_url: str, fmt: Format) -> dict[str, Any]:
    """The body for one request; only what a person needs to decide (no secrets exist in a request)."""
    link = f"{inbox_url.rstrip('/')}/inbox#{request.id}" if inbox_url else ""
    who = request.merchant_name or request.merchant_id
    if fmt == "slack":
        lines = [f"*Approval needed*: {'refund of' if request.action == 'refund' else 'pay'} "
                 f"*{_money(request)}* {'from' if request.action == 'refund' else 'to'} {who}"]
        lines += [f"• {item.quantity} x {item.name} at {item.unit_amount}" for item in request.items]
        if request.rules:
            lines.append("Asked because: " + "; ".join(request.rules))
        lines.append(f"Budget left after: {request.budget_left} · expires {request.expires_at:%Y-%m-%d %H:%M} UTC")
        text = "\n".join(lines)
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
        if link:
            blocks.append({"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open the approval inbox"}, "url": link}]})
        return {"text": f"Approval needed: {_money(request)} to {who}" + (f" <{link}|open inbox>" if link else ""),
                "blocks": blocks}
    public = request.to_public()
    public.pop("binding", None)  # an internal hash; of no use to a person
    return {"type": "approval_request", "approval": public, "summary": request.summary(), "inbox_url": link}


class WebhookApprover(OutOfBandApprover):
    """Parks each request in the store and POSTs every new one, signed, to `url`."""

    name = "webhook"

    def __init__(self, store: ApprovalStore, url: str, secret: str | bytes, *, inbox_url: str = "",
                 fmt: Format = "json", attempts: int = 4, backoff: float = 0.5, timeout: float = 5.0,
                 clock: Clock | None = None, budget_id: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        super().__init__(store, clock=clock, budget_id=budget_id)
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ConfigError(f"webhook url {url!r} must be an http(s) URL such as https://hooks.example/approvals")
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        if len(key) < 16:
            raise ConfigError("the webhook secret must be at least 16 bytes; generate one with "
                              "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        if fmt not in ("json", "slack"):
            raise ConfigError(f"webhook format {fmt!r} must be 'json' or 'slack'")
        if attempts < 1:
            raise ConfigError(f"webhook attempts {attempts} must be at least 1")
        self.url, self._secret, self.inbox_url, self.fmt = url, key, inbox_url, fmt
        self.attempts, self.backoff, self.timeout = attempts, backoff, timeout
        self._transport, self._sleep = transport, sleep
        self._where = f"{parts.scheme}://{parts.netloc}{parts.path}"  # audited: no query string (tokens live there)

    async def announce(self, record: ApprovalRecord) -> None:
        body = json.dumps(render_payload(record.request, self.inbox_url, self.fmt), sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        status, tries, error = await self._deliver(body)
        await self.store.ledger.audit.append("approval_notified", {
            "approval_id": record.id, "url": self._where, "format": self.fmt, "delivered": error == "",
            "http_status": status, "attempts": tries, "error": error}, budget_id=record.budget_id)

    async def _deliver(self, body: bytes) -> tuple[int | None, int, str]:
        status: int | None = None
        error = ""
        async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as client:
            for attempt in range(1, self.attempts + 1):
                ts = int(time.time())
                headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(ts),
                           SIGNATURE_HEADER: sign(self._secret, ts, body), "User-Agent": "amp-tools-webhook"}
                try:
                    resp = await client.post(self.url, content=body, headers=headers)
                    status = resp.status_code
                    if status < 300:
                        return status, attempt, ""
                    error = f"HTTP {status}"
                    if status < 500 and status != 429:
                        return status, attempt, error  # the receiver refuses this body: retrying cannot help
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}"
                if attempt < self.attempts:
                    await self._sleep(self.backoff * 2 ** (attempt - 1))
        return status, self.attempts, error
