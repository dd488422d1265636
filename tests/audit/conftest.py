"""Fixtures of the audit tests: the ledger test helpers and backends, shared."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ledger"))

from collections.abc import Iterator

import pytest
from _backends import BACKENDS
from _ledger_helpers import START, backend_target, open_backend

from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ledger(backend: str, tmp_path: Path) -> Iterator[LedgerBase]:
    for where in backend_target(backend, tmp_path):
        led = open_backend(backend, where, ManualClock(START))
        yield led
        led.close_sync()
