"""A payment's legs as the network reports them, and the one amount that counts against the budget.

A payment can touch four currencies: the checkout's, the mandate's (always the budget's for an
AUTONOMOUS mandate this toolkit requests), the wallet's, and the budget's. What counts is taken
from the network's own figures for *this* payment, never from a rate cached for showing prices:

1. the checkout is in the budget currency: the checkout amount (no conversion at all);
2. the network reports the mandate's charge in the budget currency: that charge;
3. the network reports the wallet's debit in the budget currency: that debit;
4. otherwise the amount held at reserve, which was converted at the quote fetched for this
   payment (its id is what asked the network to lock the rate).

`Legs` is what the ledger keeps in the entry's outcome (``legs``), so `ledger show`, the
console and `budget_status` show every leg beside the amount that counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from amp_tools.errors import AmpToolsError
from amp_tools.money import Money
from amp_tools.untrusted import clean_text

__all__ = ["Basis", "Legs", "count_legs", "describe_legs", "summarise_legs"]

#: Where the counted amount came from (see the module docstring, in that order).
Basis = Literal["checkout", "mandate_charge", "wallet_debit", "locked_quote"]


@dataclass(frozen=True)
class Legs:
    """Every figure of one payment, each as the network reported it (None: it did not say)."""

    checkout: Money
    budget: Money
    basis: Basis
    mandate_charge: Money | None = None
    wallet_debit: Money | None = None
    #: The checkout -> wallet rate the network locked for the debit, and the quote that locked it.
    locked_rate: Decimal | None = None
    quote_id: str | None = None
    #: The checkout -> budget rate the payment reserved at, and that quote's id (None: no conversion).
    budget_rate: Decimal | None = None
    budget_quote_id: str | None = None

    def to_public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"checkout": self.checkout.to_public(), "budget": self.budget.to_public(),
                               "basis": self.basis}
        if self.mandate_charge is not None:
            out["mandate_charge"] = self.mandate_charge.to_public()
        if self.wallet_debit is not None:
            out["wallet_debit"] = self.wallet_debit.to_public()
        if self.locked_rate is not None:
            out["locked_rate"] = format(self.locked_rate, "f")
        if self.quote_id:
            out["quote_id"] = self.quote_id
        if self.budget_rate is not None:
            out["budget_rate"] = format(self.budget_rate, "f")
        if self.budget_quote_id:
            out["budget_quote_id"] = self.budget_quote_id
        return out


def count_legs(budget_currency: str, checkout: Money, held: Money, *, mandate_charge: Money | None = None,
               wallet_debit: Money | None = None, locked_rate: Decimal | None = None, quote_id: str | None = None,
               budget_rate: Decimal | None = None, budget_quote_id: str | None = None) -> Legs:
    """The legs of one payment and what counts: `held` is what was reserved (in `budget_currency`)."""
    if held.currency != budget_currency:
        raise ValueError(f"the amount held {held} is not in the budget currency {budget_currency}")
    basis: Basis
    if checkout.currency == budget_currency:
        budget, basis = checkout, "checkout"
    elif mandate_charge is not None and mandate_charge.currency == budget_currency and mandate_charge.is_positive():
        budget, basis = mandate_charge, "mandate_charge"
    elif wallet_debit is not None and wallet_debit.currency == budget_currency and wallet_debit.is_positive():
        budget, basis = wallet_debit, "wallet_debit"
    else:
        budget, basis = held, "locked_quote"
    return Legs(checkout=checkout, budget=budget, basis=basis, mandate_charge=mandate_charge,
                wallet_debit=wallet_debit, locked_rate=locked_rate, quote_id=quote_id,
                budget_rate=None if checkout.currency == budget_currency else budget_rate,
                budget_quote_id=None if checkout.currency == budget_currency else budget_quote_id)


def _money_text(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("amount"), str) and isinstance(value.get("currency"), str):
        return f"{value['amount']} {value['currency']}"
    return None


def describe_legs(legs: Any) -> str:
    """One line for a table: the mandate charge, the wallet debit at its locked rate, and what counted why.

    `legs` comes from the database (anyone who can write it is an adversary): anything unexpected is
    left out, and the caller still escapes the text for where it lands.
    """
    if not isinstance(legs, dict):
        return ""
    parts = []
    charge = _money_text(legs.get("mandate_charge"))
    if charge:
        parts.append(f"mandate {charge}")
    debit = _money_text(legs.get("wallet_debit"))
    if debit:
        rate = legs.get("locked_rate")
        quote = legs.get("quote_id")
        parts.append(f"wallet {debit}" + (f" @ {rate}" if isinstance(rate, str) else "")
                     + (f" (quote {quote})" if isinstance(quote, str) else ""))
    counted = _money_text(legs.get("budget"))
    basis = legs.get("basis")
    if counted:
        parts.append(f"counted {counted}" + (f" from the {str(basis).replace('_', ' ')}" if isinstance(basis, str)
                                             else ""))
    return clean_text("; ".join(parts))


def summarise_legs(entries: Iterable[Any]) -> dict[str, Any]:
    """For `budget_status`: how the committed payments were counted and what the wallet paid, per currency."""
    by_basis: dict[str, int] = {}
    wallet: dict[str, int] = {}
    for entry in entries:
        legs = getattr(entry, "legs", None)
        if getattr(entry, "status", None) != "committed" or not isinstance(legs, dict):
            continue
        basis = legs.get("basis")
        if isinstance(basis, str):
            by_basis[basis] = by_basis.get(basis, 0) + 1
        debit = legs.get("wallet_debit")
        if isinstance(debit, dict) and _money_text(debit):
            try:
                money = Money.parse(debit["amount"], debit["currency"])
            except AmpToolsError:
                continue
            wallet[money.currency] = wallet.get(money.currency, 0) + money.minor
    return {"payments_by_basis": by_basis,
            "wallet_debited": [Money(minor, currency).to_public() for currency, minor in sorted(wallet.items())]}
