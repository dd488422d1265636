"""Helpers of the conformance tests: a target for a sandbox, and a transport that hides routes."""

from __future__ import annotations

import json
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


class SubstitutionPaid(httpx.AsyncBaseTransport):
    """The sandbox, except that a payment its wallet refuses under S3 is reported as paid: it stands for a
    target that binds no token to its checkout (the reference), so no payment can be made to fail."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/startPayment"):
            body = json.loads(await response.aread())
            if "S3:" in str(body.get("errorMessage", "")):
                return httpx.Response(200, json={"success": True, "data": {
                    "success": True, "transactionId": "f" * 32, "message": "Payment processed successfully"}})
        return response
