"""Exact money: integer minor units plus an ISO 4217 alpha code.

`Money` never holds a float. Decimal appears only at the edges: parsing what a person or a
model typed, printing, and FX conversion with an explicit `Decimal` rate. Conversion rounds
with a rule the caller names; budget accounting uses `ROUND_UP` (away from zero) so that a
converted spend is never understated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from amp_tools._iso4217 import EXPONENTS
from amp_tools.errors import CurrencyMismatch, MoneyError

__all__ = ["AMOUNT_PATTERN", "ROUND_HALF_EVEN", "ROUND_UP", "Money", "exponent", "normalize_currency",
           "parse_rate"]

#: The pattern tool schemas give for an amount: a plain non-negative decimal string.
# ASCII digits only: `\d` would also match other scripts' digits (Arabic-Indic, fullwidth...).
AMOUNT_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,4})?$"
_AMOUNT_RE = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")
_MAX_MINOR = 10**18  # far above any real payment; keeps rows inside a signed 64-bit integer


def normalize_currency(code: object) -> str:
    """Return the upper-case ISO 4217 code, or raise `MoneyError` naming the value."""
    if not isinstance(code, str):
        raise MoneyError(f"currency {code!r} is not a string; expected a 3-letter ISO 4217 code such as 'USD'")
    norm = code.strip().upper()
    if norm not in EXPONENTS:
        raise MoneyError(f"currency {code!r} is not an ISO 4217 currency with a minor unit; "
                         "expected a code such as 'USD', 'SGD', 'JPY' or 'KWD'")
    return norm


def exponent(currency: str) -> int:
    """The number of decimals of `currency` (JPY 0, USD 2, KWD 3)."""
    return EXPONENTS[normalize_currency(currency)]


def parse_rate(rate: object) -> Decimal:
    """An FX rate as a positive finite Decimal; floats are refused (they are not exact)."""
    if isinstance(rate, (bool, float)):
        raise MoneyError(f"FX rate {rate!r} is a float; pass a Decimal or a decimal string such as '1.3425'")
    try:
        value = Decimal(str(rate)) if not isinstance(rate, Decimal) else rate
    except InvalidOperation:
        raise MoneyError(f"FX rate {rate!r} is not a number; expected a decimal string such as '1.3425'") from None
    if not value.is_finite() or value <= 0:
        raise MoneyError(f"FX rate {rate!r} must be a positive finite number")
    return value


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An exact amount: `minor` units of `currency` (12999 USD means 129.99 USD)."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        minor, currency = self.minor, self.currency
        # The common case first (an int and a code already in its canonical form, as every row and every
        # computed amount has them): the same checks, without the general path's calls.
        if (type(minor) is int and type(currency) is str and currency in EXPONENTS
                and -_MAX_MINOR <= minor <= _MAX_MINOR):
            return
        if isinstance(minor, bool) or not isinstance(minor, int):
            raise MoneyError(f"minor units {minor!r} must be an int (got {type(minor).__name__}); "
                             "use Money.parse('12.34', 'USD') for decimal strings")
        if abs(minor) > _MAX_MINOR:
            raise MoneyError(f"amount {minor} minor units is out of range (at most {_MAX_MINOR})")
        object.__setattr__(self, "currency", normalize_currency(currency))

    # ----------------------------------------------------------------- construction
    @classmethod
    def parse(cls, amount: object, currency: str, *, allow_zero: bool = True,
              allow_negative: bool = False) -> Money:
        """Parse a decimal string (or Decimal/int) in major units: ``parse('129.99', 'USD')``.

        Refuses floats, NaN, infinity, exponents, negative values unless asked, and more
        decimals than the currency has.
        """
        cur = normalize_currency(currency)
        exp = EXPONENTS[cur]
        if isinstance(amount, (bool, float)):
            raise MoneyError(f"amount {amount!r} is a {type(amount).__name__}; expected a decimal string "
                             f"such as '12.50' (floats are not exact)")
        if isinstance(amount, Decimal):
            if not amount.is_finite():
                raise MoneyError(f"amount {amount!r} is not finite; expected a decimal string such as '12.50'")
            text = format(amount, "f")
        elif isinstance(amount, int):
            text = str(amount)
        elif isinstance(amount, str):
            text = amount.strip()
        else:
            raise MoneyError(f"amount {amount!r} has type {type(amount).__name__}; expected a decimal string")
        if not _AMOUNT_RE.match(text):
            raise MoneyError(f"amount {amount!r} is not a plain decimal number; expected digits with an "
                             f"optional '.', such as '12.50' ({cur} allows {exp} decimals)")
        value = Decimal(text)
        places = -value.as_tuple().exponent if "." in text else 0  # type: ignore[operator]
        # Enough precision for every digit typed: the default 28 digits would round long inputs
        # (or raise InvalidOperation in quantize) instead of refusing them.
        with localcontext() as ctx:
            ctx.prec = len(text) + exp + 2
            # Trailing zeros beyond the exponent are harmless ("10.500" USD is 10.50).
            if places > exp and value != value.quantize(Decimal(1).scaleb(-exp)):
                raise MoneyError(f"amount {amount!r} has more decimals than {cur} allows ({exp}); "
                                 f"expected at most {exp} decimal places")
            minor = int((value.scaleb(exp)).to_integral_value())
        if abs(minor) > _MAX_MINOR:
            raise MoneyError(f"amount {amount!r} is out of range; expected at most {_MAX_MINOR} minor units")
        if minor < 0 and not allow_negative:
            raise MoneyError(f"amount {amount!r} is negative; expected a positive amount")
        if minor == 0 and not allow_zero:
            raise MoneyError(f"amount {amount!r} is zero; expected a positive amount")
        return cls(minor, cur)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_wire(cls, data: Any) -> Money:
        """Read any of the AMP reference spellings of money (amp-reference-wire.md 3.10).

        ``{cent, currency}`` wins; ``{amount:int, currency}`` as in SD-JWT disclosures is minor
        units; ``{value, currency}`` is major units (the network/mandate convention). The APS
        ``/network/pay`` body, where ``value`` is minor units, must use `from_aps`.
        """
        if not isinstance(data, dict) or "currency" not in data:
            raise MoneyError(f"money {data!r} is not an object with a currency")
        cur = data["currency"]
        if data.get("cent") is not None:
            return cls._strict_minor(data["cent"], cur)
        if isinstance(data.get("amount"), int) and not isinstance(data.get("amount"), bool):
            return cls._strict_minor(data["amount"], cur)
        if data.get("value") is not None:
            return cls.parse(str(data["value"]), cur)
        if data.get("amount") is not None:
            return cls.parse(str(data["amount"]), cur)
        raise MoneyError(f"money {data!r} has no cent, amount or value field")

    @classmethod
    def from_aps(cls, data: Any) -> Money:
        """APS spelling: ``{currency, value: "<minor units as a string>"}``."""
        if not isinstance(data, dict) or "currency" not in data or "value" not in data:
            raise MoneyError(f"APS money {data!r} needs currency and value")
        text = str(data["value"])
        if not (text.isascii() and text.isdigit()):
            raise MoneyError(f"APS money value {text!r} must be minor units as digits")
        return cls(int(text), data["currency"])

    @classmethod
    def _strict_minor(cls, raw: Any, currency: Any) -> Money:
        if isinstance(raw, bool) or not isinstance(raw, int):
            if isinstance(raw, str) and raw.isascii() and raw.isdigit():
                raw = int(raw)
            else:
                raise MoneyError(f"minor units {raw!r} must be an integer")
        return cls(raw, currency)

    # ----------------------------------------------------------------- views
    @property
    def exponent(self) -> int:
        return EXPONENTS[self.currency]

    def to_decimal(self) -> Decimal:
        return Decimal(self.minor).scaleb(-self.exponent)

    def amount_str(self) -> str:
        """Major units as a string with exactly the currency's decimals: '129.99'."""
        return format(self.to_decimal().quantize(Decimal(1).scaleb(-self.exponent)), "f")

    def __str__(self) -> str:
        return f"{self.amount_str()} {self.currency}"

    def __repr__(self) -> str:
        return f"Money({self.amount_str()!r}, {self.currency!r})"

    def to_cent(self) -> dict[str, Any]:
        """The CP/merchant request spelling ``{cent, currency}``."""
        return {"cent": self.minor, "currency": self.currency}

    def to_chain(self) -> dict[str, Any]:
        """The SD-JWT disclosure spelling ``{currency, amount: <int minor>}``."""
        return {"currency": self.currency, "amount": self.minor}

    def to_aps(self) -> dict[str, Any]:
        """The APS spelling ``{currency, value: "<minor>"}``."""
        return {"currency": self.currency, "value": str(self.minor)}

    def to_public(self) -> dict[str, Any]:
        """What a tool result shows: ``{amount: '129.99', currency: 'USD'}``."""
        return {"amount": self.amount_str(), "currency": self.currency}

    # ----------------------------------------------------------------- arithmetic
    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self} with {other}; convert one with an explicit FX rate first")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.minor + self._same(other).minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.minor - self._same(other).minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __mul__(self, factor: int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise MoneyError(f"Money can only be multiplied by an int quantity, not {factor!r}")
        return Money(self.minor * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.minor < self._same(other).minor

    def __le__(self, other: Money) -> bool:
        return self.minor <= self._same(other).minor

    def __gt__(self, other: Money) -> bool:
        return self.minor > self._same(other).minor

    def __ge__(self, other: Money) -> bool:
        return self.minor >= self._same(other).minor

    def is_positive(self) -> bool:
        return self.minor > 0

    def convert(self, currency: str, rate: Decimal | str, *, rounding: str = ROUND_HALF_EVEN) -> Money:
        """Convert at `rate` (units of `currency` per one unit of self.currency).

        The result is rounded to the target currency's exponent with `rounding`
        (default banker's rounding; budget checks pass ``ROUND_UP``).
        """
        target = normalize_currency(currency)
        if target == self.currency:
            return self
        r = parse_rate(rate)
        digits = r.as_tuple().digits
        with localcontext() as ctx:
            # The product must be exact before it is rounded once with `rounding`; at the default
            # 28 digits a long rate was first rounded half-even, so ROUND_UP could understate.
            ctx.prec = len(str(abs(self.minor))) + len(digits) + max(0, r.adjusted()) + EXPONENTS[target] + 5
            exact = self.to_decimal() * r
            value = exact.quantize(Decimal(1).scaleb(-EXPONENTS[target]), rounding=rounding)
            minor = int(value.scaleb(EXPONENTS[target]))
        return Money(minor, target)
