"""The owner can always get in, guessing stays slow, and oversized bodies are refused unread.

Guesses are counted by counting scrypt checks (the expensive part an attacker wants to run), the
owner's way in during an attack is the one-time login link, and the body tests count the bytes the
server pulled from the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from amp_tools.server import app as app_module
from amp_tools.server import create_app
from amp_tools.server.auth import LoginThrottle, SessionStore
from amp_tools.server.recovery import create_link
from amp_tools.server.web import MAX_BODY
from tests.server._server_helpers import BASE, PASSPHRASE, World


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every passphrase check the console runs (scrypt calls)."""
    seen: list[str] = []
    real = app_module.verify_secret

    def counting(secret: str, stored: str) -> bool:
        seen.append(secret)
        return real(secret, stored)

    monkeypatch.setattr(app_module, "verify_secret", counting)
    return seen


def _app(world: World, per_address: int = 3, overall: int = 10) -> Any:
    world.settings.sessions = SessionStore(throttle=LoginThrottle(per_address=per_address, overall=overall))
    return create_app(world.settings)


def _client(app: Any, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url=BASE)


async def _guess(app: Any, address: str, passphrase: str) -> int:
    async with _client(app, address) as client:
        return (await client.post("/login", json={"passphrase": passphrase})).status_code


async def test_300_concurrent_guesses_from_one_address_check_at_most_its_limit(world: World,
                                                                               checks: list[str]) -> None:
    app = _app(world, per_address=3, overall=10)
    codes = await asyncio.gather(*(_guess(app, "10.0.0.66", f"guess number {i:04d}") for i in range(300)))
    assert len(checks) == 3  # counted before running: the other 297 never reached scrypt
    assert codes.count(401) == 3 and codes.count(429) == 297
    # Another address (the owner's laptop) is not locked out by this one.
    assert await _guess(app, "10.0.0.7", PASSPHRASE) == 200


async def test_300_guesses_from_300_addresses_hit_the_backstop_and_the_owner_gets_in_by_link(
        world: World, checks: list[str]) -> None:
    app = _app(world, per_address=3, overall=10)
    codes = await asyncio.gather(*(_guess(app, f"10.1.{i // 250}.{i % 250}", f"guess number {i:04d}")
                                   for i in range(300)))
    assert len(checks) == 10 and codes.count(429) == 290
    assert await _guess(app, "10.0.0.7", PASSPHRASE) == 429  # even the right passphrase waits: the backstop
    link = create_link(world.inbox_ledger, BASE)  # what `amp-tools serve --login-link` prints
    token = link.rsplit("/", 1)[1]
    async with _client(app, "10.0.0.7") as owner:
        page = await owner.get(f"/login/link/{token}")
        assert page.status_code == 200 and 'action=/login/link' in page.text
        entered = await owner.post("/login/link", data={"token": token})
        assert entered.status_code == 303 and entered.headers["location"] == "/"
        assert (await owner.get("/api/approvals")).status_code == 200
    assert len(checks) == 10  # the link runs no passphrase check
    async with _client(app, "10.0.0.8") as thief:
        again = await thief.post("/login/link", data={"token": token})
        assert again.status_code == 401 and "used or expired" in again.text  # single use
        assert (await thief.get("/api/approvals")).status_code == 401


async def test_a_login_link_expires_and_is_stored_hashed(world: World) -> None:
    link = create_link(world.inbox_ledger, BASE)
    token = link.rsplit("/", 1)[1]
    rows = await world.inbox_ledger.run_read(_links)
    assert len(rows) == 1 and token not in str(rows) and len(rows[0][0]) == 64  # SHA-256 only
    world.clock.advance(11 * 60)
    async with world.client() as client:
        assert (await client.post("/login/link", data={"token": token})).status_code == 401
        assert (await client.post("/login/link", data={"token": "x" * 43})).status_code == 401


def _links() -> Any:
    from amp_tools.ledger._sql import Q

    rows = yield Q("SELECT token_hash, used_us FROM login_links")
    return rows


async def test_empty_and_oversized_passphrases_run_no_check_and_take_no_slot(world: World,
                                                                             checks: list[str]) -> None:
    app = _app(world, per_address=1, overall=1)
    for _ in range(20):
        assert await _guess(app, "10.0.0.66", "") == 401
        assert await _guess(app, "10.0.0.66", "x" * 201) == 401
    assert checks == [] and await _guess(app, "10.0.0.66", PASSPHRASE) == 200


class _Body:
    """A request body that counts what the server pulled from it."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.pulled = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            self.pulled += self.chunk
            yield b"p" * self.chunk


@pytest.mark.parametrize("path", ["/login", "/api/approvals/apr_1/approve", "/login/link"])
async def test_a_400_mib_declared_body_is_refused_without_reading_it(world: World, path: str) -> None:
    body = _Body(400 * 1024 * 1024)
    async with world.client() as client:
        resp = await client.post(path, content=body, headers={"Content-Length": str(body.total),
                                                              "Content-Type": "application/json"})
    assert resp.status_code == 413 and body.pulled == 0


async def test_a_chunked_body_is_cut_off_just_past_the_limit(world: World) -> None:
    body = _Body(50 * 1024 * 1024, chunk=4096)
    async with world.client() as client:
        resp = await client.post("/login", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 413 and body.pulled <= MAX_BODY + 4096
