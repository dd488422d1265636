"""Shared pieces of the security tests: a sandbox-backed toolkit session and its secrets.

`session()` wires a toolkit to an in-process sandbox the way a program would (the wallet
prompt is the person completing IDV; the approver says yes), and `secrets_of()` gathers every
value that must never reach a model or a log: tokenIds, L1/L2/L3, payment tokens and the
private keys, from both the toolkit's state and the sandbox's records.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from amp_tools.amp.keys import AgentKey
from amp_tools.amp.secret import Secret
from amp_tools.approvals import Approver, CallbackApprover
from amp_tools.ledger import open_ledger
from amp_tools.policy import BudgetPolicy, load_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit, ToolSpec, WalletAction

ROOT = Path(__file__).resolve().parents[2]
TRAVEL_POLICY = ROOT / "examples" / "policies" / "travel_demo.yaml"
_KEY = AgentKey.generate(kid="security-agent")

MIN_WINDOW = 24


@dataclass
class Session:
    sandbox: Sandbox
    toolkit: AmpToolkit
    specs: dict[str, ToolSpec]
    prompts: list[WalletAction] = field(default_factory=list)


def session(policy: BudgetPolicy | None = None, *, approver: Approver | None = None,
            folder: Path | None = None) -> Session:
    sb = Sandbox(SandboxConfig(idv_mode="manual", seed=11))
    prompts: list[WalletAction] = []

    async def wallet(action: WalletAction) -> None:
        prompts.append(action)
        sb.complete_idv(action.auth_session_id)

    where = folder or Path(tempfile.mkdtemp(prefix="amp-sec-"))
    tk = AmpToolkit.for_sandbox(sb, policy or load_policy(TRAVEL_POLICY),
                                ledger=open_ledger(str(where / "ledger.db"), clock=sb.clock),
                                approver=approver or CallbackApprover(lambda r: True, name="test-person"),
                                wallet_prompt=wallet, agent_key=_KEY, run_id="security-run",
                                budget_id="default")
    return Session(sb, tk, {s.name: s for s in tk.specs()}, prompts)


def expiry(s: Session, days: int = 7) -> str:
    return (s.sandbox.clock.now() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _private_d(key: AgentKey) -> str:
    exported: dict[str, Any] = key._jwk.export(private_key=True, as_dict=True)
    return str(exported["d"])


def secrets_of(s: Session) -> set[str]:
    """Every secret value the session and its sandbox hold."""
    out: set[str] = set()

    def add(value: object) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if isinstance(value, str) and value:
            out.add(value)

    tk, st = s.toolkit, s.sandbox.state
    add(tk.state.wallet.token_id)
    add(tk.state.wallet.l1)
    for m in tk.state.mandates:
        add(m.l1)
        add(m.l2)
    for b in st.binding_tokens.values():
        add(b.token_id)
        add(b.l1)
    for m in st.mandates.values():
        add(m.l2)
        add(m.token_id)
    for t in st.payment_tokens.values():
        add(t.token)
        add(t.l3)
    out.add(_private_d(tk.agent_key))
    out.add(_private_d(s.sandbox._ctx.aplus_key))
    out.add(_private_d(s.sandbox._ctx.isp_key))
    return out


def windows(secret: str) -> set[str]:
    """The secret itself when short, else every substring of `MIN_WINDOW` characters."""
    if len(secret) <= MIN_WINDOW:
        return {secret}
    return {secret[i:i + MIN_WINDOW] for i in range(len(secret) - MIN_WINDOW + 1)}


def leaks(secrets: set[str], texts: list[str]) -> list[tuple[str, str]]:
    """(secret preview, where) for every secret (or 24-character piece of one) found in `texts`."""
    found = []
    grams: set[str] = set()
    for text in texts:
        grams.update(text[i:i + MIN_WINDOW] for i in range(max(1, len(text) - MIN_WINDOW + 1)))
    for secret in secrets:
        if len(secret) < MIN_WINDOW:
            hit = next((t for t in texts if secret in t), None)
            if hit is not None:
                found.append((secret[:6] + "…", hit[:120]))
        elif windows(secret) & grams:
            piece = next(iter(windows(secret) & grams))
            found.append((secret[:6] + "…", next(t for t in texts if piece in t)[:120]))
    return found
