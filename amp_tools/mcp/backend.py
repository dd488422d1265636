"""What one `amp-tools mcp` process shares across its clients, and the toolkit it gives each one.

One policy, one ledger (the budget's durable record, so two clients spend one budget, never two),
one approval store and one agent key; the AMP side is either an embedded sandbox (offline,
in-process) or a Credential Provider URL. Each MCP session gets its own `AmpToolkit`
(its own AMP session state, quotes and checkouts) built by `toolkit()`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from amp_tools import config
from amp_tools.amp.client import AmpClient
from amp_tools.amp.keys import AgentKey
from amp_tools.approvals import ApprovalStore, Approver
from amp_tools.clock import SYSTEM_CLOCK
from amp_tools.errors import ConfigError
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.policy import BudgetPolicy, load_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit
from amp_tools.toolkit.core import resolve_budget_id

__all__ = ["Backend", "open_backend"]


@dataclass
class Backend:
    policy: BudgetPolicy
    ledger: LedgerBase
    store: ApprovalStore
    budget_id: str
    sandbox: Sandbox | None = None
    cp_url: str | None = None
    agent_key: AgentKey | None = None
    agent_id: str = "amp-tools-agent"
    sessions: int = field(default=0)

    def describe(self) -> str:
        where = "embedded sandbox (offline)" if self.sandbox is not None else f"Credential Provider {self.cp_url}"
        return f"{where}; policy {self.policy.name or '(unnamed)'}; budget {self.budget_id!r}"

    def toolkit(self, approver: Approver) -> AmpToolkit:
        """A new session's toolkit: shared policy and ledger, its own AMP session state."""
        self.sessions += 1
        if self.sandbox is not None:
            return AmpToolkit.for_sandbox(self.sandbox, self.policy, ledger=self.ledger, approver=approver,
                                          budget_id=self.budget_id, agent_id=self.agent_id, agent_key=self.agent_key)
        assert self.cp_url is not None and self.agent_key is not None
        client = AmpClient(self.cp_url, agent_id=self.agent_id, clock=SYSTEM_CLOCK)
        return AmpToolkit(client, self.policy, ledger=self.ledger, approver=approver, agent_key=self.agent_key,
                          agent_id=self.agent_id, budget_id=self.budget_id, clock=SYSTEM_CLOCK)

    async def aclose(self) -> None:
        await self.ledger.close()
        self.store.close()


def open_backend(policy: Path, *, ledger: str | None = None, cp_url: str | None = None,
                 budget_id: str | None = None) -> Backend:
    """Load the policy, open the ledger and the approval store; a sandbox unless `cp_url` is given.

    Sandbox spending goes under a budget id of its own per server run, so it never counts against
    a real budget kept in the same ledger.
    """
    loaded = load_policy(policy)
    if cp_url is not None and not cp_url.startswith(("http://", "https://")):
        raise ConfigError(f"--cp {cp_url!r} is not an http(s) URL",
                          hint="Pass the Credential Provider's base URL, e.g. https://cp.example.com.")
    led = open_ledger(ledger or config.ledger_url(), clock=SYSTEM_CLOCK)
    store = ApprovalStore(led)  # in the ledger's database, where `amp-tools approvals` and the inbox answer
    if cp_url is None:
        # The wall clock, as the served sandbox uses: quotes and approvals expire in real time.
        sandbox = Sandbox(SandboxConfig(idv_mode="auto"), clock=SYSTEM_CLOCK)
        # One agent identity for the process, as on a real network: a second client re-registering a new
        # key under the same agent id would replace the first client's key.
        return Backend(loaded, led, store, budget_id or f"sandbox-{uuid.uuid4().hex[:12]}", sandbox=sandbox,
                       agent_key=AgentKey.generate())
    # Chosen on purpose, as a toolkit's: --budget-id, AMP_TOOLS_BUDGET or the policy's name (never "default").
    return Backend(loaded, led, store, resolve_budget_id(budget_id, loaded), cp_url=cp_url,
                   agent_key=AgentKey.load_or_create(config.agent_key_path()))
