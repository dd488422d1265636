"""Fixtures of the conformance tests: a conforming sandbox and a reference-like one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from amp_tools.sandbox import Sandbox, SandboxConfig

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(SandboxConfig(seed=11, start_time=START))


@pytest.fixture
def reference_like() -> Sandbox:
    return Sandbox(SandboxConfig.with_reference_deviations(seed=11, start_time=START))
