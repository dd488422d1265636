"""What one agent session remembers between tool calls, none of which the model ever sees raw.

Secrets (the Alipay+ token, L1/L2, mandate sessions) stay here as `Secret`s; tool results
refer to offers, quotes, checkouts and mandates only by their public ids.

`dump_state` / `load_state` turn a session into one JSON document for the ledger's ``sessions``
table, so a session resumes after a restart (a LangGraph thread resumed from its checkpointer
can pay the checkout it was approving, under the same mandate). Every `Secret` in it is sealed
together with the agent key (`amp_tools.amp.sealed`); the rest is public ids and amounts.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from amp_tools.amp.models import MerchantInfo
from amp_tools.amp.sealed import Sealer
from amp_tools.amp.secret import Secret
from amp_tools.errors import ConfigError
from amp_tools.money import Money
from amp_tools.policy import Item

__all__ = ["CheckoutRef", "MandateRef", "OfferRef", "QuoteRef", "SessionState", "WalletBinding", "dump_state",
           "load_state"]


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
    #: What the credential provider last reported as remaining (its inquiry); None: it does not say,
    #: and `remaining` falls back to the local arithmetic (`budget - spent`).
    reported_remaining: Money | None = None
    #: Why a mandate the CP completed cannot be used (e.g. it binds another agent key), for the model.
    failure: str | None = None

    @property
    def remaining(self) -> Money:
        if self.reported_remaining is not None and self.reported_remaining.currency == self.budget.currency:
            return self.reported_remaining
        return self.budget - (self.spent or Money.zero(self.budget.currency))

    @property
    def remaining_source(self) -> str:
        """Where `remaining` comes from: the network's own count, or this toolkit's arithmetic (a fallback)."""
        if self.reported_remaining is not None and self.reported_remaining.currency == self.budget.currency:
            return "credential provider"
        return "local estimate (the credential provider does not report the mandate's budget)"


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


# ------------------------------------------------------------------------------ persistence
_FORMAT = 1


def _encode(value: Any, secrets: list[Secret]) -> Any:
    if isinstance(value, Secret):
        secrets.append(value)
        return {"$secret": len(secrets) - 1}
    if isinstance(value, Money):
        return {"$money": [value.minor, value.currency]}
    if isinstance(value, datetime):
        return {"$time": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, Item):
        return {"$item": [value.product_id, value.name, value.quantity, _encode(value.unit_amount, secrets)]}
    if isinstance(value, MerchantInfo):
        return {"$merchant": value.model_dump(mode="json")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name), secrets) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _encode(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v, secrets) for v in value]
    return value


def _decode(value: Any, secrets: list[Secret]) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, inner), = value.items()
            if tag == "$secret":
                return secrets[int(inner)]
            if tag == "$money":
                return Money(int(inner[0]), str(inner[1]))
            if tag == "$time":
                return datetime.fromisoformat(inner)
            if tag == "$decimal":
                return Decimal(inner)
            if tag == "$item":
                return Item(product_id=inner[0], name=inner[1], quantity=int(inner[2]),
                            unit_amount=_decode(inner[3], secrets))
            if tag == "$merchant":
                return MerchantInfo.model_validate(inner)
        return {k: _decode(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, secrets) for v in value]
    return value


def dump_state(state: SessionState, sealer: Sealer, *, purpose: str) -> str:
    """The session as one JSON document; its secrets sealed together under `purpose`."""
    secrets: list[Secret] = []
    body = _encode(state, secrets)
    sealed = sealer.seal({str(i): s for i, s in enumerate(secrets)}, purpose=purpose) if secrets else None
    return json.dumps({"format": _FORMAT, "state": body, "sealed": sealed}, sort_keys=True, separators=(",", ":"))


def load_state(text: str, sealer: Sealer, *, purpose: str) -> SessionState:
    try:
        doc = json.loads(text)
        if doc.get("format") != _FORMAT:
            raise ConfigError(f"stored session format {doc.get('format')!r} is not {_FORMAT}; upgrade amp-tools")
        opened = sealer.open(doc["sealed"], purpose=purpose) if doc.get("sealed") else {}
        secrets = [opened[str(i)] for i in range(len(opened))]
        body = _decode(doc["state"], secrets)
        return SessionState(
            merchants=dict(body["merchants"]),
            offers={k: OfferRef(**v) for k, v in body["offers"].items()},
            quotes={k: QuoteRef(**{**v, "offer": OfferRef(**v["offer"])}) for k, v in body["quotes"].items()},
            checkouts={k: CheckoutRef(**{**v, "items": tuple(v["items"])}) for k, v in body["checkouts"].items()},
            mandates=[MandateRef(**{**m, "merchant_names": tuple(m["merchant_names"]), "mccs": tuple(m["mccs"])})
                      for m in body["mandates"]],
            wallet=WalletBinding(**body["wallet"]))
    except ConfigError:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ConfigError(f"the stored session cannot be read ({type(exc).__name__}: {exc}); start a new session "
                          "id") from None
