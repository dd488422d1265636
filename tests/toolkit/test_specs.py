"""The tool list: each tool declared once on its function, listed in one stable order.

The names and their order are what every model sees (adapters and the MCP server hand the list on
as it is), so they are pinned here; every registered function must reach the list, and a tool
registered but not placed in `TOOL_ORDER` stops `build_specs` rather than going missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from amp_tools.amp.keys import AgentKey
from amp_tools.ledger import open_ledger
from amp_tools.policy import parse_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit, ToolSpec, _paying, _reporting, _shopping, _specs

NAMES = ["discover_merchants", "search_offers", "request_quote", "negotiate", "accept_quote", "checkout",
         "request_mandate", "mandate_status", "pay", "budget_status", "order_status", "refund"]


@pytest.fixture
def toolkit(tmp_path: Path) -> AmpToolkit:
    sandbox = Sandbox(SandboxConfig(seed=3))
    policy = parse_policy({"currency": "USD", "total_budget": "100.00"})
    return AmpToolkit.for_sandbox(sandbox, policy, ledger=open_ledger(tmp_path / "ledger.db", clock=sandbox.clock),
                                  budget_id="specs", agent_key=AgentKey.generate())


def test_the_tool_list_keeps_its_names_and_order(toolkit: AmpToolkit) -> None:
    specs = toolkit.specs()
    assert [s.name for s in specs] == NAMES == list(_specs.TOOL_ORDER)
    assert [s.name for s in specs if s.moves_money] == ["pay", "refund"]
    assert all(s.description and s.description[0].isupper() and s.description.endswith(".") for s in specs)


def test_every_registered_function_has_a_spec_with_its_own_args_model(toolkit: AmpToolkit) -> None:
    specs = {s.name: s for s in toolkit.specs()}
    assert sorted(_specs.registered()) == sorted(specs)
    homes = {"discover_merchants": _shopping, "search_offers": _shopping, "request_quote": _shopping,
             "negotiate": _shopping, "accept_quote": _shopping, "checkout": _shopping,
             "request_mandate": _paying, "pay": _paying, "refund": _paying,
             "mandate_status": _reporting, "budget_status": _reporting, "order_status": _reporting}
    for name, module in homes.items():
        registration = _specs._REGISTRY[name]
        assert registration.func is getattr(module, name)
        # The args model is declared beside the function, in the same module.
        assert registration.args_model.__module__ == module.__name__
        assert specs[name].args_model is registration.args_model


def test_a_registered_tool_missing_from_the_order_stops_the_list(toolkit: AmpToolkit,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_specs, "_REGISTRY", dict(_specs._REGISTRY))

    @_specs.tool("shout", "Say it louder.", _reporting.BudgetStatusArgs, output={})
    async def shout(tk: Any, args: Any) -> dict[str, Any]:
        return {}

    with pytest.raises(RuntimeError, match=r"not placed \['shout'\]"):
        toolkit.specs()


def test_one_name_cannot_be_registered_by_two_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_specs, "_REGISTRY", dict(_specs._REGISTRY))

    async def other(tk: Any, args: Any) -> dict[str, Any]:
        return {}

    with pytest.raises(ValueError, match="two functions are registered as the tool 'pay'"):
        _specs.tool("pay", "Pay twice.", _paying.PayArgs, output={}, moves_money=True)(other)


def test_the_core_message_serves_every_framework() -> None:
    async def nothing(_: Any) -> dict[str, Any]:
        return {}

    spec = ToolSpec("search_offers", "d", _shopping.SearchOffersArgs, nothing)
    with pytest.raises(Exception) as raised:
        spec.invoke({"category": "hotel"})
    assert "query is required: what to look for" in str(raised.value)


def test_a_tool_declares_its_result_shape_and_marks_in_its_one_registration() -> None:
    with pytest.raises(ValueError, match="cannot both move money and only read"):
        _specs.tool("both", "d", _shopping.SearchOffersArgs, output={}, moves_money=True, read_only=True)
    outputs, read_only = _specs.declared_outputs(), _specs.read_only_tools()
    assert set(outputs) == set(_specs.TOOL_ORDER) and all(shape["required"] for shape in outputs.values())
    assert read_only == {"discover_merchants", "search_offers", "mandate_status", "budget_status", "order_status"}
    spec = ToolSpec("search_offers", "d", _shopping.SearchOffersArgs, _nothing)
    assert (spec.read_only, spec.output_schema()) == (False, {"type": "object"})


async def _nothing(parsed: Any) -> dict[str, Any]:
    return {}
