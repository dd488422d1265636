"""Shared pieces of the fuzz tests: a cheap offline toolkit, state snapshots, message checks.

The offline toolkit talks to an `httpx.MockTransport` that answers every call with an empty
success, so a tool whose arguments are valid but name unknown ids finishes without a real
network; that keeps thousands of generated cases per tool inside the time budget.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from amp_tools.amp.client import AmpClient
from amp_tools.amp.keys import AgentKey
from amp_tools.approvals import OutOfBandApprover
from amp_tools.approvals.store import ApprovalStore
from amp_tools.clock import ManualClock
from amp_tools.errors import AmpToolsError, InvalidArguments, ToolError
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.policy import BudgetPolicy, parse_policy
from amp_tools.sandbox import Sandbox
from amp_tools.toolkit import AmpToolkit, ToolSpec

T = TypeVar("T")

#: One agent key for every fuzz toolkit: generating a P-256 key per toolkit is wasted time.
AGENT_KEY = AgentKey.generate(kid="fuzz-agent")

#: Substrings that mean an error text is Python plumbing rather than a message for a model.
NOISE = ("Traceback", "pydantic_core", "errors.pydantic.dev", " object at 0x", "ValidationError",
         "<class ", "File \"")

MAX_MESSAGE = 2000


def fuzz_policy(**overrides: Any) -> BudgetPolicy:
    """A roomy USD policy: every rule present, limits far above what the fuzz spends."""
    data: dict[str, Any] = {"currency": "USD", "total_budget": "100000.00", "per_transaction_max": "5000.00",
                            "approval": {"confirm_above": "1000.00", "confirm_refunds": False}}
    data.update(overrides)
    return parse_policy(data)


@dataclass
class Offline:
    """A toolkit whose peer answers every request with an empty success, counting the requests."""

    toolkit: AmpToolkit
    ledger: LedgerBase
    store: ApprovalStore
    requests: list[str] = field(default_factory=list)


def offline_toolkit(tmp: Path | None = None) -> Offline:
    folder = tmp or Path(tempfile.mkdtemp(prefix="amp-fuzz-"))
    clock = ManualClock()
    requests: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.path)
        return httpx.Response(200, json={"success": True, "data": []})

    client = AmpClient("http://offline", transport=httpx.MockTransport(answer), retries=0, backoff=0,
                       agent_id="fuzz-agent", clock=clock)
    ledger = open_ledger(str(folder / "ledger.db"), clock=clock)
    store = ApprovalStore(open_ledger(folder / "approvals.db"), clock=clock)
    tk = AmpToolkit(client, fuzz_policy(), ledger=ledger, approver=OutOfBandApprover(store, clock=clock),
                    agent_key=AGENT_KEY, clock=clock, run_id="fuzz-run", agent_id="fuzz-agent", budget_id="default")
    return Offline(tk, ledger, store, requests)


def snapshot(tk: AmpToolkit, store: ApprovalStore, sandbox: Sandbox | None = None) -> dict[str, Any]:
    """Everything a tool call could change: ledger rows, audit head, approvals, session, sandbox."""
    rows = [(e.id, e.status, e.amount.minor, e.refunded.minor, e.external_ref)
            for e in tk.ledger.entries_sync(limit=10_000)]
    out: dict[str, Any] = {
        "rows": rows,
        "audit": _audit_head(tk),
        "approvals": [(r.id, r.status) for r in store.list()],
        "session": repr(tk.state),
    }
    if sandbox is not None:
        out["payments"] = json.dumps(sandbox.payments(), sort_keys=True, default=str)
        out["orders"] = sorted((o.checkout_id, o.status) for o in sandbox.state.orders.values())
        out["mandates"] = sorted((m.mandate_id, m.status, m.used.minor) for m in sandbox.state.mandates.values())
        out["tokens"] = len(sandbox.state.payment_tokens)
    return out


def _audit_head(tk: AmpToolkit) -> tuple[int, str, bool]:
    report = tk.ledger.audit.verify_sync()
    return report.head_seq, report.head_hash, report.ok


def check_message(exc: BaseException, spec: ToolSpec, args: Any) -> None:
    """A tool error a model can read: typed, non-empty, bounded, naming what was wrong."""
    assert isinstance(exc, ToolError), f"{spec.name} raised {type(exc).__name__}: {exc}"
    text = str(exc)
    assert exc.message.strip(), f"{spec.name}: empty error message"
    assert len(text) <= MAX_MESSAGE, f"{spec.name}: error message of {len(text)} characters"
    for noise in NOISE:
        assert noise not in text, f"{spec.name}: {noise!r} in {text[:300]}"
    if isinstance(exc, InvalidArguments) and exc.message.startswith("invalid arguments"):
        names = list(spec.args_model.model_fields)
        if isinstance(args, dict):
            names += [str(k)[:20] for k in args]
        assert "(arguments)" in text or any(n and n in text for n in names), \
            f"{spec.name}: the message names no field: {text[:300]}"


def run(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    return loop.run_until_complete(coro)


def outcome(loop: asyncio.AbstractEventLoop, spec: ToolSpec, args: Any) -> tuple[dict[str, Any] | None,
                                                                                  AmpToolsError | None]:
    """The tool's result or its `ToolError`; anything else fails the test where it happens."""
    try:
        return run(loop, spec.ainvoke(args)), None
    except ToolError as exc:
        return None, exc
