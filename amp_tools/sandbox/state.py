"""The sandbox's in-memory records, one lock for all of them, and the shared context.

Every role reads and writes these records through its service; handlers do all their work
synchronously under `State.lock`, so concurrent requests (several asyncio tasks, or the
served app's threads) never interleave inside one money movement.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from amp_tools.amp.keys import AgentKey
from amp_tools.clock import Clock
from amp_tools.money import Money
from amp_tools.sandbox.catalog import MerchantSeed, ProductSeed
from amp_tools.sandbox.config import IdvMode, SandboxConfig
from amp_tools.sandbox.faults import Faults
from amp_tools.sandbox.fx import FxTable
from amp_tools.sandbox.ids import IdFactory

__all__ = [
    "AcquirerRecord", "AplusSession", "BindingToken", "Checkout", "Context", "CpSession", "FxQuote", "Mandate",
    "MerchantRuntime", "MppAuth", "NetworkPayment", "PaymentToken", "Quote", "State",
]


@dataclass
class CpSession:
    session_id: str
    kind: str  # ENROLLMENT | MANDATE
    agent_id: str
    status: str  # PENDING_IDV | COMPLETED | FAILED
    aplus_session_id: str
    created_at: datetime
    wallet_name: str = ""
    token_id: str | None = None
    mandate_id: str | None = None
    mandate_type: str | None = None
    error: str | None = None
    result_code: str | None = None
    # applyCredential idempotency: key -> (request fingerprint, response)
    applied: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)


@dataclass
class AplusSession:
    session_id: str
    auth_context: str  # ENROLLMENT | MANDATE
    agent_id: str
    cp_session_id: str
    mpp_auth_id: str
    created_at: datetime
    status: str = "IDV_SESSION_CREATED"  # -> COMPLETED | FAILED
    token_id: str | None = None
    mandate_id: str | None = None  # allocated up front so L2 signs the operational id
    mandate_type: str | None = None
    intent_raw: str = ""
    expiry: datetime | None = None
    budget: Money | None = None
    merchant_names: list[str] = field(default_factory=list)
    merchant_mccs: list[str] = field(default_factory=list)
    checkout: dict[str, Any] | None = None  # chain shape, IMMEDIATE only


@dataclass
class MppAuth:
    auth_id: str
    aplus_session_id: str
    context: str
    status: str = "AUTH_IN_PROCESS"  # -> SUCCESS | FAILED
    idv_result: str | None = None
    idv_time: datetime | None = None


@dataclass
class BindingToken:
    """The Alipay+ Token of a wallet binding, with the L1 that endorses it."""

    token_id: str
    agent_id: str
    l1: str
    wallet_name: str
    user_login_id: str
    created_at: datetime
    expires_at: datetime
    status: str = "ACTIVE"


@dataclass
class Mandate:
    mandate_id: str
    mandate_type: str  # IMMEDIATE | AUTONOMOUS
    status: str  # ACTIVE | REVOKED | EXPIRED | CLOSED
    token_id: str
    agent_id: str
    cp_session_id: str
    aplus_session_id: str
    intent_raw: str
    expiry: datetime
    total: Money
    budget_wallet: Money  # the budget in wallet currency, for the daily delegation limit
    reserved: Money
    spent: Money
    refunded: Money
    l2: str
    created_at: datetime
    merchant_names: list[str] = field(default_factory=list)
    merchant_mccs: list[str] = field(default_factory=list)
    checkout_hash: str | None = None
    checkout: dict[str, Any] | None = None
    closed_at: datetime | None = None
    revoked_at: datetime | None = None
    expired_at: datetime | None = None
    status_reason: str | None = None
    payment_ids: list[str] = field(default_factory=list)
    token_count: int = 0

    @property
    def used(self) -> Money:
        return self.reserved + self.spent - self.refunded

    @property
    def remaining(self) -> Money:
        return self.total - self.used


@dataclass
class PaymentToken:
    token: str
    mandate_id: str
    agent_id: str
    checkout: dict[str, Any]  # chain shape, with reference_checkout_id when the agent gave it
    amount: Money  # merchant currency, as bound at issuance
    mandate_amount: Money  # reserved from the mandate (mandate currency, rounded up)
    rate: Decimal
    issued_at: datetime
    expires_at: datetime
    status: str = "ISSUED"  # -> USED | FAILED | EXPIRED
    l3: str | None = None
    payment_id: str | None = None
    status_reason: str | None = None
    # The debit rate (checkout -> wallet currency) locked at issuance, until `rate_locked_until`:
    # an FX quote's rate and expiry when the agent named a valid one, else the rate of the moment.
    wallet_rate: Decimal = Decimal(1)
    rate_locked_until: datetime | None = None
    fx_quote_id: str | None = None


@dataclass
class NetworkPayment:
    payment_id: str
    payment_request_id: str
    token: str
    mandate_id: str
    checkout_id: str
    merchant_id: str
    amount: Money
    mandate_amount: Money
    wallet_amount: Money
    created_at: datetime
    status: str = "PENDING"  # -> SUCCESS | FAIL
    result_code: str | None = None
    result_message: str | None = None
    refunded: Money | None = None
    refunded_wallet: Money | None = None
    refunded_mandate: Money | None = None
    wallet_rate: Decimal | None = None  # the rate the wallet debit used; None when no conversion


@dataclass
class FxQuote:
    """A rate quoted by ``GET /network/fxRate``; naming it at applyCredential locks it for that token."""

    quote_id: str
    src: str
    dst: str
    rate: Decimal
    quoted_at: datetime
    expires_at: datetime


@dataclass
class AcquirerRecord:
    checkout_id: str
    merchant_id: str
    payment_id: str  # 32 hex: the merchant-facing transactionId
    payment_request_id: str
    status: str = "PENDING"  # -> SUCCESS | FAIL
    network_payment_id: str | None = None
    processed_at: datetime | None = None
    last_response: dict[str, Any] | None = None


@dataclass
class Checkout:
    checkout_id: str
    merchant_id: str
    items: list[dict[str, Any]]  # {productId, quantity, unitPrice}
    total: Money
    created_at: datetime
    expires_at: datetime
    price_versions: dict[str, int]
    quote_id: str | None = None
    status: str = "CREATED"  # -> PENDING | PAID | FAILED | REFUNDED | PARTIALLY_REFUNDED
    transaction_id: str | None = None
    refunded: Money | None = None
    failure: str | None = None
    verified_chain: str | None = None  # fingerprint of the chain already verified for this checkout
    mandate_id: str | None = None
    debited: Money | None = None  # what the wallet was debited (wallet currency), as the network reported it
    debit_rate: Decimal | None = None  # the checkout -> wallet rate of that debit; None when no conversion
    mandate_charge: Money | None = None  # what the network charged the mandate (mandate currency)


@dataclass
class Quote:
    quote_id: str
    merchant_id: str
    items: list[dict[str, Any]]
    list_total: Money
    total: Money
    floor_total: Money
    max_rounds: int
    created_at: datetime
    expires_at: datetime
    price_versions: dict[str, int]
    round: int = 0
    status: str = "OPEN"  # -> ACCEPTED | REJECTED | EXPIRED
    last_offer: Money | None = None
    message: str = "List price; you may counter-offer."
    checkout_id: str | None = None


@dataclass
class MerchantRuntime:
    seed: MerchantSeed
    products: dict[str, ProductSeed]
    price_versions: dict[str, int]
    checkouts: dict[str, Checkout] = field(default_factory=dict)
    quotes: dict[str, Quote] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class State:
    """All records of one sandbox."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    cp_sessions: dict[str, CpSession] = field(default_factory=dict)
    aplus_sessions: dict[str, AplusSession] = field(default_factory=dict)
    mpp_auths: dict[str, MppAuth] = field(default_factory=dict)
    idv_due: dict[str, datetime] = field(default_factory=dict)  # A+ session id -> when it is approved (sandbox clock)
    binding_tokens: dict[str, BindingToken] = field(default_factory=dict)
    mandates: dict[str, Mandate] = field(default_factory=dict)
    payment_tokens: dict[str, PaymentToken] = field(default_factory=dict)
    payments: dict[str, NetworkPayment] = field(default_factory=dict)  # by payment id
    payments_by_request: dict[str, str] = field(default_factory=dict)  # paymentRequestId -> payment id
    mpp_debits: dict[str, dict[str, Any]] = field(default_factory=dict)  # payment token -> debit outcome
    acquirer: dict[str, AcquirerRecord] = field(default_factory=dict)  # by checkout id
    fx_quotes: dict[str, FxQuote] = field(default_factory=dict)  # by quote id
    merchants: dict[str, MerchantRuntime] = field(default_factory=dict)

    @property
    def orders(self) -> dict[str, Checkout]:
        """Every merchant's checkouts (orders) by checkout id."""
        out: dict[str, Checkout] = {}
        for m in self.merchants.values():
            out.update(m.checkouts)
        return out


@dataclass
class Context:
    """What every role service shares."""

    config: SandboxConfig
    clock: Clock
    ids: IdFactory
    fx: FxTable
    faults: Faults
    state: State
    aplus_key: AgentKey
    isp_key: AgentKey
    idv_mode: IdvMode
    per_task_limit: Money | None
    daily_limit: Money | None

    def now(self) -> datetime:
        return self.clock.now()
