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
    cp: Annotated[str | None, typer.Option("--cp", metavar="URL",
                                           help="Credential Provider URL (root or .../credential-provider).")]
    = None,
    merchant: Annotated[str | None, typer.Option(metavar="URL", help="Merchant base URL (searchProducts, "
                                                                     "startCheckout, startPayment).")] = None,
    wallet: Annotated[str | None, typer.Option(metavar="URL", help="Wallet (MPP) base URL, where the checker "
                                                                   "completes identity verification as the person "
                                                                   "(default: where the CP's idv.authUrl points, "
                                                                   "else <cp>/mpp).")] = None,
    network: Annotated[str | None, typer.Option(metavar="URL", help="Network base URL for agent key registration "
                                                                    "(default <cp>/network).")] = None,
    merchant_name: Annotated[str | None, typer.Option(metavar="NAME", help="The merchant's registered name, if it "
                                                                           "does not say.")] = None,
    merchant_mcc: Annotated[str | None, typer.Option(metavar="MCC", help="The merchant's registered MCC, if it does "
                                                                         "not say.")] = None,
    aplus_jwk: Annotated[str | None, typer.Option(metavar="PATH|URL", help="The Alipay+ public key that verifies L1: "
                                                                           "a JWK file (pinned), or the URL where the "
                                                                           "network publishes it.")] = None,
    agent_key: Annotated[Path | None, typer.Option(metavar="PATH", help="Private JWK of an agent key the target "
                                                                        "already knows (default: a fresh key, "
                                                                        "registered).")] = None,
    agent_id: Annotated[str | None, typer.Option(metavar="ID", help="Agent id for --agent-key.")] = None,
    profile: Annotated[str | None, typer.Option(metavar="NAME", help="Defaults for a known target: 'reference' "
                                                                     "(the AMP reference services: wallet at port "
                                                                     "8899 /mpp, merchant 'UGG Demo Store' 5411, "
                                                                     "--allow-waiting). Options given win.")] = None,
    max_amount_minor: Annotated[int | None, typer.Option(metavar="N", help="Cap on a test mandate's budget, in "
                                                                           "minor units of the merchant's currency "
                                                                           "(default: no cap; mandates are sized "
                                                                           "from the cheapest product, at most 3x "
                                                                           "its price).")] = None,
    max_requests: Annotated[int, typer.Option(metavar="N", help="Stop sending after this many requests.")] = 400,
    timeout: Annotated[float, typer.Option(metavar="SECONDS", help="Seconds to wait for each answer.")] = 15.0,
    idv_timeout: Annotated[float, typer.Option(metavar="SECONDS", help="Seconds to wait for a session to leave "
                                                                       "PENDING_IDV.")] = 20.0,
    allow_waiting: Annotated[bool, typer.Option("--allow-waiting", help="Where the target cannot move its clock, "
                                                                        "wait out token lifetimes (about 10 minutes) "
                                                                        "for the expiry checks.")] = False,
    only: Annotated[list[str] | None, typer.Option(metavar="GLOB", help="Run only checks whose id matches "
                                                                        "(repeatable).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of text.")] = False,
    junit: Annotated[Path | None, typer.Option(metavar="PATH", help="Also write a JUnit XML report to this file.")]
    = None,
    allow_skipped: Annotated[bool, typer.Option("--allow-skipped", help="Exit 0 when no MUST failed even if some "
                                                                        "were skipped.")] = False,
    owner: Annotated[bool, typer.Option("--i-own-the-endpoint", help="Allow hosts that are neither loopback nor "
                                                                     "sandbox hosts: you operate them.")] = False,
    list_checks: Annotated[bool, typer.Option("--list", help="List the checks and exit.")] = False,
) -> None:
    """Check an AMP Credential Provider, merchant and wallet against the spec; exit 0 only if every MUST passes.

    The report starts with a summary (counts, then one line per FAIL with its section); the
    details and each FAIL's exact requests and responses follow.
    """
    out = Console()
    err = Console(stderr=True)
    if list_checks:
        _list(out)
        return
    if not cp:
        raise ConfigError("--cp URL is required (the Credential Provider under test)")
    if max_requests < 1 or timeout <= 0 or idv_timeout <= 0:
        raise ConfigError("--max-requests must be at least 1, --timeout and --idv-timeout positive")

    from amp_tools.amp.keys import AgentKey
    from amp_tools.conformance.profiles import profile_defaults
    from amp_tools.conformance.report_json import to_json
    from amp_tools.conformance.report_junit import to_junit
    from amp_tools.conformance.report_table import LiveProgress, print_report
    from amp_tools.conformance.runner import run_conformance, select_checks
    from amp_tools.conformance.target import Target

    given: dict[str, Any] = {"wallet": wallet, "merchant_name": merchant_name, "merchant_mcc": merchant_mcc,
                             "allow_waiting": allow_waiting or None}
    if profile:
        try:
            defaults = profile_defaults(profile, cp)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        given = {k: (v if v is not None else defaults.get(k)) for k, v in given.items()}
    is_url = bool(aplus_jwk) and str(aplus_jwk).startswith(("http://", "https://"))
    target = Target(cp=cp, merchant=merchant, wallet=given["wallet"], network=network,
                    merchant_name=given["merchant_name"], merchant_mcc=given["merchant_mcc"],
                    aplus_jwk=_read_json(Path(aplus_jwk), "--aplus-jwk") if aplus_jwk and not is_url else None,
                    aplus_jwks_url=aplus_jwk if is_url else None,
                    agent_key=AgentKey.load(agent_key) if agent_key else None, agent_id=agent_id,
                    max_amount_minor=max_amount_minor, allow_waiting=bool(given["allow_waiting"]),
                    idv_timeout_seconds=idv_timeout, owner_confirmed=owner)
    total = len(select_checks(only))
    if json_out:
        report = asyncio.run(run_conformance(target, only=only, max_requests=max_requests, timeout=timeout))
        typer.echo(to_json(report))
    else:
        with LiveProgress(err, total) as live:
            report = asyncio.run(run_conformance(target, only=only, max_requests=max_requests, timeout=timeout,
                                                 on_start=live.started, on_result=live.finished))
        print_report(out, report)
    if junit is not None:
        junit.write_text(to_junit(report), encoding="utf-8")
        err.print(f"JUnit report: {terminal_safe(str(junit))}", highlight=False)
    passed = report.must_all_pass() or (allow_skipped and not report.must_failed())
    raise typer.Exit(0 if passed else 1)
