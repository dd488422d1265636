"""Alipay+: wallet binding (L1), the mandate ledger, S2 at token issuance, payments, refunds.

FX (an extension): ``GET /network/fxRate`` quotes are kept with their rate and expiry. A
payment token locks its debit rate (checkout -> wallet currency) at issuance: the named
quote's rate until the quote expires when the agent passed a valid ``fxQuoteId``, else the
rate of the moment for one quote lifetime. The wallet debits at the locked rate while the
lock holds and at the then current rate after it.

Budget accounting fixes the reference's leak (amp-protocol.md 3.7 [GAP]): issuing a payment
token *reserves* its amount; a captured payment turns the reservation into spend; a
declined payment, an expired unused token or a revoked/expired mandate *releases* it; a
refund credits the mandate back. ``used = reserved + spent - refunded``. Token and mandate
expiry are evaluated lazily against the clock whenever a record is touched (no timers).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn

from amp_tools.amp.chain import ChainError, NonceCache, normalize_checkout, verify_chain
from amp_tools.amp.keys import public_key_from_jwk
from amp_tools.errors import AmpToolsError, CurrencyMismatch
from amp_tools.money import ROUND_UP, Money, normalize_currency
from amp_tools.sandbox import codes as C
from amp_tools.sandbox.canonical import checkout_hash, to_chain_checkout
from amp_tools.sandbox.codes import Refusal, Timeout, UpstreamError
from amp_tools.sandbox.deviations import (
    AUTONOMOUS_WITHOUT_L3,
    BUDGET_NOT_RELEASED,
    L3_CHECKOUT_UNCHECKED,
    L3_KID_UNCHECKED,
    L3_NONCE_REPLAY,
    MERCHANT_UNCHECKED,
)
from amp_tools.sandbox.roles import Roles
from amp_tools.sandbox.state import (
    AplusSession,
    BindingToken,
    Context,
    FxQuote,
    Mandate,
    NetworkPayment,
    PaymentToken,
)
from amp_tools.sandbox.timefmt import iso_z

__all__ = ["SPEC_STATES", "WALLET_LABELS", "Network"]

#: Sandbox (reference) mandate states and the spec's names for them (amp-protocol.md 3.2).
SPEC_STATES = {"ACTIVE": "activated", "REVOKED": "revoked", "EXPIRED": "expired", "CLOSED": "finished"}
WALLET_LABELS = {"ACTIVE": "Agent processing", "REVOKED": "Cancelled", "EXPIRED": "Expired", "CLOSED": "Closed"}


def money_view(m: Money) -> dict[str, Any]:
    """The mandate service's spelling ``{cent, currency, value}``."""
    return {"cent": m.minor, "currency": m.currency, "value": m.amount_str()}



def in_constraints(names: list[str], mccs: list[str], name: str, mcc: str) -> bool:
    """S2's merchant rule: a non-empty name list must hold the name **and** a non-empty MCC list the MCC."""
    return not ((names and name not in names) or (mccs and mcc not in mccs))

class Network:
    def __init__(self, ctx: Context, roles: Roles) -> None:
        self.ctx = ctx
        self.roles = roles
        self.nonces = NonceCache()

    # ------------------------------------------------------------------ authorization sessions
    def create_authorization(self, *, auth_context: str, agent_id: str, cp_session_id: str, wallet_name: str,
                             token_id: str | None = None, intent_raw: str = "", expiry: datetime | None = None,
                             budget: Money | None = None, merchant_names: list[str] | None = None,
                             merchant_mccs: list[str] | None = None,
                             checkout: dict[str, Any] | None = None) -> AplusSession:
        st, ids = self.ctx.state, self.ctx.ids
        s = AplusSession(ids.hex32(), auth_context, agent_id, cp_session_id, ids.mpp_auth(), self.ctx.now())
        if auth_context == "MANDATE":
            binding = st.binding_tokens.get(token_id or "")
            if binding is None or binding.status != "ACTIVE":
                raise Refusal(C.TOKEN_NOT_FOUND, f"tokenId {token_id!r} is not an active wallet binding; "
                                                 "call /addPaymentMethod + /queryPaymentMethodList first")
            s.token_id = binding.token_id
            s.mandate_id = ids.hex32()
            s.intent_raw, s.expiry = intent_raw, expiry
            s.merchant_names, s.merchant_mccs = list(merchant_names or []), list(merchant_mccs or [])
            if checkout is not None:
                s.mandate_type = "IMMEDIATE"
                s.checkout = self._immediate_checkout(checkout)
                s.budget = normalize_checkout(s.checkout)[0]
            else:
                s.mandate_type = "AUTONOMOUS"
                s.budget = budget
        self.roles.wallet.create_authorization(s)  # S1 for mandates
        st.aplus_sessions[s.session_id] = s
        return s

    def _immediate_checkout(self, checkout: dict[str, Any]) -> dict[str, Any]:
        try:
            claim = to_chain_checkout(checkout, include_checkout_id=True)
            total = normalize_checkout(claim)[0]
        except AmpToolsError as exc:
            raise Refusal(C.PARAM_ILLEGAL, f"checkout is malformed: {exc.message}") from None
        if not total.is_positive():
            raise Refusal(C.PARAM_ILLEGAL, "checkout.totalAmount must be a positive amount")
        merchant = claim["merchant"]
        if not all(merchant.values()):
            raise Refusal(C.PARAM_ILLEGAL, "checkout.merchant needs merchantId, merchantName and merchantMcc")
        self.check_merchant(merchant["reference_merchant_id"], merchant["merchant_name"], merchant["merchant_mcc"])
        return claim

    def check_merchant(self, merchant_id: str, name: str, mcc: str) -> None:
        """The checkout's merchant must be the registered one (the reference never cross-checks)."""
        if MERCHANT_UNCHECKED in self.ctx.config.deviations:
            return
        rt = self.ctx.state.merchants.get(merchant_id)
        if rt is None:
            raise Refusal(C.MERCHANT_INFO_MISMATCH, f"merchant {merchant_id!r} is not registered with the network")
        if rt.seed.name != name or rt.seed.mcc != mcc:
            raise Refusal(C.MERCHANT_INFO_MISMATCH,
                          f"merchant name/MCC do not match the registry: merchantId={merchant_id}, "
                          f"got name={name!r} mcc={mcc!r}, registered name={rt.seed.name!r} mcc={rt.seed.mcc!r}")

    def idv_failed(self, s: AplusSession, code: str, text: str) -> None:
        s.status = "FAILED"
        self.roles.cp.notify_failed(s.cp_session_id, code, text)

    def notify_enrollment(self, s: AplusSession, *, isp_public_jwk: dict[str, Any], idv_time: datetime) -> None:
        from amp_tools.amp.chain import build_l1

        cfg, now = self.ctx.config, self.ctx.now()
        l1 = build_l1(self.ctx.aplus_key, sub=cfg.user_sub, isp_public_jwk=isp_public_jwk, isp_type="MPP",
                      isp_name=cfg.wallet_name, iss=cfg.issuer, now=now)
        token = BindingToken(self.ctx.ids.hex32(), s.agent_id, l1, cfg.wallet_name, cfg.user_login_id, now,
                             now + timedelta(days=365))
        self.ctx.state.binding_tokens[token.token_id] = token
        s.status, s.token_id = "COMPLETED", token.token_id
        self.roles.cp.notify_enrollment(s.cp_session_id, token)

    def notify_mandate(self, s: AplusSession, l2: str) -> None:
        """The wallet's signed L2: verify it against the stored L1, then the mandate is ACTIVE."""
        st, now = self.ctx.state, self.ctx.now()
        binding = st.binding_tokens[s.token_id or ""]
        try:
            verify_chain(binding.l1, l2, None, aplus_public_jwk=self.ctx.aplus_key.public_jwk(),
                         expected_iss=self.ctx.config.issuer, expected_aud=self.ctx.config.audience, now=now,
                         require_l3_for_autonomous=False)
        except ChainError as exc:
            self.idv_failed(s, C.CHAIN_INVALID, f"chain verification failed: {exc.reason}")
            return
        assert s.mandate_id and s.mandate_type and s.budget is not None and s.expiry is not None
        zero = Money.zero(s.budget.currency)
        m = Mandate(
            mandate_id=s.mandate_id, mandate_type=s.mandate_type, status="ACTIVE", token_id=binding.token_id,
            agent_id=s.agent_id, cp_session_id=s.cp_session_id, aplus_session_id=s.session_id,
            intent_raw=s.intent_raw, expiry=s.expiry, total=s.budget,
            budget_wallet=self.roles.wallet.to_wallet(s.budget), reserved=zero, spent=zero, refunded=zero, l2=l2,
            created_at=now, merchant_names=list(s.merchant_names), merchant_mccs=list(s.merchant_mccs),
            checkout_hash=checkout_hash(s.checkout) if s.checkout else None, checkout=s.checkout)
        st.mandates[m.mandate_id] = m
        s.status = "COMPLETED"
        self.roles.cp.notify_mandate(s.cp_session_id, m)

    # ------------------------------------------------------------------ lazy expiry
    def sweep(self, m: Mandate) -> None:
        """Apply the clock: expire unused tokens (releasing their budget) and the mandate itself."""
        now = self.ctx.now()
        for t in self.ctx.state.payment_tokens.values():
            if t.mandate_id == m.mandate_id and t.status == "ISSUED" and now >= t.expires_at:
                self._release(t, "EXPIRED", "payment token expired unused")
        if m.status == "ACTIVE" and now >= m.expiry:
            m.status, m.expired_at, m.status_reason = "EXPIRED", now, "validity period ended"
            self._release_outstanding(m, "mandate expired")

    def _release(self, t: PaymentToken, status: str, reason: str) -> None:
        m = self.ctx.state.mandates[t.mandate_id]
        if t.status in ("ISSUED", "USED") and BUDGET_NOT_RELEASED not in self.ctx.config.deviations:
            m.reserved = m.reserved - t.mandate_amount
        t.status, t.status_reason = status, reason

    def _release_outstanding(self, m: Mandate, reason: str) -> None:
        for t in self.ctx.state.payment_tokens.values():
            if t.mandate_id == m.mandate_id and t.status == "ISSUED":
                self._release(t, "FAILED", reason)

    def mandate(self, mandate_id: str) -> Mandate:
        m = self.ctx.state.mandates.get(mandate_id)
        if m is None:
            raise Refusal(C.MANDATE_NOT_EXIST, f"mandate not found, mandateId={mandate_id}")
        self.sweep(m)
        return m

    def _require_active(self, m: Mandate) -> None:
        if m.status == "ACTIVE" and self.ctx.now() >= m.expiry:
            self.sweep(m)
        if m.status == "EXPIRED":
            raise Refusal(C.MANDATE_EXPIRED, f"mandate expired, mandateId={m.mandate_id}", mandateStatus=m.status)
        if m.status != "ACTIVE":
            raise Refusal(C.MANDATE_STATUS_INVALID, f"mandate status is not ACTIVE, mandateId={m.mandate_id}",
                          mandateStatus=m.status)

    # ------------------------------------------------------------------ FX quotes and rate locks
    def quote_fx(self, src: str, dst: str) -> FxQuote:
        """A quote of the current table rate, kept so that a token request can lock it."""
        try:
            a, b = normalize_currency(src), normalize_currency(dst)
            rate = self.ctx.fx.rate(a, b)
        except AmpToolsError as exc:
            raise Refusal(C.CHECKOUT_CURRENCY_MISMATCH, exc.message) from None
        now = self.ctx.now()
        q = FxQuote(self.ctx.ids.fx_quote(), a, b, rate, now,
                    now + timedelta(seconds=self.ctx.config.fx_quote_ttl_seconds))
        self.ctx.state.fx_quotes[q.quote_id] = q
        return q

    def lock_rate(self, currency: str, fx_quote_id: str | None,
                  now: datetime) -> tuple[Decimal | None, datetime | None, str | None]:
        """(rate, locked until, quote honoured) for debiting `currency` to the wallet currency.

        A named quote counts only when it exists, quotes exactly this pair and has not expired;
        otherwise the current rate is locked for one quote lifetime. (None, None, None) when
        the table cannot convert (the debit then fails as it always did).
        """
        wallet = self.ctx.config.wallet_currency
        q = self.ctx.state.fx_quotes.get(fx_quote_id) if fx_quote_id else None
        if q is not None and (q.src, q.dst) == (currency, wallet) and now < q.expires_at:
            return q.rate, q.expires_at, q.quote_id
        try:
            rate = self.ctx.fx.rate(currency, wallet)
        except CurrencyMismatch:
            return None, None, None
        return rate, now + timedelta(seconds=self.ctx.config.fx_quote_ttl_seconds), None

    # ------------------------------------------------------------------ S2 + token issuance
    def apply_credential(self, *, token_id: str, mandate_id: str, l1: str | None, l2: str | None, l3: str | None,
                         checkout: dict[str, Any] | None,
                         fx_quote_id: str | None = None) -> tuple[PaymentToken, Mandate]:
        st, now = self.ctx.state, self.ctx.now()
        binding = st.binding_tokens.get(token_id)
        if binding is None:
            raise Refusal(C.TOKEN_NOT_FOUND, f"token not found, tokenId={token_id}")
        m = st.mandates.get(mandate_id)
        if m is None:
            raise Refusal(C.MANDATE_NOT_EXIST, f"mandate not found, mandateId={mandate_id}")
        if l1 != binding.l1:
            raise Refusal(C.PARAM_ILLEGAL, "L1 in request does not match stored token record")
        if l2 != m.l2:
            raise Refusal(C.PARAM_ILLEGAL, "L2 in request does not match stored mandate record")
        self.sweep(m)
        self._require_active(m)
        if checkout is None:
            if m.mandate_type == "IMMEDIATE":
                raise Refusal(C.CHECKOUT_AMOUNT_EXCEEDS_BUDGET,
                              f"IMMEDIATE budget mismatch: total_budget={m.total.minor} != checkout=0")
            raise Refusal(C.PARAM_ILLEGAL, "checkout is required for an AUTONOMOUS payment token request")
        try:
            claim = to_chain_checkout(checkout, include_checkout_id=True)
            amount, mid, name, mcc = normalize_checkout(claim)
        except AmpToolsError as exc:
            raise Refusal(C.PARAM_ILLEGAL, f"checkout is malformed: {exc.message}") from None
        if not amount.is_positive():
            raise Refusal(C.PARAM_ILLEGAL, "checkout.totalAmount must be a positive amount")
        if m.mandate_type == "IMMEDIATE" and checkout_hash(claim) != m.checkout_hash:
            # Before the chain: the mandate record's hash is the reference's answer to a changed checkout.
            raise Refusal(C.CHECKOUT_HASH_INCONSISTENT, "checkout hash does not match mandate checkout_hash")
        deviations = self.ctx.config.deviations
        # The reference compares L3's checkout with nothing (IMMEDIATE is held by the hash above) and
        # keeps no nonces.
        signed_must_match = m.mandate_type == "IMMEDIATE" or L3_CHECKOUT_UNCHECKED not in deviations
        try:
            result = verify_chain(l1, l2, l3, aplus_public_jwk=self.ctx.aplus_key.public_jwk(),
                                  expected_iss=self.ctx.config.issuer, expected_aud=self.ctx.config.audience,
                                  now=now, request_checkout=claim if signed_must_match else None,
                                  nonce_cache=None if L3_NONCE_REPLAY in deviations else self.nonces,
                                  require_l3_for_autonomous=AUTONOMOUS_WITHOUT_L3 not in deviations,
                                  check_l3_kid=L3_KID_UNCHECKED not in deviations)
        except ChainError as exc:
            raise Refusal(C.CHAIN_INVALID, f"chain verification failed: {exc.reason}", check=exc.check) from None
        signed_cid = (result.checkout or {}).get("reference_checkout_id")
        if signed_cid and not claim.get("reference_checkout_id"):
            claim["reference_checkout_id"] = signed_cid
        elif signed_cid and signed_cid != claim.get("reference_checkout_id") and signed_must_match:
            raise Refusal(C.CHAIN_INVALID, "chain verification failed: L3 reference_checkout_id differs from the "
                                           "request checkout")
        wallet_rate, locked_until, quote_id = self.lock_rate(amount.currency, fx_quote_id, now)
        mandate_amount, rate = self._s2(m, claim, amount, mid, name, mcc, wallet_rate)
        token = PaymentToken(self.ctx.ids.payment_token(), m.mandate_id, m.agent_id, claim, amount, mandate_amount,
                             rate, now, now + timedelta(seconds=self.ctx.config.payment_token_ttl_seconds), l3=l3,
                             wallet_rate=wallet_rate or Decimal(1), rate_locked_until=locked_until,
                             fx_quote_id=quote_id)
        st.payment_tokens[token.token] = token
        m.reserved = m.reserved + mandate_amount
        m.token_count += 1
        return token, m

    def _s2(self, m: Mandate, claim: dict[str, Any], amount: Money, mid: str, name: str, mcc: str,
            wallet_rate: Decimal | None = None) -> tuple[Money, Decimal]:
        """S2 Payment Token Request Pre-Verification; returns the amount to reserve and the FX rate.

        A mandate in the wallet currency reserves at the token's locked debit rate, so the
        budget consumed and the wallet debit agree while the lock holds.
        """
        if m.mandate_type == "IMMEDIATE":
            if checkout_hash(claim) != m.checkout_hash:
                raise Refusal(C.CHECKOUT_HASH_INCONSISTENT, "checkout hash does not match mandate checkout_hash")
            if m.remaining != amount:
                raise Refusal(C.CHECKOUT_AMOUNT_EXCEEDS_BUDGET,
                              f"IMMEDIATE budget mismatch: remaining={m.remaining.minor} != checkout={amount.minor}")
            return amount, Decimal(1)
        self.check_merchant(mid, name, mcc)
        if not in_constraints(m.merchant_names, m.merchant_mccs, name, mcc):
            raise Refusal(C.MERCHANT_NOT_IN_CONSTRAINTS, f"merchant not in constraints: name={name}, mcc={mcc}")
        cid = claim.get("reference_checkout_id")
        if cid:
            self._check_order(mid, cid, amount)
        if amount.currency == m.total.currency:
            in_mandate, rate = amount, Decimal(1)
        else:
            if not self.ctx.config.fx_enabled:
                raise Refusal(C.CHECKOUT_CURRENCY_MISMATCH,
                              f"currency mismatch: mandate={m.total.currency}, checkout={amount.currency}")
            try:
                if wallet_rate is not None and m.total.currency == self.ctx.config.wallet_currency:
                    rate = wallet_rate
                    in_mandate = amount.convert(m.total.currency, rate, rounding=ROUND_UP)
                else:
                    in_mandate, rate = self.ctx.fx.convert_up(amount, m.total.currency)
            except CurrencyMismatch:
                raise Refusal(C.CHECKOUT_CURRENCY_MISMATCH,
                              f"currency mismatch: mandate={m.total.currency}, checkout={amount.currency}") from None
        if in_mandate > m.remaining:
            raise Refusal(C.CHECKOUT_AMOUNT_EXCEEDS_BUDGET,
                          f"AUTONOMOUS budget exceeded: checkout={in_mandate.minor} > remaining={m.remaining.minor}")
        return in_mandate, rate

    def _check_order(self, merchant_id: str, checkout_id: str, amount: Money) -> None:
        rt = self.ctx.state.merchants[merchant_id]
        co = rt.checkouts.get(checkout_id)
        if co is None:
            raise Refusal(C.ORDER_INCONSISTENT, f"checkout {checkout_id} does not exist at merchant {merchant_id}")
        if co.total != amount:
            raise Refusal(C.ORDER_INCONSISTENT, f"checkout {checkout_id} totals {co.total}, not {amount}")

    # ------------------------------------------------------------------ payment
    def pay(self, body: dict[str, Any]) -> tuple[NetworkPayment, bool]:
        """APS ``/network/pay``; idempotent on paymentRequestId. Returns (payment, replayed)."""
        fault = self.ctx.faults.take("network.pay")
        if fault == "timeout_before":
            raise Timeout("network.pay", after=False)
        if fault == "http_500":
            raise UpstreamError("network.pay")
        st = self.ctx.state
        pr_id = str(body.get("paymentRequestId") or "")
        if not pr_id:
            raise Refusal(C.PARAM_ILLEGAL, "paymentRequestId is required")
        order = body.get("order") or {}
        merchant = order.get("merchant") or {}
        pm = body.get("paymentMethod") or {}
        token_str = str(pm.get("paymentMethodId") or "")
        try:
            amount = Money.from_aps(body.get("paymentAmount"))
        except AmpToolsError as exc:
            raise Refusal(C.PARAM_ILLEGAL, f"paymentAmount is malformed: {exc.message}") from None
        existing_id = st.payments_by_request.get(pr_id)
        if existing_id is not None:
            p = st.payments[existing_id]
            if p.status != "PENDING":
                if p.status == "FAIL":
                    raise Refusal(p.result_code or C.PAYMENT_FAILED, p.result_message or "payment failed")
                if fault == "timeout_after":
                    raise Timeout("network.pay", after=True)
                return p, True
            token = st.payment_tokens[p.token]
        else:
            token = self._usable_token(token_str)
            m = st.mandates[token.mandate_id]
            try:
                self._require_active(m)
            except Refusal:
                self._release(token, "FAILED", f"mandate is {m.status}")
                raise
            p = NetworkPayment(self.ctx.ids.payment(self.ctx.now()), pr_id, token.token, m.mandate_id,
                               str(order.get("referenceOrderId") or ""), str(merchant.get("referenceMerchantId") or ""),
                               amount, token.mandate_amount, Money.zero(self.ctx.config.wallet_currency),
                               self.ctx.now())
            st.payments[p.payment_id] = p
            st.payments_by_request[pr_id] = p.payment_id
            token.status, token.payment_id = "USED", p.payment_id
            m.payment_ids.append(p.payment_id)
        if fault == "decline":
            self._fail(p, token, C.PAYMENT_FAILED, "payment declined by the network risk check")
        try:
            debit = self.roles.wallet.pay(token, p.amount, merchant_id=p.merchant_id, checkout_id=p.checkout_id or None)
        except Refusal as exc:
            self._fail(p, token, exc.code, exc.text)
        except UpstreamError:
            self._fail(p, token, C.PAYMENT_FAILED, "wallet unavailable (HTTP 500); nothing was debited")
        self._capture(p, token, debit)
        if fault == "timeout_after":
            raise Timeout("network.pay", after=True)
        return p, False

    def _usable_token(self, token_str: str) -> PaymentToken:
        st = self.ctx.state
        token = st.payment_tokens.get(token_str)
        if token is None:
            raise Refusal(C.PAYMENT_TOKEN_INVALID, f"payment token not found, paymentToken={token_str}")
        m = st.mandates[token.mandate_id]
        if token.status == "ISSUED" and self.ctx.now() >= token.expires_at:
            self.sweep(m)
            raise Refusal(C.PAYMENT_TOKEN_EXPIRED, f"payment token expired, paymentToken={token_str}")
        if token.status == "USED":
            raise Refusal(C.PAYMENT_TOKEN_ALREADY_USED, "payment token is not valid, status=USED")
        if token.status == "EXPIRED":
            raise Refusal(C.PAYMENT_TOKEN_EXPIRED, f"payment token expired, paymentToken={token_str}")
        if token.status != "ISSUED":
            raise Refusal(C.PAYMENT_TOKEN_INVALID, f"payment token is not valid, status={token.status}")
        return token

    def _fail(self, p: NetworkPayment, token: PaymentToken, code: str, text: str) -> NoReturn:
        p.status, p.result_code, p.result_message = "FAIL", code, text
        self._release(token, "FAILED", text)
        raise Refusal(code, text)

    def _capture(self, p: NetworkPayment, token: PaymentToken, debit: dict[str, Any]) -> None:
        """The reservation becomes spend: what the wallet's debit charged the mandate (the reserved
        amount unless a rate move after the token's rate lock changed it)."""
        m = self.ctx.state.mandates[p.mandate_id]
        p.status, p.result_code, p.result_message = "SUCCESS", "SUCCESS", "SUCCESS"
        p.wallet_amount, p.wallet_rate, p.mandate_amount = debit["walletAmount"], debit["rate"], debit["mandateAmount"]
        m.reserved = m.reserved - token.mandate_amount
        m.spent = m.spent + p.mandate_amount
        self._maybe_close(m, single_use=m.mandate_type == "IMMEDIATE")

    def _maybe_close(self, m: Mandate, *, single_use: bool = False) -> None:
        if m.status != "ACTIVE":
            return
        if single_use or (m.remaining.minor <= 0 and m.reserved.minor == 0):
            m.status, m.closed_at = "CLOSED", self.ctx.now()
            m.status_reason = "single-use mandate paid" if single_use else "budget exhausted"

    # ------------------------------------------------------------------ refunds, wallet controls
    def refund(self, payment_id: str, amount: Money, reason: str = "") -> dict[str, Any]:
        st = self.ctx.state
        p = st.payments.get(payment_id)
        if p is None:
            raise Refusal(C.PAYMENT_NOT_FOUND, f"payment not found, paymentId={payment_id}")
        if p.status != "SUCCESS":
            raise Refusal(C.PARAM_ILLEGAL, f"payment {payment_id} is {p.status}; only a successful payment refunds")
        if amount.currency != p.amount.currency or not amount.is_positive():
            raise Refusal(C.PARAM_ILLEGAL, f"refund amount {amount} must be positive and in {p.amount.currency}")
        done = p.refunded or Money.zero(p.amount.currency)
        if done + amount > p.amount:
            raise Refusal(C.REFUND_EXCEEDS_PAYMENT,
                          f"refund {amount} plus {done} already refunded exceeds the payment {p.amount}")
        done_m = p.refunded_mandate or Money.zero(p.mandate_amount.currency)
        done_w = p.refunded_wallet or Money.zero(p.wallet_amount.currency)
        if done + amount == p.amount:  # the last refund settles the remainder exactly
            credit_m, credit_w = p.mandate_amount - done_m, p.wallet_amount - done_w
        else:  # proportional, rounded down so credits never exceed what was taken
            credit_m = Money(amount.minor * p.mandate_amount.minor // p.amount.minor, p.mandate_amount.currency)
            credit_w = Money(amount.minor * p.wallet_amount.minor // p.amount.minor, p.wallet_amount.currency)
        p.refunded, p.refunded_mandate, p.refunded_wallet = done + amount, done_m + credit_m, done_w + credit_w
        m = st.mandates[p.mandate_id]
        m.refunded = m.refunded + credit_m  # budget credited back; a terminal mandate stays terminal
        self.roles.merchants.on_refund(p.merchant_id, p.checkout_id, p.refunded, p.amount)
        return {"refundId": self.ctx.ids.refund(), "paymentId": p.payment_id, "refundAmount": amount.to_cent(),
                "refundedAmount": p.refunded.to_cent(), "mandateCredit": credit_m.to_cent(),
                "walletCredit": credit_w.to_cent(), "reason": reason,
                "status": "REFUNDED" if p.refunded == p.amount else "PARTIALLY_REFUNDED"}

    def revoke(self, mandate_id: str) -> Mandate:
        m = self.mandate(mandate_id)
        self._require_active(m)
        m.status, m.revoked_at, m.status_reason = "REVOKED", self.ctx.now(), "revoked by the user"
        self._release_outstanding(m, "mandate revoked")
        return m

    def adjust_limit(self, mandate_id: str, budget: Money) -> Mandate:
        m = self.mandate(mandate_id)
        self._require_active(m)
        if m.mandate_type != "AUTONOMOUS":
            raise Refusal(C.PARAM_ILLEGAL, "only an AUTONOMOUS mandate has an adjustable budget")
        if budget.currency != m.total.currency:
            raise Refusal(C.PARAM_ILLEGAL, f"budget must stay in the mandate currency {m.total.currency}")
        if budget < m.used or not budget.is_positive():
            raise Refusal(C.PARAM_ILLEGAL, f"new budget {budget} is below the {m.used} already used or reserved")
        per_task = self.ctx.per_task_limit
        in_wallet = self.roles.wallet.to_wallet(budget)
        if per_task is not None and in_wallet > per_task:
            raise Refusal(C.PER_TASK_LIMIT_EXCEEDED,
                          f"mandate budget {budget} ({in_wallet}) exceeds the per-task budget limit of {per_task}")
        m.total, m.budget_wallet = budget, in_wallet
        self._maybe_close(m)
        return m

    def register_agent(self, agent_id: str, public_jwk: dict[str, Any]) -> dict[str, Any]:
        if not agent_id:
            raise Refusal(C.PARAM_ILLEGAL, "agentId is required")
        try:
            public_key_from_jwk(public_jwk)
        except AmpToolsError as exc:
            raise Refusal(C.PARAM_ILLEGAL, f"publicJwk is not usable: {exc.message}") from None
        if not isinstance(public_jwk.get("kid"), str) or not public_jwk["kid"]:
            raise Refusal(C.PARAM_ILLEGAL, "publicJwk needs a kid (L3's header kid must match it)")
        jwk = {k: public_jwk[k] for k in ("crv", "kid", "kty", "x", "y")}
        rec = {"agentId": agent_id, "publicJwk": jwk, "registeredAt": iso_z(self.ctx.now())}
        self.ctx.state.agents[agent_id] = rec
        return rec

    # ------------------------------------------------------------------ views
    def mandate_view(self, m: Mandate) -> dict[str, Any]:
        st = self.ctx.state
        payments = [self.payment_view(st.payments[pid]) for pid in m.payment_ids]
        return {
            "mandateId": m.mandate_id, "mandateType": m.mandate_type, "mandateStatus": m.status,
            "specStatus": SPEC_STATES[m.status], "walletLabel": WALLET_LABELS[m.status],
            "statusReason": m.status_reason, "agentId": m.agent_id, "tokenId": m.token_id,
            "intentRaw": m.intent_raw, "createdAt": iso_z(m.created_at), "expiryTime": iso_z(m.expiry),
            "budget": {"totalBudgetAmount": money_view(m.total), "usedAmount": money_view(m.used),
                       "remainingAmount": money_view(m.remaining), "reservedAmount": money_view(m.reserved),
                       "spentAmount": money_view(m.spent), "refundedAmount": money_view(m.refunded)},
            "constraints": ({"budgetAmount": m.total.to_cent(), "merchantNameList": m.merchant_names,
                             "merchantMccList": m.merchant_mccs} if m.mandate_type == "AUTONOMOUS" else None),
            "checkout": m.checkout,
            "paymentTokens": [{"status": t.status, "amount": t.amount.to_cent(),
                               "reservedAmount": t.mandate_amount.to_cent(), "expiresAt": iso_z(t.expires_at),
                               "paymentId": t.payment_id}
                              for t in st.payment_tokens.values() if t.mandate_id == m.mandate_id],
            "payments": payments,
        }

    def payment_view(self, p: NetworkPayment) -> dict[str, Any]:
        return {"paymentId": p.payment_id, "paymentRequestId": p.payment_request_id, "status": p.status,
                "checkoutId": p.checkout_id, "merchantId": p.merchant_id, "mandateId": p.mandate_id,
                "amount": p.amount.to_cent(), "mandateAmount": p.mandate_amount.to_cent(),
                "walletAmount": p.wallet_amount.to_cent(),
                "refundedAmount": p.refunded.to_cent() if p.refunded else None,
                "resultCode": p.result_code, "createdAt": iso_z(p.created_at)}
