"""(d) Cold start: ``import amp_tools`` time, memory and the modules it pulls, and each adapter's import.

Every figure comes from a fresh interpreter (``python -c``), so nothing is cached in-process; the
time is the median of several fresh starts, measured inside the child around the import only.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any

__all__ = ["FRAMEWORK_PREFIXES", "measure"]

#: Top-level packages of agent frameworks (and their model clients) the core must never import.
FRAMEWORK_PREFIXES = ("langchain", "langchain_core", "langgraph", "crewai", "autogen_core", "autogen_agentchat",
                      "autogen_ext", "openai", "litellm", "amp_langchain", "amp_crewai", "amp_autogen")
HEAVY = ("pydantic", "httpx", "fastapi", "starlette", "rich", "jwcrypto", "cryptography", "sd_jwt", "yaml",
         "typer", "psycopg", "uvicorn")

_CHILD = """
import json, resource, sys, time
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
import {module}
ms = (time.perf_counter() - start) * 1000
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tops = sorted({{name.split(".")[0] for name in sys.modules}})
print(json.dumps({{"ms": ms, "rss_kib": after - before, "tops": tops}}))
"""


def _child(module: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _CHILD.format(module=module)], capture_output=True, text=True,
                         check=True, timeout=300)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(repeats: int = 5, adapters: tuple[str, ...] = ("amp_langchain", "amp_crewai", "amp_autogen"),
            adapter_repeats: int = 3) -> dict[str, Any]:
    core = [_child("amp_tools") for _ in range(repeats)]
    tops = set(core[0]["tops"])
    framework = sorted(t for t in tops if t.startswith(FRAMEWORK_PREFIXES))
    out: dict[str, Any] = {
        "import_ms_core": round(statistics.median(c["ms"] for c in core), 1),
        "import_rss_mib_core": round(statistics.median(c["rss_kib"] for c in core) / 1024, 1),
        "import_framework_modules": framework,
        "import_heavy_modules_core": sorted(t for t in tops if t in HEAVY),
    }
    for name in adapters:
        runs = [_child(name) for _ in range(adapter_repeats)]
        out[f"import_ms_{name}"] = round(statistics.median(r["ms"] for r in runs), 1)
    return out
