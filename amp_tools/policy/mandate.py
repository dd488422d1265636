"""Mandate terms derived from a policy, so an AUTONOMOUS AMP mandate carries the same limits.

Owns one choice: what budget, merchant list, MCC list and expiry to ask the Credential
Provider for. The CP enforces these independently of our process (amp-protocol.md 3.6), so
they are a second line of defence, never looser than the policy.

The budget is the remaining total budget, further bounded by:

* the per-window cap *limits* of windows that contain the mandate's whole life (from `now`
  to `expires_at`): a mandate that ends before the current calendar month ends can never
  spend more than the monthly cap, so asking for more would only widen the blast radius.
  Windows the mandate outlives are not used: the mandate's budget spans several of them and
  the local policy enforces each one at payment time;
* ``negotiation.max_offer`` is *not* used (it bounds one offer, not a mandate's total), and
  neither is ``per_transaction_max`` (a mandate pays many times).

Merchant names come from the allow list. The CP compares ``merchantName`` exactly, so allow
entries written as merchant ids should be translated with `names` (id -> display name).
MCC ranges are expanded to single codes, as the CP compares codes one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from amp_tools.clock import utc
from amp_tools.errors import CurrencyMismatch
from amp_tools.money import Money
from amp_tools.policy.decide import min_money
from amp_tools.policy.model import BudgetPolicy, expand_mccs
from amp_tools.policy.windows import ROLLING_LENGTH, calendar_start

__all__ = ["MandateTerms", "mandate_terms"]


@dataclass(frozen=True)
class MandateTerms:
    """What an AUTONOMOUS mandate should state (amp-protocol.md: IntentConstraints)."""

    budget: Money
    merchant_names: tuple[str, ...]
    mccs: tuple[str, ...]
    expires_at: datetime | None


def mandate_terms(policy: BudgetPolicy, remaining: Money, now: datetime,
                  *, names: Mapping[str, str] | None = None) -> MandateTerms:
    """The mandate terms for `policy` given the `remaining` total budget at `now`."""
    if remaining.currency != policy.currency:
        raise CurrencyMismatch(f"remaining budget {remaining} is not in the policy currency {policy.currency}")
    now = utc(now)
    budget = min_money(remaining, policy.total_budget)
    if policy.expires_at is not None:
        end = policy.expires_at - timedelta(microseconds=1)
        for period, cap in policy.windows.configured():
            if cap.mode == "calendar":
                inside = end >= now and calendar_start(period, end, policy.tz) == calendar_start(period, now, policy.tz)
            else:
                inside = policy.expires_at - now <= ROLLING_LENGTH[period]
            if inside:
                budget = min_money(budget, cap.limit)
    if budget.minor < 0:
        budget = policy.zero()
    lookup = {key.strip().casefold(): value for key, value in (names or {}).items()}
    merchants = tuple(dict.fromkeys(lookup.get(entry.casefold(), entry) for entry in policy.merchants.allow))
    return MandateTerms(
        budget=budget,
        merchant_names=merchants,
        mccs=tuple(expand_mccs(policy.mccs.allow)),
        expires_at=policy.expires_at,
    )
