"""What an AUTONOMOUS mandate covers, read the way the network reads it.

The network (amp-protocol.md 3.6, S2 at token issuance) accepts a checkout under a mandate only
when **both** lists allow it: the merchant's name must be in ``merchantNameList`` when that list is
non-empty, **and** its MCC in ``merchantMccList`` when that one is non-empty (the mandate signs
both). Names are compared exactly, as the network does. The amount, in the mandate's currency,
must fit what remains, and the mandate must not have expired.

`scope_gaps` is the one place the toolkit decides this: a payment the network would refuse is
refused before anything is reserved or sent, with each difference named.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from amp_tools.money import Money

__all__ = ["merchant_gaps", "scope_gaps"]


def merchant_gaps(names: Sequence[str], mccs: Sequence[str], merchant_name: str, mcc: str | None) -> list[str]:
    """Why the mandate's merchant lists do not cover this merchant (empty: they do)."""
    gaps = []
    if names and merchant_name not in names:
        gaps.append(f"merchant name {merchant_name!r} is not in the mandate's merchant list ({', '.join(names)})")
    if mccs and (mcc or "") not in mccs:
        gaps.append(f"merchant category {mcc or '(none)'} is not in the mandate's MCC list ({', '.join(mccs)})")
    return gaps


def scope_gaps(*, names: Sequence[str], mccs: Sequence[str], remaining: Money, expires_at: datetime | None,
               merchant_name: str, mcc: str | None, amount: Money, now: datetime) -> list[str]:
    """Every reason the network would refuse this checkout under this mandate (empty: it is covered).

    `amount` is the checkout in the mandate's currency; `remaining` is what the mandate has left.
    """
    gaps = merchant_gaps(names, mccs, merchant_name, mcc)
    if amount.currency != remaining.currency:
        gaps.append(f"the amount is in {amount.currency}, the mandate in {remaining.currency}")
    elif amount > remaining:
        gaps.append(f"{amount} is more than the {remaining} the mandate has left")
    if expires_at is not None and expires_at <= now:
        gaps.append(f"the mandate expired at {expires_at.isoformat()}")
    return gaps
