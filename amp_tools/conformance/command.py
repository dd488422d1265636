"""The ``amp-tools conformance`` command: options, the live table, JSON / JUnit output, the exit code.

Exit 0 only when every MUST check passed (``--allow-skipped``: when none failed), 1 otherwise,
2 for a usage error (an unsafe host, an unreadable key file) before anything is sent.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from amp_tools.errors import ConfigError
from amp_tools.terminal import terminal_safe

__all__ = ["conformance"]


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{what} {path} is not a readable JSON file: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold one JWK object")
    return data


def _list(console: Console) -> None:
    from amp_tools.conformance.runner import select_checks

    table = Table(title="AMP conformance checks")
    table.add_column("check", no_wrap=True)
    for col in ("level", "spec", "what it checks"):
        table.add_column(col)
    for spec, _ in select_checks():
        table.add_row(terminal_safe(spec.id), spec.level, terminal_safe(spec.source), terminal_safe(spec.title))
    console.print(table)


def conformance(
    cp: Annotated[str | None, typer.Option("--cp", help="Credential Provider URL (root or .../credential-provider).")]
    = None,
    merchant: Annotated[str | None, typer.Option(help="Merchant base URL (searchProducts, startCheckout, "
                                                      "startPayment).")] = None,
    wallet: Annotated[str | None, typer.Option(help="Wallet (MPP) base URL, where the checker completes identity "
                                                    "verification as the person (default <cp>/mpp).")] = None,
    network: Annotated[str | None, typer.Option(help="Network base URL for agent key registration "
                                                     "(default <cp>/network).")] = None,
    merchant_name: Annotated[str | None, typer.Option(help="The merchant's registered name, if it does not say.")]
    = None,
    merchant_mcc: Annotated[str | None, typer.Option(help="The merchant's registered MCC, if it does not say.")]
    = None,
    aplus_jwk: Annotated[str | None, typer.Option(help="The Alipay+ public key that verifies L1: a JWK file "
                                                       "(pinned), or the URL where the network publishes it.")]
    = None,
    agent_key: Annotated[Path | None, typer.Option(help="Private JWK of an agent key the target already knows "
                                                        "(default: a fresh key, registered).")] = None,
    agent_id: Annotated[str | None, typer.Option(help="Agent id for --agent-key.")] = None,
    max_amount_minor: Annotated[int, typer.Option(help="Largest mandate budget a check may request, in minor units "
                                                       "of the merchant's currency (test amounts only).")] = 10_000,
    max_requests: Annotated[int, typer.Option(help="Stop sending after this many requests.")] = 400,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = 15.0,
    allow_waiting: Annotated[bool, typer.Option(help="Where the target cannot move its clock, wait out token "
                                                     "lifetimes (about 10 minutes) for the expiry checks.")] = False,
    only: Annotated[list[str] | None, typer.Option(help="Run only checks whose id matches (glob; repeatable).")]
    = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of the table.")] = False,
    junit: Annotated[Path | None, typer.Option(help="Also write a JUnit XML report to this file.")] = None,
    allow_skipped: Annotated[bool, typer.Option(help="Exit 0 when no MUST failed even if some were skipped.")]
    = False,
    owner: Annotated[bool, typer.Option("--i-own-the-endpoint", help="Allow hosts that are neither loopback nor "
                                                                     "sandbox hosts: you operate them.")] = False,
    list_checks: Annotated[bool, typer.Option("--list", help="List the checks and exit.")] = False,
) -> None:
    """Check an AMP Credential Provider, merchant and wallet against the spec; exit 0 only if every MUST passes."""
    out = Console()
    err = Console(stderr=True)
    if list_checks:
        _list(out)
        return
    if not cp:
        raise ConfigError("--cp URL is required (the Credential Provider under test)")
    if max_requests < 1 or timeout <= 0:
        raise ConfigError("--max-requests must be at least 1 and --timeout positive")

    from amp_tools.amp.keys import AgentKey
    from amp_tools.conformance.report_json import to_json
    from amp_tools.conformance.report_junit import to_junit
    from amp_tools.conformance.report_table import LiveTable, print_evidence, print_summary
    from amp_tools.conformance.runner import run_conformance, select_checks
    from amp_tools.conformance.target import Target

    is_url = bool(aplus_jwk) and str(aplus_jwk).startswith(("http://", "https://"))
    target = Target(cp=cp, merchant=merchant, wallet=wallet, network=network, merchant_name=merchant_name,
                    merchant_mcc=merchant_mcc,
                    aplus_jwk=_read_json(Path(aplus_jwk), "--aplus-jwk") if aplus_jwk and not is_url else None,
                    aplus_jwks_url=aplus_jwk if is_url else None,
                    agent_key=AgentKey.load(agent_key) if agent_key else None, agent_id=agent_id,
                    max_amount_minor=max_amount_minor, allow_waiting=allow_waiting, owner_confirmed=owner)
    total = len(select_checks(only))
    if json_out:
        report = asyncio.run(run_conformance(target, only=only, max_requests=max_requests, timeout=timeout))
        typer.echo(to_json(report))
    else:
        with LiveTable(out, total) as live:
            report = asyncio.run(run_conformance(target, only=only, max_requests=max_requests, timeout=timeout,
                                                 on_start=live.started, on_result=live.finished))
        if not out.is_terminal:
            out.line()  # Live leaves its last frame without a newline when not on a terminal
        print_evidence(out, report)
        print_summary(out, report)
    if junit is not None:
        junit.write_text(to_junit(report), encoding="utf-8")
        err.print(f"JUnit report: {terminal_safe(str(junit))}", highlight=False)
    passed = report.must_all_pass() or (allow_skipped and not report.must_failed())
    raise typer.Exit(0 if passed else 1)
