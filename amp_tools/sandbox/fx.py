"""The sandbox's deterministic FX table and the wallet's conversion rule.

Rates are fixed per sandbox (editable through the admin API). A cross rate is the quotient
of the two currencies' USD values, cut to 8 decimals, and that exact string is what
`GET /network/fxRate` quotes and what every conversion uses, so a client can reproduce any
converted amount. Conversions for budgets and debits round UP to the target's minor unit:
a spend is never understated.
"""

from __future__ import annotations

import threading
from decimal import ROUND_DOWN, Decimal

from amp_tools.errors import CurrencyMismatch
from amp_tools.money import ROUND_UP, Money, normalize_currency, parse_rate

__all__ = ["DEFAULT_USD_RATES", "FxTable"]

#: Value of one unit of each currency in USD.
DEFAULT_USD_RATES: dict[str, str] = {
    "USD": "1",
    "SGD": "0.74",
    "MYR": "0.21",
    "JPY": "0.0067",
    "EUR": "1.08",
    "HKD": "0.128",
    "GBP": "1.27",
}

_PLACES = Decimal("0.00000001")


class FxTable:
    """Quotes and applies the sandbox's rates."""

    def __init__(self, usd_rates: dict[str, str] | None = None) -> None:
        self._usd = {normalize_currency(c): parse_rate(r) for c, r in (usd_rates or DEFAULT_USD_RATES).items()}
        self._lock = threading.Lock()

    def currencies(self) -> list[str]:
        with self._lock:
            return sorted(self._usd)

    def set_usd_rate(self, currency: str, rate: str) -> None:
        with self._lock:
            self._usd[normalize_currency(currency)] = parse_rate(rate)

    def rate(self, src: str, dst: str) -> Decimal:
        """Units of `dst` per one unit of `src`; raises `CurrencyMismatch` for an unquoted pair."""
        a, b = normalize_currency(src), normalize_currency(dst)
        if a == b:
            return Decimal(1)
        with self._lock:
            if a not in self._usd or b not in self._usd:
                missing = a if a not in self._usd else b
                raise CurrencyMismatch(f"the sandbox quotes no FX rate for {missing}; quoted currencies: "
                                       f"{', '.join(sorted(self._usd))}")
            value = (self._usd[a] / self._usd[b]).quantize(_PLACES, rounding=ROUND_DOWN)
        return value

    def rate_str(self, src: str, dst: str) -> str:
        return format(self.rate(src, dst), "f")

    def convert_up(self, amount: Money, dst: str) -> tuple[Money, Decimal]:
        """`amount` in `dst`, rounded up to `dst`'s minor unit, with the rate used."""
        rate = self.rate(amount.currency, dst)
        return amount.convert(dst, rate, rounding=ROUND_UP), rate
