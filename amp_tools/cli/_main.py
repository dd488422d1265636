"""The `amp-tools` command: demo, sandbox, policy, budgets, ledger, approvals, audit and key commands.

Every command prints one readable line on error (exit 2), never a traceback. Framework code is
only imported by `demo`, and only for the framework asked for.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from amp_tools import config
from amp_tools._version import DISTRIBUTION, __version__
from amp_tools.cli._budgets import budgets_app, ledger_tree, print_tree
from amp_tools.cli._help import BudgetOpt, LedgerOpt, examples, readable
from amp_tools.cli._owner import owner_app
from amp_tools.cli._paths import approvals_path, existing_ledger
from amp_tools.cli._payments import payments_app
from amp_tools.cli._ports import require_free_port
from amp_tools.cli._serve import register as register_serve
from amp_tools.errors import AmpToolsError
from amp_tools.mcp.command import mcp_app
from amp_tools.terminal import terminal_safe
from amp_tools.untrusted import clean_text

app = typer.Typer(help="Budget-guarded AMP shopping and payment tools for AI agents.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
policy_app = typer.Typer(help="Check budget policy files and print their JSON Schema.", no_args_is_help=True)
ledger_app = typer.Typer(help="Inspect the spend ledger.", no_args_is_help=True)
approvals_app = typer.Typer(help="Answer payments waiting for a person's approval.", no_args_is_help=True)
audit_app = typer.Typer(help="Verify and export the hash-chained audit trail.", no_args_is_help=True)
demo_app = typer.Typer(help="Run the offline demos.", no_args_is_help=True)
key_app = typer.Typer(help="The agent's signing key (ES256).", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(ledger_app, name="ledger")
app.add_typer(approvals_app, name="approvals")
app.add_typer(audit_app, name="audit")
app.add_typer(demo_app, name="demo")
app.add_typer(key_app, name="agent-key")  # the name the payment errors' hints use
app.add_typer(key_app, name="key", hidden=True)  # the earlier name, kept working
app.add_typer(payments_app, name="payments")
app.add_typer(budgets_app, name="budgets")
app.add_typer(owner_app, name="owner")
app.add_typer(mcp_app, name="mcp")
register_serve(app, approvals_app)
ledger_app.command("tree", epilog=examples("amp-tools ledger tree trip", "amp-tools ledger tree trip --policy "
                                                                         "crew.yaml"))(ledger_tree)

out = Console()
err = Console(stderr=True)


def _show_version(value: bool) -> None:
    if value:
        out.print(f"{DISTRIBUTION} {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Budget-guarded AMP shopping and payment tools for AI agents."""


def cli_command() -> Any:
    """The `amp-tools` click command with the help conventions of `amp_tools.cli._help` applied."""
    return readable(typer.main.get_command(app))


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {terminal_safe(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# ---------------------------------------------------------------------------- demo
@demo_app.command("travel", epilog=examples(
    "amp-tools demo travel",
    "amp-tools demo travel --framework crewai --approve prompt",
    "amp-tools demo travel --cp http://127.0.0.1:8765 --merchants merchants.json"))
def demo_travel(
    framework: Annotated[str, typer.Option(metavar="NAME", help="langchain, crewai, autogen or agent-framework.")]
    = "langchain",
    approve: Annotated[str, typer.Option(metavar="HOW", help="How the person answers approvals: 'yes' (scripted "
                                                             "person says yes), 'no', or 'prompt' (ask on this "
                                                             "terminal).")] = "yes",
    real_model: Annotated[bool | None, typer.Option(
        "--real-model/--scripted", help="Use the OpenAI-compatible model named by AMP_TOOLS_MODEL (with "
        "OPENAI_BASE_URL / OPENAI_API_KEY) or the offline scripted model. Default: real when AMP_TOOLS_MODEL "
        "is set, scripted otherwise.")] = None,
    cp: Annotated[str | None, typer.Option("--cp", metavar="URL", help="Run on a real AMP network: its Credential "
                                                                       "Provider (with --merchants).")] = None,
    merchants: Annotated[str | None, typer.Option(metavar="PATH", help="The network's merchants (YAML or JSON: id, "
                                                                       "name, MCC, base URL), for a CP without a "
                                                                       "merchant registry.")] = None,
    wallet: Annotated[str | None, typer.Option(metavar="URL", help="A TEST wallet's base URL where the demo "
                                                                   "confirms identity verification as the person "
                                                                   "(POST /completeIdv); without it, confirm in "
                                                                   "your wallet app.")] = None,
    agent_id: Annotated[str | None, typer.Option(metavar="ID", help="The agent id the network knows your key under "
                                                                    "(default amp-tools-agent).")] = None,
    agent_key: Annotated[str | None, typer.Option(metavar="PATH", help="The agent's private JWK (default "
                                                                       "$AMP_TOOLS_HOME/agent-key.jwk; see "
                                                                       "`amp-tools agent-key show`).")] = None,
) -> None:
    """Book a flight, a hotel and a car within one budget: on the embedded sandbox, or a real network (--cp)."""
    if real_model is None:
        real_model = bool(os.environ.get("AMP_TOOLS_MODEL", "").strip())
    if framework not in ("langchain", "crewai", "autogen", "agent-framework"):
        _fail(f"unknown framework {framework!r}; expected langchain, crewai, autogen or agent-framework")
    if approve not in ("yes", "no", "prompt"):
        _fail(f"unknown --approve {approve!r}; expected yes, no or prompt")
    if bool(cp) != bool(merchants):
        _fail("--cp and --merchants go together: the network's Credential Provider and the file listing its "
              "merchants (id, name, MCC, base URL)")
    if merchants and not Path(merchants).is_file():
        _fail(f"--merchants {merchants}: no such file (a YAML or JSON list of merchants)")
    network = {"cp": cp, "merchants": merchants, "wallet": wallet, "agent_id": agent_id, "agent_key": agent_key}
    raise typer.Exit(_run_demo("travel", framework=framework, approve=approve, real_model=real_model, console=out,
                               **({k: v for k, v in network.items() if v} if cp else {})))


def _run_demo(name: str, **kwargs: Any) -> int:
    # Demos are plugins (entry point group `amp_tools.demos`): the core never imports the examples.
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="amp_tools.demos") if ep.name == name]
    if not found:
        _fail(f"demo {name!r} is not installed; the demos come with the distribution: "
              "pip install amp-agent-payments")
    result: int = found[0].load()(**kwargs)
    return result


# ---------------------------------------------------------------------------- sandbox
@app.command("sandbox", epilog=examples("amp-tools sandbox", "amp-tools sandbox --port 8765 --idv manual",
                                         "amp-tools sandbox --reference-like --reference-deviations"))
def sandbox(
    port: Annotated[int, typer.Option(metavar="PORT", help="TCP port to listen on.")] = 8765,
    host: Annotated[str, typer.Option(metavar="HOST", help="Interface to bind (loopback by default).")]
    = "127.0.0.1",
    idv: Annotated[str, typer.Option(metavar="MODE", help="Wallet identity verification mode: auto, manual or "
                                                          "reject.")] = "auto",
    reference_like: Annotated[bool, typer.Option(
        "--reference-like", help="Behave like the AMP reference services: no registry, no orderStatus, "
                                 "IDV approved 0.5 s after the request, no chain check at merchants.")] = False,
    reference_deviations: Annotated[bool, typer.Option(
        "--reference-deviations", help="Also reproduce the eleven security deviations of the AMP reference "
                                       "services (docs/CONFORMANCE.md), for testing checkers and clients.")] = False,
) -> None:
    """Serve the local AMP network (all roles, OpenAPI docs at /docs)."""
    if idv not in ("auto", "manual", "reject"):
        _fail(f"unknown --idv {idv!r}; expected auto, manual or reject")
    from amp_tools.sandbox import SandboxConfig, serve
    from amp_tools.sandbox.deviations import REFERENCE_DEVIATIONS

    require_free_port(host, port)
    deviations = REFERENCE_DEVIATIONS if reference_deviations else frozenset()
    config = (SandboxConfig.reference_like(idv_mode=idv, deviations=deviations) if reference_like
              else SandboxConfig(idv_mode=idv, deviations=deviations))  # type: ignore[arg-type]
    mode = ", reference-like" if reference_like else ""
    mode += ", reference deviations" if reference_deviations else ""
    out.print(f"AMP sandbox on http://{host}:{port}  (docs: http://{host}:{port}/docs, idv={idv}{mode})")
    serve(host=host, port=port, config=config)


# ---------------------------------------------------------------------------- conformance
from amp_tools.conformance.command import conformance  # noqa: E402

app.command("conformance", epilog=examples(
    "amp-tools conformance --cp http://127.0.0.1:8765 --merchant http://127.0.0.1:8765/merchants/SUNNY-TOURS",
    "amp-tools conformance --cp URL --merchant URL --profile reference --agent-key agent.jwk",
    "amp-tools conformance --list"))(conformance)


# ---------------------------------------------------------------------------- policy
@policy_app.command("check", epilog=examples("amp-tools policy check policy.yaml"))
def policy_check(path: Annotated[Path, typer.Argument(metavar="PATH",
                                                      help="A .yaml, .yml, .toml or .json policy file.")]) -> None:
    """Exit 0 when the policy file is valid, 2 with a field-level message when it is not."""
    from amp_tools.policy import check_policy_file

    out.print(terminal_safe(check_policy_file(path)), highlight=False, soft_wrap=True)


@policy_app.command("schema", epilog=examples("amp-tools policy schema > policy.schema.json"))
def policy_schema() -> None:
    """Print the JSON Schema of policy files (for editor autocompletion)."""
    from amp_tools.policy import policy_json_schema

    sys.stdout.write(json.dumps(policy_json_schema(), indent=2) + "\n")


# ---------------------------------------------------------------------------- ledger
@ledger_app.command("show", epilog=examples("amp-tools ledger show", "amp-tools ledger show --budget trip --limit 50",
                                             "amp-tools ledger show --budget trip --tree"))
def ledger_show(
    ledger: LedgerOpt = None,
    limit: Annotated[int, typer.Option(metavar="N", help="How many recent entries.")] = 20,
    budget: BudgetOpt = None,
    tree: Annotated[bool, typer.Option("--tree", help="First the budget and its sub-budgets as a tree.")] = False,
) -> None:
    """List the budgets in the ledger, or a budget's recent entries (--budget ID) with their network legs.

    A payment's legs are the network's own figures: the mandate's charge, the wallet's debit, the rate.
    """
    from amp_tools.cli._ledger import list_budgets, read_entries
    from amp_tools.toolkit.legs import describe_legs

    target = existing_ledger(ledger)
    if budget is None:
        if tree:
            _fail("--tree needs --budget ID (the crew's budget id)")
        budgets = list_budgets(target)
        table = Table(title=f"ledger: {len(budgets)} budget{'' if len(budgets) == 1 else 's'}", box=box.SIMPLE_HEAD)
        for col in ("budget", "used", "payments", "since (UTC)"):
            table.add_column(col, no_wrap=col != "budget", overflow="fold")
        for b in budgets:
            table.add_row(terminal_safe(clean_text(b.budget_id)), str(b.used), str(b.count), b.created_at)
        out.print(table)
        if budgets:
            out.print(f"show one: amp-tools ledger show --budget {terminal_safe(budgets[0].budget_id)}",
                      highlight=False)
        return
    if budget not in {b.budget_id for b in list_budgets(target)}:
        _fail(f"no budget {budget!r} in the ledger at {target}; `amp-tools ledger show` lists them", code=1)
    if tree:
        print_tree(target, str(budget))
    rows = read_entries(target, budget, limit)
    table = Table(title=f"ledger: {len(rows)} entries, budget {terminal_safe(budget)}", box=box.SIMPLE_HEAD)
    # Only the merchant column may wrap; amounts are never cut, so optional columns go first.
    refunds = any(e.refunded.minor for e in rows)
    legs = any(e.legs for e in rows)
    wide = out.width >= 110
    cols = ["id", "status", "merchant", "amount", "from budget", *(["refunded"] if refunds else []),
            *(["network legs"] if legs else []), *(["checkout"] if wide else []), "when (UTC)"]
    for col in cols:
        table.add_column(col, no_wrap=col not in ("merchant", "network legs"), overflow="fold",
                         min_width=8 if col in ("merchant", "network legs") else None)
    for e in rows:
        cells = {"id": str(e.id), "status": e.status,
                 "merchant": terminal_safe(clean_text(e.merchant_name or e.merchant_id)),
                 "amount": str(e.amount), "from budget": str(e.budget_amount), "refunded": str(e.refunded),
                 "checkout": terminal_safe(e.checkout_id), "when (UTC)": e.created_at.strftime("%Y-%m-%d %H:%M"),
                 "network legs": terminal_safe(describe_legs(e.legs))}
        table.add_row(*(cells[c] for c in cols))
    out.print(table)


# ---------------------------------------------------------------------------- approvals
def _store(ledger: str | None) -> Any:
    from amp_tools.cli._serve import open_store

    return open_store(ledger)  # the ledger's database (an old approvals.db is imported)


_STATUSES = ("pending", "approved", "denied", "consumed", "expired", "all")


@approvals_app.command("list", epilog=examples("amp-tools approvals list", "amp-tools approvals list --status all"))
def approvals_list(
    ledger: LedgerOpt = None,
    status: Annotated[str, typer.Option(metavar="STATUS", help="pending, approved, denied, consumed, expired, or "
                                                               "all.")] = "pending",
) -> None:
    """List approval requests (pending ones by default; --status all for every one)."""
    if status not in _STATUSES:
        _fail(f"unknown --status {status!r}; expected one of {', '.join(_STATUSES)}")
    try:
        existing_ledger(ledger)  # approvals live in the ledger's database; reading creates nothing
    except AmpToolsError:
        if ledger or not approvals_path().is_file():  # nor an approvals.db of an earlier version to import
            where = ledger or config.default_ledger()
            out.print(f"no approval requests yet (no ledger at {where})", highlight=False)
            return
    records = _store(ledger).list(None if status == "all" else status)
    table = Table(title=f"approvals ({status})")
    for col in ("id", "status", "request", "expires (UTC)"):
        table.add_column(col, no_wrap=col != "request", overflow="fold")
    for rec in records:
        table.add_row(terminal_safe(rec.id), rec.status, terminal_safe(rec.request.summary()),
                      rec.request.expires_at.strftime("%Y-%m-%d %H:%M:%S"))
    out.print(table)


ApprovalId = Annotated[str, typer.Argument(metavar="ID", help="The request's id, from `amp-tools approvals list`.",
                                            show_default=False)]


@approvals_app.command("approve", epilog=examples("amp-tools approvals approve apr_3f9c2a1b4d5e6f70 --by alice"))
def approvals_approve(approval_id: ApprovalId, ledger: LedgerOpt = None,
                      by: Annotated[str, typer.Option(metavar="NAME", help="Who approves (kept in the audit "
                                                                           "trail).")] = "cli") -> None:
    """Approve a pending payment (single use, bound to its exact amount and merchant)."""
    rec = _store(ledger).approve(approval_id, by)
    out.print(f"approved {terminal_safe(rec.id)}: {terminal_safe(rec.request.summary().splitlines()[0])}",
              highlight=False)


@approvals_app.command("deny", epilog=examples(
    'amp-tools approvals deny apr_3f9c2a1b4d5e6f70 --reason "not this hotel"'))
def approvals_deny(approval_id: ApprovalId, ledger: LedgerOpt = None,
                   reason: Annotated[str, typer.Option(metavar="TEXT", help="Why (the agent is told).")] = "",
                   by: Annotated[str, typer.Option(metavar="NAME", help="Who denies (kept in the audit trail).")]
                   = "cli") -> None:
    """Deny a pending payment."""
    rec = _store(ledger).deny(approval_id, by, reason)
    out.print(f"denied {terminal_safe(rec.id)}: {terminal_safe(rec.request.summary().splitlines()[0])}",
              highlight=False)


# ---------------------------------------------------------------------------- audit
@audit_app.command("verify", epilog=examples("amp-tools audit verify", "amp-tools audit verify --ledger "
                                                                          "postgresql://db/payments"))
def audit_verify(ledger: LedgerOpt = None,
                 cross_check: Annotated[bool, typer.Option(help="Also check the ledger's entries, refunds, totals, "
                                                                 "usage, approvals, freezes and policy versions "
                                                                 "against their audit records.")] = True,
                 owner_key: Annotated[str | None, typer.Option(
                     metavar="KEY", help="The owner's PUBLIC key (JWK JSON or a file; default AMP_TOOLS_OWNER_KEY): "
                                        "also verify the owner's signatures.")] = None,
                 ) -> None:
    """Recompute every hash chain and cross-check the ledger; exit 1 if anything was edited, reordered or deleted."""
    from amp_tools.ledger import open_ledger
    from amp_tools.owner import resolve_owner_key
    from amp_tools.owner.enforce import signature_check

    key = resolve_owner_key(owner_key)
    led = open_ledger(existing_ledger(ledger))
    try:
        report = led.audit.verify_sync(cross_check=cross_check,
                                       signatures=None if key is None or not cross_check else signature_check(key))
    finally:
        led.close_sync()
    if report.ok:
        out.print(f"audit chain ok: {report.records} records, {report.chains} budget chains, "
                  f"{report.entries} entries cross-checked"
                  + (f"; owner signatures verified (key {key.kid})" if key is not None and cross_check else ""),
                  highlight=False)
        return
    err.print(f"[bold red]audit chain broken[/] at record {report.first_bad_seq}: {terminal_safe(str(report.problem))}",
              highlight=False)
    raise typer.Exit(1)


@audit_app.command("export", epilog=examples("amp-tools audit export audit.jsonl"))
def audit_export(target: Annotated[Path, typer.Argument(metavar="PATH", help="JSONL file to write.")],
                 ledger: LedgerOpt = None) -> None:
    """Export the audit trail as JSON Lines."""
    from amp_tools.ledger import open_ledger

    led = open_ledger(existing_ledger(ledger))
    try:
        count = led.audit.export_jsonl_sync(target)
    finally:
        led.close_sync()
    out.print(f"wrote {count} audit records to {terminal_safe(target)}", highlight=False)


# ---------------------------------------------------------------------------- key
@key_app.command("show", epilog=examples("amp-tools agent-key show",
                                         "amp-tools agent-key show --path agent-key.jwk > agent.pub.jwk"))
def key_show(path: Annotated[Path | None, typer.Option(metavar="PATH", help="Key file (default "
                                                                           "$AMP_TOOLS_HOME/agent-key.jwk).")]
             = None) -> None:
    """Print the agent's PUBLIC JWK (with its stable kid) for registration with a network; creates the key if absent."""
    from amp_tools.amp.keys import AgentKey

    key = AgentKey.load_or_create(path or config.agent_key_path())
    sys.stdout.write(json.dumps(key.public_jwk(), indent=2) + "\n")


@key_app.command("register", epilog=examples(
    "amp-tools agent-key register --network http://127.0.0.1:8765/network --agent-id travel-agent"))
def key_register(
    network: Annotated[str, typer.Option(metavar="URL", help="The network's base URL where it registers agent keys "
                                                             "(POST /agents/register; the sandbox: "
                                                             "http://127.0.0.1:8765/network).")],
    agent_id: Annotated[str, typer.Option(metavar="ID", help="The agent id to register the key under.")]
    = "amp-tools-agent",
    path: Annotated[Path | None, typer.Option(metavar="PATH", help="Key file (default "
                                                                   "$AMP_TOOLS_HOME/agent-key.jwk).")] = None,
) -> None:
    """Register the agent's PUBLIC key with a network that offers registration; creates the key if absent."""
    import httpx

    from amp_tools.amp.keys import AgentKey

    if not network.startswith(("http://", "https://")):
        _fail(f"--network {network!r} is not an http(s) URL; expected e.g. http://127.0.0.1:8765/network")
    key = AgentKey.load_or_create(path or config.agent_key_path())
    url = network.rstrip("/") + "/agents/register"
    try:
        answer = httpx.post(url, json={"agentId": agent_id, "publicJwk": key.public_jwk()}, timeout=15.0)
    except httpx.HTTPError as exc:
        _fail(f"could not reach {url}: {type(exc).__name__}: {exc}")
    body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
    if answer.status_code != 200 or (isinstance(body, dict) and body.get("success") is False):
        detail = body.get("errorMessage") or body.get("error") or body.get("detail") if isinstance(body, dict) \
            else None
        _fail(f"{url} refused the key (HTTP {answer.status_code}: {detail or answer.text[:200]}); networks without "
              "registration take the public key from their operator: give them `amp-tools agent-key show`")
    out.print(f"registered key {key.public_jwk()['kid']} for agent {agent_id} at {url}", highlight=False)


def main() -> None:
    try:
        cli_command()(prog_name="amp-tools", standalone_mode=True)
    except AmpToolsError as exc:
        _print_error(str(exc))
        sys.exit(2)
    except ImportError as exc:
        _print_error(f"{exc}; install the extra it needs, e.g. pip install -e '.[langchain]'")
        sys.exit(2)
    except (OSError, ValueError) as exc:
        _print_error(f"{type(exc).__name__}: {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        _print_error("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug: still one line, with the way to see the traceback
        if os.environ.get("AMP_TOOLS_DEBUG"):
            raise
        _print_error(f"unexpected {type(exc).__name__}: {exc} (set AMP_TOOLS_DEBUG=1 for the traceback)")
        sys.exit(3)


def _print_error(message: str) -> None:
    err.print(f"[bold red]error:[/] {terminal_safe(message)}", highlight=False, soft_wrap=True)
