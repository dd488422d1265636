"""The `amp-tools` command: demo, sandbox, policy, budgets, ledger, approvals, audit and key commands.

Every command prints one readable line on error (exit 2), never a traceback. Framework code is
only imported by `demo`, and only for the framework asked for.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from amp_tools import __version__, config
from amp_tools.cli_budgets import budgets_app, ledger_tree, print_tree
from amp_tools.cli_owner import owner_app
from amp_tools.cli_paths import approvals_path, existing_ledger, home_path
from amp_tools.cli_payments import payments_app
from amp_tools.cli_serve import register as register_serve
from amp_tools.errors import AmpToolsError
from amp_tools.mcp.command import mcp_app
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
app.add_typer(key_app, name="key")
app.add_typer(payments_app, name="payments")
app.add_typer(budgets_app, name="budgets")
app.add_typer(owner_app, name="owner")
app.add_typer(mcp_app, name="mcp")
register_serve(app, approvals_app)
ledger_app.command("tree")(ledger_tree)

out = Console()
err = Console(stderr=True)


def _show_version(value: bool) -> None:
    if value:
        out.print(f"amp-tools {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Budget-guarded AMP shopping and payment tools for AI agents."""

LedgerOpt = Annotated[str | None, typer.Option("--ledger", help="Ledger path or URL (default: AMP_TOOLS_LEDGER_URL "
                                                                  "or $AMP_TOOLS_HOME/ledger.db).")]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# ---------------------------------------------------------------------------- demo
@demo_app.command("travel")
def demo_travel(
    framework: Annotated[str, typer.Option(help="langchain, crewai, autogen or agent-framework.")] = "langchain",
    approve: Annotated[str, typer.Option(help="How the person answers approvals: 'yes' (scripted person says yes), "
                                              "'no', or 'prompt' (ask on this terminal).")] = "yes",
    real_model: Annotated[bool | None, typer.Option(
        "--real-model/--scripted", help="Use the OpenAI-compatible model named by AMP_TOOLS_MODEL (with "
        "OPENAI_BASE_URL / OPENAI_API_KEY) or the offline scripted model. Default: real when AMP_TOOLS_MODEL "
        "is set, scripted otherwise.")] = None,
) -> None:
    """Book a flight, a hotel and a car within one budget on the embedded sandbox (offline by default)."""
    if real_model is None:
        real_model = bool(os.environ.get("AMP_TOOLS_MODEL", "").strip())
    if framework not in ("langchain", "crewai", "autogen", "agent-framework"):
        _fail(f"unknown framework {framework!r}; expected langchain, crewai, autogen or agent-framework")
    if approve not in ("yes", "no", "prompt"):
        _fail(f"unknown --approve {approve!r}; expected yes, no or prompt")
    raise typer.Exit(_run_demo("travel", framework=framework, approve=approve, real_model=real_model, console=out))


def _run_demo(name: str, **kwargs: Any) -> int:
    # Demos are plugins (entry point group `amp_tools.demos`): the core never imports the examples.
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="amp_tools.demos") if ep.name == name]
    if not found:
        _fail(f"demo {name!r} is not installed; install amp-tools from its repository with pip install -e .")
    result: int = found[0].load()(**kwargs)
    return result


# ---------------------------------------------------------------------------- sandbox
@app.command("sandbox")
def sandbox(
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8765,
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = "127.0.0.1",
    idv: Annotated[str, typer.Option(help="Wallet identity verification mode: auto, manual or reject.")] = "auto",
    reference_like: Annotated[bool, typer.Option(
        "--reference-like", help="Behave like the AMP reference services: no registry, no orderStatus, "
                                 "IDV approved 0.5 s after the request, no chain check at merchants.")] = False,
) -> None:
    """Serve the local AMP network (all roles, OpenAPI docs at /docs)."""
    if idv not in ("auto", "manual", "reject"):
        _fail(f"unknown --idv {idv!r}; expected auto, manual or reject")
    from amp_tools.sandbox import SandboxConfig, serve

    config = (SandboxConfig.reference_like(idv_mode=idv) if reference_like
              else SandboxConfig(idv_mode=idv))  # type: ignore[arg-type]
    mode = ", reference-like" if reference_like else ""
    out.print(f"AMP sandbox on http://{host}:{port}  (docs: http://{host}:{port}/docs, idv={idv}{mode})")
    serve(host=host, port=port, config=config)


# ---------------------------------------------------------------------------- conformance
from amp_tools.conformance.command import conformance  # noqa: E402

app.command("conformance")(conformance)


# ---------------------------------------------------------------------------- policy
@policy_app.command("check")
def policy_check(path: Annotated[Path, typer.Argument(help="A .yaml, .yml, .toml or .json policy file.")]) -> None:
    """Exit 0 when the policy file is valid, 2 with a field-level message when it is not."""
    from amp_tools.policy import check_policy_file

    out.print(check_policy_file(path), highlight=False, soft_wrap=True)


@policy_app.command("schema")
def policy_schema() -> None:
    """Print the JSON Schema of policy files (for editor autocompletion)."""
    from amp_tools.policy import policy_json_schema

    sys.stdout.write(json.dumps(policy_json_schema(), indent=2) + "\n")


# ---------------------------------------------------------------------------- ledger
@ledger_app.command("show")
def ledger_show(
    ledger: LedgerOpt = None,
    limit: Annotated[int, typer.Option(help="How many recent entries.")] = 20,
    budget: Annotated[str | None, typer.Option(help="Only this budget id.")] = None,
    tree: Annotated[bool, typer.Option("--tree", help="First the budget and its sub-budgets as a tree.")] = False,
) -> None:
    """List recent ledger entries."""
    from amp_tools.ledger import open_ledger

    target = existing_ledger(ledger)
    if tree:
        if budget is None:
            _fail("--tree needs --budget ID (the crew's budget id)")
        print_tree(target, str(budget))

    async def fetch() -> list[Any]:
        led = open_ledger(target)
        try:
            return list(await led.entries(budget, limit=limit))
        finally:
            await led.close()

    rows = asyncio.run(fetch())
    budgets = sorted({e.budget_id for e in rows})
    table = Table(title=f"ledger: {len(rows)} entries, budget {', '.join(budgets) or '-'}", box=box.SIMPLE_HEAD)
    # Only the merchant column may wrap; amounts are never cut, so optional columns go first.
    refunds = any(e.refunded.minor for e in rows)
    wide = out.width >= 110
    cols = ["id", "status", "merchant", "amount", "from budget", *(["refunded"] if refunds else []),
            *(["checkout"] if wide else []), "when (UTC)"]
    for col in cols:
        table.add_column(col, no_wrap=col != "merchant", overflow="fold", min_width=8 if col == "merchant" else None)
    for e in rows:
        cells = {"id": str(e.id), "status": e.status, "merchant": escape(clean_text(e.merchant_name or e.merchant_id)),
                 "amount": str(e.amount), "from budget": str(e.budget_amount), "refunded": str(e.refunded),
                 "checkout": escape(e.checkout_id), "when (UTC)": e.created_at.strftime("%Y-%m-%d %H:%M")}
        table.add_row(*(cells[c] for c in cols))
    out.print(table)


# ---------------------------------------------------------------------------- approvals
def _store() -> Any:
    from amp_tools.cli_serve import open_store

    return open_store()  # the ledger's database (an old approvals.db is imported)


_STATUSES = ("pending", "approved", "denied", "consumed", "expired", "all")


@approvals_app.command("list")
def approvals_list(
    status: Annotated[str, typer.Option(help="pending, approved, denied, consumed, expired, or all.")] = "pending",
) -> None:
    """List approval requests (pending ones by default; --status all for every one)."""
    if status not in _STATUSES:
        _fail(f"unknown --status {status!r}; expected one of {', '.join(_STATUSES)}")
    try:
        existing_ledger(None)  # approvals live in the ledger's database; reading creates nothing
    except AmpToolsError:
        if not approvals_path().is_file():  # nor an approvals.db of an earlier version to import
            where = os.environ.get("AMP_TOOLS_LEDGER_URL") or str(home_path() / "ledger.db")
            out.print(f"no approval requests yet (no ledger at {where})", highlight=False)
            return
    records = _store().list(None if status == "all" else status)
    table = Table(title=f"approvals ({status})")
    for col in ("id", "status", "request", "expires (UTC)"):
        table.add_column(col, no_wrap=col != "request", overflow="fold")
    for rec in records:
        table.add_row(rec.id, rec.status, escape(rec.request.summary()),
                      rec.request.expires_at.strftime("%Y-%m-%d %H:%M:%S"))
    out.print(table)


@approvals_app.command("approve")
def approvals_approve(approval_id: str, by: Annotated[str, typer.Option(help="Who approves.")] = "cli") -> None:
    """Approve a pending payment (single use, bound to its exact amount and merchant)."""
    rec = _store().approve(approval_id, by)
    out.print(f"approved {rec.id}: {rec.request.summary().splitlines()[0]}", highlight=False)


@approvals_app.command("deny")
def approvals_deny(approval_id: str, reason: Annotated[str, typer.Option(help="Why.")] = "",
                   by: Annotated[str, typer.Option(help="Who denies.")] = "cli") -> None:
    """Deny a pending payment."""
    rec = _store().deny(approval_id, by, reason)
    out.print(f"denied {rec.id}: {rec.request.summary().splitlines()[0]}", highlight=False)


# ---------------------------------------------------------------------------- audit
@audit_app.command("verify")
def audit_verify(ledger: LedgerOpt = None,
                 cross_check: Annotated[bool, typer.Option(help="Also check the ledger's entries, refunds, totals, "
                                                                 "usage, approvals, freezes and policy versions "
                                                                 "against their audit records.")] = True,
                 owner_key: Annotated[str | None, typer.Option(help="The owner's PUBLIC key (JWK JSON or a file; "
                                                                    "default AMP_TOOLS_OWNER_KEY): also verify the "
                                                                    "owner's signatures.")] = None,
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
    err.print(f"[bold red]audit chain broken[/] at record {report.first_bad_seq}: {escape(str(report.problem))}",
              highlight=False)
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(target: Annotated[Path, typer.Argument(help="JSONL file to write.")], ledger: LedgerOpt = None
                 ) -> None:
    """Export the audit trail as JSON Lines."""
    from amp_tools.ledger import open_ledger

    led = open_ledger(existing_ledger(ledger))
    try:
        count = led.audit.export_jsonl_sync(target)
    finally:
        led.close_sync()
    out.print(f"wrote {count} audit records to {target}")


# ---------------------------------------------------------------------------- key
@key_app.command("show")
def key_show(path: Annotated[Path | None, typer.Option(help="Key file (default $AMP_TOOLS_HOME/agent-key.jwk).")]
             = None) -> None:
    """Print the agent's PUBLIC JWK (with its stable kid) for registration with a network; creates the key if absent."""
    from amp_tools.amp.keys import AgentKey

    key = AgentKey.load_or_create(path or config.agent_key_path())
    sys.stdout.write(json.dumps(key.public_jwk(), indent=2) + "\n")


def main() -> None:
    try:
        app()
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
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
