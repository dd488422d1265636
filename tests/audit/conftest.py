"""Fixtures of the audit tests: the ledger test helpers and backends, shared."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase
from tests.ledger._ledger_helpers import START, backend_target, open_backend


@pytest.fixture
def ledger(backend: str, tmp_path: Path) -> Iterator[LedgerBase]:
    for where in backend_target(backend, tmp_path):
        led = open_backend(backend, where, ManualClock(START))
        yield led
        led.close_sync()
