"""Wire models of the CP and merchant contracts, plus the sandbox's extension shapes.

camelCase on the wire (aliases), snake_case in Python (`populate_by_name`). Response models
ignore extra fields and accept the CP's envelope where every absent field is ``null``
(amp-reference-wire.md 3). Secret fields (`tokenId`, `l1Serialized`, `l2Serialized`,
`paymentToken`) are `Secret`s, so a result's repr and JSON dump never show them.

Text a merchant writes (names, descriptions, categories, messages) is cleaned here, where it
enters (`amp_tools.untrusted`): control and bidi characters removed, length bounded. Names and
MCCs that are signed back into a checkout or a mandate scope stay exact underneath (`WireText`);
`CpMerchant` and `Constraints` send those exact characters. Identifiers must be printable and
at most 200 characters, or the response is refused as malformed.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from amp_tools.amp.secret import Secret
from amp_tools.errors import MoneyError
from amp_tools.money import Money, normalize_currency, parse_rate
from amp_tools.untrusted import WireText, clean_text, exact

__all__ = [
    "AddPaymentMethodResult",
    "ApplyCredentialResult",
    "CentAmount",
    "Checkout",
    "CheckoutItem",
    "Constraints",
    "CpCheckout",
    "CpMerchant",
    "FxRate",
    "IdvCompletion",
    "IdvInfo",
    "MandateBudget",
    "MandateSession",
    "MandateSessionStatus",
    "MerchantInfo",
    "OrderStatus",
    "PaymentMethod",
    "PaymentMethodList",
    "PaymentResult",
    "Product",
    "Quote",
    "RefundResult",
    "WireModel",
]

_CAMEL = re.compile(r"[A-Z]")
_ID_LIMIT = 200


def _identifier(value: str) -> str:
    if len(value) > _ID_LIMIT or clean_text(value, _ID_LIMIT) != value:
        raise ValueError(f"an identifier must be printable text of at most {_ID_LIMIT} characters")
    return value


# Text from the network: what the model and people see is clean; see the module docstring.
Text = Annotated[str, AfterValidator(clean_text)]
Desc = Annotated[str, AfterValidator(lambda v: clean_text(v, 1000))]
Name = Annotated[str, AfterValidator(WireText)]
Mcc = Annotated[str, AfterValidator(lambda v: WireText(v, 16))]
Id = Annotated[str, AfterValidator(_identifier)]
Tag = Annotated[str, AfterValidator(lambda v: clean_text(v, 40))]
# What we send: the exact characters the merchant gave us.
Exact = Annotated[str, BeforeValidator(lambda v: exact(v) if isinstance(v, str) else v)]


class WireModel(BaseModel):
    """camelCase aliases, by-name population; unknown fields are ignored, not kept.

    Ignoring (rather than keeping) extras means a field a server adds can never carry a
    secret into a result's repr.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        """The camelCase request body (None fields dropped)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="python")


class CentAmount(WireModel):
    """``{cent:int minor units, currency}``, the CP/merchant request spelling."""

    cent: int = Field(strict=True)
    currency: str

    @field_validator("currency")
    @classmethod
    def _cur(cls, v: str) -> str:
        return normalize_currency(v)

    @classmethod
    def of(cls, money: Money) -> CentAmount:
        return cls(cent=money.minor, currency=money.currency)

    @property
    def money(self) -> Money:
        return Money(self.cent, self.currency)


# ----------------------------------------------------------------------------- CP
class IdvInfo(WireModel):
    auth_url: str | None = None
    auth_session_id: str | None = None


class AddPaymentMethodResult(WireModel):
    success: bool = False
    session_id: str | None = None
    status: str | None = None
    token_id: Secret | None = None
    idv: IdvInfo | None = None
    error: str | None = None


class PaymentMethod(WireModel):
    token_id: Secret
    wallet_name: str | None = None
    user_login_id: str | None = None
    l1_serialized: Secret | None = None
    gmt_create: str | None = None


class PaymentMethodList(WireModel):
    success: bool = False
    payment_methods: list[PaymentMethod] = Field(default_factory=list)
    error: str | None = None

    @field_validator("payment_methods", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return [] if v is None else v


class Constraints(WireModel):
    budget_amount: CentAmount
    merchant_name_list: list[Exact] = Field(default_factory=list)
    merchant_mcc_list: list[Exact] = Field(default_factory=list)

    @classmethod
    def build(cls, budget: Money, *, merchant_names: list[str] | None = None,
              merchant_mccs: list[str] | None = None) -> Constraints:
        return cls(budget_amount=CentAmount.of(budget), merchant_name_list=list(merchant_names or []),
                   merchant_mcc_list=list(merchant_mccs or []))


class CpMerchant(WireModel):
    merchant_id: Exact
    merchant_name: Exact
    merchant_mcc: Exact


class CpCheckout(WireModel):
    """The checkout as the CP takes it; `to_chain()` gives the L3 disclosure shape."""

    total_amount: CentAmount
    merchant: CpMerchant
    goods: list[dict[str, Any]] | None = None

    @classmethod
    def build(cls, amount: Money, *, merchant_id: str, merchant_name: str, merchant_mcc: str,
              goods: list[dict[str, Any]] | None = None) -> CpCheckout:
        return cls(total_amount=CentAmount.of(amount),
                   merchant=CpMerchant(merchant_id=merchant_id, merchant_name=merchant_name,
                                       merchant_mcc=merchant_mcc), goods=goods)

    def to_chain(self, checkout_id: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "total_amount": self.total_amount.money.to_chain(),
            "merchant": {"reference_merchant_id": self.merchant.merchant_id,
                         "merchant_name": self.merchant.merchant_name,
                         "merchant_mcc": self.merchant.merchant_mcc},
        }
        if self.goods:
            out["goods"] = self.goods
        if checkout_id:
            out["reference_checkout_id"] = checkout_id
        return out

    def camel_keys_in_goods(self) -> list[str]:
        """Keys in `goods` with an upper-case letter (they break the reference checkout hash)."""
        found: list[str] = []

        def walk(obj: Any) -> None:
            if isinstance(obj, dict):
                for k, v in obj.items():
                    if isinstance(k, str) and _CAMEL.search(k):
                        found.append(k)
                    walk(v)
            elif isinstance(obj, list):
                for v in obj:
                    walk(v)

        walk(self.goods or [])
        return found


class MandateSessionStatus(WireModel):
    """createMandateSession's answer."""

    success: bool = False
    session_id: str | None = None
    status: str | None = None
    mandate_id: str | None = None
    idv: IdvInfo | None = None
    error: str | None = None


class MandateBudget(WireModel):
    """Extension of inquiryMandateSession: the mandate's budget as the network counts it."""

    mandate_status: str | None = None
    total_budget_amount: Money | None = None
    used_amount: Money | None = None
    reserved_amount: Money | None = None
    remaining_amount: Money | None = None

    @field_validator("total_budget_amount", "used_amount", "reserved_amount", "remaining_amount", mode="before")
    @classmethod
    def _money(cls, v: Any) -> Money | None:
        if v is None or isinstance(v, Money):
            return v
        try:
            return Money.from_wire(v)
        except MoneyError as exc:
            raise ValueError(f"{v!r} is not an amount ({exc.message}); expected {{cent, currency}}") from None


class MandateSession(WireModel):
    """inquiryMandateSession's answer; the chain strings are byte-exact Secrets. `budget` is an extension
    (None from the reference): the mandate's remaining budget as the network counts it."""

    success: bool = False
    session_id: str | None = None
    status: str | None = None
    mandate_id: str | None = None
    mandate_type: str | None = None
    token_id: Secret | None = None
    l1_serialized: Secret | None = None
    l2_serialized: Secret | None = None
    error: str | None = None
    budget: MandateBudget | None = None


def _debit(v: Any) -> Money | None:
    """The extension field ``debitedAmount`` (``{cent, currency}``), None when the server does not report it."""
    if v is None or isinstance(v, Money):
        return v
    try:
        money = Money.from_wire(v)
    except MoneyError as exc:
        raise ValueError(f"debitedAmount {v!r} is not an amount ({exc.message}); expected "
                         "{cent: <int minor units>, currency}") from None
    if money.minor < 0:
        raise ValueError(f"debitedAmount {money} is negative; a debit is zero or more")
    return money


def _rate(v: Any) -> Decimal | None:
    """The extension field ``fxRate``: a positive decimal string, None when absent."""
    if v is None or isinstance(v, Decimal):
        return v
    if not isinstance(v, str):
        raise ValueError(f"fxRate {v!r} is not a decimal string such as '0.74000000'")
    try:
        return parse_rate(v)
    except MoneyError as exc:
        raise ValueError(f"fxRate {v!r} is not usable ({exc.message})") from None


class ApplyCredentialResult(WireModel):
    success: bool = False
    payment_token: Secret | None = None
    mandate_type: str | None = None
    error: str | None = None
    fx_quote_id: str | None = None  # extension: the FX quote the network locked for this token, None if none
    fx_rate: Decimal | None = None  # extension: the locked checkout -> wallet debit rate, None without conversion

    @field_validator("fx_rate", mode="before")
    @classmethod
    def _fx(cls, v: Any) -> Decimal | None:
        return _rate(v)


class IdvCompletion(WireModel):
    auth_session_id: str | None = None
    idv_result: str | None = None


# ----------------------------------------------------------------------------- merchant
class Product(WireModel):
    id: Id
    name: Text
    price: int = Field(strict=True, ge=0)
    currency: str
    image_url: str | None = None
    description: Desc | None = None
    category: Tag | None = None
    stock: int | None = None
    merchant_id: Id | None = None
    merchant_name: Name | None = None
    merchant_mcc: Mcc | None = None

    @field_validator("currency")
    @classmethod
    def _cur(cls, v: str) -> str:
        return normalize_currency(v)

    @property
    def price_money(self) -> Money:
        return Money(self.price, self.currency)


class CheckoutItem(WireModel):
    product_id: str
    quantity: int = Field(strict=True)


class Checkout(WireModel):
    checkout_id: Id
    items: list[CheckoutItem] = Field(default_factory=list)
    total_amount: CentAmount
    merchant_id: Id | None = None
    merchant_name: Name | None = None
    merchant_mcc: Mcc | None = None
    expires_at: Tag | None = None

    @property
    def total(self) -> Money:
        return self.total_amount.money


class _Debit(WireModel):
    """What the wallet was debited (wallet currency) and at which rate: sandbox extensions, None from the reference."""

    debited_amount: Money | None = None
    fx_rate: Decimal | None = None
    #: Extension: what the network charged the mandate for this payment (the mandate's currency).
    mandate_amount: Money | None = None

    @field_validator("debited_amount", "mandate_amount", mode="before")
    @classmethod
    def _debited(cls, v: Any) -> Money | None:
        return _debit(v)

    @field_validator("fx_rate", mode="before")
    @classmethod
    def _fx(cls, v: Any) -> Decimal | None:
        return _rate(v)


class PaymentResult(_Debit):
    """startPayment's ``data``; `debited_amount` / `fx_rate` are sandbox extensions (None from the reference)."""

    success: bool = False
    transaction_id: Id | None = None
    message: Text | None = None
    idempotent: bool = False
    status: Tag | None = None

    @field_validator("idempotent", mode="before")
    @classmethod
    def _none_false(cls, v: Any) -> Any:
        return False if v is None else v


# ----------------------------------------------------------------------------- extensions
class MerchantInfo(WireModel):
    merchant_id: Id
    name: Name
    mcc: Mcc | None = None
    categories: list[Tag] = Field(default_factory=list)
    regions: list[Tag] = Field(default_factory=list)
    currencies: list[Tag] = Field(default_factory=list)
    base_url: str | None = None
    description: Desc | None = None
    #: The merchant answers a replayed startPayment for a paid checkout with its original transaction before
    #: checking anything else (amp-reference-wire.md 3.6, 10), so a business refusal to a replay proves the
    #: checkout was never paid. Say so only for a merchant known to behave that way.
    idempotent_per_checkout: bool = False


class Quote(WireModel):
    quote_id: Id
    merchant_id: Id | None = None
    items: list[CheckoutItem] = Field(default_factory=list)
    total_amount: CentAmount
    list_amount: CentAmount | None = None
    expires_at: Tag | None = None
    round: int | None = None
    max_rounds: int | None = None
    status: Tag
    last_offer: CentAmount | None = None
    message: Text | None = None

    @property
    def total(self) -> Money:
        return self.total_amount.money


class OrderStatus(_Debit):
    checkout_id: Id
    status: Tag
    transaction_id: Id | None = None
    amount: CentAmount | None = None
    refunded_amount: CentAmount | None = None


class RefundResult(WireModel):
    refund_id: Id | None = None
    checkout_id: Id | None = None
    status: Tag | None = None
    refunded_amount: CentAmount | None = None


class FxRate(WireModel):
    from_currency: str = Field(alias="from")
    to_currency: str = Field(alias="to")
    rate: Decimal
    quoted_at: str | None = None
    expires_at: str | None = None
    quote_id: str | None = None  # extension: name it in apply_credential(fx_quote_id=...) to lock this rate

    @field_validator("rate", mode="before")
    @classmethod
    def _exact(cls, v: Any) -> Decimal:
        # A JSON number would arrive as a float; take it only as a decimal string.
        return parse_rate(v)
