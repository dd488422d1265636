"""The money tools: wallet binding, mandates, pay and refund, all through the Guard.

Delegated (human-not-present) payments run under an AUTONOMOUS mandate: the agent signs an
L3 for each checkout. Anything else is human-present: an IMMEDIATE mandate bound to the one
checkout, which the person confirms in their wallet (the wallet is their trusted surface; the
model never can). Either way the Guard reserves the budget before any request leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic import Field

from amp_tools.amp.chain import bound_agent_jwk, build_l3
from amp_tools.amp.keys import public_jwk_equal, public_key_from_jwk
from amp_tools.amp.models import (
    ApplyCredentialResult,
    Constraints,
    CpCheckout,
    MandateSession,
    PaymentMethodList,
    PaymentResult,
)
from amp_tools.amp.scope import merchant_gaps, scope_gaps
from amp_tools.amp.secret import Secret
from amp_tools.clock import sleep, utc
from amp_tools.errors import AmpError, ConfigError, InvalidArguments, NotFound, PolicyViolation, ToolError
from amp_tools.ledger import Entry
from amp_tools.money import AMOUNT_PATTERN, Money
from amp_tools.payments import ExecutionOutcome, PaymentHandle
from amp_tools.payments.keys import payment_key
from amp_tools.policy import SpendIntent
from amp_tools.policy.mandate import mandate_terms
from amp_tools.toolkit._args import ID_PATTERN, MerchantId, NetworkText, ToolArgs
from amp_tools.toolkit._core import ToolkitCore, WalletAction, parse_amount
from amp_tools.toolkit._mandates import refresh_mandate
from amp_tools.toolkit._outputs import MANDATE, PAYMENT, REFUND
from amp_tools.toolkit._shopping import payable
from amp_tools.toolkit._specs import tool
from amp_tools.toolkit._state import CheckoutRef, MandateRef
from amp_tools.toolkit.legs import Legs, count_legs
from amp_tools.untrusted import clean_text

__all__ = ["PayArgs", "RefundArgs", "RequestMandateArgs", "ensure_wallet", "pay", "refund", "request_mandate"]

T = TypeVar("T")

WALLET_PENDING = "WALLET_CONFIRMATION_REQUIRED"
MANDATE_GAP = "MANDATE_DOES_NOT_COVER"
AGENT_KEY_NOT_BOUND = "AGENT_KEY_NOT_BOUND"


def _wallet_pending(what: str, auth_session_id: str | None) -> ToolError:
    return ToolError(f"{what} is waiting for the user to confirm in their wallet app"
                     + (f" (wallet session {auth_session_id})" if auth_session_id else ""),
                     code=WALLET_PENDING,
                     hint="Ask the user to confirm in their wallet, then call this tool again. You cannot confirm "
                          "for them.")


#: How often a wallet wait asks again, in seconds of the toolkit's clock.
_POLL = 0.25


async def _wallet_wait(tk: ToolkitCore, ask: Callable[[], Awaitable[T]], settled: Callable[[T], bool],
                       wait: float) -> T:
    """The one wait for a person answering in their wallet: `ask()`, and while its answer is not `settled`
    and `wait` seconds have not passed on the toolkit's clock, ask again every 250 ms; the last answer.

    The clock's `sleep` does the waiting, so a test's `ManualClock` moves forward instead of sleeping.
    """
    deadline = tk.clock.now() + timedelta(seconds=wait)
    answer = await ask()
    while not settled(answer) and tk.clock.now() < deadline:
        await sleep(tk.clock, _POLL)
        answer = await ask()
    return answer


def person_wait(tk: ToolkitCore) -> float:
    """How long to wait for a wallet confirmation in progress: only when the person was just asked."""
    return tk.idv_wait if tk.wallet_prompt is not None else 0.0


async def ensure_wallet(tk: ToolkitCore) -> tuple[Secret, Secret]:
    """The Alipay+ token and L1, binding the wallet first if needed (the person confirms it)."""
    wallet = tk.state.wallet
    if wallet.token_id is not None and wallet.l1 is not None:
        return wallet.token_id, wallet.l1
    if wallet.session_id is None:
        started = await tk.client.add_payment_method(tk.wallet_name, agent_id=tk.agent_id)
        wallet.session_id = started.session_id
        wallet.auth_session_id = started.idv.auth_session_id if started.idv else None
        if started.status == "PENDING_IDV" and wallet.auth_session_id:
            await tk.notify_wallet(WalletAction("bind_wallet", wallet.auth_session_id,
                                                f"Link your {tk.wallet_name} wallet to this agent"))
        elif started.status == "FAILED":
            wallet.session_id = None
            raise AmpError("the wallet refused to link to this agent", code="IDV_FAILED",
                           hint="Tell the user the wallet link was declined.")

    async def listed_or_pending() -> PaymentMethodList | None:
        try:
            return await tk.client.query_payment_methods(session_id=wallet.session_id)
        except AmpError as exc:
            if exc.code != "PENDING_IDV":
                raise
            return None

    # The person was just asked in their wallet: give the wallet a moment (bounded) to finish.
    listed = await _wallet_wait(tk, listed_or_pending, lambda answer: answer is not None, person_wait(tk))
    if listed is None or not listed.success or not listed.payment_methods:
        raise _wallet_pending("linking the wallet", wallet.auth_session_id)
    method = listed.payment_methods[0]
    if method.l1_serialized is None:
        raise AmpError("the credential provider returned a wallet without its L1 assurance data",
                       code="BAD_RESPONSE")
    wallet.token_id, wallet.l1 = method.token_id, method.l1_serialized
    return wallet.token_id, wallet.l1


# ---------------------------------------------------------------------- mandates
def _parse_expiry(text: str | None, fallback: datetime | None, now: datetime) -> datetime:
    if text:
        try:
            when = utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            raise InvalidArguments(f"expires_at {text!r} is not an ISO 8601 time such as '2026-12-01T00:00:00Z'"
                                   ) from None
    elif fallback is not None:
        when = fallback
    else:
        raise InvalidArguments("the user has not said until when the agent may pay on their behalf",
                               hint="Ask the user when this authorization should end and pass it as expires_at; "
                                    "never invent an expiry.")
    if when <= now:
        raise InvalidArguments(f"expires_at {when.isoformat()} is not in the future")
    return when


def _confirmed(session: MandateSession) -> bool:
    return session.status == "COMPLETED" and session.l1_serialized is not None and session.l2_serialized is not None


async def _complete_mandate(tk: ToolkitCore, ref: MandateRef, *, wait: float = 0.0) -> MandateRef:
    """Ask the CP where the mandate's confirmation stands; poll every 250 ms for up to `wait` seconds."""
    session = await _wallet_wait(tk, lambda: tk.client.inquiry_mandate_session(ref.session_id),
                                 lambda s: _confirmed(s) or s.status == "FAILED", wait)
    if _confirmed(session):
        assert session.l1_serialized is not None and session.l2_serialized is not None
        ref.mandate_id = session.mandate_id
        if ref.mandate_type == "AUTONOMOUS":
            _check_bound_key(tk, ref, session.l2_serialized.reveal())
        ref.status = "ACTIVE"
        ref.l1, ref.l2 = session.l1_serialized, session.l2_serialized
    elif session.status == "FAILED":
        ref.status = "FAILED"
    return ref


def _check_bound_key(tk: ToolkitCore, ref: MandateRef, l2: str) -> None:
    """The mandate must bind this agent's own key in L2 ``cnf.jwk``, or no L3 it signs will ever be accepted.

    A network that does not know the agent's key (the reference services have no registration) binds
    another one; asking for a new mandate would bind the same wrong key again, so say what fixes it.
    """
    bound = bound_agent_jwk(l2)
    if bound is None or public_jwk_equal(bound, tk.agent_key.public_jwk()):
        return  # an unreadable L2 is refused, before anything is sent, when the payment builds its L3
    try:
        theirs = public_key_from_jwk(bound).thumbprint()
    except ConfigError:
        return  # not a usable key at all: the same unusable-L2 refusal at pay
    ref.status = "FAILED"
    ref.failure = (f"the credential provider bound mandate {ref.mandate_id} to agent key {theirs}, not this agent's "
                   f"key {tk.agent_key.thumbprint()} (kid {tk.agent_key.kid}); do not pay under it")
    raise ToolError(
        f"{ref.failure}: the network does not know this agent's public key, so it would refuse every payment "
        "signed under this mandate", code=AGENT_KEY_NOT_BOUND,
        hint="Tell the user (or the developer) that the agent's public key must be registered with the network "
             "first: print it with `amp-tools agent-key show` and register it for this agent id, then request a "
             "new mandate. Requesting a new mandate before that binds the same wrong key again.")


class RequestMandateArgs(ToolArgs):
    purpose: NetworkText = Field(min_length=3, max_length=300,
                                 description="What the user asked for, in the user's words, e.g. "
                                             "'Book my Singapore trip: flight, hotel and car'.")
    budget: str | None = Field(default=None, pattern=AMOUNT_PATTERN,
                               description="Budget for the mandate in the budget currency; defaults to what the "
                                           "policy has left.")
    expires_at: str | None = Field(default=None, max_length=40,
                                   description="When the user said the authorization ends, ISO 8601 "
                                               "(e.g. '2026-12-01T00:00:00Z'). Required unless the policy sets an "
                                               "expiry; never invent one.")
    merchant_ids: list[MerchantId] | None = Field(default=None, max_length=20,
                                          description="Merchants the mandate may pay; defaults to the policy's "
                                                      "allowed merchants.")


@tool("request_mandate",
      "Ask the user, through their wallet, to authorize the agent to pay on their behalf (a budget, the "
      "merchants, and the expiry the user stated). The user confirms in their wallet app; you cannot.",
      RequestMandateArgs, output=MANDATE)
async def request_mandate(tk: ToolkitCore, args: RequestMandateArgs) -> dict[str, Any]:
    now = tk.clock.now()
    token_id, _ = await ensure_wallet(tk)
    left = await tk.budget_left()
    terms = mandate_terms(tk.policy, left, now,
                          names={mid: info.name for mid, info in tk.state.merchants.items()})
    budget = terms.budget
    if args.budget is not None:
        asked = parse_amount("budget", args.budget, tk.policy.currency, allow_zero=False)
        if asked > budget:
            raise PolicyViolation(f"a mandate of {asked} is more than the policy lets the agent spend ({budget})",
                                  rule="total_budget", hint=f"Ask for at most {budget}.")
        budget = asked
    if not budget.is_positive():
        raise PolicyViolation("no budget is left under the policy for a new mandate", rule="total_budget")
    expiry = _parse_expiry(args.expires_at, terms.expires_at, now)
    names, mccs = list(terms.merchant_names), list(terms.mccs)
    # Scope the mandate as tightly as what the agent will actually buy: the merchants it chose,
    # or the allowed merchants it discovered, rather than every code of a policy's MCC range.
    chosen = ([await tk.merchant(mid) for mid in args.merchant_ids] if args.merchant_ids
              else [m for m in tk.state.merchants.values() if payable(tk, m)])
    if chosen:
        names = [m.name for m in chosen]
        mccs = sorted({m.mcc for m in chosen if m.mcc})
    if not names and not mccs:
        raise InvalidArguments("a mandate must name the merchants or merchant categories it may pay",
                               hint="Call discover_merchants first, or pass merchant_ids.")
    constraints = Constraints(budget_amount={"cent": budget.minor, "currency": budget.currency},
                              merchant_name_list=names, merchant_mcc_list=mccs)
    started = await tk.client.create_mandate_session(token_id, args.purpose, constraints=constraints,
                                                     intent_expire_time=expiry, defer_idv=True,
                                                     agent_id=tk.agent_id)
    if not started.session_id:
        raise AmpError("the credential provider did not open a mandate session", code="BAD_RESPONSE")
    ref = MandateRef(mandate_id=started.mandate_id, session_id=started.session_id, mandate_type="AUTONOMOUS",
                     budget=budget, merchant_names=tuple(names), mccs=tuple(mccs), expires_at=expiry,
                     status="PENDING_IDV", auth_session_id=started.idv.auth_session_id if started.idv else None,
                     spent=Money.zero(budget.currency))
    tk.state.mandates.append(ref)
    if ref.auth_session_id and started.status == "PENDING_IDV":
        await tk.notify_wallet(WalletAction(
            "confirm_mandate", ref.auth_session_id,
            f"Let the agent spend up to {budget} at {', '.join(names or mccs)} until {expiry:%Y-%m-%d %H:%M} UTC"))
    await _complete_mandate(tk, ref, wait=person_wait(tk))
    return mandate_public(ref)


def mandate_public(ref: MandateRef) -> dict[str, Any]:
    out: dict[str, Any] = {"mandate_id": ref.mandate_id or ref.session_id, "type": ref.mandate_type,
                           "status": ref.status, "budget": ref.budget.to_public(),
                           "remaining": ref.remaining.to_public(), "remaining_source": ref.remaining_source,
                           "merchants": list(ref.merchant_names),
                           "mccs": list(ref.mccs),
                           "expires_at": ref.expires_at.isoformat() if ref.expires_at else None}
    if ref.status == "PENDING_IDV":
        out["next"] = "ask the user to confirm this authorization in their wallet, then call mandate_status"
    elif ref.status == "FAILED" and ref.failure:
        out["next"] = ref.failure
    elif ref.status == "FAILED":
        out["next"] = "the user declined or did not confirm in time; do not pay under this mandate"
    return out


def _in_scope(ref: MandateRef, ck: CheckoutRef) -> bool:
    return not merchant_gaps(ref.merchant_names, ref.mccs, ck.merchant_name, ck.mcc)


def _gaps(tk: ToolkitCore, ref: MandateRef, ck: CheckoutRef, budget_amount: Money) -> list[str]:
    return scope_gaps(names=ref.merchant_names, mccs=ref.mccs, remaining=ref.remaining, expires_at=ref.expires_at,
                      merchant_name=ck.merchant_name, mcc=ck.mcc, amount=budget_amount, now=tk.clock.now())


def _covering_mandate(tk: ToolkitCore, ck: CheckoutRef, budget_amount: Money) -> MandateRef | None:
    for ref in reversed(tk.state.mandates):
        if ref.status != "ACTIVE" or ref.mandate_type != "AUTONOMOUS":
            continue
        if not _gaps(tk, ref, ck, budget_amount):
            return ref
    return None


def _mandate_gap(tk: ToolkitCore, ck: CheckoutRef, budget_amount: Money) -> str:
    """Why no AUTONOMOUS mandate of this session covers the checkout, in words."""
    now = tk.clock.now()
    reasons = []
    for ref in tk.state.mandates:
        if ref.mandate_type != "AUTONOMOUS":
            continue
        name = ref.mandate_id or ref.session_id
        if ref.status == "PENDING_IDV":
            reasons.append(f"mandate {name} is still waiting for the user's confirmation in their wallet")
        elif ref.status != "ACTIVE" or (ref.expires_at is not None and ref.expires_at <= now):
            reasons.append(f"mandate {name} is {'expired' if ref.status == 'ACTIVE' else ref.status.lower()}")
        else:
            gaps = _gaps(tk, ref, ck, budget_amount)
            if gaps:
                reasons.append(f"mandate {name}: {'; '.join(gaps)}")
    return "; ".join(reasons) or "no mandate was requested"


async def _refresh_pending(tk: ToolkitCore, ck: CheckoutRef) -> None:
    """A mandate the wallet is still confirming (the reference completes it ~0.5 s later) is awaited,
    for at most `idv_wait` seconds, before the payment chooses how to pay."""
    pending = [m for m in tk.state.mandates
               if m.status == "PENDING_IDV" and m.mandate_type == "AUTONOMOUS" and _in_scope(m, ck)]
    for ref in pending:
        await _complete_mandate(tk, ref, wait=tk.idv_wait)


# ---------------------------------------------------------------------- pay
def _cp_checkout(ck: CheckoutRef) -> CpCheckout:
    return CpCheckout.build(ck.amount, merchant_id=ck.merchant_id, merchant_name=ck.merchant_name,
                            merchant_mcc=ck.mcc)




def _seal_resume(tk: ToolkitCore, key: str, base: str, ck: CheckoutRef, token: Secret, **chain: Secret | None) -> str:
    """What recovery needs to replay the idempotent startPayment for this checkout, sealed with the agent key."""
    values: dict[str, Any] = {"merchant_base": base, "checkout_id": ck.checkout_id, "payment_token": token}
    values.update({k: v for k, v in chain.items() if v is not None})
    return tk.sealer.seal(values, purpose=f"payment:{key}")


def _legs(tk: ToolkitCore, ck: CheckoutRef, held: Money, issued: ApplyCredentialResult, paid: PaymentResult,
          budget_rate: Decimal | None, budget_quote_id: str | None) -> Legs:
    """This payment's legs from the network's answers (the token's rate lock, the charge and the debit)."""
    return count_legs(tk.policy.currency, ck.amount, held, mandate_charge=paid.mandate_amount,
                      wallet_debit=paid.debited_amount, locked_rate=paid.fx_rate or issued.fx_rate,
                      quote_id=clean_text(issued.fx_quote_id, 80) if issued.fx_quote_id else None,
                      budget_rate=budget_rate,
                      budget_quote_id=clean_text(budget_quote_id, 80) if budget_quote_id else None)


async def _charge(tk: ToolkitCore, ck: CheckoutRef, cp_checkout: CpCheckout, key: str, handle: PaymentHandle,
                  fx_quote_id: str | None, budget_amount: Money, budget_rate: Decimal | None, *, session_id: str,
                  mandate_type: Literal["AUTONOMOUS", "IMMEDIATE"], l1: Secret, l2: Secret, l3: Secret | None = None,
                  mandate: MandateRef | None = None) -> tuple[PaymentResult, Legs]:
    """The tail both ways of paying share: a payment token for the checkout under the mandate's chain, the
    resume data sealed for recovery, then the charge at the merchant; the payment and its legs.

    Under an AUTONOMOUS `mandate` the issued token counts against it at once, and a refused charge
    re-reads its budget from the credential provider.
    """
    issued = await tk.client.apply_credential(session_id, l1=l1, l2=l2, l3=l3, checkout=cp_checkout,
                                              mandate_type=mandate_type, fx_quote_id=fx_quote_id)
    if not issued.payment_token:
        raise AmpError("the network issued no payment token", code="BAD_RESPONSE")
    if mandate is not None:
        # Local fallback, counted as the reference counts it: an issued token consumes the mandate's budget
        # whether or not it is used. A CP that reports the budget replaces this figure (refresh_mandate).
        mandate.spent = (mandate.spent or Money.zero(mandate.budget.currency)) + budget_amount
    base = tk.merchant_base(await tk.merchant(ck.merchant_id))
    await handle.sending(_seal_resume(tk, key, base, ck, issued.payment_token, l1=l1, l2=l2, l3=l3))
    try:
        paid = await tk.client.start_payment(base, ck.checkout_id, issued.payment_token,
                                             l1=l1, l2=l2, l3=l3, idempotency_key=key)
    except AmpError:
        if mandate is not None:
            await refresh_mandate(tk, mandate)
        raise
    return paid, _legs(tk, ck, budget_amount, issued, paid, budget_rate, fx_quote_id)


async def _pay_delegated(tk: ToolkitCore, ck: CheckoutRef, mandate: MandateRef, key: str, budget_amount: Money,
                         handle: PaymentHandle, fx_quote_id: str | None, budget_rate: Decimal | None,
                         refreshes: list[asyncio.Task[MandateRef]]) -> ExecutionOutcome:
    """Pay under the AUTONOMOUS `mandate`. The mandate's figures are asked of the credential provider after
    the charge; that question is started and appended to `refreshes`, so it runs while the ledger records
    the payment (the figures describe the mandate, not the payment: the reply carries them, the ledger's
    outcome does not)."""
    assert mandate.l1 is not None and mandate.l2 is not None
    cp_checkout = _cp_checkout(ck)
    try:
        l3 = Secret(build_l3(mandate.l2.reveal(), cp_checkout.to_chain(ck.checkout_id), tk.agent_key, aud=tk.aud,
                             now=tk.clock.now()))
    except ValueError as exc:
        # The CP handed back an L2 we cannot sign under; nothing has been sent, so this is a
        # definite failure (the Guard releases the reservation), not an unknown outcome.
        mandate.status = "FAILED"
        hint = ("Register the agent's public key with the network (print it with `amp-tools agent-key show`), "
                "then request a new mandate." if "cnf.jwk" in str(exc)
                else "Request a new mandate with request_mandate.")
        raise AmpError(f"the mandate's L2 from the credential provider is unusable ({exc})", code="CHAIN_INVALID",
                       hint=hint) from None
    before = mandate.spent or Money.zero(mandate.budget.currency)
    paid, legs = await _charge(tk, ck, cp_checkout, key, handle, fx_quote_id, budget_amount, budget_rate,
                               session_id=mandate.session_id, mandate_type="AUTONOMOUS", l1=mandate.l1,
                               l2=mandate.l2, l3=l3, mandate=mandate)
    charge = legs.mandate_charge if legs.mandate_charge is not None and \
        legs.mandate_charge.currency == mandate.budget.currency else legs.budget
    mandate.spent = before + charge
    refreshes.append(asyncio.ensure_future(refresh_mandate(tk, mandate)))
    return ExecutionOutcome(external_ref=paid.transaction_id or "", debited=legs.budget,
                            detail={"mode": "delegated", "mandate_id": mandate.mandate_id, "legs": legs.to_public()})


def _mandate_figures(mandate: MandateRef) -> dict[str, Any]:
    return {"mandate_remaining": mandate.remaining.to_public(), "mandate_remaining_source": mandate.remaining_source}


async def _settle(refreshes: list[asyncio.Task[MandateRef]], *, cancel: bool) -> None:
    """Wait for the mandate refreshes started by a payment (`cancel`: the payment itself was cancelled, so
    are they). A refresh never raises: it keeps the local figures when the credential provider fails."""
    for task in refreshes:
        if not cancel:
            await task
            continue
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _pay_present(tk: ToolkitCore, ck: CheckoutRef, key: str, handle: PaymentHandle, fx_quote_id: str | None,
                       budget_amount: Money, budget_rate: Decimal | None = None) -> ExecutionOutcome:
    token_id, _ = await ensure_wallet(tk)
    cp_checkout = _cp_checkout(ck)
    if ck.immediate_session is None:
        started = await tk.client.create_mandate_session(token_id, f"Buy {ck.items[0].name} from {ck.merchant_name}",
                                                         checkout=cp_checkout, defer_idv=True, agent_id=tk.agent_id)
        ck.immediate_session = started.session_id
        ck.immediate_auth_session = started.idv.auth_session_id if started.idv else None
        if started.status == "PENDING_IDV" and ck.immediate_auth_session:
            await tk.notify_wallet(WalletAction("confirm_purchase", ck.immediate_auth_session,
                                                f"Pay {ck.amount} to {ck.merchant_name} for {ck.items[0].name}"))
    assert ck.immediate_session is not None
    immediate = ck.immediate_session
    # The person is confirming right now (the wallet prompt returned): give the wallet a moment.
    session = await _wallet_wait(tk, lambda: tk.client.inquiry_mandate_session(immediate),
                                 lambda s: s.status != "PENDING_IDV", person_wait(tk))
    if session.status == "FAILED":
        ck.immediate_session = None
        raise AmpError("the user declined the purchase in their wallet", code="IDV_FAILED",
                       hint="Do not retry; tell the user the purchase was not confirmed.")
    if session.status != "COMPLETED" or session.l1_serialized is None or session.l2_serialized is None:
        raise _wallet_pending(f"the purchase of {ck.amount} from {ck.merchant_name}", ck.immediate_auth_session)
    paid, legs = await _charge(tk, ck, cp_checkout, key, handle, fx_quote_id, budget_amount, budget_rate,
                               session_id=immediate, mandate_type="IMMEDIATE", l1=session.l1_serialized,
                               l2=session.l2_serialized)
    return ExecutionOutcome(external_ref=paid.transaction_id or "", debited=legs.budget,
                            detail={"mode": "human_present", "mandate_id": session.mandate_id,
                                    "legs": legs.to_public()})


class PayArgs(ToolArgs):
    checkout_id: str = Field(pattern=ID_PATTERN, description="The checkout_id returned by checkout or accept_quote.")
    mode: Literal["auto", "delegated", "human_present"] = Field(
        default="auto",
        description="auto: under the user's mandate when one was requested, else the user confirms this purchase "
                    "in their wallet. human_present: the user confirms this one purchase in their wallet. "
                    "delegated: only under a mandate.")


@tool("pay",
      "Pay a checkout. The budget policy is enforced, a person is asked when the policy requires it, and "
      "calling pay again for the same checkout never pays twice.",
      PayArgs, output=PAYMENT, moves_money=True)
async def pay(tk: ToolkitCore, args: PayArgs) -> dict[str, Any]:
    ck = tk.state.checkouts.get(args.checkout_id)
    if ck is None:
        raise NotFound(f"checkout {args.checkout_id!r} is unknown",
                       hint="Use a checkout_id returned by checkout or accept_quote.")
    async with tk.lock(f"checkout:{ck.checkout_id}"):
        # A read for the reply only: the Guard's check answers a checkout paid here or anywhere before any
        # quote or mandate is looked at; its reserve is what keeps a payment from running twice.
        paid = tk.guard.already_paid(await tk.checkout_entry(ck.merchant_id, ck.checkout_id, ck.amount))
        if paid is not None:
            return _paid_result(ck, paid)
        # A fresh quote: the payment reserves at the rate whose quote id locks the charge.
        budget_amount, quote = await tk.budget_quote(ck.amount, fresh=True)
        rate, fx_quote_id = (None, None) if quote is None else (quote.rate, quote.quote_id)
        await _refresh_pending(tk, ck)
        mandate = _covering_mandate(tk, ck, budget_amount)
        autonomous = [m for m in tk.state.mandates if m.mandate_type == "AUTONOMOUS"
                      and m.status in ("ACTIVE", "PENDING_IDV")]
        if args.mode == "human_present":
            mandate = None
        elif mandate is None and (args.mode == "delegated" or autonomous):
            gap = _mandate_gap(tk, ck, budget_amount)
            raise ToolError(
                f"no mandate covers paying {ck.amount} to {ck.merchant_name} (MCC {ck.mcc or 'none'}): {gap}",
                code=MANDATE_GAP,
                hint=f"What differs: {gap}. Nothing was reserved or sent. Ask the user for a new authorization "
                     "that covers it with request_mandate, or call pay with mode='human_present' so the user "
                     "confirms this one purchase in their wallet.")
        intent = SpendIntent(action="pay", merchant_id=ck.merchant_id, merchant_name=ck.merchant_name,
                             mcc=ck.mcc or None, amount=ck.amount, budget_amount=budget_amount, fx_rate=rate,
                             items=ck.items, human_present=mandate is None, checkout_id=ck.checkout_id,
                             at=tk.clock.now())
        key = payment_key(intent)

        refreshes: list[asyncio.Task[MandateRef]] = []

        async def execute(handle: PaymentHandle) -> ExecutionOutcome:
            if mandate is not None:
                return await _pay_delegated(tk, ck, mandate, key, budget_amount, handle, fx_quote_id, rate,
                                            refreshes)
            return await _pay_present(tk, ck, key, handle, fx_quote_id, budget_amount, rate)

        try:
            result = await tk.guard.pay(intent, execute, run_id=tk.run_id)
        except asyncio.CancelledError:
            await _settle(refreshes, cancel=True)
            raise
        except BaseException:
            await _settle(refreshes, cancel=False)
            raise
        await _settle(refreshes, cancel=False)
        out = _paid_result(ck, result)
        if mandate is not None and refreshes:
            out.update(_mandate_figures(mandate))
        return out


def _paid_result(ck: CheckoutRef, result: Any) -> dict[str, Any]:
    ck.entry_id, ck.transaction_id = result.entry_id, result.external_ref
    ck.mode = str(result.detail.get("mode", ck.mode or ""))
    out: dict[str, Any] = result.to_public()
    out["checkout_id"] = ck.checkout_id
    out["merchant"] = ck.merchant_name
    return out


# ---------------------------------------------------------------------- refund
class RefundArgs(ToolArgs):
    checkout_id: str = Field(pattern=ID_PATTERN, description="The checkout_id of a paid order.")
    amount: str | None = Field(default=None, pattern=AMOUNT_PATTERN,
                               description="Amount to refund in the order's currency; defaults to the full amount.")
    reason: NetworkText = Field(default="", max_length=200, description="Why the refund is requested.")


@tool("refund",
      "Ask the merchant to refund a paid order, in full or in part; refunded money returns to the budget.",
      RefundArgs, output=REFUND, moves_money=True)
async def refund(tk: ToolkitCore, args: RefundArgs) -> dict[str, Any]:
    ck = tk.state.checkouts.get(args.checkout_id)
    if ck is None or ck.entry_id is None:
        raise NotFound(f"there is no paid order for checkout {args.checkout_id!r}")
    amount = parse_amount("amount", args.amount, ck.amount.currency, allow_zero=False) if args.amount else ck.amount
    info = await tk.merchant(ck.merchant_id)

    async def execute(entry: Entry) -> ExecutionOutcome:  # the paid entry, as the Guard checked it
        done = await tk.client.refund(tk.merchant_base(info), ck.checkout_id, amount, args.reason,
                                      idempotency_key=f"refund:{ck.checkout_id}:{entry.refunded.minor}:{amount.minor}")
        return ExecutionOutcome(external_ref=done.refund_id or "", detail={"status": done.status})

    async with tk.lock(f"checkout:{ck.checkout_id}"):
        outcome = await tk.guard.refund(ck.entry_id, amount, execute, merchant_name=ck.merchant_name,
                                        reason=args.reason)
    after = await tk.ledger.get(ck.entry_id)
    return {"status": "refunded", "checkout_id": ck.checkout_id, "refund_id": outcome.external_ref,
            "amount": amount.to_public(), "total_refunded": after.refunded.to_public()}
