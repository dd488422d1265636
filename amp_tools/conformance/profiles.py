"""Named bundles of conformance options for known targets (``--profile``).

A profile only fills in what the operator left out; an option given on the command line wins.
``reference``: the AMP reference services (amp-reference-wire.md 8, 11): identity verification
happens at the MPP the network routes to (port 8899, path ``/mpp``), not at the CP's bundled copy;
the merchant states no name or MCC at checkout (the reference registry's are "UGG Demo Store",
5411); there is no clock control, so the expiry checks wait out the 10-minute token lifetime;
mandates are sized from the cheapest product (35.00 USD there, so 105.00 for three purchases).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["PROFILES", "Profile", "profile_defaults"]


@dataclass(frozen=True)
class Profile:
    description: str
    wallet_port: int | None = None
    wallet_path: str = "/mpp"
    merchant_name: str | None = None
    merchant_mcc: str | None = None
    allow_waiting: bool = False


PROFILES: dict[str, Profile] = {
    "reference": Profile("the AMP reference services", wallet_port=8899, merchant_name="UGG Demo Store",
                         merchant_mcc="5411", allow_waiting=True),
}


def profile_defaults(name: str, cp: str) -> dict[str, object]:
    """The Target fields profile `name` fills in for a CP at `cp`; an unknown name is a ValueError."""
    profile = PROFILES.get(name)
    if profile is None:
        raise ValueError(f"unknown --profile {name!r}; expected one of {', '.join(sorted(PROFILES))}")
    out: dict[str, object] = {"allow_waiting": profile.allow_waiting}
    if profile.wallet_port is not None:
        parts = urlsplit(cp)
        host = parts.hostname or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        out["wallet"] = f"{parts.scheme or 'http'}://{host}:{profile.wallet_port}{profile.wallet_path}"
    if profile.merchant_name:
        out["merchant_name"] = profile.merchant_name
    if profile.merchant_mcc:
        out["merchant_mcc"] = profile.merchant_mcc
    return out
