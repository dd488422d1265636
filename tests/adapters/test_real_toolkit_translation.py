"""The real `AmpToolkit.specs()` go through all three adapters unchanged (no network: a 503 transport)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from autogen_core import CancellationToken

from amp_autogen import to_autogen_tools
from amp_crewai import to_crewai_tools
from amp_langchain import to_langchain_tools
from amp_tools.amp.client import AmpClient
from amp_tools.ledger import open_ledger
from amp_tools.policy import load_policy
from amp_tools.toolkit import AmpToolkit, ToolSpec


@pytest.fixture
def specs() -> Iterator[list[ToolSpec]]:
    client = AmpClient("http://cp.invalid", transport=httpx.MockTransport(lambda request: httpx.Response(503)))
    policy = load_policy(Path(__file__).parents[2] / "examples/policies/cautious_traveller.yaml")
    yield AmpToolkit(client, policy, ledger=open_ledger(":memory:"), budget_id="default").specs()


async def test_every_spec_translates_and_answers_alike(specs: list[ToolSpec]) -> None:
    names = [s.name for s in specs]
    assert {"discover_merchants", "search_offers", "pay", "budget_status", "refund"} <= set(names)
    lc, crew, ag = to_langchain_tools(specs), to_crewai_tools(specs), to_autogen_tools(specs)
    assert [t.name for t in lc] == [t.name for t in crew] == [t.name for t in ag] == names
    for tool in ag:
        assert tool.schema["parameters"]["type"] == "object"  # autogen inlines $defs without complaint
    budget = names.index("budget_status")
    via_lc = json.loads(await lc[budget].ainvoke({}))
    via_crew = json.loads(crew[budget].run())
    via_ag = json.loads(ag[budget].return_value_as_string(await ag[budget].run_json({}, CancellationToken())))
    assert via_lc["total"] == via_crew["total"] == via_ag["total"]  # windows carry time-of-call fields
    assert via_lc["total"]["used"] == {"amount": "0.00", "currency": "USD"}


def test_real_pay_schema_error_is_readable(specs: list[ToolSpec]) -> None:
    pay = next(t for t in to_langchain_tools(specs) if t.name == "pay")
    msg = pay.invoke({"name": "pay", "args": {}, "id": "c1", "type": "tool_call"})
    assert msg.status == "error"
    assert msg.content.startswith("invalid arguments for pay: checkout_id is required: the checkout_id returned by "
                                  "checkout or accept_quote.")


async def test_an_unknown_argument_to_a_tool_without_arguments_is_refused_on_every_path(
        specs: list[ToolSpec]) -> None:
    budget = [s.name for s in specs].index("budget_status")
    lc = to_langchain_tools(specs)[budget]
    crew = to_crewai_tools(specs)[budget]
    ag = to_autogen_tools(specs)[budget]
    said = []
    msg = await lc.ainvoke({"name": "budget_status", "args": {"bogus": 1}, "id": "c1", "type": "tool_call"})
    assert msg.status == "error"
    said.append(msg.content)
    said.append(lc.invoke({"bogus": 1}))
    said.append(str(crew.run(bogus=1)))
    try:
        said.append(str(await ag.run_json({"bogus": 1}, CancellationToken())))
    except Exception as exc:  # AutoGen reports tool errors by raising; its agent shows the text to the model
        said.append(str(exc))
    for text in said:
        assert "invalid arguments for budget_status: bogus: Extra inputs are not permitted" in text, text
