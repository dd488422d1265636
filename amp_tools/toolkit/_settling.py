"""Asking the AMP side what happened to a payment, for `order_status` and start-up recovery.

The toolkit's half of recovery (`amp_tools.payments.recovery` decides what to do with the
answer): the merchant's order status where it offers that extension; otherwise a replay of the
idempotent ``startPayment`` for the checkout with the sealed payment token, which for a paid
checkout returns the original transaction id (amp-reference-wire.md 3.6). No answer is a guess:
the payment then stays reserved for a person.
"""

from __future__ import annotations

from typing import Any

from amp_tools.amp.models import OrderStatus, PaymentResult
from amp_tools.amp.sealed import sealed_key
from amp_tools.amp.secret import Secret
from amp_tools.errors import AmpError, ConfigError
from amp_tools.ledger import Entry
from amp_tools.money import Money
from amp_tools.payments import ReconcileReport, Resolution, settle, settle_abandoned
from amp_tools.toolkit._core import ToolkitCore
from amp_tools.toolkit.legs import count_legs
from amp_tools.untrusted import clean_text

__all__ = ["ask_counterparty", "settle_budget", "settle_entry"]

_PAID = ("PAID", "REFUNDED", "PARTIALLY_REFUNDED")
_NOT_PAID = ("FAILED", "CREATED")


#: Refusals a merchant gives only for a checkout it has not paid: from a merchant that answers a paid
#: checkout's replay with the original transaction first (idempotent per checkout), they prove "not paid".
#: Token, chain and network errors are not here: a merchant may check those before it looks for a payment.
BUSINESS_REFUSALS = frozenset({"INSUFFICIENT_STOCK", "PRODUCT_NOT_FOUND", "PRICE_CHANGED", "CHECKOUT_EXPIRED",
                               "CHECKOUT_NOT_FOUND", "MERCHANT_DECLINED"})


async def ask_counterparty(tk: ToolkitCore, entry: Entry) -> Resolution:
    try:
        info = await tk.merchant(entry.merchant_id)
        base = tk.merchant_base(info)
    except AmpError as exc:
        return Resolution("unknown", reason=f"the merchant cannot be reached ({exc.code})")
    try:
        status = await tk.client.order_status(base, entry.checkout_id)
    except AmpError as exc:
        if exc.code == "CHECKOUT_NOT_FOUND":
            return Resolution("released", reason="the merchant has no such order")
        if exc.code != "NOT_FOUND":
            return Resolution("unknown", reason=f"order status: {exc.code}: {exc.message}")
        return await _replay(tk, entry, base, idempotent=info.idempotent_per_checkout)  # ask the AMP way
    if status.status in _PAID:
        debited, legs = _counted(tk, entry, status)
        return Resolution("committed", external_ref=status.transaction_id, debited=debited,
                          outcome={"merchant_status": status.status, "legs": legs})
    if status.status in _NOT_PAID:
        return Resolution("released", reason=f"the merchant reports {status.status}")
    return Resolution("unknown", reason=f"the merchant reports {status.status}")


async def _replay(tk: ToolkitCore, entry: Entry, base: str, *, idempotent: bool = False) -> Resolution:
    if not entry.resume:
        return Resolution("unknown", reason="the merchant has no order status and no payment token was kept to ask "
                                            "again; a person must check")
    try:
        kept = tk.sealer.open(entry.resume, purpose=f"payment:{entry.idempotency_key}")
    except ConfigError as exc:
        sealed_with = sealed_key(entry.resume)
        if sealed_with and sealed_with != tk.agent_key.thumbprint():
            return Resolution("unknown", reason=f"sealed with key {sealed_with}, this process has "
                                                f"{tk.agent_key.thumbprint()}: run recovery with the agent key that "
                                                "sent the payment (its key file), or a person must check")
        return Resolution("unknown", reason=exc.message)
    token = kept.get("payment_token")
    if not isinstance(token, Secret):
        return Resolution("unknown", reason="the kept payment record is incomplete; a person must check")

    def secret(name: str) -> Secret | None:
        value = kept.get(name)
        return value if isinstance(value, Secret) else None

    try:
        paid = await tk.client.start_payment(str(kept.get("merchant_base") or base), entry.checkout_id, token,
                                             l1=secret("l1"), l2=secret("l2"), l3=secret("l3"),
                                             idempotency_key=entry.idempotency_key)
    except AmpError as exc:
        answer = f"{exc.code}: {clean_text(exc.message, 300)}"
        if idempotent and exc.code in BUSINESS_REFUSALS:
            # The merchant looks for an existing payment of the checkout before anything else; it found none.
            return Resolution("released", reason=f"replayed startPayment refused by a merchant idempotent per "
                                                 f"checkout ({answer}): the checkout was never paid")
        return Resolution("unknown", reason=f"asking the merchant again failed ({answer}); a person must check")
    debited, legs = _counted(tk, entry, paid)
    return Resolution("committed", external_ref=paid.transaction_id, debited=debited,
                      outcome={"settled_by": "startPayment replay",
                               "idempotent": paid.idempotent, "legs": legs})


def _counted(tk: ToolkitCore, entry: Entry, answer: OrderStatus | PaymentResult) -> tuple[Money, dict[str, Any]]:
    """What counts for a payment settled after the fact: the network's figures, else what was held at the
    quote locked for it (the entry's rate), never a rate of today."""
    held = entry.reserved or entry.budget_amount
    legs = count_legs(held.currency, entry.amount, held, mandate_charge=answer.mandate_amount,
                      wallet_debit=answer.debited_amount, locked_rate=answer.fx_rate, budget_rate=entry.fx_rate)
    return legs.budget, legs.to_public()


async def settle_entry(tk: ToolkitCore, entry: Entry) -> tuple[Entry, str | None]:
    """Settle a checkout's held payment if no live process works on it: the entry after, and a sentence
    for the model (None when there was nothing to settle)."""
    if entry.status != "reserved":
        return entry, None
    result = await settle(tk.guard.lifecycle, entry, lambda e: ask_counterparty(tk, e))
    after = await tk.ledger.get(entry.id)
    ck = tk.state.checkouts.get(entry.checkout_id)
    if result == "committed" and ck is not None:
        ck.entry_id, ck.transaction_id = after.id, after.external_ref
    return after, _SETTLED.get(result)


_SETTLED = {
    "committed": "the payment went through; the ledger now records it as paid",
    "released": "the payment did not go through; the reserved amount was released",
    "in_flight": "the payment is still being processed; the amount stays reserved",
    "unknown": "the merchant could not say whether the payment went through; the amount stays reserved until a "
               "person resolves it",
}


async def settle_budget(tk: ToolkitCore, budget_id: str | None = None) -> ReconcileReport:
    """Settle the abandoned payments of one budget (the toolkit's own by default), asking the AMP side."""
    return await settle_abandoned(tk.guard.lifecycle, lambda e: ask_counterparty(tk, e),
                                  budget_id=budget_id or tk.budget_id)
