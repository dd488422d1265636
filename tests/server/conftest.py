"""Fixtures of the owner-console tests: ledgers on both engines, and an agent world on the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase
from tests.ledger._ledger_helpers import START, open_backend
from tests.server._server_helpers import World


@pytest.fixture
def where(target: str) -> str:
    return target


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def ledger(backend: str, where: str, clock: ManualClock) -> Iterator[LedgerBase]:
    led = open_backend(backend, where, clock)
    yield led
    led.close_sync()


@pytest.fixture
def second(backend: str, where: str, clock: ManualClock) -> Iterator[LedgerBase]:
    """Another handle on the same database: the inbox host beside the agent's host."""
    led = open_backend(backend, where, clock)
    yield led
    led.close_sync()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    made = World(tmp_path)
    yield made
    await made.close()
