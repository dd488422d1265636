"""A local AMP network in one ASGI app: CP, Alipay+, the MPP wallet, an acquirer and travel merchants.

``Sandbox()`` runs in-process (``httpx.AsyncClient(transport=sandbox.transport())``);
``serve(host, port)`` runs it over TCP. The wire is described in docs/SANDBOX.md.

The sandbox is an extra (``pip install "amp-agent-payments[sandbox]"``): a program that talks to a real
Credential Provider needs neither FastAPI nor uvicorn, so they are only imported here.
"""

from __future__ import annotations

import importlib.util

from amp_tools.errors import ConfigError

_MISSING = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
if _MISSING:
    raise ConfigError(f"the AMP sandbox needs {' and '.join(_MISSING)}, which are not installed",
                      hint="Install the sandbox extra: pip install \"amp-agent-payments[sandbox]\" "
                           "(or a framework extra together with it, e.g. \"amp-agent-payments[langchain,sandbox]\").")

from amp_tools.sandbox.app import Sandbox, create_app  # noqa: E402
from amp_tools.sandbox.catalog import INJECTION_MERCHANT_ID  # noqa: E402
from amp_tools.sandbox.config import IdvMode, SandboxConfig  # noqa: E402
from amp_tools.sandbox.faults import FAULT_MODES, FAULT_TARGETS, Faults  # noqa: E402
from amp_tools.sandbox.fx import DEFAULT_USD_RATES, FxTable  # noqa: E402
from amp_tools.sandbox.server import build_server, serve  # noqa: E402

__all__ = [
    "DEFAULT_USD_RATES",
    "FAULT_MODES",
    "FAULT_TARGETS",
    "INJECTION_MERCHANT_ID",
    "Faults",
    "FxTable",
    "IdvMode",
    "Sandbox",
    "SandboxConfig",
    "build_server",
    "create_app",
    "serve",
]
