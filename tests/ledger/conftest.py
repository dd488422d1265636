"""Fixtures of the ledger tests: every backend-level test runs on SQLite and on PostgreSQL (the `backend` and
`target` fixtures are shared, in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase
from tests.ledger._ledger_helpers import START, open_backend


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def ledger(backend: str, target: str, clock: ManualClock) -> Iterator[LedgerBase]:
    led = open_backend(backend, target, clock)
    yield led
    led.close_sync()
