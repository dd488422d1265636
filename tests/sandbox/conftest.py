"""Fixtures of the sandbox tests: a seeded in-process sandbox, a client on it, a bound wallet."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from amp_tools.sandbox import Sandbox
from tests.sandbox.sandbox_helpers import Flow, make_sandbox


@pytest.fixture
def sandbox() -> Sandbox:
    return make_sandbox()


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox") as c:
        yield c


@pytest.fixture
async def flow(sandbox: Sandbox, client: httpx.AsyncClient) -> Flow:
    f = Flow(sandbox, client)
    await f.bind()
    return f
