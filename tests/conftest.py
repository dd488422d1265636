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

