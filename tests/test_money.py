"""Money: exact parsing and printing for every ISO 4217 currency, refusals, FX rounding."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, ROUND_UP, Decimal, localcontext

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from amp_tools._iso4217 import EXPONENTS
from amp_tools.errors import CurrencyMismatch, MoneyError
from amp_tools.money import AMOUNT_PATTERN, Money, exponent, normalize_currency, parse_rate

CURRENCIES = sorted(EXPONENTS)
minors = st.integers(min_value=0, max_value=10**15)


@settings(max_examples=500, deadline=None)
@given(currency=st.sampled_from(CURRENCIES), minor=minors)
def test_parse_amount_str_round_trip_for_every_currency(currency: str, minor: int) -> None:
    money = Money(minor, currency)
    text = money.amount_str()
    exp = EXPONENTS[currency]
    assert ("." in text) is (exp > 0)
    if exp:
        assert len(text.split(".")[1]) == exp
    assert Money.parse(text, currency) == money
    assert Money.parse(text, currency.lower()) == money
    assert Money.parse(Decimal(text), currency) == money
    assert Money.from_wire(money.to_cent()) == money
    assert Money.from_wire(money.to_chain()) == money
    assert Money.from_aps(money.to_aps()) == money
    assert Money.parse(money.to_public()["amount"], money.to_public()["currency"]) == money


def test_every_currency_in_the_table_has_its_exponent() -> None:
    expected = {"USD": 2, "JPY": 0, "KWD": 3, "CLF": 4, "SGD": 2}
    assert {code: exponent(code) for code in expected} == expected
    assert all(Money.parse("1", c).minor == 10 ** EXPONENTS[c] for c in CURRENCIES)


@pytest.mark.parametrize(("value", "fragment"), [
    (12.5, "amount 12.5 is a float"),
    (float("nan"), "amount nan is a float"),
    (float("inf"), "amount inf is a float"),
    (Decimal("NaN"), "amount Decimal('NaN') is not finite"),
    (Decimal("Infinity"), "amount Decimal('Infinity') is not finite"),
    ("NaN", "amount 'NaN' is not a plain decimal number"),
    ("inf", "amount 'inf' is not a plain decimal number"),
    ("-1.00", "amount '-1.00' is negative"),
    (-5, "amount -5 is negative"),
    ("1.001", "amount '1.001' has more decimals than USD allows (2)"),
    ("1e3", "amount '1e3' is not a plain decimal number"),
    ("1,000.00", "amount '1,000.00' is not a plain decimal number"),
    ("", "amount '' is not a plain decimal number"),
    ("١٢٣", "is not a plain decimal number"),  # Arabic-Indic digits are not accepted as ASCII digits
    (True, "amount True is a bool"),
    (None, "amount None has type NoneType"),
    ("10000000000000000000000000000.000", "is out of range"),
])
def test_parse_refusals_name_the_value(value: object, fragment: str) -> None:
    with pytest.raises(MoneyError) as exc:
        Money.parse(value, "USD")
    assert fragment in exc.value.message


def test_zero_and_negative_switches_and_trailing_zeros() -> None:
    assert Money.parse("10.500", "USD") == Money(1050, "USD")
    assert Money.parse("-2.50", "USD", allow_negative=True) == Money(-250, "USD")
    with pytest.raises(MoneyError, match="is zero"):
        Money.parse("0.00", "USD", allow_zero=False)
    with pytest.raises(MoneyError, match="more decimals than JPY allows"):
        Money.parse("100.5", "JPY")
    with pytest.raises(MoneyError, match="more decimals than KWD allows"):
        Money.parse("1.0001", "KWD")


@pytest.mark.parametrize("code", ["XYZ", "usdd", "XAU", "XXX", "", 840, None])
def test_unknown_currencies_are_named(code: object) -> None:
    with pytest.raises(MoneyError) as exc:
        normalize_currency(code)
    assert repr(code) in exc.value.message
    with pytest.raises(MoneyError):
        Money(100, code)  # type: ignore[arg-type]


def test_minor_units_must_be_int() -> None:
    with pytest.raises(MoneyError, match="must be an int"):
        Money(1.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="out of range"):
        Money(10**19, "USD")
    with pytest.raises(MoneyError, match="must be an integer"):
        Money.from_wire({"cent": "²", "currency": "USD"})  # a Unicode digit that int() refuses
    with pytest.raises(MoneyError, match="minor units as digits"):
        Money.from_aps({"value": "²", "currency": "USD"})


def test_same_currency_arithmetic_and_cross_currency_refusal() -> None:
    a, b = Money(1050, "USD"), Money(250, "USD")
    assert a + b == Money(1300, "USD") and a - b == Money(800, "USD") and b * 3 == Money(750, "USD")
    assert 3 * b == Money(750, "USD") and -b == Money(-250, "USD")
    assert b < a and b <= a and a > b and a >= b
    sgd = Money(100, "SGD")
    for op in (lambda: a + sgd, lambda: a - sgd, lambda: a < sgd, lambda: a <= sgd, lambda: a > sgd,
               lambda: a >= sgd):
        with pytest.raises(CurrencyMismatch, match=r"cannot combine 10\.50 USD with 1\.00 SGD"):
            op()
    with pytest.raises(MoneyError, match="multiplied by an int"):
        a * 1.5  # type: ignore[operator]


def test_wire_spellings() -> None:
    assert Money.from_wire({"value": "12.34", "currency": "USD"}) == Money(1234, "USD")
    assert Money.from_wire({"amount": "12.34", "currency": "USD"}) == Money(1234, "USD")
    assert Money.from_wire({"amount": 1234, "currency": "USD"}) == Money(1234, "USD")
    with pytest.raises(MoneyError, match="no cent, amount or value"):
        Money.from_wire({"currency": "USD"})
    assert re.match(AMOUNT_PATTERN, "129.99") and not re.match(AMOUNT_PATTERN, "١٢٣")


rates = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("100000"), places=12, allow_nan=False,
                    allow_infinity=False)


@settings(max_examples=500, deadline=None)
@given(minor=st.integers(1, 10**12), source=st.sampled_from(CURRENCIES), target=st.sampled_from(CURRENCIES),
       rate=rates)
@example(minor=999_999_999_999, source="AED", target="UYW", rate=Decimal("10000.000000010001"))  # beyond range
def test_convert_round_up_never_understates(minor: int, source: str, target: str, rate: Decimal) -> None:
    if source == target or rate <= 0:
        return
    money = Money(minor, source)
    with localcontext() as ctx:
        ctx.prec = 80  # the reference product must be exact
        exact = money.to_decimal() * rate
    one = Decimal(1).scaleb(-EXPONENTS[target])
    if exact / one > Decimal(10**18) - 1:
        with pytest.raises(MoneyError, match="out of range"):  # too large for any real payment: refused, not wrapped
            money.convert(target, rate, rounding=ROUND_UP)
        return
    up = money.convert(target, rate, rounding=ROUND_UP)
    assert up.currency == target
    assert up.to_decimal() >= exact
    assert up.to_decimal() - exact < one
    even = money.convert(target, rate)  # the default is banker's rounding
    assert abs(even.to_decimal() - exact) <= one / 2


def test_convert_rounding_rules_stated() -> None:
    # 1.00 USD at 1.345 -> 1.345 SGD: half-even gives 1.34, ROUND_UP gives 1.35.
    assert Money(100, "USD").convert("SGD", "1.345") == Money(134, "SGD")
    assert Money(100, "USD").convert("SGD", "1.355") == Money(136, "SGD")
    assert Money(100, "USD").convert("SGD", "1.345", rounding=ROUND_HALF_EVEN) == Money(134, "SGD")
    assert Money(100, "USD").convert("SGD", "1.3401", rounding=ROUND_UP) == Money(135, "SGD")
    assert Money(100, "USD").convert("USD", "2") == Money(100, "USD")  # same currency: unchanged
    # A long rate must not be rounded before the final ROUND_UP (this once understated by a cent).
    big = Money(10**17, "USD").convert("EUR", Decimal("1.00000000000000000000000000001"), rounding=ROUND_UP)
    assert big == Money(10**17 + 1, "EUR")


@pytest.mark.parametrize(("rate", "fragment"), [(1.3, "is a float"), ("abc", "is not a number"),
                                                ("0", "positive finite"), ("-1", "positive finite"),
                                                ("NaN", "positive finite"), (Decimal("Infinity"), "positive finite")])
def test_bad_rates(rate: object, fragment: str) -> None:
    with pytest.raises(MoneyError, match=fragment):
        parse_rate(rate)
