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
from amp_tools.cli_help import BudgetOpt, LedgerOpt, examples
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
    """Held payments that no live process is working on (recovery could not settle them)."""
    from amp_tools.payments import state_of, unresolved

    async def fetch() -> list[Any]:
        led = _open(ledger)
        try:
            return await unresolved(led, budget_id=budget)
        finally:
            await led.close()

    rows = asyncio.run(fetch())
    if as_json:
        import json

        _out.print_json(json.dumps([{**e.to_public(), "state": str(state_of(e))} for e in rows]))
        return
    table = Table(title=f"{len(rows)} payment(s) waiting for a person")
    for col in ("id", "state", "budget", "merchant", "amount", "held", "checkout", "since (UTC)"):
        table.add_column(col, no_wrap=col not in ("merchant",), overflow="fold")
    for e in rows:
        table.add_row(str(e.id), str(state_of(e)), terminal_safe(e.budget_id),
                      terminal_safe(e.merchant_name or e.merchant_id), str(e.amount), str(e.budget_amount),
                      terminal_safe(e.checkout_id), e.created_at.strftime("%Y-%m-%d %H:%M"))
    _out.print(table)
    if rows:
        _out.print("Check each with the merchant or the wallet statement, then: "
                   "amp-tools payments resolve ID --paid --transaction TX --by NAME  (or --not-paid)")


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
