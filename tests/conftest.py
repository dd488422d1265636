"""Process-wide test setup: keep CrewAI offline and out of the real home directory.

The environment must be set before anything imports crewai (its telemetry resolves
telemetry.crewai.com and its storage writes under ~/.local/share), so it happens at
conftest import time, into a temporary directory removed when the session ends.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="amp-tools-test-home-")
atexit.register(shutil.rmtree, _HOME, True)
os.environ.update({
    "CREWAI_DISABLE_TELEMETRY": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_TRACKING": "true",
    "CREWAI_TESTING": "true",
    "HOME": _HOME,
    "XDG_DATA_HOME": str(Path(_HOME) / "data"),
    "CREWAI_STORAGE_DIR": "amp-tools-tests",
})


# Property tests explore freely on a developer's machine; under CI they replay a fixed set of
# examples so a run is reproducible (a failure found locally is pinned with an explicit @example).
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# The engine fixtures every suite shares; their helpers (`tests.ledger._backends`, `tests.ledger._ledger_helpers`)
# import by dotted name: tests/ is a package, so pytest puts the repository root on sys.path and spawned
# workers inherit it.
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.ledger._backends import BACKENDS  # noqa: E402
from tests.ledger._ledger_helpers import backend_target  # noqa: E402


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend-level test runs on SQLite and on PostgreSQL (the `postgres` mark)."""
    return str(request.param)


@pytest.fixture
def target(backend: str, tmp_path: Path) -> Iterator[str]:
    """A SQLite file path or a fresh PostgreSQL schema (dropped afterwards)."""
    yield from backend_target(backend, tmp_path)


@pytest.fixture(params=BACKENDS)
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ledger_target(engine_name: str, tmp_path: Path) -> Iterator[str]:
    yield from backend_target(engine_name, tmp_path)
