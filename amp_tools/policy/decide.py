"""The policy decision: may this payment go ahead, and must a person confirm it?

Owns the contract between the policy and the ledger, and the decision itself. Everything here
is pure (no I/O, no clock): the ledger calls `usage_queries` and `decide` inside its atomic
check-and-reserve transaction, so the figures it passes in cannot change underneath. The intent
decided on (`SpendIntent`, `Item`) is the one shape of `amp_tools.intent`, shared with the ledger
and re-exported here.

How the ledger answers a `UsageQuery` (the contract):

* ``amount``: the sum, in the POLICY currency, of every pay entry that is reserved or
  committed (not released) under this policy, minus committed refunds, with scope
  ``all`` (every merchant), ``merchant`` (``merchant_id == key``) or ``mcc`` (``mcc == key``),
  and ``created_at >= since`` (``since=None`` means all time);
* ``count``: the number of such pay entries (refunds are not payments and are not counted);
* ``Usage.merchant_seen``: a pay entry to ``intent.merchant_id`` is reserved or committed
  under this policy already.

Refunds (``action="refund"``) are not limited by caps; only the currency check and the
``approval.confirm_refunds`` rule apply to them.

Every usage-dependent refusal is a `Cap` of `caps` (``figure <= bound``), the one list `decide`
checks: the PostgreSQL ledger sends the same bounds to the server, which checks them inside its
reserve call, so the rules are written once, here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from amp_tools.errors import AmpToolsError, CurrencyMismatch, PolicyViolation
from amp_tools.intent import Item, SpendIntent
from amp_tools.money import ROUND_UP, Money
from amp_tools.policy.model import BudgetPolicy, matches_mcc
from amp_tools.policy.windows import Period, rolling_start, window_start

__all__ = [
    "Cap",
    "Item",
    "SpendIntent",
    "Usage",
    "UsageFigure",
    "UsageQuery",
    "Verdict",
    "approval_reasons",
    "caps",
    "checked_rules",
    "decide",
    "max_offer",
    "static_check",
    "usage_queries",
]

TOTAL = "total_budget"
MERCHANT_CAP = "merchants.caps"
MCC_CAP = "mccs.caps"
VELOCITY = "velocity"

_ROLLING_TEXT = {"hour": "rolling 1 hour", "day": "rolling 24 hours", "week": "rolling 7 days",
                 "month": "rolling 30 days"}
# Each hint fits its rule: only a time window frees room by waiting; a total or a cap never does.
_HINT_TOTAL = ("Tell the user the budget's total is spent down to what is left; waiting will not free room. They "
               "can raise total_budget in their policy, or the agent can choose a cheaper option.")
_HINT_WINDOW = ("Tell the user which limit refused the payment; they can raise it in their policy, or the agent can "
                "choose a cheaper option or wait until the {period} window has room again.")
_HINT_CAP = ("Tell the user this {what} cap refused the payment; waiting will not free room. They can raise the cap "
             "in their policy, or the agent can choose a cheaper option or another {what}.")


@dataclass(frozen=True)
class UsageQuery:
    """One figure `decide` needs from the ledger (see the module docstring for its meaning)."""

    name: str
    scope: Literal["all", "merchant", "mcc"]
    key: str | None
    since: datetime | None


@dataclass(frozen=True)
class UsageFigure:
    """The ledger's answer to one `UsageQuery`: spend in the policy currency and payment count."""

    name: str
    amount: Money
    count: int


@dataclass(frozen=True)
class Usage:
    """All answers for one intent, by query name, plus whether the merchant was paid before."""

    figures: Mapping[str, UsageFigure] = field(default_factory=dict)
    merchant_seen: bool = False


@dataclass(frozen=True)
class Verdict:
    """The payment is within the policy. `approval_reasons` empty means no person is needed.

    `budget_left` is what remains of the total budget after this payment (or refund).
    """

    approval_reasons: tuple[str, ...]
    budget_left: Money
    checked_rules: tuple[str, ...]

    @property
    def needs_approval(self) -> bool:
        return bool(self.approval_reasons)


# ---------------------------------------------------------------------- queries
def window_name(period: Period) -> str:
    return f"windows.{period}"


def usage_queries(policy: BudgetPolicy, intent: SpendIntent) -> list[UsageQuery]:
    """Every figure `decide` will read for this intent, in the order it checks them."""
    queries = [UsageQuery(TOTAL, "all", None, None)]
    if intent.action == "refund":
        return queries
    for period, cap in policy.windows.configured():
        since = window_start(period, cap.mode, intent.at, policy.tz)
        queries.append(UsageQuery(window_name(period), "all", None, since))
    if policy.merchants.caps_for(intent.merchant_id, intent.merchant_name):
        queries.append(UsageQuery(MERCHANT_CAP, "merchant", intent.merchant_id, None))
    if intent.mcc is not None and intent.mcc.strip() in policy.mccs.caps:
        queries.append(UsageQuery(MCC_CAP, "mcc", intent.mcc.strip(), None))
    if policy.velocity is not None:
        queries.append(UsageQuery(VELOCITY, "all", None, rolling_start(intent.at, policy.velocity.window)))
    return queries


# ---------------------------------------------------------------------- static rules
def static_check(policy: BudgetPolicy, intent: SpendIntent) -> None:
    """The rules that need no history: currency, expiry, allow/deny lists, per-payment max.

    Raises `PolicyViolation` naming the rule; returns None when they all pass.
    """
    _check_currency(policy, intent)
    if intent.action == "refund":
        return
    if policy.expires_at is not None and intent.at >= policy.expires_at:
        raise PolicyViolation(
            f"the {policy.label()} expired at {policy.expires_at.isoformat()}; no payment is allowed after it",
            rule="expires_at", hint="Ask the user to renew or extend their budget policy.")
    denied = policy.is_denied_merchant(intent.merchant_id, intent.merchant_name)
    if denied is not None:
        raise PolicyViolation(
            f"merchant {_merchant(intent)} is on the policy's deny list (entry {denied!r}); it is never paid",
            rule="merchants.deny", hint="Choose another merchant.")
    if not policy.is_allowed_merchant(intent.merchant_id, intent.merchant_name):
        raise PolicyViolation(
            f"merchant {_merchant(intent)} is not on the policy's allow list "
            f"({', '.join(policy.merchants.allow)})",
            rule="merchants.allow", hint="Choose one of the allowed merchants.")
    _check_mcc(policy, intent)
    cap = policy.per_transaction_max
    if cap is not None and intent.budget_amount > cap:
        raise PolicyViolation(
            f"per-payment max {cap}: this payment needs {intent.budget_amount}, "
            f"{intent.budget_amount - cap} over the limit",
            rule="per_transaction_max",
            hint="Choose a cheaper option; one payment may not exceed the per-payment max.",
            details=_details(cap, policy.zero(), intent.budget_amount))


def _check_currency(policy: BudgetPolicy, intent: SpendIntent) -> None:
    spend = intent.budget_amount
    if spend.currency != policy.currency:
        raise PolicyViolation(
            f"the payment's budget amount {spend} is not in the policy currency {policy.currency}; "
            f"convert it to {policy.currency} (rounding up) first",
            rule="currency")
    if not spend.is_positive() or not intent.amount.is_positive():
        raise PolicyViolation(f"the {intent.action} amount {intent.amount} must be positive", rule="amount")
    if intent.amount.currency == policy.currency:
        if spend != intent.amount:
            raise PolicyViolation(
                f"the budget amount {spend} differs from the payment amount {intent.amount} in the same currency",
                rule="currency")
        return
    if intent.fx_rate is None:
        raise PolicyViolation(
            f"the payment is in {intent.amount.currency} but the policy is in {policy.currency}, "
            "and no FX rate was given to check the converted amount",
            rule="currency", hint="Get an FX rate quote before paying in a foreign currency.")
    floor = intent.amount.convert(policy.currency, intent.fx_rate, rounding=ROUND_UP)
    if spend < floor:
        raise PolicyViolation(
            f"the budget amount {spend} understates {intent.amount} at rate {intent.fx_rate} "
            f"({floor} rounding up)",
            rule="currency")


def _check_mcc(policy: BudgetPolicy, intent: SpendIntent) -> None:
    rules = policy.mccs
    for entry in rules.deny:
        if matches_mcc(entry, intent.mcc):
            raise PolicyViolation(
                f"merchant {_merchant(intent)} has MCC {intent.mcc}, which the policy denies (entry {entry})",
                rule="mccs.deny", hint="Choose a merchant of another category.")
    if rules.allow and not any(matches_mcc(entry, intent.mcc) for entry in rules.allow):
        shown = f"MCC {intent.mcc}" if intent.mcc else "no MCC"
        raise PolicyViolation(
            f"merchant {_merchant(intent)} has {shown}; the policy only allows MCCs {', '.join(rules.allow)}",
            rule="mccs.allow", hint="Choose a merchant in an allowed category.")


def _merchant(intent: SpendIntent) -> str:
    if intent.merchant_name and intent.merchant_name != intent.merchant_id:
        return f"{intent.merchant_name} ({intent.merchant_id})"
    return intent.merchant_id


def _details(limit: Money, used: Money, needed: Money) -> dict[str, object]:
    left = limit - used
    return {"limit": limit.to_public(), "used": used.to_public(), "needed": needed.to_public(),
            "left": (left if left.minor > 0 else Money.zero(left.currency)).to_public()}


# ---------------------------------------------------------------------- decision
def _figure(policy: BudgetPolicy, usage: Usage, name: str) -> UsageFigure:
    figure = usage.figures.get(name)
    if figure is None:
        # Failing closed: a missing figure is a ledger bug, never a reason to allow.
        raise AmpToolsError(f"usage figure {name!r} is missing; answer every query from usage_queries()",
                            code="USAGE_MISSING")
    if figure.amount.currency != policy.currency:
        raise CurrencyMismatch(f"usage figure {name!r} is in {figure.amount.currency}, "
                               f"expected the policy currency {policy.currency}")
    return figure


@dataclass(frozen=True)
class Cap:
    """One usage-dependent limit of a payment: the figure it reads and the most that figure may be.

    ``kind="amount"``: refused when ``used + needed > limit`` (`bound` = ``limit - needed``, minor
    units); ``kind="count"`` (velocity): refused when ``count + 1 > limit`` (`bound` = ``limit - 1``).
    `decide` checks exactly these, in this order, and the PostgreSQL ledger checks the same bounds in
    the server (see `amp_tools.ledger._reserve_fn`), so the two cannot drift.
    """

    figure: str
    rule: str
    kind: Literal["amount", "count"]
    limit: Money | int
    label: str
    hint: str
    bound: int

    def allows(self, figure: UsageFigure) -> bool:
        return (figure.amount.minor if self.kind == "amount" else figure.count) <= self.bound


def caps(policy: BudgetPolicy, intent: SpendIntent) -> list[Cap]:
    """Every usage-dependent limit of a payment, in the order `decide` checks them (none for a refund)."""
    if intent.action == "refund":
        return []
    needed = intent.budget_amount.minor
    out = [Cap(TOTAL, TOTAL, "amount", policy.total_budget, f"total budget {policy.total_budget}", _HINT_TOTAL,
               policy.total_budget.minor - needed)]
    for period, cap in policy.windows.configured():
        name = window_name(period)
        mode = f"calendar {period}, {policy.timezone}" if cap.mode == "calendar" else _ROLLING_TEXT[period]
        out.append(Cap(name, name, "amount", cap.limit, f"{period} cap {cap.limit} ({mode})",
                       _HINT_WINDOW.format(period=period), cap.limit.minor - needed))
    merchant_caps = policy.merchants.caps_for(intent.merchant_id, intent.merchant_name)
    if merchant_caps:
        key, limit = min(merchant_caps, key=lambda pair: pair[1].minor)
        out.append(Cap(MERCHANT_CAP, MERCHANT_CAP, "amount", limit, f"merchant cap {limit} for {key}",
                       _HINT_CAP.format(what="merchant"), limit.minor - needed))
    mcc = intent.mcc.strip() if intent.mcc is not None else None
    if mcc is not None and mcc in policy.mccs.caps:
        limit = policy.mccs.caps[mcc]
        out.append(Cap(MCC_CAP, MCC_CAP, "amount", limit, f"MCC {mcc} cap {limit}",
                       _HINT_CAP.format(what="merchant category"), limit.minor - needed))
    if policy.velocity is not None:
        most = policy.velocity.max_payments
        out.append(Cap(VELOCITY, VELOCITY, "count", most, f"velocity limit {most} payments per "
                       f"{policy.velocity.per} (rolling)", "Wait before paying again, or ask the user to raise the "
                       "velocity limit.", most - 1))
    return out


def _refuse(policy: BudgetPolicy, cap: Cap, figure: UsageFigure, needed: Money) -> PolicyViolation:
    """The refusal of a cap `figure` does not fit (`cap.allows(figure)` is False)."""
    if isinstance(cap.limit, int):  # velocity
        per = policy.velocity.per if policy.velocity is not None else ""
        return PolicyViolation(
            f"{cap.label}: {figure.count} payments already made in the last {per}, no payment left in this window",
            rule=cap.rule, hint=cap.hint, details={"limit": cap.limit, "used": figure.count})
    used, left = figure.amount, cap.limit - figure.amount
    shown_left = left if left.minor > 0 else Money.zero(left.currency)
    return PolicyViolation(
        f"{cap.label}: {used} already spent, this payment needs {needed}, {shown_left} left",
        rule=cap.rule, hint=cap.hint, details=_details(cap.limit, used, needed))


def decide(policy: BudgetPolicy, intent: SpendIntent, usage: Usage) -> Verdict:
    """Allow (returning a `Verdict`) or refuse (raising `PolicyViolation`) one intent.

    Pure: reads only its arguments. A payment is refused when, counting this intent's
    `budget_amount`, any limit would be exceeded; limits are checked in the order of
    `caps` (the order of `usage_queries`) and the first one exceeded is reported.
    """
    static_check(policy, intent)
    needed = intent.budget_amount
    total = _figure(policy, usage, TOTAL)
    if intent.action == "refund":
        left = min_money(policy.total_budget, policy.total_budget - total.amount + needed)
        reasons = (f"the policy asks a person to confirm refunds (refund of {intent.amount} "
                   f"from {_merchant(intent)})",) if policy.approval.confirm_refunds else ()
        return Verdict(reasons, left, ("currency", "approval.confirm_refunds"))

    limits = caps(policy, intent)
    for cap in limits:
        figure = total if cap.figure == TOTAL else _figure(policy, usage, cap.figure)
        if not cap.allows(figure):
            raise _refuse(policy, cap, figure, needed)
    left = policy.total_budget - total.amount - needed
    return Verdict(approval_reasons(policy, intent, usage.merchant_seen), left, checked_rules(policy, limits))


def checked_rules(policy: BudgetPolicy, limits: list[Cap]) -> tuple[str, ...]:
    """The rules an allowed payment passed, in the order `decide` checks them (`limits`: its `caps`)."""
    return ("currency", *_static_rule_names(policy), *(cap.rule for cap in limits))


def _static_rule_names(policy: BudgetPolicy) -> list[str]:
    names = []
    if policy.expires_at is not None:
        names.append("expires_at")
    if policy.merchants.deny:
        names.append("merchants.deny")
    if policy.merchants.allow:
        names.append("merchants.allow")
    if policy.mccs.deny:
        names.append("mccs.deny")
    if policy.mccs.allow:
        names.append("mccs.allow")
    if policy.per_transaction_max is not None:
        names.append("per_transaction_max")
    return names


def approval_reasons(policy: BudgetPolicy, intent: SpendIntent, merchant_seen: bool) -> tuple[str, ...]:
    """Why a person must confirm an allowed payment (empty: nobody needs to). Only the new-merchant
    reason depends on usage, through `merchant_seen`."""
    rules = policy.approval
    reasons: list[str] = []
    if rules.confirm_all:
        reasons.append("the policy asks a person to confirm every payment")
    if rules.confirm_above is not None and intent.budget_amount > rules.confirm_above:
        reasons.append(f"the amount {intent.budget_amount} is above the confirmation threshold {rules.confirm_above}")
    if rules.confirm_new_merchants and not merchant_seen:
        reasons.append(f"this is the first payment to {_merchant(intent)} under this policy")
    if rules.confirm_human_present and intent.human_present:
        reasons.append("the person is present for this purchase and the policy asks them to confirm it")
    return tuple(reasons)


def min_money(first: Money, *rest: Money) -> Money:
    """The smallest of same-currency amounts."""
    best = first
    for value in rest:
        if value < best:
            best = value
    return best


def max_offer(policy: BudgetPolicy, remaining: Money) -> Money:
    """The most the agent may offer in a negotiation: never above the per-payment max, the
    remaining budget, or ``negotiation.max_offer``; never below zero."""
    ceiling = remaining
    if policy.per_transaction_max is not None:
        ceiling = min_money(ceiling, policy.per_transaction_max)
    if policy.negotiation.max_offer is not None:
        ceiling = min_money(ceiling, policy.negotiation.max_offer)
    return ceiling if ceiling.minor > 0 else policy.zero()
