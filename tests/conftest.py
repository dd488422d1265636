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
