"""Fixtures for the cross-framework scenarios: a sandbox with a SQLite ledger, and the framework parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from amp_tools.ledger import open_ledger
from amp_tools.sandbox import Sandbox, SandboxConfig
from tests.integration._scenarios import FRAMEWORKS, Shop


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    sandbox = Sandbox(SandboxConfig(seed=11))  # IDV completes inside the call: the person's wallet says yes
    ledger = open_ledger(str(tmp_path / "ledger.db"), clock=sandbox.clock)
    made = Shop(sandbox, ledger, tmp_path)
    yield made
    for tk in made.toolkits:
        await tk.aclose()
    await ledger.close()


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> Iterator[str]:
    yield str(request.param)
