"""Fixtures for the adapter tests (the fakes themselves live in `_adapter_fakes`)."""

from __future__ import annotations

import pytest

from tests.adapters._adapter_fakes import FakeShop


@pytest.fixture
def shop() -> FakeShop:
    return FakeShop()
