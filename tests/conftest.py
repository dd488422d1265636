"""Process-wide test setup: keep CrewAI offline and out of the real home directory.

The environment must be set before anything imports crewai (its telemetry resolves
telemetry.crewai.com and its storage writes under ~/.local/share), so it happens at
conftest import time, into a temporary directory removed when the session ends.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
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


def _alias_examples() -> None:
    """Make `amp_examples` importable from a checkout whose editable install does not map it yet."""
    if importlib.util.find_spec("amp_examples") is not None:
        return
    root = Path(__file__).resolve().parent.parent / "examples"
    spec = importlib.util.spec_from_file_location("amp_examples", root / "__init__.py",
                                                  submodule_search_locations=[str(root)])
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["amp_examples"] = module
    spec.loader.exec_module(module)


_alias_examples()
