"""What a client reads before and after a call: output schemas every result validates against,
read-only marks, and missing-argument messages that say what is expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the [mcp] extra is not installed")

from jsonschema import Draft202012Validator
from mcp import ClientSession, types
from mcp.shared.memory import create_connected_server_and_client_session

from amp_tools.mcp.backend import open_backend
from amp_tools.mcp.server import build_server
from amp_tools.toolkit._specs import declared_outputs, read_only_tools
from tests.mcp._mcp_support import BUDGET, CLIENT, negotiated_hotel, text_of, write_policy


async def _call(session: ClientSession, name: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await session.call_tool(name, args)
    assert not result.isError, text_of(result)
    assert result.structuredContent is not None
    return result.structuredContent


async def test_every_tool_declares_an_output_schema_its_result_validates_against(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    policy = write_policy(tmp_path, expires_at="2030-01-01T00:00:00Z")
    backend = open_backend(policy, ledger=str(tmp_path / "ledger.db"), budget_id=BUDGET, approval_wait=0)
    results: dict[str, dict[str, Any]] = {}
    try:
        async with create_connected_server_and_client_session(build_server(backend), client_info=CLIENT) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            results["discover_merchants"] = await _call(session, "discover_merchants", {})
            found = await _call(session, "search_offers", {"query": "flight Kuala Lumpur", "category": "flight"})
            results["search_offers"] = found
            offer = next(o["offer_id"] for o in found["offers"] if "19:00" in o["name"])
            results["request_quote"] = await _call(session, "request_quote", {"offer_id": offer})
            results["negotiate"] = await _call(session, "negotiate", {"quote_id": results["request_quote"]["quote_id"],
                                                                      "offer_amount": "100.00"})
            results["accept_quote"] = await _call(session, "accept_quote",
                                                  {"quote_id": results["negotiate"]["quote_id"]})
            results["checkout"] = await _call(session, "checkout", {"offer_id": offer})
            results["request_mandate"] = await _call(session, "request_mandate",
                                                     {"purpose": "Book my Kuala Lumpur trip", "budget": "500.00"})
            results["mandate_status"] = await _call(session, "mandate_status", {})
            hotel = await negotiated_hotel(session)
            results["pay"] = await _call(session, "pay", {"checkout_id": hotel})
            results["budget_status"] = await _call(session, "budget_status", {})
            results["order_status"] = await _call(session, "order_status", {"checkout_id": hotel})
            results["refund"] = await _call(session, "refund", {"checkout_id": hotel, "amount": "100.00",
                                                                "reason": "one night less"})
    finally:
        await backend.aclose()

    outputs = declared_outputs()
    assert set(results) == set(tools) == set(outputs)
    for name, tool in tools.items():
        assert tool.outputSchema is not None and tool.outputSchema["type"] == "object", name
        Draft202012Validator.check_schema(tool.outputSchema)
        errors = [e.message for e in Draft202012Validator(tool.outputSchema).iter_errors(results[name])]
        assert errors == [], (name, errors, results[name])
        # The schema says something: it requires the keys a client relies on.
        assert outputs[name]["required"], name
    # A result missing a required key, or with a number where money is a string, does not validate.
    bad_pay = {**results["pay"], "amount": {"amount": 1102.0, "currency": "MYR"}}
    assert not Draft202012Validator(tools["pay"].outputSchema or {}).is_valid(bad_pay)
    assert not Draft202012Validator(tools["checkout"].outputSchema or {}).is_valid({"merchant": "x"})
    assert (results["pay"]["status"], results["refund"]["amount"]) == ("paid", {"amount": "100.00", "currency": "MYR"})


async def test_read_only_tools_are_marked_and_money_tools_are_not(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    backend = open_backend(write_policy(tmp_path), ledger=str(tmp_path / "ledger.db"), budget_id=BUDGET)
    try:
        async with create_connected_server_and_client_session(build_server(backend), client_info=CLIENT) as session:
            tools = (await session.list_tools()).tools
    finally:
        await backend.aclose()
    marks = {t.name: (t.annotations.readOnlyHint, t.annotations.destructiveHint) for t in tools if t.annotations}
    read_only = read_only_tools()
    assert {"budget_status", "search_offers", "order_status"} <= read_only
    assert {name for name, (marked, _) in marks.items() if marked} == read_only
    assert marks["pay"] == (False, True) and marks["refund"] == (False, True)
    assert marks["checkout"] == (False, False)


@pytest.mark.parametrize(("tool", "expected"), [
    ("search_offers", "invalid arguments for search_offers: query is required: what to look for, "
                      "e.g. 'flight Singapore'."),
    ("pay", "invalid arguments for pay: checkout_id is required: the checkout_id returned by checkout or "
            "accept_quote."),
    ("negotiate", "invalid arguments for negotiate: quote_id is required: a quote_id from request_quote.; "
                  "offer_amount is required: your counter-offer for the whole quote"),
])
async def test_a_missing_argument_says_what_is_expected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        tool: str, expected: str) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    backend = open_backend(write_policy(tmp_path), ledger=str(tmp_path / "ledger.db"), budget_id=BUDGET)
    try:
        async with create_connected_server_and_client_session(build_server(backend), client_info=CLIENT) as session:
            result: types.CallToolResult = await session.call_tool(tool, {})
    finally:
        await backend.aclose()
    assert result.isError and result.structuredContent is not None
    message = result.structuredContent["message"]
    assert message.startswith(expected), message
    assert "Field required" not in message and "got an object" not in message

