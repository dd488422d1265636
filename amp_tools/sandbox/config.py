"""Settings of one sandbox network."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from amp_tools.money import Money

__all__ = ["IdvMode", "SandboxConfig"]

IdvMode = Literal["auto", "manual", "reject"]


@dataclass
class SandboxConfig:
    """Everything that shapes one sandbox; the defaults make a permissive USD wallet.

    * `idv_mode`: ``auto`` completes identity verification inside the call (no sleeps),
      ``manual`` leaves sessions ``PENDING_IDV`` until `Sandbox.complete_idv` or
      ``POST /mpp/completeIdv``, ``reject`` has the person decline every time.
    * `per_task_limit` / `daily_limit`: the wallet's delegation limits (wallet currency).
    * `fx_enabled`: False restores the reference rule that a checkout in another currency
      than the mandate is refused (``CHECKOUT_CURRENCY_MISMATCH``).
    * `require_chain`: merchants refuse ``startPayment`` without a valid L1/L2(/L3).
    * `seed`: reproducible identifiers; `start_time`: where the in-process clock starts.
    * `deviations`: reference behaviours to reproduce (names in `amp_tools.sandbox.deviations`);
      empty by default, `with_reference_deviations()` turns on all of them.
    """

    wallet_currency: str = "USD"
    wallet_name: str = "ALIPAY_HK"
    wallet_display_name: str = "AlipayHK"
    user_login_id: str = "user-demo"
    user_sub: str = "user-mock-001"
    idv_mode: IdvMode = "auto"
    per_task_limit: Money | None = None
    daily_limit: Money | None = None
    fx_enabled: bool = True
    require_chain: bool = True
    issuer: str = "alipayplus.com"
    audience: str = "alipayplus.com"
    payment_token_ttl_seconds: int = 600
    immediate_mandate_ttl_seconds: int = 600
    quote_ttl_seconds: int | None = None  # None: each merchant's own (15 min in the seed)
    checkout_ttl_seconds: int = 1800
    fx_quote_ttl_seconds: int = 900
    seed: int | None = None
    start_time: datetime | None = None
    usd_rates: dict[str, str] | None = field(default=None)
    deviations: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def with_reference_deviations(cls, **kwargs: Any) -> SandboxConfig:
        """A config that reproduces every security deviation of the reference services (for checkers)."""
        from amp_tools.sandbox.deviations import REFERENCE_DEVIATIONS

        return cls(deviations=REFERENCE_DEVIATIONS, **kwargs)
