"""`AmpToolkit`: what a program builds once per user session, and the tool list every adapter wraps.

It is the session core (`_core.ToolkitCore`: client, Guard, key, durable state) plus its tool
specs and start-up recovery. The budget it spends from is named on purpose (`budget_id`, else
`AMP_TOOLS_BUDGET` or the policy's `name`): toolkits on one ledger share a budget only when they
name the same one, and every one of them enforces the budget's policy as stored in the ledger
(`toolkit.budget.use_budget`): without a policy the stored one, never a different one of its own.
With a `session_id` the session's state is durable in the ledger's database
and resumes after a restart; the agent key persists by default in its 0600 key file.
"""

from __future__ import annotations

import copy
import threading
import uuid
from typing import TYPE_CHECKING, Any

from amp_tools.amp.client import AmpClient
from amp_tools.amp.keys import AgentKey
from amp_tools.config import agent_key_path
from amp_tools.errors import InvalidArguments
from amp_tools.payments import Guard, ReconcileReport
from amp_tools.policy import BudgetPolicy
from amp_tools.policy.subbudgets import BudgetPath

# Importing the tool modules registers their tools (`_specs.tool`), so `specs()` finds every one.
from amp_tools.toolkit import _paying, _reporting, _shopping  # noqa: F401
from amp_tools.toolkit._core import ToolkitCore
from amp_tools.toolkit._mandates import refresh_mandates
from amp_tools.toolkit._settling import settle_budget
from amp_tools.toolkit._specs import ToolSpec, build_specs
from amp_tools.toolkit._state import SessionState

if TYPE_CHECKING:
    from amp_tools.sandbox import Sandbox

__all__ = ["AmpToolkit"]


class AmpToolkit(ToolkitCore):
    """Everything one agent session needs to shop and pay through AMP under a budget policy."""

    @classmethod
    def for_sandbox(cls, sandbox: Sandbox, policy: BudgetPolicy | None = None, **kwargs: Any) -> AmpToolkit:
        """A toolkit wired to an in-process sandbox; the agent key is registered as onboarding would."""
        key = kwargs.pop("agent_key", None) or AgentKey.load_or_create(agent_key_path())
        agent_id = kwargs.pop("agent_id", "amp-tools-agent")
        sandbox.register_agent(agent_id, key.public_jwk())
        client = AmpClient("http://sandbox", transport=sandbox.transport(), agent_id=agent_id,
                           clock=kwargs.get("clock"))
        kwargs.setdefault("clock", sandbox.clock)
        if not sandbox.config.registry:  # like the reference services: the merchants come from configuration
            kwargs.setdefault("merchants", sandbox.merchant_directory())
        return cls(client, policy, agent_key=key, agent_id=agent_id, **kwargs)

    def for_agent(self, agent: str, *, session_id: str | None = None, run_id: str | None = None) -> AmpToolkit:
        """A toolkit for one agent's sub-budget (`agents:` in the policy), sharing this toolkit's client,
        ledger, approver, agent key, wallet prompt, clock and merchant directory.

        `agent` is a name under this toolkit's level (``"hotel_booker"``, or ``"team/scout"`` for a
        deeper one). Its payments are checked against its own limits and every ancestor's in one
        ledger transaction; adapters wrap its `specs()` like any toolkit's. Its session state is its
        own (`session_id` makes it durable). Close the crew's toolkit, not the agents', when done.
        """
        if not isinstance(agent, str) or not agent.strip("/ "):
            raise InvalidArguments(f"agent {agent!r} must be the name of a sub-budget under `agents:` in the policy")
        joined = f"{self.agent}/{agent}" if self.agent else agent
        path = BudgetPath.of(self.crew_policy, self.crew_budget_id, joined)
        other = copy.copy(self)
        other.policy, other.budget_id, other.agent, other.path = path.leaf.policy, path.budget_id, joined, path
        other.guard = Guard(other.policy, self.ledger, approver=self.guard.approver, clock=self.clock,
                            budget_id=path.budget_id, approval_ttl=self.guard.approval_ttl,
                            lease=self.guard.lifecycle.lease, path=path, owner=self.guard.owner)
        other.run_id = run_id or uuid.uuid4().hex
        other.session_id = session_id
        other.state = SessionState()
        other._loaded = session_id is None
        other._locks, other._locks_guard = {}, threading.Lock()
        return other

    def agents(self) -> list[str]:
        """The agent names directly under this toolkit's level (what `for_agent` accepts)."""
        return list(self.policy.agents)

    def specs(self) -> list[ToolSpec]:
        """The tool list every adapter wraps."""
        return build_specs(self)

    async def reconcile(self) -> ReconcileReport:
        """Settle this budget's payments that no live process is working on (run it at start-up).

        A payment still in flight in a live process (waiting for a person, or being sent) is never
        touched, whatever its age; see `amp_tools.payments.recovery`. A toolkit whose budget has
        sub-budgets (a crew's) settles theirs too.
        """
        if self.path is None or len(self.path.leaf.covers) == 1:
            done = await settle_budget(self)
            await refresh_mandates(self)
            return done
        # A crew's toolkit settles its own budget's payments and every sub-budget's below it.
        report = ReconcileReport()
        for budget_id in self.path.leaf.covers:
            part = await settle_budget(self, budget_id)
            for name in ("committed", "released", "unknown", "in_flight"):
                getattr(report, name).extend(getattr(part, name))
            report.failed.update(part.failed)
        await refresh_mandates(self)
        return report
