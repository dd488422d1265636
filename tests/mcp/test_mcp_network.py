"""A real network without a merchant registry, and a client configuration that starts this install.

`amp-tools mcp --cp URL --merchants FILE` against the reference-like sandbox served on a loopback
port (no registry, no order-status extension, no chain check at merchants, identity verified by
the wallet half a second after the session is created), over stdio with the SDK's client: it
discovers, searches, checks out and pays.
`--print-config` prints a configuration whose command and arguments, run as printed, serve MCP.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the [mcp] extra is not installed")

from _mcp_support import CLIENT, error, flight, ledger_rows, ok, stdio_session, write_policy
from _served import served_sandbox
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from typer.testing import CliRunner

from amp_tools import config
from amp_tools.amp.keys import AgentKey
from amp_tools.cli import app
from amp_tools.clock import OffsetClock
from amp_tools.sandbox import SandboxConfig


async def test_a_cp_without_registry_shops_and_pays_with_a_merchant_file(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    ledger = tmp_path / "ledger.db"
    policy = write_policy(tmp_path)
    with served_sandbox(SandboxConfig.reference_like()) as (sandbox, url):
        sandbox.register_agent("amp-tools-agent", AgentKey.load_or_create(config.agent_key_path()).public_jwk())
        merchants = tmp_path / "merchants.json"
        merchants.write_text(json.dumps({"merchants": sandbox.merchant_directory()}), encoding="utf-8")
        async with stdio_session(policy, ledger, tmp_path, extra=("--cp", url)) as bare:
            no_registry = await error(bare, "discover_merchants", {})
        async with stdio_session(policy, ledger, tmp_path, extra=("--cp", url, "--merchants", str(merchants))) as s:
            found = await ok(s, "discover_merchants", {"category": "flight"})
            seat = await flight(s)
            asked: list[str] = []
            while len(asked) < 3:  # link the wallet, then confirm the purchase: each waits for the person
                result = await s.call_tool("pay", {"checkout_id": seat})
                if not result.isError:
                    break
                assert result.structuredContent is not None
                asked.append(result.structuredContent["error"])
                assert isinstance(sandbox.clock, OffsetClock)
                sandbox.clock.advance(1)  # the reference wallet confirms 0.5 s later: move its clock past that
            paid = await ok(s, "pay", {"checkout_id": seat})  # paying again answers already_paid at most
        # The environment variable names the same file.
        monkeypatch.setenv("AMP_TOOLS_MERCHANTS", str(merchants))
        async with stdio_session(policy, ledger, tmp_path, extra=("--cp", url)) as by_env:
            hotels = await ok(by_env, "discover_merchants", {"category": "hotel"})
        charged = [(p["merchantId"], p["amount"]["cent"]) for p in sandbox.payments() if p["status"] == "SUCCESS"]

    assert no_registry.structuredContent is not None
    assert no_registry.structuredContent["error"] == "NO_MERCHANT_REGISTRY"
    assert [m["merchant_id"] for m in found["merchants"]] == ["SKYLARK-AIR"]
    assert asked == ["WALLET_CONFIRMATION_REQUIRED", "WALLET_CONFIRMATION_REQUIRED"]
    assert {m["merchant_id"] for m in hotels["merchants"]} == {"MARINA-HOTEL", "KL-GRAND-HOTEL"}
    assert (paid["status"], paid["merchant"], paid["amount"]["amount"], paid["budget_amount"]["amount"]) == (
        "already_paid", "Skylark Air", "149.00", "110.26")
    assert charged == [("SKYLARK-AIR", 14900)]
    assert [r[:2] for r in await ledger_rows(ledger)] == [("SKYLARK-AIR", "released"), ("SKYLARK-AIR", "released"),
                                                          ("SKYLARK-AIR", "committed")]


@pytest.mark.parametrize("client", ["claude", "cursor", "vscode"])
async def test_print_config_starts_this_install_as_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           client: str) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    write_policy(tmp_path)
    printed = CliRunner().invoke(app, ["mcp", "--policy", "policy.json", "--ledger", "ledger.db",
                                       "--budget-id", "travel", "--print-config", client])
    assert printed.exit_code == 0, printed.output
    data = json.loads(printed.stdout)
    server = data["servers" if client == "vscode" else "mcpServers"]["amp-tools"]
    assert server["command"] == sys.executable and Path(server["command"]).is_absolute()
    assert server["args"] == ["-m", "amp_tools.mcp", "--policy", str(tmp_path / "policy.json"),
                              "--ledger", str(tmp_path / "ledger.db"), "--budget-id", "travel"]
    assert server["env"] == {"AMP_TOOLS_HOME": str(tmp_path / "home")}
    assert (server.get("type") == "stdio") is (client == "vscode")

    params = StdioServerParameters(command=server["command"], args=server["args"],
                                   env={**server["env"], "PATH": "/nonexistent"})  # no reliance on PATH
    with (tmp_path / "stderr.log").open("a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), \
                ClientSession(read, write, client_info=CLIENT) as session:
            await session.initialize()
            status = await ok(session, "budget_status")
    assert status["total"]["left"] == {"amount": "1000.00", "currency": "USD"}
