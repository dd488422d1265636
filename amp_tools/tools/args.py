"""The argument models of the tools, as the model sees them in each framework's schema.

Amounts are decimal strings with a pattern, never JSON numbers; identifiers are bounded
strings; nothing here accepts a secret or an approval.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from amp_tools.money import AMOUNT_PATTERN
from amp_tools.untrusted import clean_text

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"
_CURRENCY = r"^[A-Za-z]{3}$"
# A merchant id inside a list: bounded like every other id, so no unbounded text reaches a message.
_MerchantId = Annotated[str, StringConstraints(pattern=_ID)]


def _network_text(value: str) -> str:
    """Model-written text sent to the wallet or a merchant, cleaned like merchant text (no control, bidi or
    zero-width characters, one line); refused if nothing readable is left of a text that had some."""
    cleaned = clean_text(value, 300)
    if value and not cleaned:
        raise ValueError("must contain readable text (control and format characters are removed)")
    return cleaned


#: Model text that reaches the network: `request_mandate.purpose`, `refund.reason`.
_NetworkText = Annotated[str, AfterValidator(_network_text)]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DiscoverMerchantsArgs(_Args):
    query: str = Field(default="", max_length=200,
                       description="Words to match against merchant names and descriptions; empty lists all.")
    category: str | None = Field(default=None, max_length=40,
                                 description="Category such as 'flight', 'hotel' or 'car'.")
    region: str | None = Field(default=None, max_length=40, description="Region or country code such as 'SG'.")


class SearchOffersArgs(_Args):
    query: str = Field(min_length=1, max_length=200, description="What to look for, e.g. 'flight Singapore'.")
    category: str | None = Field(default=None, max_length=40, description="Only offers of this category.")
    merchant_ids: list[_MerchantId] | None = Field(default=None, max_length=20,
                                           description="Only these merchants (ids from discover_merchants).")
    max_price: str | None = Field(default=None, pattern=AMOUNT_PATTERN,
                                  description="Only offers at or below this price in the budget currency, "
                                              "as a decimal string such as '250.00'.")


class RequestQuoteArgs(_Args):
    offer_id: str = Field(pattern=_ID, description="An offer_id from search_offers.")
    quantity: int = Field(default=1, ge=1, le=20, description="How many units (nights, seats, days).")


class NegotiateArgs(_Args):
    quote_id: str = Field(pattern=_ID, description="A quote_id from request_quote.")
    offer_amount: str = Field(pattern=AMOUNT_PATTERN,
                              description="Your counter-offer for the whole quote, in the quote's currency, "
                                          "as a decimal string such as '420.00'.")


class AcceptQuoteArgs(_Args):
    quote_id: str = Field(pattern=_ID, description="The quote_id to accept at its current price.")


class CheckoutArgs(_Args):
    offer_id: str = Field(pattern=_ID, description="An offer_id from search_offers, bought at list price.")
    quantity: int = Field(default=1, ge=1, le=20, description="How many units.")


class PayArgs(_Args):
    checkout_id: str = Field(pattern=_ID, description="The checkout_id returned by checkout or accept_quote.")
    mode: Literal["auto", "delegated", "human_present"] = Field(
        default="auto",
        description="auto: under the user's mandate when one was requested, else the user confirms this purchase "
                    "in their wallet. human_present: the user confirms this one purchase in their wallet. "
                    "delegated: only under a mandate.")


class RequestMandateArgs(_Args):
    purpose: _NetworkText = Field(min_length=3, max_length=300,
                         description="What the user asked for, in the user's words, e.g. "
                                     "'Book my Singapore trip: flight, hotel and car'.")
    budget: str | None = Field(default=None, pattern=AMOUNT_PATTERN,
                               description="Budget for the mandate in the budget currency; defaults to what the "
                                           "policy has left.")
    expires_at: str | None = Field(default=None, max_length=40,
                                   description="When the user said the authorization ends, ISO 8601 "
                                               "(e.g. '2026-12-01T00:00:00Z'). Required unless the policy sets an "
                                               "expiry; never invent one.")
    merchant_ids: list[_MerchantId] | None = Field(default=None, max_length=20,
                                           description="Merchants the mandate may pay; defaults to the policy's "
                                                       "allowed merchants.")


class MandateStatusArgs(_Args):
    mandate_id: str | None = Field(default=None, pattern=_ID,
                                   description="A mandate_id from request_mandate; defaults to the current one.")


class BudgetStatusArgs(_Args):
    pass


class OrderStatusArgs(_Args):
    checkout_id: str = Field(pattern=_ID, description="The checkout_id of the order.")


class RefundArgs(_Args):
    checkout_id: str = Field(pattern=_ID, description="The checkout_id of a paid order.")
    amount: str | None = Field(default=None, pattern=AMOUNT_PATTERN,
                               description="Amount to refund in the order's currency; defaults to the full amount.")
    reason: _NetworkText = Field(default="", max_length=200, description="Why the refund is requested.")
