"""The MCP server spends a budget chosen on purpose, under the policy stored for it, with the owner's key.

`--budget-id`, else AMP_TOOLS_BUDGET, else the policy's name (never a silent `default`); the
stored policy governs (a differing `--policy` refuses to start, with the diff); a token's budget
runs on its own stored policy; a pinned owner key is passed to every session's toolkit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the [mcp] extra is not installed")

from mcp.shared.memory import create_connected_server_and_client_session

from amp_tools.errors import ConfigError
from amp_tools.ledger import open_ledger
from amp_tools.mcp.backend import choose_budget, open_backend
from amp_tools.mcp.server import build_server
from amp_tools.owner import OwnerKey
from amp_tools.policy import load_policy, parse_policy
from tests.mcp._mcp_support import CLIENT, error, flight, http_backend, http_session, list_price_hotel, ok, write_policy

TIGHT = {"name": "team", "currency": "USD", "total_budget": "1000.00", "per_transaction_max": "120.00"}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    monkeypatch.delenv("AMP_TOOLS_BUDGET", raising=False)
    monkeypatch.delenv("AMP_TOOLS_OWNER_KEY", raising=False)


def test_the_budget_is_named_on_purpose(monkeypatch: pytest.MonkeyPatch) -> None:
    named = parse_policy({"name": "travel", "currency": "USD", "total_budget": "10.00"})
    unnamed = parse_policy({"currency": "USD", "total_budget": "10.00"})
    assert choose_budget("explicit", named, sandbox=False) == "explicit"
    assert choose_budget(None, named, sandbox=False) == "travel"
    with pytest.raises(ConfigError) as nothing:
        choose_budget(None, unnamed, sandbox=False)
    assert "--budget-id" in nothing.value.message and "AMP_TOOLS_BUDGET" in nothing.value.message
    assert "default" not in nothing.value.message.split("never")[0]
    monkeypatch.setenv("AMP_TOOLS_BUDGET", "from-env")
    assert choose_budget(None, named, sandbox=False) == "from-env"
    assert choose_budget("explicit", named, sandbox=False) == "explicit"
    monkeypatch.delenv("AMP_TOOLS_BUDGET")
    assert choose_budget(None, named, sandbox=True).startswith("sandbox-")  # offline play never spends "travel"


async def test_the_stored_policy_governs_and_a_different_file_refuses_to_start(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    owner = open_ledger(str(ledger))
    owner.create_budget_sync("team", parse_policy(TIGHT), by="owner")
    owner.close_sync()
    loose = write_policy(tmp_path, name="team", total_budget="5000.00")
    with pytest.raises(ConfigError) as refused:
        open_backend(loose, ledger=str(ledger), budget_id="team")
    backend = open_backend(None, ledger=str(ledger), budget_id="team")  # no --policy: the stored one
    try:
        described = backend.describe()
        async with create_connected_server_and_client_session(build_server(backend), client_info=CLIENT) as session:
            too_much = await error(session, "pay", {"checkout_id": await list_price_hotel(session)})
            paid = await ok(session, "pay", {"checkout_id": await flight(session)})
    finally:
        await backend.aclose()

    assert "total_budget" in refused.value.message and "5000.00" in str(refused.value)
    assert "budget 'team' (policy version 1 from the ledger)" in described
    assert too_much.structuredContent is not None and too_much.structuredContent["details"]["rule"] == (
        "per_transaction_max")
    assert (paid["status"], paid["budget_left"]) == ("paid", {"amount": "889.74", "currency": "USD"})


async def test_a_tokens_budget_runs_on_its_own_stored_policy(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    async with http_backend(write_policy(tmp_path), ledger) as served:
        served.backend.ledger.create_budget_sync("tight", parse_policy({**TIGHT, "name": "tight",
                                                                        "per_transaction_max": "100.00"}),
                                                 by="owner")
        async with http_session(served.url, served.new_token("tight")) as tight, \
                http_session(served.url, served.token) as roomy:
            refused = await error(tight, "pay", {"checkout_id": await flight(tight)})
            paid = await ok(roomy, "pay", {"checkout_id": await flight(roomy)})
            tight_status = await ok(tight, "budget_status")

    assert refused.structuredContent is not None and refused.structuredContent["details"]["rule"] == (
        "per_transaction_max")
    assert "100.00 USD" in refused.structuredContent["message"]
    assert paid["budget_left"] == {"amount": "889.74", "currency": "USD"}
    assert tight_status["total"]["limit"] == {"amount": "1000.00", "currency": "USD"}
    assert tight_status["total"]["used"] == {"amount": "0.00", "currency": "USD"}


async def test_a_pinned_owner_key_reaches_every_session(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    backend = open_backend(policy, ledger=str(tmp_path / "ledger.db"), budget_id="trip",
                           owner_key=OwnerKey.generate().public_jwk())
    try:
        async with create_connected_server_and_client_session(build_server(backend), client_info=CLIENT) as session:
            unsigned = await error(session, "pay", {"checkout_id": await flight(session)})
            status = await ok(session, "budget_status")
    finally:
        await backend.aclose()
    assert unsigned.structuredContent is not None
    assert unsigned.structuredContent["error"] == "OWNER_SIGNATURE_MISSING"
    assert status["signed"] is False
    assert backend.sandbox is not None and backend.sandbox.payments() == []
    assert load_policy(policy).name == "mcp-test"
