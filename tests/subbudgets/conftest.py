"""Fixtures of the sub-budget tests: the ledger tests' engine helpers (`_ledger_helpers`) are shared,
so tests/ledger is put on sys.path (spawned workers inherit it)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_LEDGER_TESTS = str(Path(__file__).resolve().parents[1] / "ledger")
if _LEDGER_TESTS not in sys.path:
    sys.path.insert(0, _LEDGER_TESTS)
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from _backends import BACKENDS  # noqa: E402
from _ledger_helpers import backend_target  # noqa: E402


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target(backend: str, tmp_path: Path) -> Iterator[str]:
    """A SQLite file path or a fresh PostgreSQL schema (dropped afterwards)."""
    yield from backend_target(backend, tmp_path)
