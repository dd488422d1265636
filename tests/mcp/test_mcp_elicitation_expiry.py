"""With ``--approvals form``, an elicitation nobody answers before the approval request expires is a
denial, and a late yes pays nothing.

Runs the server and the SDK client over the SDK's in-memory transport, so the person can be slow on purpose.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, types
from mcp.shared.context import RequestContext
from mcp.shared.memory import create_connected_server_and_client_session

from amp_tools.approvals import Approver
from amp_tools.mcp.backend import open_backend
from amp_tools.mcp.server import build_server
from amp_tools.toolkit import AmpToolkit
from tests.mcp._mcp_support import BUDGET, CLIENT, ledger_rows, negotiated_hotel, text_of, write_policy


async def test_no_answer_before_expiry_denies_and_charges_nothing(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    ledger = tmp_path / "ledger.db"
    backend = open_backend(write_policy(tmp_path, approval={"confirm_above": "200.00"}), ledger=str(ledger),
                           budget_id=BUDGET)
    make = backend.toolkit

    def short_lived(approver: Approver, budget_id: str | None = None) -> AmpToolkit:
        toolkit = make(approver, budget_id)
        toolkit.guard.approval_ttl = timedelta(seconds=1)  # the person has one second to answer
        return toolkit

    monkeypatch.setattr(backend, "toolkit", short_lived)
    asked: list[str] = []
    late = anyio.Event()

    async def away_from_keyboard(context: RequestContext[ClientSession, Any],
                                 params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        await anyio.sleep(3)
        late.set()
        return types.ElicitResult(action="accept", content={"decision": "approve"})

    try:
        server = build_server(backend, approvals="form")
        async with create_connected_server_and_client_session(server, client_info=CLIENT,
                                                              elicitation_callback=away_from_keyboard) as session:
            checkout = await negotiated_hotel(session)
            started = time.monotonic()
            result = await session.call_tool("pay", {"checkout_id": checkout})
            waited = time.monotonic() - started
            # The late "approve" reaches a server that no longer waits for it, and pays nothing.
            await late.wait()
            await anyio.sleep(0.3)
    finally:
        await backend.aclose()

    assert result.isError and text_of(result).startswith("APPROVAL_DENIED")
    assert "no answer before approval apr_" in text_of(result) and "expired" in text_of(result)
    assert len(asked) == 1 and waited < 10
    assert backend.sandbox is not None and backend.sandbox.payments() == []
    assert [r[:2] for r in await ledger_rows(ledger)] == [("KL-GRAND-HOTEL", "released")]
