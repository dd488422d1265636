"""What one agent session remembers between tool calls, none of which the model ever sees raw.

Secrets (the Alipay+ token, L1/L2, mandate sessions) stay here as `Secret`s; tool results
refer to offers, quotes, checkouts and mandates only by their public ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from amp_tools.amp.models import MerchantInfo
from amp_tools.amp.secret import Secret
from amp_tools.money import Money
from amp_tools.policy import Item

__all__ = ["CheckoutRef", "MandateRef", "OfferRef", "QuoteRef", "SessionState", "WalletBinding"]


@dataclass
class OfferRef:
    offer_id: str
    merchant_id: str
    product_id: str
    name: str
    price: Money
    category: str | None


@dataclass
class QuoteRef:
    quote_id: str
    merchant_id: str
    offer: OfferRef
    quantity: int
    total: Money
    list_total: Money
    status: str
    rounds_used: int = 0
    merchant_max_rounds: int | None = None
    expires_at: str | None = None


@dataclass
class CheckoutRef:
    checkout_id: str
    merchant_id: str
    merchant_name: str
    mcc: str
    items: tuple[Item, ...]
    amount: Money
    quote_id: str | None = None
    expires_at: str | None = None
    # Set once paid: the ledger entry and the merchant's transaction id.
    entry_id: int | None = None
    transaction_id: str | None = None
    mode: str | None = None
    # A human-present purchase waiting for the person in the wallet.
    immediate_session: str | None = None
    immediate_auth_session: str | None = None


@dataclass
class MandateRef:
    mandate_id: str | None
    session_id: str
    mandate_type: str
    budget: Money
    merchant_names: tuple[str, ...]
    mccs: tuple[str, ...]
    expires_at: datetime | None
    status: str
    auth_session_id: str | None = None
    l1: Secret | None = None
    l2: Secret | None = None
    spent: Money | None = None

    @property
    def remaining(self) -> Money:
        return self.budget - (self.spent or Money.zero(self.budget.currency))


@dataclass
class WalletBinding:
    session_id: str | None = None
    auth_session_id: str | None = None
    token_id: Secret | None = None
    l1: Secret | None = None


@dataclass
class SessionState:
    merchants: dict[str, MerchantInfo] = field(default_factory=dict)
    offers: dict[str, OfferRef] = field(default_factory=dict)
    quotes: dict[str, QuoteRef] = field(default_factory=dict)
    checkouts: dict[str, CheckoutRef] = field(default_factory=dict)
    mandates: list[MandateRef] = field(default_factory=list)
    wallet: WalletBinding = field(default_factory=WalletBinding)
