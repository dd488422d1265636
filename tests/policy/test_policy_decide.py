"""decide(): every rule allowing and refusing, and properties over random usage."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amp_tools.errors import AmpToolsError, CurrencyMismatch, PolicyViolation
from amp_tools.money import Money
from amp_tools.policy import BudgetPolicy, Item, SpendIntent, decide, load_policy, parse_policy
from amp_tools.policy.decide import Usage, UsageFigure, max_offer, static_check, usage_queries
from amp_tools.policy.mandate import mandate_terms

AT = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)  # a Wednesday
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"


def sgd(text: str) -> Money:
    return Money.parse(text, "SGD")


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def intent(price: str = "80.00", **over: Any) -> SpendIntent:
    money = usd(price)
    base = SpendIntent(action="pay", merchant_id="SKY-1", merchant_name="Skylark Air", mcc="3001", amount=money,
                       budget_amount=money, fx_rate=None,
                       items=(Item("P1", "Ticket", 1, money),), human_present=False, checkout_id="chk-1", at=AT)
    return replace(base, **over)


def usage_for(policy: BudgetPolicy, spend: SpendIntent, used: dict[str, str] | None = None,
              counts: dict[str, int] | None = None, seen: bool = True) -> Usage:
    used = used or {}
    counts = counts or {}
    return Usage({q.name: UsageFigure(q.name, Money.parse(used.get(q.name, "0"), policy.currency),
                                      counts.get(q.name, 0)) for q in usage_queries(policy, spend)},
                 merchant_seen=seen)


FULL: dict[str, Any] = {
    "currency": "USD",
    "total_budget": "1000.00",
    "per_transaction_max": "200.00",
    "windows": {"hour": {"limit": "150.00"}, "day": {"limit": "300.00"},
                "week": {"limit": "500.00", "mode": "rolling"}, "month": {"limit": "800.00"}},
    "merchants": {"caps": {"skylark air": "250.00"}, "deny": ["BAD-SHOP"]},
    "mccs": {"caps": {"3001": "400.00"}, "deny": ["7995"]},
    "velocity": {"max_payments": 3, "per": "1h"},
}


@pytest.fixture
def full() -> BudgetPolicy:
    return parse_policy(FULL)


def test_queries_cover_every_limit(full: BudgetPolicy) -> None:
    queries = {q.name: q for q in usage_queries(full, intent())}
    assert list(queries) == ["total_budget", "windows.hour", "windows.day", "windows.week", "windows.month",
                             "merchants.caps", "mccs.caps", "velocity"]
    assert queries["total_budget"].since is None and queries["total_budget"].scope == "all"
    assert queries["windows.hour"].since == datetime(2025, 6, 4, 12, tzinfo=UTC)
    assert queries["windows.day"].since == datetime(2025, 6, 4, tzinfo=UTC)
    assert queries["windows.week"].since == AT - timedelta(days=7)
    assert queries["windows.month"].since == datetime(2025, 6, 1, tzinfo=UTC)
    assert (queries["merchants.caps"].scope, queries["merchants.caps"].key) == ("merchant", "SKY-1")
    assert (queries["mccs.caps"].scope, queries["mccs.caps"].key) == ("mcc", "3001")
    assert queries["velocity"].since == AT - timedelta(hours=1)


def test_all_under_limits_is_allowed(full: BudgetPolicy) -> None:
    verdict = decide(full, intent(), usage_for(full, intent()))
    assert verdict.approval_reasons == ()
    assert verdict.budget_left == usd("920.00")
    assert set(verdict.checked_rules) >= {"total_budget", "windows.hour", "windows.day", "windows.week",
                                          "windows.month", "merchants.caps", "mccs.caps", "velocity",
                                          "per_transaction_max", "merchants.deny", "mccs.deny"}


@pytest.mark.parametrize(("rule", "used", "message"), [
    ("total_budget", "950.00", "total budget 1000.00 USD: 950.00 USD already spent, this payment needs 80.00 USD, "
                               "50.00 USD left"),
    ("windows.hour", "100.00", "hour cap 150.00 USD (calendar hour, UTC): 100.00 USD already spent, this payment "
                               "needs 80.00 USD, 50.00 USD left"),
    ("windows.day", "250.00", "day cap 300.00 USD (calendar day, UTC): 250.00 USD already spent, this payment "
                              "needs 80.00 USD, 50.00 USD left"),
    ("windows.week", "430.00", "week cap 500.00 USD (rolling 7 days): 430.00 USD already spent, this payment "
                               "needs 80.00 USD, 70.00 USD left"),
    ("windows.month", "790.00", "month cap 800.00 USD (calendar month, UTC): 790.00 USD already spent"),
    ("merchants.caps", "200.00", "merchant cap 250.00 USD for skylark air: 200.00 USD already spent, this payment "
                                 "needs 80.00 USD, 50.00 USD left"),
    ("mccs.caps", "330.00", "MCC 3001 cap 400.00 USD: 330.00 USD already spent"),
])
def test_each_cap_refuses_with_words(full: BudgetPolicy, rule: str, used: str, message: str) -> None:
    spend = intent()
    with pytest.raises(PolicyViolation) as exc:
        decide(full, spend, usage_for(full, spend, {rule: used}))
    assert exc.value.rule == rule
    assert message in exc.value.message
    assert exc.value.details["rule"] == rule
    assert exc.value.details["used"] == {"amount": used, "currency": "USD"}
    # The hint fits the rule: only a time window frees room by waiting.
    if rule.startswith("windows."):
        assert f"wait until the {rule.split('.')[1]} window has room again" in exc.value.hint
    else:
        assert "wait" not in exc.value.hint.replace("waiting will not free room", "")
        assert "waiting will not free room" in exc.value.hint


def test_exactly_at_the_limit_is_allowed(full: BudgetPolicy) -> None:
    spend = intent()
    verdict = decide(full, spend, usage_for(full, spend, {"windows.day": "220.00"}))
    assert verdict.budget_left == usd("920.00")


def test_overspent_window_shows_zero_left(full: BudgetPolicy) -> None:
    spend = intent("1.00")
    expected = "310.00 USD already spent, this payment needs 1.00 USD, 0.00 USD left"
    with pytest.raises(PolicyViolation, match=re.escape(expected)):
        decide(full, spend, usage_for(full, spend, {"windows.day": "310.00"}))


def test_velocity(full: BudgetPolicy) -> None:
    spend = intent()
    assert decide(full, spend, usage_for(full, spend, counts={"velocity": 2})).budget_left == usd("920.00")
    with pytest.raises(PolicyViolation) as exc:
        decide(full, spend, usage_for(full, spend, counts={"velocity": 3}))
    assert exc.value.rule == "velocity"
    assert "velocity limit 3 payments per 1h (rolling): 3 payments already made" in exc.value.message


def test_per_transaction_max(full: BudgetPolicy) -> None:
    static_check(full, intent("200.00"))
    with pytest.raises(PolicyViolation) as exc:
        static_check(full, intent("200.01"))
    assert exc.value.rule == "per_transaction_max"
    assert exc.value.message == ("per-payment max 200.00 USD: this payment needs 200.01 USD, "
                                 "0.01 USD over the limit")


def test_merchant_deny_and_allow_match_id_or_name_ignoring_case() -> None:
    policy = parse_policy({"currency": "USD", "total_budget": "100",
                           "merchants": {"allow": ["skylark air", "HOTEL-9"], "deny": ["hotel-9"]}})
    static_check(policy, intent())  # allowed by name
    static_check(policy, intent(merchant_id="X", merchant_name="SKYLARK AIR"))
    with pytest.raises(PolicyViolation) as denied:
        static_check(policy, intent(merchant_id="HOTEL-9", merchant_name="Hotel Nine"))
    assert denied.value.rule == "merchants.deny"  # deny wins over allow
    assert "Hotel Nine (HOTEL-9) is on the policy's deny list" in denied.value.message
    with pytest.raises(PolicyViolation) as other:
        static_check(policy, intent(merchant_id="ZOOM", merchant_name="Zoom Cars"))
    assert other.value.rule == "merchants.allow"
    assert "Zoom Cars (ZOOM) is not on the policy's allow list (skylark air, HOTEL-9)" in other.value.message


def test_mcc_allow_ranges_and_deny() -> None:
    policy = parse_policy({"currency": "USD", "total_budget": "100",
                           "mccs": {"allow": ["3000-3299", "7011"], "deny": ["3100"]}})
    static_check(policy, intent(mcc="3000"))
    static_check(policy, intent(mcc="3299"))
    static_check(policy, intent(mcc="7011"))
    for mcc, rule in (("3300", "mccs.allow"), ("5411", "mccs.allow"), (None, "mccs.allow"), ("3100", "mccs.deny"),
                      ("x", "mccs.allow")):
        with pytest.raises(PolicyViolation) as exc:
            static_check(policy, intent(mcc=mcc))
        assert exc.value.rule == rule
    deny_only = parse_policy({"currency": "USD", "total_budget": "100", "mccs": {"deny": ["7995"]}})
    static_check(deny_only, intent(mcc=None))


def test_expiry() -> None:
    policy = parse_policy({"currency": "USD", "total_budget": "100", "expires_at": "2025-06-04T20:00:00+08:00"})
    static_check(policy, intent(at=datetime(2025, 6, 4, 11, 59, tzinfo=UTC)))
    with pytest.raises(PolicyViolation) as exc:
        static_check(policy, intent(at=datetime(2025, 6, 4, 12, 0, tzinfo=UTC)))
    assert exc.value.rule == "expires_at"
    assert "expired at 2025-06-04T12:00:00+00:00" in exc.value.message


def test_currency_rules() -> None:
    policy = parse_policy({"currency": "USD", "total_budget": "100"})
    sgd = Money.parse("100.00", "SGD")
    with pytest.raises(PolicyViolation, match="not in the policy currency USD") as exc:
        static_check(policy, intent(amount=sgd, budget_amount=sgd))
    assert exc.value.rule == "currency"
    with pytest.raises(PolicyViolation, match="no FX rate"):
        static_check(policy, intent(amount=sgd, budget_amount=usd("75.00")))
    # 100 SGD at 0.74123 = 74.123 -> 74.13 USD rounding up; 74.12 understates it.
    with pytest.raises(PolicyViolation, match="understates"):
        static_check(policy, intent(amount=sgd, budget_amount=usd("74.12"), fx_rate=Decimal("0.74123")))
    static_check(policy, intent(amount=sgd, budget_amount=usd("74.13"), fx_rate=Decimal("0.74123")))
    with pytest.raises(PolicyViolation, match="differs from the payment amount"):
        static_check(policy, intent(amount=usd("10"), budget_amount=usd("9")))
    with pytest.raises(PolicyViolation, match="must be positive") as zero:
        static_check(policy, intent("0"))
    assert zero.value.rule == "amount"


def test_usage_figures_must_be_complete_and_in_policy_currency(full: BudgetPolicy) -> None:
    spend = intent()
    usage = usage_for(full, spend)
    partial = Usage({k: v for k, v in usage.figures.items() if k != "windows.day"})
    with pytest.raises(AmpToolsError, match=re.escape("'windows.day' is missing")) as exc:
        decide(full, spend, partial)
    assert exc.value.code == "USAGE_MISSING"
    wrong = dict(usage.figures)
    wrong["total_budget"] = UsageFigure("total_budget", Money(0, "EUR"), 0)
    with pytest.raises(CurrencyMismatch):
        decide(full, spend, Usage(wrong))


def test_approval_reasons() -> None:
    policy = parse_policy({"currency": "USD", "total_budget": "1000",
                           "approval": {"confirm_above": "100.00", "confirm_new_merchants": True,
                                        "confirm_human_present": True}})
    quiet = intent("100.00")
    assert decide(policy, quiet, usage_for(policy, quiet, seen=True)).approval_reasons == ()
    loud = intent("100.01", human_present=True)
    reasons = decide(policy, loud, usage_for(policy, loud, seen=False)).approval_reasons
    assert reasons == ("the amount 100.01 USD is above the confirmation threshold 100.00 USD",
                       "this is the first payment to Skylark Air (SKY-1) under this policy",
                       "the person is present for this purchase and the policy asks them to confirm it")
    everything = parse_policy({"currency": "USD", "total_budget": "1000", "approval": {"confirm_all": True}})
    assert decide(everything, quiet, usage_for(everything, quiet)).needs_approval


def test_refunds_skip_limits_and_ask_when_configured() -> None:
    policy = parse_policy({**FULL, "approval": {"confirm_refunds": True}, "expires_at": "2020-01-01T00:00:00Z",
                           "merchants": {"deny": ["SKY-1"]}})
    refund = intent("500.00", action="refund")
    assert [q.name for q in usage_queries(policy, refund)] == ["total_budget"]
    verdict = decide(policy, refund, usage_for(policy, refund, {"total_budget": "900.00"}))
    assert verdict.budget_left == usd("600.00")
    assert verdict.approval_reasons == ("the policy asks a person to confirm refunds (refund of 500.00 USD "
                                        "from Skylark Air (SKY-1))",)
    quiet = parse_policy({"currency": "USD", "total_budget": "100"})
    assert decide(quiet, refund, usage_for(quiet, refund)).approval_reasons == ()


def test_max_offer() -> None:
    policy = parse_policy({"currency": "USD", "total_budget": "1000", "per_transaction_max": "200",
                           "negotiation": {"max_offer": "150"}})
    assert max_offer(policy, usd("900")) == usd("150")
    assert max_offer(policy, usd("120")) == usd("120")
    assert max_offer(policy, Money(-500, "USD")) == usd("0")
    plain = parse_policy({"currency": "USD", "total_budget": "1000", "per_transaction_max": "200"})
    assert max_offer(plain, usd("900")) == usd("200")


def test_mandate_terms_follow_the_policy() -> None:
    policy = load_policy(EXAMPLES / "company_travel_desk.toml")
    now = datetime(2027, 3, 20, tzinfo=UTC)
    terms = mandate_terms(policy, sgd("40000"), now, names={"SKYLARK-AIR": "Skylark Air"})
    # The mandate ends inside the current calendar month (March 2027 SGT): the monthly cap bounds it.
    assert terms.budget == sgd("30000")
    assert terms.merchant_names == ("Skylark Air", "MARINA-HOTEL", "KL-GRAND-HOTEL", "ZOOM-CARS")
    assert terms.mccs[0] == "3000" and terms.mccs[299] == "3299" and terms.mccs[300:] == ("7011", "7512")
    assert terms.expires_at == policy.expires_at
    # Earlier, the mandate outlives the month, so only the remaining total bounds it.
    assert mandate_terms(policy, sgd("40000"), datetime(2027, 1, 5, tzinfo=UTC)).budget == sgd("40000")
    assert mandate_terms(policy, Money(-100, "SGD"), now).budget == sgd("0")
    with pytest.raises(CurrencyMismatch):
        mandate_terms(policy, usd("1"), now)


# ------------------------------------------------------------------ properties
amounts = st.integers(min_value=1, max_value=2_000_00)
PROPERTY_POLICY = parse_policy(FULL)
LIMITS = {"total_budget": 1000_00, "windows.hour": 150_00, "windows.day": 300_00, "windows.week": 500_00,
          "windows.month": 800_00, "merchants.caps": 250_00, "mccs.caps": 400_00}


@settings(max_examples=400, deadline=None)
@given(need=amounts, used=st.fixed_dictionaries({name: st.integers(0, 1200_00) for name in LIMITS}),
       count=st.integers(0, 5))
def test_never_allows_over_any_limit(need: int, used: dict[str, int], count: int) -> None:
    spend = intent(Money(need, "USD").amount_str())
    usage = Usage({name: UsageFigure(name, Money(used.get(name, 0), "USD"), count if name == "velocity" else 0)
                   for name in [q.name for q in usage_queries(PROPERTY_POLICY, spend)]})
    over = [name for name, limit in LIMITS.items() if used[name] + need > limit]
    too_big = need > 200_00
    too_fast = count + 1 > 3
    if over or too_big or too_fast:
        with pytest.raises(PolicyViolation) as exc:
            decide(PROPERTY_POLICY, spend, usage)
        assert exc.value.rule in [*over, "per_transaction_max", "velocity"]
    else:
        verdict = decide(PROPERTY_POLICY, spend, usage)
        assert verdict.budget_left == Money(1000_00 - used["total_budget"] - need, "USD")


@settings(max_examples=200, deadline=None)
@given(need=st.integers(1, 50_00), fraction=st.floats(0, 0.5), count=st.integers(0, 2))
def test_always_allows_comfortably_under(need: int, fraction: float, count: int) -> None:
    spend = intent(Money(need, "USD").amount_str())
    # At most half of every limit used, and at most 50.00 needed: the tightest cap (hour, 150.00)
    # still has 25.00 to spare.
    figures = {q.name: UsageFigure(q.name, Money(int(LIMITS.get(q.name, 0) * fraction), "USD"), count)
               for q in usage_queries(PROPERTY_POLICY, spend)}
    verdict = decide(PROPERTY_POLICY, spend, Usage(figures, merchant_seen=True))
    assert verdict.approval_reasons == ()
    assert verdict.budget_left == Money(1000_00 - figures["total_budget"].amount.minor - need, "USD")
