"""`amp-tools demo travel`: the travel agent on the embedded sandbox, or on a real AMP network
(`--cp URL --merchants FILE`), narrated step by step.

The person's side is played here, outside the agent: a scripted person (or this terminal with
`--approve prompt`) answers payment approvals, and confirms wallet requests in the sandbox's
wallet; on a real network the person confirms in their own wallet app (or, for a test wallet
given with `--wallet URL`, the demo confirms there as the person). The model, scripted or real,
only ever sees the tools. Ctrl-C stops at once and says which payments were held.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from amp_examples.scripted.script import Script
from amp_examples.travel_booking.scenario import SYSTEM_PROMPT, travel_brain, user_request
from amp_tools import config
from amp_tools.amp.client import AmpClient
from amp_tools.amp.keys import AgentKey
from amp_tools.approvals import (
    ApprovalDecision,
    ApprovalRequest,
    CallbackApprover,
    ConsoleApprover,
    ask_yes_no,
    off_loop,
)
from amp_tools.clock import SYSTEM_CLOCK
from amp_tools.errors import AmpToolsError, ToolError
from amp_tools.ledger import open_ledger
from amp_tools.policy import load_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit, ToolSpec, WalletAction

__all__ = ["POLICY_FILE", "Network", "build_toolkit", "main", "narrated", "run_trip"]

POLICY_FILE = Path(__file__).resolve().parent.parent / "policies" / "travel_demo.yaml"
FRAMEWORKS = ("langchain", "crewai", "autogen", "agent-framework")


def _brief(result: dict[str, Any]) -> str:
    """One line a person can read about a tool result."""
    if "offers" in result:
        return f"{len(result['offers'])} offer(s)" + (
            f", cheapest {result['offers'][0]['name']} at {_money(result['offers'][0]['price'])}"
            if result["offers"] else "")
    if "type" in result and "mandate_id" in result:
        return f"mandate {result['status']}, budget {_money(result['budget'])}"
    if isinstance(result.get("merchants"), list):
        return ", ".join(m["name"] for m in result["merchants"])
    if result.get("status") in ("paid", "already_paid"):
        return f"{result['status']} {_money(result['amount'])} to {result.get('merchant')} ({result.get('mode')})"
    if "quote_id" in result:
        return f"quote {result['quote_id']} {result['status']}: {_money(result['total'])}"
    if "checkout_id" in result and "total" in result:
        return f"checkout {result['checkout_id']}: {_money(result['total'])}"
    if "type" in result and "mandate_id" in result:
        return f"mandate {result['status']}, budget {_money(result['budget'])}"
    if "total" in result and "used" in result.get("total", {}):
        return f"used {_money(result['total']['used'])}, left {_money(result['total'].get('left', {}))}"
    return json.dumps(result)[:120]


def _money(m: dict[str, Any]) -> str:
    text = f"{m.get('amount', '?')} {m.get('currency', '')}"
    inner = m.get("in_budget_currency")
    return text + (f" (= {inner['amount']} {inner['currency']})" if inner else "")


def narrated(specs: list[ToolSpec], console: Console, log: list[dict[str, Any]], *,
             spinner: bool = True) -> list[ToolSpec]:
    """The same specs, printing each call and its outcome as it happens.

    Without `spinner` (when a person answers on this terminal) nothing is redrawn while a tool
    runs, so a question it asks stays on the screen.
    """
    wrapped = []
    for spec in specs:
        async def call(parsed: Any, _spec: ToolSpec = spec) -> dict[str, Any]:
            args = parsed.model_dump(exclude_none=True)
            shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
            busy = console.status(f"[cyan]{_spec.name}[/]({escape(shown)}) ...") if spinner else None
            with busy or contextlib.nullcontext():
                try:
                    result = await _spec.func(parsed)
                except ToolError as exc:
                    console.print(f"  [yellow]✗ {_spec.name}[/]({escape(shown)}) -> {exc.code}: {escape(exc.message)}",
                                  highlight=False)
                    log.append({"tool": _spec.name, "error": exc.code, "message": exc.message})
                    raise
            console.print(f"  [green]✓ {_spec.name}[/]({escape(shown)}) -> {escape(_brief(result))}", highlight=False)
            log.append({"tool": _spec.name, "result": result})
            return result

        wrapped.append(replace(spec, func=call))  # the same tool (schema, marks), logged
    return wrapped


def build_toolkit(sandbox: Sandbox, *, approve: str, console: Console, ledger_path: str,
                  budget_id: str = "kl-trip") -> AmpToolkit:
    policy = load_policy(POLICY_FILE)

    async def wallet(action: WalletAction) -> None:
        # The person confirms in their wallet app: the sandbox's MPP, never a tool the model has.
        if approve != "prompt":
            console.print(f"  [magenta]👤 wallet[/]: {escape(action.summary)} -> confirmed by the user",
                          highlight=False)
            if sandbox.idv_mode == "manual":  # a reference-like wallet completes by itself a moment later
                sandbox.complete_idv(action.auth_session_id)
            return
        console.print(f"  [magenta]👤 your wallet asks[/]: {escape(action.summary)}", highlight=False)
        yes = sys.stdin.isatty() and await off_loop(ask_yes_no, input, "Confirm in your wallet? [y/N] ", console)
        console.print(f"  [magenta]👤 wallet[/]: {'confirmed' if yes else 'declined'} by you", highlight=False)
        sandbox.complete_idv(action.auth_session_id, approve=yes)

    approver = _approver(approve, console)
    return AmpToolkit.for_sandbox(sandbox, policy, ledger=open_ledger(ledger_path, clock=sandbox.clock),
                                  approver=approver, wallet_prompt=wallet, budget_id=budget_id)


@dataclass(frozen=True)
class Network:
    """A real AMP network to run against: its Credential Provider, the merchants it serves (the
    reference has no registry), and optionally a test wallet where the demo confirms as the person."""

    cp: str
    merchants: str
    wallet: str | None = None
    agent_id: str = "amp-tools-agent"
    agent_key: str | None = None


def _approver(approve: str, console: Console) -> Any:
    def scripted_person(request: ApprovalRequest) -> ApprovalDecision:
        yes = approve == "yes"
        console.print(Panel(escape(request.summary()), title="approval requested", border_style="yellow"),
                      highlight=False)
        console.print(f"  [magenta]👤 person[/]: {'approves' if yes else 'declines'}")
        return ApprovalDecision(approved=yes, reason="" if yes else "the person said no", approver="demo person")

    return ConsoleApprover(console=console) if approve == "prompt" else CallbackApprover(scripted_person)


def build_network_toolkit(net: Network, *, approve: str, console: Console, ledger_path: str,
                          budget_id: str) -> AmpToolkit:
    """A toolkit on a real network: the merchants from `net.merchants`, the agent key the network knows."""
    import httpx

    policy = load_policy(POLICY_FILE)
    key = AgentKey.load(Path(net.agent_key)) if net.agent_key else AgentKey.load_or_create(config.agent_key_path())

    async def wallet(action: WalletAction) -> None:
        console.print(f"  [magenta]👤 your wallet asks[/]: {escape(action.summary)} "
                      f"(identity verification {escape(action.auth_session_id[:8])}…)", highlight=False)
        if net.wallet is None:
            console.print("  [magenta]👤 wallet[/]: confirm it in your wallet app; the agent waits up to a minute",
                          highlight=False)
            return
        if approve == "prompt":
            yes = sys.stdin.isatty() and await off_loop(ask_yes_no, input, "Confirm in your wallet? [y/N] ", console)
        else:
            yes = approve == "yes"
        async with httpx.AsyncClient(timeout=30.0) as http:
            body: dict[str, Any] = {"authSessionId": action.auth_session_id, **({} if yes else {"approve": False})}
            answer = await http.post(f"{net.wallet.rstrip('/')}/completeIdv", json=body)
        console.print(f"  [magenta]👤 wallet[/]: {'confirmed' if yes else 'declined'} at {escape(net.wallet)} "
                      f"(HTTP {answer.status_code})", highlight=False)

    client = AmpClient(net.cp, agent_id=net.agent_id, clock=SYSTEM_CLOCK)
    return AmpToolkit(client, policy, ledger=open_ledger(ledger_path, clock=SYSTEM_CLOCK),
                      approver=_approver(approve, console), wallet_prompt=wallet, budget_id=budget_id,
                      merchants=net.merchants, agent_key=key, agent_id=net.agent_id, clock=SYSTEM_CLOCK,
                      idv_wait=60.0)


async def run_trip(framework: str, *, approve: str = "yes", real_model: bool = False,
                   console: Console | None = None, ledger_path: str | None = None, budget_id: str | None = None,
                   seed: int | None = 7, sandbox_config: SandboxConfig | None = None,
                   network: Network | None = None) -> dict[str, Any]:
    """Run the whole scenario once; returns the final text, the tool log and the receipt data.

    The ledger is the default one (`amp-tools ledger show` lists it) unless `ledger_path` names
    another; each run books under its own budget id, so runs never share a budget.
    `sandbox_config` replaces the embedded network's settings, e.g. `SandboxConfig.reference_like()`
    (no merchant registry, no order status, the wallet confirming half a second later). `network`
    runs on a real AMP network instead of the embedded sandbox.
    """
    console = console or Console()
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; expected one of {', '.join(FRAMEWORKS)}")
    module = importlib.import_module(f"amp_examples.travel_booking.{framework.replace('-', '_')}_agent")
    path = ledger_path or config.ledger_url()
    budget_id = budget_id or new_budget_id()
    console.print(f"ledger {path}, budget {budget_id} (see it later: amp-tools ledger show --budget {budget_id})",
                  highlight=False, soft_wrap=True)
    sandbox: Sandbox | None = None
    if network is None:
        sandbox = Sandbox(sandbox_config or SandboxConfig(idv_mode="manual", seed=seed))
        toolkit = build_toolkit(sandbox, approve=approve, console=console, ledger_path=path, budget_id=budget_id)
        now = sandbox.clock.now()
    else:
        console.print(f"network: Credential Provider {network.cp}, merchants from {network.merchants}",
                      highlight=False, soft_wrap=True)
        toolkit = build_network_toolkit(network, approve=approve, console=console, ledger_path=path,
                                        budget_id=budget_id)
        now = SYSTEM_CLOCK.now()
    log: list[dict[str, Any]] = []
    specs = narrated(toolkit.specs(), console, log, spinner=approve != "prompt")
    if real_model:
        from amp_examples.scripted.real import real_model as make_real

        model = make_real(framework)  # type: ignore[arg-type]
    else:
        model = module.scripted_model(Script(travel_brain))
    request = user_request(now)
    console.print(Panel(escape(request), title=f"user -> {framework} agent", border_style="cyan"), highlight=False)
    started = time.perf_counter()
    try:
        final = await module.run_agent(specs, model, SYSTEM_PROMPT, request)
        report = await toolkit.ledger.usage_report(toolkit.policy, toolkit.budget_id)
        entries = await toolkit.ledger.entries(toolkit.budget_id)
        audit = await toolkit.ledger.audit.verify()
    finally:
        await toolkit.aclose()
        await toolkit.ledger.close()
    return {"final": final, "log": log, "report": report, "entries": entries, "audit_ok": audit.ok,
            "audit_records": audit.records, "seconds": time.perf_counter() - started, "ledger": path,
            "budget_id": budget_id, "sandbox_payments": sandbox.payments() if sandbox is not None else [],
            "sandbox": sandbox}


def new_budget_id() -> str:
    """A budget id of its own for each run (second resolution plus randomness: runs never share one)."""
    return f"kl-trip-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def report_interrupted(console: Console, ledger_path: str, budget_id: str) -> None:
    """After Ctrl-C: the payments this run still holds, and the command that settles them later."""
    async def read() -> list[Any]:
        led = open_ledger(ledger_path)
        try:
            return list(await led.entries(budget_id, limit=1000))
        finally:
            await led.close()

    console.print("\n[bold yellow]interrupted[/]", highlight=False)
    try:
        every = asyncio.run(read())
    except AmpToolsError as exc:  # no ledger yet: nothing can be held
        console.print(f"nothing held (ledger: {escape(exc.message)})", highlight=False)
        return
    entries = [e for e in every if e.status == "reserved"]
    if not entries:
        paid = sum(e.status != "released" for e in every)
        console.print(f"nothing held: budget {escape(budget_id)} has {paid} paid and {len(every) - paid} released "
                      "payment(s), none under way", highlight=False)
        return
    from amp_tools.payments import state_of

    console.print(f"held when interrupted ({len(entries)}):", highlight=False)
    for e in entries:
        console.print(f"  - payment {e.id}: {e.amount} to {escape(e.merchant_name or e.merchant_id)} "
                      f"({state_of(e)})", highlight=False)
    console.print("Their outcome may be unknown; check and settle them with:", highlight=False)
    console.print(f"  amp-tools payments unresolved --budget {escape(budget_id)} --ledger {escape(ledger_path)}",
                  highlight=False, soft_wrap=True)


_OUTCOME = {"committed": "paid", "refunded": "refunded", "partially_refunded": "partly refunded"}


def receipt_lines(entries: list[Any]) -> tuple[list[str], list[str]]:
    """(paid, not paid) lines of the receipt: a released payment is never listed as paid."""
    paid, not_paid = [], []
    for e in reversed(entries):
        amounts = str(e.amount) + ("" if e.amount.currency == e.budget_amount.currency else f" (= {e.budget_amount})")
        if e.status in _OUTCOME:
            paid.append(f"{e.merchant_name}: {_OUTCOME[e.status]} {amounts}, transaction {e.external_ref or '-'}")
        else:
            why = {"APPROVAL_DENIED": "declined by the person"}.get(e.reason or "", e.reason or e.status)
            not_paid.append(f"{e.merchant_name}: {amounts} not paid ({why})")
    return paid, not_paid


def _receipt(console: Console, outcome: dict[str, Any]) -> None:
    # Lines, not a table: a narrow terminal wraps them between words and never cuts an amount.
    paid, not_paid = receipt_lines(list(outcome["entries"]))
    console.print("[bold]receipt[/]")
    for title, lines in (("paid", paid), ("not paid", not_paid)):
        if lines:
            console.print(f"{title}:", highlight=False)
            for line in lines:
                console.print(f"  - {escape(line)}", highlight=False)
    total = outcome["report"]["total"]
    console.print(f"budget used {_money(total['used'])}, left {_money(total.get('left', {}))}; "
                  f"audit chain {'ok' if outcome['audit_ok'] else 'BROKEN'} ({outcome['audit_records']} records)",
                  highlight=False)
    console.print(f"ledger {outcome['ledger']}: amp-tools ledger show --budget {outcome['budget_id']}",
                  highlight=False, soft_wrap=True)
    console.print(Panel(escape(outcome["final"]), title="agent", border_style="green"), highlight=False)


def main(framework: str = "langchain", approve: str = "yes", real_model: bool = False,
         console: Console | None = None, cp: str | None = None, merchants: str | None = None,
         wallet: str | None = None, agent_id: str | None = None, agent_key: str | None = None) -> int:
    """Entry point of `amp-tools demo travel`; returns the process exit code (130 after Ctrl-C).

    `cp` and `merchants` (both or neither) run on a real network instead of the embedded sandbox.
    """
    console = console or Console()
    network = None
    if cp or merchants:
        if not (cp and merchants):
            console.print("[bold red]error:[/] --cp and --merchants go together: the network's Credential Provider "
                          "and the file listing its merchants (id, name, MCC, base URL)", highlight=False)
            return 2
        network = Network(cp, merchants, wallet, agent_id or "amp-tools-agent", agent_key)
    os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
    os.environ.setdefault("CREWAI_DISABLE_TRACKING", "true")
    ledger_path, budget_id = config.ledger_url(), new_budget_id()
    try:
        outcome = asyncio.run(run_trip(framework, approve=approve, real_model=real_model, console=console, seed=None,
                                       network=network, ledger_path=ledger_path, budget_id=budget_id))
    except KeyboardInterrupt:
        report_interrupted(console, ledger_path, budget_id)
        return 130
    except ModuleNotFoundError as exc:
        console.print(f"[bold red]error:[/] {exc.name} is not installed; install the extra: "
                      + escape(f"pip install -e '.[{framework}]'"), highlight=False)
        return 2
    except AmpToolsError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    _receipt(console, outcome)
    return 0 if outcome["audit_ok"] else 1
