"""What the core needs installed, and what it does not.

A program that talks to a real Credential Provider imports and runs without FastAPI or uvicorn
(they are the `sandbox` extra); asking for the sandbox without them is a clear error naming the
extra. `sd-jwt` is not a dependency (nothing imports it). Time zones resolve from the `tzdata`
package where the platform has no zone database.
"""

from __future__ import annotations

import subprocess
import sys
import zoneinfo
from collections.abc import Iterator
from datetime import datetime, timedelta
from importlib.metadata import requires

import pytest

from amp_tools._version import DISTRIBUTION
from amp_tools.policy import parse_policy

REAL_CP_PROGRAM = r'''
import asyncio, json, sys
for name in ("fastapi", "uvicorn", "starlette"):
    sys.modules[name] = None  # as if not installed

import httpx
from amp_tools.amp.client import AmpClient
from amp_tools.errors import ConfigError
from amp_tools.ledger import open_ledger
from amp_tools._version import DISTRIBUTION
from amp_tools.policy import parse_policy
from amp_tools.toolkit import AmpToolkit
from amp_tools.cli import app  # the whole command tree

def cp(request):
    assert request.url.path == "/registry/merchants", request.url.path
    return httpx.Response(200, json={"success": True, "data": [
        {"merchantId": "HOTEL-1", "name": "Harbour Hotel", "mcc": "7011", "categories": ["hotel"],
         "regions": ["SG"], "currencies": ["SGD"], "baseUrl": "/merchants/HOTEL-1"}]})

async def main():
    policy = parse_policy({"currency": "USD", "total_budget": "100.00"})
    tk = AmpToolkit(AmpClient("https://cp.example.com", transport=httpx.MockTransport(cp)), policy,
                    ledger=open_ledger(":memory:"), budget_id="no-sandbox")
    spec = next(s for s in tk.specs() if s.name == "discover_merchants")
    found = await spec.ainvoke({})
    print(json.dumps([m["name"] for m in found["merchants"]]))
    status = await next(s for s in tk.specs() if s.name == "budget_status").ainvoke({})
    print(json.dumps(status["total"]["left"]))

asyncio.run(main())
try:
    import amp_tools.sandbox
except ConfigError as exc:
    print(str(exc))
print(sorted(m for m in sys.modules if m.split(".")[0] in ("fastapi", "uvicorn", "starlette") and sys.modules[m]))
'''


def test_a_real_cp_program_runs_without_fastapi_and_the_sandbox_names_its_extra() -> None:
    done = subprocess.run([sys.executable, "-c", REAL_CP_PROGRAM], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == '["Harbour Hotel"]'
    assert lines[1] == '{"amount": "100.00", "currency": "USD"}'
    assert lines[2].startswith("INVALID_CONFIG: the AMP sandbox needs fastapi and uvicorn, which are not installed.")
    assert 'pip install "amp-agent-payments[sandbox]"' in lines[2]
    assert lines[3] == "[]"


def test_declared_dependencies() -> None:
    declared = requires(DISTRIBUTION) or []
    core = [r for r in declared if "extra ==" not in r]
    names = {r.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower() for r in core}
    assert "sd-jwt" not in names and "fastapi" not in names and "uvicorn" not in names
    assert "tzdata" in names
    sandbox = [r for r in declared if 'extra == "sandbox"' in r]
    assert sorted(r.split(">")[0] for r in sandbox) == ["fastapi", "uvicorn"]


@pytest.fixture
def no_system_zones() -> Iterator[None]:
    zoneinfo.reset_tzpath(to=[])  # as on Windows or a slim container: only the tzdata package is left
    zoneinfo.ZoneInfo.clear_cache()
    yield
    zoneinfo.reset_tzpath()
    zoneinfo.ZoneInfo.clear_cache()


def test_policy_time_zones_resolve_without_a_system_zone_database(no_system_zones: None) -> None:
    policy = parse_policy({"currency": "USD", "total_budget": "10.00", "timezone": "Asia/Singapore",
                           "windows": {"day": {"limit": "5.00"}}})
    assert str(policy.timezone) == "Asia/Singapore"
    assert datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo("Asia/Singapore")).utcoffset() == timedelta(hours=8)
