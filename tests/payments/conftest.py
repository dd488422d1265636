"""Fixtures of the payment-lifecycle tests: both ledger engines, a sandbox, toolkits on it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_LEDGER_TESTS = str(Path(__file__).resolve().parents[1] / "ledger")
if _LEDGER_TESTS not in sys.path:
    sys.path.insert(0, _LEDGER_TESTS)

from _backends import BACKENDS  # noqa: E402
from _ledger_helpers import backend_target  # noqa: E402


@pytest.fixture(params=BACKENDS)
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ledger_target(engine_name: str, tmp_path: Path) -> Iterator[str]:
    """A SQLite file path or a fresh PostgreSQL schema (dropped afterwards)."""
    yield from backend_target(engine_name, tmp_path)
