"""A local AMP network in one ASGI app: CP, Alipay+, the MPP wallet, an acquirer and travel merchants.

``Sandbox()`` runs in-process (``httpx.AsyncClient(transport=sandbox.transport())``);
``serve(host, port)`` runs it over TCP. The wire is described in docs/SANDBOX.md.
"""

from __future__ import annotations

from amp_tools.sandbox.app import Sandbox, create_app
from amp_tools.sandbox.catalog import INJECTION_MERCHANT_ID
from amp_tools.sandbox.config import IdvMode, SandboxConfig
from amp_tools.sandbox.faults import FAULT_MODES, FAULT_TARGETS, Faults
from amp_tools.sandbox.fx import DEFAULT_USD_RATES, FxTable
from amp_tools.sandbox.server import build_server, serve

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
