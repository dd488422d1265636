"""`amp-tools mcp` over stdio, driven by the MCP SDK's own client on a `python -m amp_tools.mcp` subprocess.

Lists the tools (schemas from the specs), shops, negotiates and pays, refuses a payment over a
limit naming the rule, leaves a payment pending for the CLI when the client cannot elicit, and
asks the person through the client's form only with ``--approvals form`` (approve; deny, then ask
afresh). The default (URL elicitation to the owner console) is tested in test_mcp_approvals.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the [mcp] extra is not installed")

from typer.testing import CliRunner

from amp_tools.approvals import ApprovalStore
from amp_tools.cli import app
from amp_tools.mcp.approval import FORM_APPROVER
from amp_tools.policy import load_policy
from amp_tools.sandbox import Sandbox
from amp_tools.toolkit import AmpToolkit
from tests.mcp._mcp_support import (
    Person,
    error,
    flight,
    ledger_rows,
    list_price_hotel,
    negotiated_hotel,
    ok,
    stdio_session,
    text_of,
    write_policy,
)

CONFIRM = {"confirm_above": "200.00"}  # the negotiated hotel (231.42 USD) asks; the flight (110.26 USD) does not


async def test_lists_the_toolkit_specs_with_their_args_schemas(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    specs = AmpToolkit.for_sandbox(Sandbox(), load_policy(policy)).specs()
    async with stdio_session(policy, tmp_path / "ledger.db", tmp_path) as session:
        listed = (await session.list_tools()).tools
        init_tools = {t.name: t for t in listed}
    assert [t.name for t in listed] == [s.name for s in specs]
    for spec in specs:
        tool = init_tools[spec.name]
        assert tool.inputSchema == spec.args_model.model_json_schema()
        assert tool.description == spec.description
        assert tool.annotations is not None and tool.annotations.destructiveHint is spec.moves_money
    pay = init_tools["pay"].inputSchema
    assert pay["required"] == ["checkout_id"] and pay["additionalProperties"] is False
    # Nothing a model can send approves anything: no tool takes an approval, a binding or a decision.
    words = " ".join(" ".join(t.inputSchema.get("properties", {})) for t in listed).lower()
    assert not any(w in words for w in ("approv", "binding", "decision", "grant"))


async def test_shop_negotiate_and_pay_within_budget(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    async with stdio_session(write_policy(tmp_path), ledger, tmp_path) as session:
        hotel = await negotiated_hotel(session)
        paid_hotel = await ok(session, "pay", {"checkout_id": hotel})
        paid_flight = await ok(session, "pay", {"checkout_id": await flight(session)})
        again = await ok(session, "pay", {"checkout_id": hotel})  # pay twice: charged once
        budget = await ok(session, "budget_status")
        order = await ok(session, "order_status", {"checkout_id": hotel})

    assert (paid_hotel["status"], paid_hotel["merchant"], paid_hotel["amount"], paid_hotel["budget_amount"]) == (
        "paid", "KL Grand Hotel", {"amount": "1102.00", "currency": "MYR"}, {"amount": "231.42", "currency": "USD"})
    assert (paid_flight["merchant"], paid_flight["amount"]["amount"], paid_flight["budget_amount"]["amount"]) == (
        "Skylark Air", "149.00", "110.26")
    assert paid_flight["budget_left"] == {"amount": "658.32", "currency": "USD"}
    assert again["status"] == "already_paid" and again["transaction_id"] == paid_hotel["transaction_id"]
    assert budget["total"]["left"] == {"amount": "658.32", "currency": "USD"}
    assert order["status"] == "PAID"
    assert await ledger_rows(ledger) == [("KL-GRAND-HOTEL", "committed", "1102.00 MYR", "231.42 USD"),
                                         ("SKYLARK-AIR", "committed", "149.00 SGD", "110.26 USD")]


async def test_payment_over_the_limit_is_a_tool_error_naming_the_rule(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    async with stdio_session(write_policy(tmp_path, per_transaction_max="200.00"), ledger, tmp_path) as session:
        refused = await error(session, "pay", {"checkout_id": await list_price_hotel(session)})
        paid = await ok(session, "pay", {"checkout_id": await flight(session)})  # the session goes on
        bad = await error(session, "negotiate", {"quote_id": "q1", "offer_amount": 12.5})
        unknown = await error(session, "approve_payment", {"approval_id": "apr_1"})

    text = text_of(refused)
    assert text.startswith("POLICY_VIOLATION: ") and "[policy: per_transaction_max]" in text
    assert "243.60 USD" in text and "200.00 USD" in text
    assert refused.structuredContent is not None
    assert refused.structuredContent["error"] == "POLICY_VIOLATION"
    assert refused.structuredContent["details"]["rule"] == "per_transaction_max"
    assert refused.structuredContent["hint"] and refused.structuredContent["hint"] in text
    assert paid["merchant"] == "Skylark Air"
    assert text_of(bad).startswith("INVALID_ARGUMENTS: invalid arguments for negotiate: offer_amount")
    assert text_of(unknown).startswith("NOT_FOUND: there is no tool named 'approve_payment'")
    assert await ledger_rows(ledger) == [("SKYLARK-AIR", "committed", "149.00 SGD", "110.26 USD")]


async def test_without_elicitation_the_payment_waits_for_the_cli(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "ledger.db"
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))  # the ledger (and its approvals) the server and the CLI share
    async with stdio_session(write_policy(tmp_path, approval=CONFIRM), ledger, tmp_path) as session:
        hotel = await negotiated_hotel(session)
        pending = await error(session, "pay", {"checkout_id": hotel})
        assert pending.structuredContent is not None and pending.structuredContent["error"] == "APPROVAL_PENDING"
        approval_id = pending.structuredContent["details"]["approval_id"]
        assert f"amp-tools approvals approve {approval_id}" in text_of(pending)
        # Held while the person decides; asking again reuses this row (issue 20: one payment, one row).
        assert await ledger_rows(ledger) == [("KL-GRAND-HOTEL", "reserved", "1102.00 MYR", "231.42 USD")]
        still = await error(session, "pay", {"checkout_id": hotel})  # asking again reuses the same request
        assert still.structuredContent is not None
        assert still.structuredContent["details"]["approval_id"] == approval_id

        answered = CliRunner().invoke(app, ["approvals", "approve", approval_id, "--by", "alice"])
        assert answered.exit_code == 0, answered.output
        paid = await ok(session, "pay", {"checkout_id": hotel})
        # The grant was single-use and bound to that payment: the next hotel, another amount, waits again.
        second = await error(session, "pay", {"checkout_id": await list_price_hotel(session)})

    assert (paid["status"], paid["approved_by"], paid["budget_left"]) == (
        "paid", "alice", {"amount": "768.58", "currency": "USD"})
    assert second.structuredContent is not None and second.structuredContent["error"] == "APPROVAL_PENDING"
    assert second.structuredContent["details"]["approval_id"] != approval_id
    assert [r.status for r in ApprovalStore(ledger).list()] == ["pending", "consumed"]
    # The first hotel: one row, committed; the second still waits for its person, held.
    assert [r[:2] for r in await ledger_rows(ledger)] == [("KL-GRAND-HOTEL", "committed"),
                                                          ("KL-GRAND-HOTEL", "reserved")]


FORM = ("--approvals", "form")


async def test_form_mode_asks_through_the_client_form(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    person = Person(["approve"], reason="worth it")
    async with stdio_session(write_policy(tmp_path, approval=CONFIRM), ledger, tmp_path, elicit=person,
                             extra=FORM) as session:
        paid = await ok(session, "pay", {"checkout_id": await negotiated_hotel(session)})
        flown = await ok(session, "pay", {"checkout_id": await flight(session)})  # under 200 USD: nobody asked

    [asked] = person.asked
    assert asked.message.startswith("amp-tools asks you (not the AI model) to approve a payment.")
    assert "Pay 1102.00 MYR (= 231.42 USD from the budget) to KL Grand Hotel (KL-GRAND-HOTEL)" in asked.message
    assert "200.00 USD" in asked.message
    assert asked.requestedSchema["properties"]["decision"]["enum"] == ["approve", "deny"]
    assert asked.requestedSchema["required"] == ["decision"]
    # The channel is recorded, never the client's own name (`amp-tests`).
    assert (paid["status"], paid["approved_by"]) == ("paid", FORM_APPROVER)
    assert "approved_by" not in flown and flown["budget_left"] == {"amount": "658.32", "currency": "USD"}
    assert [r[:2] for r in await ledger_rows(ledger)] == [("KL-GRAND-HOTEL", "committed"),
                                                          ("SKYLARK-AIR", "committed")]


async def test_form_mode_deny_refuses_and_the_next_try_asks_again(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    person = Person(["deny", "decline", "approve"], reason="too expensive")
    async with stdio_session(write_policy(tmp_path, approval=CONFIRM), ledger, tmp_path, elicit=person,
                             extra=FORM) as session:
        hotel = await negotiated_hotel(session)
        denied = await error(session, "pay", {"checkout_id": hotel})
        declined = await error(session, "pay", {"checkout_id": hotel})
        paid = await ok(session, "pay", {"checkout_id": hotel})

    assert text_of(denied).startswith("APPROVAL_DENIED") and "too expensive" in text_of(denied)
    assert denied.structuredContent is not None and denied.structuredContent["error"] == "APPROVAL_DENIED"
    assert "declined the approval request in the MCP client" in text_of(declined)
    assert len(person.asked) == 3  # each answer served one payment attempt, once
    assert paid["approved_by"] == FORM_APPROVER
    assert [r[:2] for r in await ledger_rows(ledger)] == [
        ("KL-GRAND-HOTEL", "released"), ("KL-GRAND-HOTEL", "released"), ("KL-GRAND-HOTEL", "committed")]


async def test_approvals_cli_mode_never_elicits(tmp_path: Path) -> None:
    person = Person(["approve"])
    async with stdio_session(write_policy(tmp_path, approval=CONFIRM), tmp_path / "ledger.db", tmp_path,
                             elicit=person, extra=("--approvals", "cli")) as session:
        pending = await error(session, "pay", {"checkout_id": await negotiated_hotel(session)})
    assert pending.structuredContent is not None and pending.structuredContent["error"] == "APPROVAL_PENDING"
    assert person.asked == []
