"""The front door: one import line for what a user builds an agent with, loaded lazily.

`from amp_tools import AmpToolkit, AmpClient, open_ledger, load_policy, ConsoleApprover` must work,
every name in `amp_tools.__all__` must resolve to the object its home module defines, and a bare
`import amp_tools` (checked in a fresh interpreter) must pull no agent framework and no web stack.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import amp_tools


def test_the_readme_first_example_imports_in_one_line() -> None:
    from amp_tools import AmpClient, AmpToolkit, ConsoleApprover, load_policy, open_ledger

    assert AmpToolkit.__name__ == "AmpToolkit" and AmpClient.__name__ == "AmpClient"
    assert callable(open_ledger) and callable(load_policy) and ConsoleApprover.__name__ == "ConsoleApprover"


@pytest.mark.parametrize("name", sorted(amp_tools.__all__))
def test_every_public_name_is_the_object_of_its_home_module(name: str) -> None:
    value = getattr(amp_tools, name)
    home = amp_tools._LAZY.get(name)
    if home is not None:
        assert value is getattr(importlib.import_module(home), name)
    assert value is not None


def test_an_unknown_name_is_an_attribute_error_that_names_it() -> None:
    with pytest.raises(AttributeError, match="'AmpTolkit'"):
        amp_tools.AmpTolkit  # noqa: B018
    assert "AmpToolkit" in dir(amp_tools)


def test_import_amp_tools_loads_no_framework_and_no_web_stack() -> None:
    code = ("import json, sys; import amp_tools; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    tops = set(json.loads(out.stdout))
    heavy = {"langchain", "langchain_core", "langgraph", "crewai", "autogen_core", "autogen_agentchat",
             "agent_framework", "mcp", "fastapi", "starlette", "uvicorn", "httpx", "psycopg", "jwcrypto", "rich"}
    assert tops & heavy == set()
    # reading a lazy name loads its module then, not before
    code = "import sys, amp_tools; amp_tools.Sandbox; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
