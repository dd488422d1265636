"""`--cp URL`: the server speaks HTTP to a Credential Provider (here the sandbox served on a loopback port).

The agent key comes from ``$AMP_TOOLS_HOME`` as `amp-tools key show` would print it for registration;
start-up reconciliation runs before serving; a client shops, negotiates and pays over MCP.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp.shared.memory import create_connected_server_and_client_session

from amp_tools import config
from amp_tools.amp.keys import AgentKey
from amp_tools.mcp.backend import open_backend
from amp_tools.mcp.run import reconcile_leftovers
from amp_tools.mcp.server import build_server
from amp_tools.sandbox import SandboxConfig
from tests._shared._served import served_sandbox
from tests.mcp._mcp_support import BUDGET, CLIENT, ledger_rows, negotiated_hotel, ok, write_policy


async def test_cp_mode_pays_through_a_served_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    ledger = tmp_path / "ledger.db"
    with served_sandbox(SandboxConfig(idv_mode="auto")) as (sandbox, url):
        key = AgentKey.load_or_create(config.agent_key_path())
        sandbox.register_agent("amp-tools-agent", key.public_jwk())  # the onboarding step, out of band
        backend = open_backend(write_policy(tmp_path), ledger=str(ledger), cp_url=url, budget_id=BUDGET)
        try:
            assert backend.sandbox is None and backend.describe().startswith(f"Credential Provider {url}")
            await reconcile_leftovers(backend)
            async with create_connected_server_and_client_session(build_server(backend),
                                                                  client_info=CLIENT) as session:
                paid = await ok(session, "pay", {"checkout_id": await negotiated_hotel(session)})
        finally:
            await backend.aclose()
        payments = [(p["merchantId"], p["amount"]["cent"]) for p in sandbox.payments() if p["status"] == "SUCCESS"]

    assert (paid["status"], paid["amount"]["amount"], paid["budget_amount"]["amount"]) == ("paid", "1102.00", "231.42")
    assert payments == [("KL-GRAND-HOTEL", 110200)]
    assert [r[:2] for r in await ledger_rows(ledger)] == [("KL-GRAND-HOTEL", "committed")]
