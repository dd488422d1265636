"""Fixtures of the conformance tests: sandboxes (conforming or reference-like) and their targets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from amp_tools.conformance import Target
from amp_tools.sandbox import Sandbox, SandboxConfig

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


START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(SandboxConfig(seed=11, start_time=START))


@pytest.fixture
def reference_like() -> Sandbox:
    return Sandbox(SandboxConfig.with_reference_deviations(seed=11, start_time=START))
