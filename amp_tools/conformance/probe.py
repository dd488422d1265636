"""The checker's HTTP layer: bounded, never retried, and every exchange recorded for evidence.

Checks send raw JSON on purpose (a missing L3, a wrong kid, a wrong amount), so this is a thin
recorder over `httpx.AsyncClient` rather than `AmpClient`, which refuses such requests before
sending them. Any httpx transport works, so tests drive an in-process app through
`httpx.ASGITransport` and need no ports.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from amp_tools.conformance.model import Exchange
from amp_tools.conformance.redact import redact, redact_str

__all__ = ["Answer", "BudgetExhausted", "Probe"]

_EVIDENCE_CHARS = 4000


class BudgetExhausted(Exception):
    """The run's request budget is spent; the remaining steps are skipped."""


class Answer:
    """One response: HTTP status and the JSON body (``None`` when it was not JSON)."""

    def __init__(self, status: int | None, body: Any, text: str, error: str | None = None) -> None:
        self.status = status
        self.body = body
        self.text = text
        self.error = error  # a transport error (timeout, refused connection): no answer at all
        self.exchange: Exchange | None = None

    @property
    def json(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else {}

    @property
    def ok(self) -> bool:
        """HTTP 200 with ``success: true``."""
        return self.status == 200 and self.json.get("success") is True

    def describe(self) -> str:
        if self.error:
            return self.error
        body = self.json
        for keys in (("error",), ("errorCode", "errorMessage"), ("resultCode", "resultMessage")):
            found = [str(body[k]) for k in keys if body.get(k)]
            if found:
                return f"HTTP {self.status}: " + redact_str(" / ".join(found))[:300]
        return f"HTTP {self.status}: " + redact_str(self.text)[:300]


def _evidence(value: Any) -> Any:
    red = redact(value)
    text = json.dumps(red, ensure_ascii=False)
    if len(text) <= _EVIDENCE_CHARS:
        return red
    return text[: _EVIDENCE_CHARS - 1] + "…"


class Probe:
    """Sends requests for one run; `log` collects the exchanges of the check in progress."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 15.0,
                 max_requests: int = 400) -> None:
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False,
                                         headers={"User-Agent": "amp-tools-conformance"})
        self.max_requests = max_requests
        self.sent = 0
        self.log: list[Exchange] = []

    async def close(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, body: dict[str, Any], *, note: str = "") -> Answer:
        return await self._send("POST", url, body, note)

    async def get(self, url: str, *, note: str = "") -> Answer:
        return await self._send("GET", url, None, note)

    async def _send(self, method: str, url: str, body: dict[str, Any] | None, note: str) -> Answer:
        if self.sent >= self.max_requests:
            raise BudgetExhausted(f"the run's budget of {self.max_requests} requests is spent "
                                  "(raise --max-requests to go further)")
        self.sent += 1
        started = time.perf_counter()
        try:
            r = await self._client.request(method, url, json=body) if body is not None else \
                await self._client.request(method, url)
        except httpx.HTTPError as exc:
            ans = Answer(None, None, "", f"{type(exc).__name__}: {exc or 'no answer'}")
        else:
            text = r.text
            try:
                parsed: Any = r.json()
            except ValueError:
                parsed = None
            ans = Answer(r.status_code, parsed, text)
        elapsed = (time.perf_counter() - started) * 1000
        shown = ans.body if ans.body is not None else (ans.error or redact_str(ans.text)[:_EVIDENCE_CHARS])
        ans.exchange = Exchange(method, url, _evidence(body) if body is not None else None, ans.status,
                                _evidence(shown), elapsed, note)
        self.log.append(ans.exchange)
        return ans
