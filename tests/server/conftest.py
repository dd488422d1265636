"""Fixtures of the owner-console tests: ledgers on both engines, and an agent world on the sandbox."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ledger"))

from collections.abc import AsyncIterator, Iterator

import pytest
from _backends import BACKENDS
from _ledger_helpers import START, backend_target, open_backend
from _server_helpers import World

from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def where(backend: str, tmp_path: Path) -> Iterator[str]:
    yield from backend_target(backend, tmp_path)


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
