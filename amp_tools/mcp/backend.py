"""What one `amp-tools mcp` process shares across its clients, and the toolkit it gives each one.

One ledger (the budget's durable record, so two clients spend one budget, never two),
one approval store and one agent key; the AMP side is either an embedded sandbox (offline,
in-process) or a Credential Provider URL, with an optional merchant directory for a CP that has
no registry. Each MCP session gets its own `AmpToolkit` (its own AMP session state, quotes and
checkouts) built by `toolkit()`, on the budget it was given: over stdio the budget the server
was started with, over HTTP the budget of the client's token.

The budget is chosen on purpose, like the toolkit's: ``--budget-id``, else ``AMP_TOOLS_BUDGET``,
else the policy's ``name:``; with none of them the server refuses to start. The embedded sandbox
without an explicit id spends under a fresh ``sandbox-...`` id, so offline play never counts
against a real budget kept in the same ledger.

The policy that governs a budget is the one stored in the ledger (`amp_tools.toolkit.budget`):
``--policy`` creates the server's budget when it is new and must otherwise equal the stored
version (else the server refuses to start, with the diff); without ``--policy`` the stored one
is used. A token's budget other than the server's always runs on its stored policy. With the
owner's public key pinned (``--owner-key`` or ``AMP_TOOLS_OWNER_KEY``) every toolkit pays only
on the owner's signed authority.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amp_tools import config
from amp_tools.amp.client import AmpClient
from amp_tools.amp.keys import AgentKey
from amp_tools.approvals import ApprovalStore, Approver
from amp_tools.clock import SYSTEM_CLOCK
from amp_tools.errors import ConfigError
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.owner import resolve_owner_key
from amp_tools.policy import BudgetPolicy, load_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit
from amp_tools.toolkit.budget import process_label, use_budget
from amp_tools.toolkit.directory import MerchantDirectory

__all__ = ["Backend", "choose_budget", "open_backend"]

_NO_BUDGET = ("name the budget this MCP server spends from: --budget-id ID, AMP_TOOLS_BUDGET, or `name:` in the "
              "policy file (never a silent default); servers and toolkits share a budget only when they name the "
              "same one")


@dataclass
class Backend:
    policy: BudgetPolicy | None
    ledger: LedgerBase
    store: ApprovalStore
    budget_id: str
    sandbox: Sandbox | None = None
    cp_url: str | None = None
    agent_key: AgentKey | None = None
    agent_id: str = "amp-tools-agent"
    merchants: MerchantDirectory | None = None
    #: The owner console, whose ``/approvals/{id}`` page a URL elicitation points the person at.
    console_url: str = "http://127.0.0.1:8787"
    #: How long a tool call waits for the person's decision after a URL elicitation (seconds).
    approval_wait: float = 30.0
    #: The owner's public key (anything `AmpToolkit(owner_key=...)` takes); None: AMP_TOOLS_OWNER_KEY or unsigned.
    owner_key: Any = None
    sessions: int = field(default=0)

    def describe(self) -> str:
        where = "embedded sandbox (offline)" if self.sandbox is not None else f"Credential Provider {self.cp_url}"
        merchants = f"; {len(self.merchants.all())} merchants from the directory" if self.merchants else ""
        stored = self.ledger.get_budget_sync(self.budget_id)
        policy = f"policy version {stored.policy_version}" if stored is not None else "policy"
        return f"{where}; budget {self.budget_id!r} ({policy} from the ledger){merchants}"

    def toolkit(self, approver: Approver, budget_id: str | None = None) -> AmpToolkit:
        """A new session's toolkit: shared policy and ledger, its own AMP session state, on `budget_id`
        (a token's budget over HTTP) or the server's budget."""
        self.sessions += 1
        budget = budget_id or self.budget_id
        # Another budget (a token's) runs on its own stored policy, never on the one this process was given.
        policy = self.policy if budget == self.budget_id else None
        if self.sandbox is not None:
            return AmpToolkit.for_sandbox(self.sandbox, policy, ledger=self.ledger, approver=approver,
                                          budget_id=budget, agent_id=self.agent_id, agent_key=self.agent_key,
                                          owner_key=self.owner_key,
                                          **({"merchants": self.merchants} if self.merchants else {}))
        assert self.cp_url is not None and self.agent_key is not None
        client = AmpClient(self.cp_url, agent_id=self.agent_id, clock=SYSTEM_CLOCK)
        return AmpToolkit(client, policy, ledger=self.ledger, approver=approver, agent_key=self.agent_key,
                          agent_id=self.agent_id, budget_id=budget, clock=SYSTEM_CLOCK, merchants=self.merchants,
                          owner_key=self.owner_key)

    async def aclose(self) -> None:
        await self.ledger.close()
        self.store.close()


def choose_budget(budget_id: str | None, policy: BudgetPolicy | None, *, sandbox: bool) -> str:
    """The server's budget: named, else AMP_TOOLS_BUDGET, else the policy's name (a fresh id for the sandbox)."""
    chosen = (budget_id or "").strip() or os.environ.get("AMP_TOOLS_BUDGET", "").strip()
    if chosen:
        return chosen
    if sandbox:
        return f"sandbox-{uuid.uuid4().hex[:12]}"
    if policy is not None and policy.name and policy.name.strip():
        return policy.name.strip()
    raise ConfigError(_NO_BUDGET, hint="e.g. amp-tools mcp --budget-id team-travel (its policy stored with "
                                       "`amp-tools budgets create`), or --policy FILE to create it")


def _missing_file(url: str) -> bool:
    """True for a SQLite ledger path (plain or ``sqlite:///``) with no file yet: nothing to read a policy from."""
    if url.startswith("sqlite:///"):
        url = url.removeprefix("sqlite://")
    elif "://" in url or url == ":memory:" or url.startswith("sqlite:"):
        return False
    return not Path(url).expanduser().exists()


def _merchants(merchants: str | Path | None) -> MerchantDirectory | None:
    chosen = merchants or os.environ.get("AMP_TOOLS_MERCHANTS") or None
    return MerchantDirectory.load(chosen) if chosen else None


def open_backend(policy: Path | None, *, ledger: str | LedgerBase | None = None, cp_url: str | None = None,
                 budget_id: str | None = None, merchants: str | Path | None = None,
                 console_url: str | None = None, approval_wait: float = 30.0, owner_key: Any = None) -> Backend:
    """Load the policy (if given) and the merchant directory, open the ledger and the approval store,
    settle the server's budget against the stored one; a sandbox unless `cp_url` is given."""
    loaded = load_policy(policy) if policy is not None else None
    resolve_owner_key(owner_key)  # a bad key is refused before anything starts
    if cp_url is not None and not cp_url.startswith(("http://", "https://")):
        raise ConfigError(f"--cp {cp_url!r} is not an http(s) URL",
                          hint="Pass the Credential Provider's base URL, e.g. https://cp.example.com.")
    console = (console_url or os.environ.get("AMP_TOOLS_CONSOLE_URL") or "http://127.0.0.1:8787").rstrip("/")
    if not console.startswith(("http://", "https://")):
        raise ConfigError(f"--console-url {console!r} is not an http(s) URL",
                          hint="Pass where `amp-tools serve` answers, e.g. http://127.0.0.1:8787.")
    budget = choose_budget(budget_id, loaded, sandbox=cp_url is None)
    if loaded is None and budget.startswith("sandbox-") and not (budget_id or os.environ.get("AMP_TOOLS_BUDGET")):
        raise ConfigError("the offline sandbox needs a policy for its fresh budget: pass --policy FILE, or "
                          "--budget-id ID of a budget stored in the ledger",
                          hint="e.g. amp-tools mcp --policy policy.yaml")
    directory = _merchants(merchants)
    url = ledger if isinstance(ledger, LedgerBase) else (ledger or config.ledger_url())
    if loaded is None and isinstance(url, str) and _missing_file(url):
        raise ConfigError(f"no ledger at {url} holds budget {budget!r}, and no --policy was given to create it",
                          hint=f"Create it: amp-tools budgets create {budget} --policy FILE, or pass --policy FILE.")
    # An open ledger (a caller's PostgreSQL schema, a test's) is used as is and closed with the backend.
    led = ledger if isinstance(ledger, LedgerBase) else open_ledger(ledger or config.ledger_url(), clock=SYSTEM_CLOCK)
    try:
        # Created from --policy if new; else --policy must be the stored version (refused with the diff).
        use_budget(led, budget, loaded, by=process_label("amp-tools mcp"), source="--policy")
    except BaseException:
        if led is not ledger:  # opened here: closed here
            led.close_sync()
        raise
    store = ApprovalStore(led)  # in the ledger's database, where `amp-tools approvals` and the inbox answer
    if cp_url is None:
        # The wall clock, as the served sandbox uses: quotes and approvals expire in real time.
        sandbox = Sandbox(SandboxConfig(idv_mode="auto"), clock=SYSTEM_CLOCK)
        # One agent identity for the process, as on a real network: a second client re-registering a new
        # key under the same agent id would replace the first client's key.
        return Backend(loaded, led, store, budget, sandbox=sandbox, agent_key=AgentKey.generate(),
                       merchants=directory, console_url=console, approval_wait=approval_wait, owner_key=owner_key)
    key = AgentKey.load_or_create(config.agent_key_path())
    return Backend(loaded, led, store, budget, cp_url=cp_url, agent_key=key, merchants=directory,
                   console_url=console, approval_wait=approval_wait, owner_key=owner_key)
