"""`amp-tools payments`: the payments no process is working on, and a person's resolution of them.

`unresolved` lists held payments whose outcome recovery could not learn (the merchant offers no
order status and could not be asked again, or its answer was unclear); `resolve` records what
the person found out (paid, with the merchant's transaction id, or not paid), audited. Money
is never freed on a guess, so these wait for a person.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from amp_tools import config
from amp_tools.cli._help import BudgetOpt, LedgerOpt, examples
from amp_tools.errors import InvalidArguments
from amp_tools.terminal import terminal_safe

__all__ = ["payments_app"]

payments_app = typer.Typer(help="Payments whose outcome is unknown: list them and resolve them.", no_args_is_help=True)
_out = Console()



def _open(ledger: str | None) -> Any:
    from amp_tools.ledger import open_ledger

    return open_ledger(ledger or config.ledger_url())


@payments_app.command("unresolved", epilog=examples("amp-tools payments unresolved",
                                                   "amp-tools payments unresolved --budget trip --json"))
def payments_unresolved(ledger: LedgerOpt = None,
                        budget: BudgetOpt = None,
                        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Held payments no live process is working on: each one's age, recovery's last attempt and its answer.

    These are payments recovery could not settle from the counterparty's record; a person decides them.
    """
    from amp_tools.clock import SYSTEM_CLOCK
    from amp_tools.payments import state_of, unresolved
    from amp_tools.payments.recovery import last_attempts
    from amp_tools.untrusted import clean_text

    async def fetch() -> tuple[list[Any], dict[int, Any]]:
        led = _open(ledger)
        try:
            rows = await unresolved(led, budget_id=budget)
            return rows, await last_attempts(led, rows)
        finally:
            await led.close()

    rows, attempts = asyncio.run(fetch())
    now = SYSTEM_CLOCK.now()

    def last(e: Any) -> tuple[str, str]:
        # Recovery's latest audited try, else the moment and reason the payment became unknown.
        tried = attempts.get(e.id)
        if tried is not None:
            return tried.at, tried.answer
        return e.updated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), e.reason or "not asked yet"

    if as_json:
        import json

        _out.print_json(json.dumps([{**e.to_public(), "state": str(state_of(e)),
                                     "age_seconds": int((now - e.created_at).total_seconds()),
                                     "last_attempt": last(e)[0], "answer": clean_text(last(e)[1], 500)}
                                    for e in rows]))
        return
    table = Table(title=f"{len(rows)} payment(s) waiting for a person")
    for col in ("id", "state", "budget", "merchant", "amount", "held", "age", "last attempt (UTC)", "answer"):
        table.add_column(col, no_wrap=col not in ("merchant", "answer"), overflow="fold")
    for e in rows:
        at, answer = last(e)
        table.add_row(str(e.id), str(state_of(e)), terminal_safe(clean_text(e.budget_id)),
                      terminal_safe(clean_text(e.merchant_name or e.merchant_id)), str(e.amount), str(e.budget_amount),
                      _age(now - e.created_at), terminal_safe(clean_text(at[:19].replace("T", " "))),
                      terminal_safe(clean_text(answer, 300)))
    _out.print(table)
    if rows:
        _out.print("Check each with the merchant or the wallet statement, then: "
                   "amp-tools payments resolve ID --paid --transaction TX --by NAME  (or --not-paid)")


def _age(delta: Any) -> str:
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days}d {hours:02d}h" if days else f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


@payments_app.command("resolve", epilog=examples(
    "amp-tools payments resolve 42 --paid --transaction 359be058 --by alice",
    'amp-tools payments resolve 42 --not-paid --by alice --reason "merchant has no order"'))
def payments_resolve(
    entry_id: Annotated[int, typer.Argument(metavar="ID", help="The payment's id from `payments unresolved`.",
                                            show_default=False)],
    paid: Annotated[bool | None, typer.Option("--paid/--not-paid", help="What the merchant's records say.")] = None,
    transaction: Annotated[str | None, typer.Option(metavar="ID", help="The merchant's transaction id (with "
                                                                       "--paid).")] = None,
    by: Annotated[str, typer.Option(metavar="NAME", help="Who resolves it (kept in the audit trail).")] = "",
    reason: Annotated[str, typer.Option(metavar="TEXT", help="How it was found out.")] = "",
    ledger: LedgerOpt = None,
) -> None:
    """Record a person's finding for a payment whose outcome is unknown (audited)."""
    from amp_tools.payments import Lifecycle, resolve

    if paid is None:
        raise InvalidArguments("say what was found: --paid (with --transaction) or --not-paid")

    async def run() -> Any:
        led = _open(ledger)
        try:
            return await resolve(Lifecycle(led), entry_id, paid=paid, by=by, reason=reason,
                                 transaction_id=transaction)
        finally:
            await led.close()

    entry = asyncio.run(run())
    what = f"paid (transaction {entry.external_ref})" if entry.status == "committed" else "not paid (released)"
    _out.print(f"payment {entry.id} resolved as {terminal_safe(what)}; {entry.budget_amount} "
               f"{'counts against' if entry.status == 'committed' else 'returned to'} budget "
               f"{terminal_safe(entry.budget_id)}")
