"""The approval inbox beside an agent, in one command: ``python -m amp_examples.owner_console``.

Starts the AMP sandbox in-process, the owner console (`amp-tools serve`) on 127.0.0.1 and an
agent on the same ledger with an out-of-band approver (a webhook approver with ``--webhook-url``).
The agent books two hotel nights above the policy's confirmation threshold, is told the payment
waits for a person, and retries until the person approves or denies it in the browser.

Each run books under a budget id of its own (``owner-console-<time>-<random>``) on a freshly
seeded sandbox, so a second run never meets the first run's payment; the first line says which
ledger and budget it uses. A busy ``--port`` is one line and exit 2, before anything starts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amp_tools import config
from amp_tools.approvals import ApprovalStore, OutOfBandApprover, WebhookApprover
from amp_tools.cli import require_free_port
from amp_tools.errors import AmpToolsError, ApprovalPending, ToolError
from amp_tools.ledger import open_ledger
from amp_tools.policy import load_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.server import ServeSettings, create_app, hash_secret
from amp_tools.toolkit import AmpToolkit

POLICY = Path(__file__).parent / "policies" / "travel_demo.yaml"


def _serve(app: Any, port: int) -> Any:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the owner console did not start on port {port}")
        time.sleep(0.05)
    return server


def new_budget_id() -> str:
    return f"owner-console-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


async def run(*, ledger_url: str, port: int, token: str, webhook_url: str | None = None, webhook_secret: str = "",
              wait: float = 600.0, every: float = 2.0, say: Callable[[str], None] = print,
              budget_id: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """Run the console and the agent; returns the agent's last `pay` result (or error) as a dict.

    `budget_id` defaults to a fresh one per run; `seed` (None: random) fixes the sandbox's ids for tests.
    """
    require_free_port("127.0.0.1", port)
    budget = budget_id or new_budget_id()
    sandbox = Sandbox(SandboxConfig(seed=seed))
    policy = load_policy(POLICY)
    agent_ledger = open_ledger(ledger_url, clock=sandbox.clock)
    inbox_ledger = open_ledger(ledger_url, clock=sandbox.clock)
    store = ApprovalStore(agent_ledger, budget_id=budget)
    inbox = f"http://127.0.0.1:{port}"
    approver: OutOfBandApprover = (
        WebhookApprover(store, webhook_url, webhook_secret, inbox_url=inbox, budget_id=budget, fmt="slack")
        if webhook_url else OutOfBandApprover(store, budget_id=budget))
    server = _serve(create_app(ServeSettings(ledger=inbox_ledger, passphrase_hash=hash_secret(token),
                                             network_url="http://sandbox/network",
                                             network_transport=sandbox.transport())), port)
    say(f"Ledger {ledger_url}, budget {budget} (later: amp-tools ledger show --budget {budget} --ledger {ledger_url})")
    say(f"Owner console: {inbox}/  (log in with: {token})")
    toolkit = AmpToolkit.for_sandbox(sandbox, policy, ledger=agent_ledger, approver=approver, budget_id=budget)
    tools = {spec.name: spec for spec in toolkit.specs()}
    try:
        found = await tools["search_offers"].ainvoke({"query": "hotel Kuala Lumpur", "category": "hotel"})
        offer = next(o["offer_id"] for o in found["offers"] if "Superior" in o["name"])
        checkout = await tools["checkout"].ainvoke({"offer_id": offer, "quantity": 2})
        deadline = time.monotonic() + wait
        while True:
            try:
                paid = await tools["pay"].ainvoke({"checkout_id": checkout["checkout_id"]})
                say(f"Agent: paid {paid['amount']['amount']} {paid['amount']['currency']}, "
                    f"transaction {paid['transaction_id']}")
                return paid
            except ApprovalPending as exc:
                if time.monotonic() > deadline:
                    say("Agent: nobody answered in time; giving up")
                    return exc.to_dict()
                if exc.details.get("approval_id"):
                    say(f"Agent: waiting for your approval ({exc.details['approval_id']}) in the inbox")
                await asyncio.sleep(every)
            except ToolError as exc:
                say(f"Agent: {exc.code}: {exc.message}")
                return exc.to_dict()
    finally:
        server.should_exit = True
        if isinstance(approver, WebhookApprover):
            approver.close()  # what is still owed stays in the outbox for `amp-tools approvals deliver`
        await toolkit.aclose()
        await agent_ledger.close()
        await inbox_ledger.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8787, help="the owner console's port on 127.0.0.1")
    parser.add_argument("--ledger", default=None, help="ledger path or URL (default: the amp-tools home)")
    parser.add_argument("--webhook-url", default=os.environ.get("AMP_TOOLS_WEBHOOK_URL"),
                        help="also POST each request there (Slack format); secret in AMP_TOOLS_WEBHOOK_SECRET")
    args = parser.parse_args(argv)
    token = os.environ.get("AMP_TOOLS_INBOX_PASSPHRASE") or secrets.token_urlsafe(18)
    try:
        result = asyncio.run(run(ledger_url=args.ledger or config.ledger_url(), port=args.port, token=token,
                                 webhook_url=args.webhook_url,
                                 webhook_secret=os.environ.get("AMP_TOOLS_WEBHOOK_SECRET", "")))
    except AmpToolsError as exc:  # a busy port, an unreadable ledger: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0 if result.get("status") == "paid" else 1


if __name__ == "__main__":
    sys.exit(main())
