"""Helpers of the conformance tests: a target for a sandbox, and a transport that hides routes."""

from __future__ import annotations

from typing import Any

import httpx

from amp_tools.conformance import Target
from amp_tools.sandbox import Sandbox

MERCHANT = "SUNNY-TOURS"


def target_for(sb: Sandbox, base: str = "http://sandbox", **kwargs: Any) -> Target:
    return Target(cp=base, merchant=f"{base}/merchants/{MERCHANT}", aplus_jwk=sb.aplus_public_jwk, **kwargs)


class HidingTransport(httpx.AsyncBaseTransport):
    """The sandbox with some routes gone (404), to stand for a target that lacks them."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *prefixes: str) -> None:
        self.inner = inner
        self.prefixes = prefixes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith(self.prefixes):
            return httpx.Response(404, json={"detail": "Not Found"})
        return await self.inner.handle_async_request(request)
