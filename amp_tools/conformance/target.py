"""What the checker is pointed at, and the limits it keeps there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from amp_tools.amp.keys import AgentKey
from amp_tools.conformance.safety import require_safe_url
from amp_tools.errors import ConfigError

__all__ = ["Target", "wallet_from_auth_url"]


def wallet_from_auth_url(auth_url: str, owner_confirmed: bool) -> str | None:
    """The wallet base an ``idv.authUrl`` points into (the URL without query and last path segment),
    or None when it is empty or on a host the checker may not touch."""
    parts = urlsplit(auth_url)
    path = parts.path.rstrip("/").rsplit("/", 1)[0] if "/" in parts.path.strip("/") else parts.path.rstrip("/")
    base = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    try:
        return require_safe_url(base, "idv.authUrl", owner_confirmed=owner_confirmed)
    except ConfigError:
        return None


@dataclass
class Target:
    """The endpoints under test. Only `cp` is required; checks needing the rest are SKIPPED.

    * `cp`: the Credential Provider, its root or its ``/credential-provider`` URL.
    * `merchant`: a merchant's base URL (``/searchProducts``, ``/startCheckout``, ``/startPayment``).
    * `wallet`: the MPP's base (``/completeIdv``), where the checker acts as the person; default
      where the CP's ``idv.authUrl`` points, else ``<cp root>/mpp``.
    * `network`: agent key registration (``/agents/register``); default ``<cp root>/network``.
    * `merchant_name` / `merchant_mcc`: for merchants that do not return them at checkout.
    * `aplus_jwk`: the pinned Alipay+ public key that verifies L1; or `aplus_jwks_url`, where the
      network publishes it (a JWK or ``{keys:[...]}``). With neither, that check is SKIPPED.
    * `agent_key` / `agent_id`: the key the target already knows (else a fresh key is registered).
    * `max_amount_minor`: the most one test mandate may authorize, in the merchant currency; None
      (the default) sizes every mandate from the merchant's cheapest product (at most 3x its price).
    * `allow_waiting`: where the target has no clock harness, let expiry checks wait in real time.
    """

    cp: str
    merchant: str | None = None
    wallet: str | None = None
    network: str | None = None
    merchant_name: str | None = None
    merchant_mcc: str | None = None
    aplus_jwk: dict[str, Any] | None = None
    aplus_jwks_url: str | None = None
    agent_key: AgentKey | None = None
    agent_id: str | None = None
    wallet_name: str = "ALIPAY_HK"
    audience: str = "alipayplus.com"
    max_amount_minor: int | None = None
    token_ttl_seconds: int = 600
    idv_timeout_seconds: float = 20.0
    idv_grace_seconds: float = 1.0  # a wallet that completes IDV by itself gets this long first
    allow_waiting: bool = False  # without a clock harness, wait out token lifetimes (about 10 min)
    max_wait_seconds: int = 900
    owner_confirmed: bool = False

    def __post_init__(self) -> None:
        ok = self.owner_confirmed
        self.cp = require_safe_url(self.cp, "--cp", owner_confirmed=ok)
        if self.cp.endswith("/credential-provider"):
            self.cp = self.cp[: -len("/credential-provider")]
        self.merchant = require_safe_url(self.merchant, "--merchant", owner_confirmed=ok) if self.merchant else None
        self.wallet = require_safe_url(self.wallet, "--wallet", owner_confirmed=ok) if self.wallet else None
        self.network = require_safe_url(self.network, "--network", owner_confirmed=ok) if self.network else None
        if self.aplus_jwks_url:
            self.aplus_jwks_url = require_safe_url(self.aplus_jwks_url, "--aplus-jwk", owner_confirmed=ok)
        if self.max_amount_minor is not None and (not isinstance(self.max_amount_minor, int)
                                                  or self.max_amount_minor <= 0):
            raise ValueError(f"max_amount_minor must be a positive integer, got {self.max_amount_minor!r}")

    @property
    def cp_base(self) -> str:
        return self.cp + "/credential-provider"

    @property
    def wallet_base(self) -> str:
        return self.wallet or self.cp + "/mpp"

    @property
    def network_base(self) -> str:
        return self.network or self.cp + "/network"

    @property
    def admin_base(self) -> str:
        """The sandbox harness (``/_admin``), used only to move the target's clock when it offers that."""
        return self.cp + "/_admin"

    def describe(self) -> dict[str, str]:
        return {"cp": self.cp_base, "merchant": self.merchant or "(none)", "wallet": self.wallet_base,
                "network": self.network_base}
