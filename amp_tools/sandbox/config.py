"""Settings of one sandbox network."""

from __future__ import annotations

import math
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
    * `registry`: serve the merchant registry (``/registry/merchants``, an extension); False
      answers it HTTP 404 like a Credential Provider without one.
    * `order_status`: serve the merchants' ``orderStatus`` extension; False answers HTTP 404
      as the reference merchant does.
    * `idv_delay_seconds`: in ``auto`` mode, the person approves this many seconds (on the
      sandbox clock: real time on the default wall clock; a `ManualClock` must be moved) after a
      session is created; until then the session is ``PENDING_IDV``. 0 approves inside the call.
    * `extension_fields`: False cuts the answers of the reference routes (CP, ``searchProducts``,
      ``startCheckout``, ``startPayment``, merchant errors) down to the reference's own fields, to
      prove a client needs none of the sandbox's additions. Off only on request: `reference_like`
      keeps it on.
    * `deviations`: reference behaviours to reproduce (names in `amp_tools.sandbox.deviations`);
      empty by default, `with_reference_deviations()` turns on all of them.

    The switches are read on every request, so a test may flip them on a running sandbox.
    `SandboxConfig.reference_like()` bundles the settings that behave like the AMP reference services.
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
    registry: bool = True
    order_status: bool = True
    idv_delay_seconds: float = 0.0
    extension_fields: bool = True
    deviations: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        delay = self.idv_delay_seconds
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not math.isfinite(delay) or delay < 0:
            raise ValueError(f"idv_delay_seconds must be a finite number of seconds >= 0, got {delay!r}")

    @classmethod
    def reference_like(cls, **overrides: Any) -> SandboxConfig:
        """A sandbox that meets a client the way the AMP reference services do (docs/SANDBOX.md).

        No merchant registry and no order-status extension (both answer 404), identity
        verification completed by the wallet half a second after the session is created, and
        merchants that take ``startPayment`` without verifying the mandate chain. AMP's own
        guarantees stay: budgets, S1-S4, token rules, idempotent ``startPayment`` per checkout.
        `overrides` replace any of these or any other field.
        """
        settings: dict[str, Any] = {"registry": False, "order_status": False, "idv_delay_seconds": 0.5,
                                    "require_chain": False}
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def with_reference_deviations(cls, **kwargs: Any) -> SandboxConfig:
        """A config that reproduces every security deviation of the reference services (for checkers)."""
        from amp_tools.sandbox.deviations import REFERENCE_DEVIATIONS

        return cls(deviations=REFERENCE_DEVIATIONS, **kwargs)
