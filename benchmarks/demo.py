"""(e) The offline travel demo's wall time per framework: ``amp-tools demo travel --framework X``.

Each run is a fresh process (framework import, sandbox start, the scripted agent's whole trip,
receipt), exactly what a person typing the command waits for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["FRAMEWORKS", "measure"]

FRAMEWORKS = ("langchain", "crewai", "autogen")


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("amp-tools")
    return [str(script)] if script.exists() else [sys.executable, "-m", "amp_tools.cli"]


def measure(tmp: str, frameworks: tuple[str, ...] = FRAMEWORKS) -> dict[str, Any]:
    out: dict[str, Any] = {}
    env = {**os.environ, "AMP_TOOLS_HOME": str(Path(tmp) / "home"), "NO_COLOR": "1", "COLUMNS": "120"}
    env.pop("OPENAI_API_KEY", None)  # offline: the scripted model, whatever the caller's shell has
    for name in frameworks:
        start = time.perf_counter()
        done = subprocess.run([*_cli(), "demo", "travel", "--framework", name], capture_output=True, text=True,
                              env=env, timeout=600)
        out[f"demo_s_{name}"] = round(time.perf_counter() - start, 2)
        out[f"demo_ok_{name}"] = done.returncode == 0
    return out
