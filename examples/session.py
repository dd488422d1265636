"""`amp_session`: the one-time setup that gives any agent framework a user's AMP toolkit.

A program builds one toolkit per user session: the budget policy, the spend ledger, the person's
approval channel and the AMP client; adapters wrap `toolkit.specs()`. Here the client talks to
the embedded sandbox, so examples run offline; against a real network build
`AmpToolkit(AmpClient(cp_url), policy, ...)` instead.
The ledger is the usual one (``AMP_TOOLS_LEDGER_URL``, else ``$AMP_TOOLS_HOME/ledger.db``) under
a budget id of its own per sandbox session, so sandbox spending never counts against a real budget.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from amp_tools.approvals import Approver
from amp_tools.ledger import open_ledger
from amp_tools.policy import load_policy
from amp_tools.sandbox import Sandbox
from amp_tools.toolkit import AmpToolkit

__all__ = ["amp_session"]

_ROOT = Path(__file__).resolve().parent


def amp_session(policy: str | Path, *, approver: Approver | None = None) -> AmpToolkit:
    """A toolkit on a fresh in-process sandbox; `policy` is a policy file (relative to the repo or absolute)."""
    path = Path(policy)
    if not path.is_absolute() and not path.exists():
        path = _ROOT.parent / path
    sandbox = Sandbox()  # the person's wallet confirms inside the call (IDV mode "auto")
    ledger = open_ledger(clock=sandbox.clock)
    run_id = uuid.uuid4().hex
    return AmpToolkit.for_sandbox(sandbox, load_policy(path), ledger=ledger, approver=approver, run_id=run_id,
                                  budget_id=f"sandbox-{run_id[:12]}")
