"""Our ISO 4217 table agrees with a maintained source: the `iso4217` package (a test dependency).

Every code with a minor unit in the published list is in our table with the same exponent, and
nothing else is; codes whose minor unit is "N.A." (metals, SDR, XTS, XXX) are refused as money.
"""

from __future__ import annotations

import iso4217
import pytest

from amp_tools._iso4217 import EXPONENTS
from amp_tools.errors import MoneyError
from amp_tools.money import Money

PUBLISHED = {c.code: c.exponent for c in iso4217.Currency if c.exponent is not None}
NOT_MONEY = sorted(c.code for c in iso4217.Currency if c.exponent is None)


def test_the_table_has_exactly_the_published_codes_and_exponents() -> None:
    assert sorted(set(EXPONENTS) - set(PUBLISHED)) == [], "withdrawn codes still in our table"
    assert sorted(set(PUBLISHED) - set(EXPONENTS)) == [], "published codes missing from our table"
    assert {code: exp for code, exp in EXPONENTS.items() if PUBLISHED[code] != exp} == {}


def test_bulgaria_uses_the_euro_and_the_arab_accounting_dinar_is_money() -> None:
    with pytest.raises(MoneyError):
        Money.parse("1.00", "BGN")
    assert Money.parse("12.34", "XAD").minor == 1234


@pytest.mark.parametrize("code", NOT_MONEY)
def test_codes_without_a_minor_unit_are_not_money(code: str) -> None:
    with pytest.raises(MoneyError):
        Money.parse("1", code)
