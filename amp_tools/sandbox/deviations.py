"""The reference services' security deviations, as switches a sandbox can turn on.

amp-reference-wire.md sections 9 and 11 list the eleven things the AMP reference services
accept although the spec forbids it (each confirmed by a wrong request and a correct control).
The sandbox enforces the spec; a sandbox built with
``SandboxConfig.with_reference_deviations()`` (or some of these names in
``SandboxConfig.deviations``) behaves like the reference in exactly these places, so a
conformance checker can be shown to catch each of them.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AUTONOMOUS_WITHOUT_L3",
    "BUDGET_NOT_RELEASED",
    "CHECKOUT_UNBOUND",
    "L3_CHECKOUT_UNCHECKED",
    "L3_KID_UNCHECKED",
    "L3_NONCE_REPLAY",
    "MERCHANT_CHAIN_UNCHECKED",
    "MERCHANT_UNCHECKED",
    "REFERENCE_DEVIATIONS",
    "REFUSAL_INVISIBLE",
    "TOKENS_LISTED_TO_ALL",
    "TOKEN_AMOUNT_UNBOUND",
    "check_deviations",
]

#: applyCredential issues a token for an AUTONOMOUS mandate with no L3 (no agent signature).
AUTONOMOUS_WITHOUT_L3 = "autonomous_without_l3"
#: L3's header ``kid`` is not compared with L2 ``cnf.jwk.kid`` (the signature is still checked).
L3_KID_UNCHECKED = "l3_kid_unchecked"
#: Nothing compares the payment amount with the amount the token was issued for.
TOKEN_AMOUNT_UNBOUND = "token_amount_unbound"
#: The checkout's merchant name and MCC are the agent's word: never checked against the registry.
MERCHANT_UNCHECKED = "merchant_unchecked"
#: queryPaymentMethodList without an enrollment session lists every agent's wallet bindings.
TOKENS_LISTED_TO_ALL = "tokens_listed_to_all"
#: A failed payment or an unused expired token keeps the budget it reserved.
BUDGET_NOT_RELEASED = "budget_not_released"

#: The same L3 (same nonce) presented again to applyCredential gets a second payment token.
L3_NONCE_REPLAY = "l3_nonce_replay"
#: The checkout L3 signs is not compared with the request's checkout (the request's is used).
L3_CHECKOUT_UNCHECKED = "l3_checkout_unchecked"
#: A token whose L3 names checkout C1 pays checkout C2 (same merchant, same amount) at the wallet (S3).
CHECKOUT_UNBOUND = "checkout_unbound"
#: A mandate the wallet refuses at S1 is never reported: the CP session stays PENDING_IDV.
REFUSAL_INVISIBLE = "refusal_invisible"
#: The merchant pays ``{checkoutId, paymentToken}`` without L1/L2/L3 (whatever `require_chain` says).
MERCHANT_CHAIN_UNCHECKED = "merchant_chain_unchecked"

REFERENCE_DEVIATIONS: frozenset[str] = frozenset({
    AUTONOMOUS_WITHOUT_L3, L3_KID_UNCHECKED, TOKEN_AMOUNT_UNBOUND, MERCHANT_UNCHECKED, TOKENS_LISTED_TO_ALL,
    BUDGET_NOT_RELEASED, L3_NONCE_REPLAY, L3_CHECKOUT_UNCHECKED, CHECKOUT_UNBOUND, REFUSAL_INVISIBLE,
    MERCHANT_CHAIN_UNCHECKED,
})


def check_deviations(names: Iterable[str]) -> frozenset[str]:
    """The names as a frozenset; an unknown name is a `ValueError` listing the known ones."""
    given = frozenset(names)
    unknown = sorted(given - REFERENCE_DEVIATIONS)
    if unknown:
        raise ValueError(f"unknown sandbox deviation(s) {', '.join(unknown)}; "
                         f"expected some of {', '.join(sorted(REFERENCE_DEVIATIONS))}")
    return given
