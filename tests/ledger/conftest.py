"""Fixtures of the ledger tests: every backend-level test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _backends import BACKENDS
from _ledger_helpers import START, backend_target, open_backend

from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target(backend: str, tmp_path: Path) -> Iterator[str]:
    yield from backend_target(backend, tmp_path)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def ledger(backend: str, target: str, clock: ManualClock) -> Iterator[LedgerBase]:
    led = open_backend(backend, target, clock)
    yield led
    led.close_sync()
