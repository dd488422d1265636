"""The MPP (the user's wallet): identity verification, Intent Guard S1, S3 and S4, the debit.

The wallet is the spec's primary Intent Guard decision-maker (amp-protocol.md 3.6). S1 runs
before a mandate is shown to the person; S3 (the payment equals the order bound to the
token) and S4 (cumulative spend within the budget, the daily limit) run before each debit.
It also acts as the ISP: it signs L2 with its key after the person approves.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from amp_tools.amp.chain import build_l2
from amp_tools.clock import utc
from amp_tools.errors import CurrencyMismatch
from amp_tools.money import ROUND_UP, Money
from amp_tools.sandbox import codes as C
from amp_tools.sandbox.codes import Refusal, Timeout, UpstreamError
from amp_tools.sandbox.deviations import CHECKOUT_UNBOUND, REFUSAL_INVISIBLE, TOKEN_AMOUNT_UNBOUND
from amp_tools.sandbox.roles import Roles
from amp_tools.sandbox.state import AplusSession, Context, MppAuth, PaymentToken
from amp_tools.sandbox.timefmt import iso_z

__all__ = ["Wallet"]


class Wallet:
    def __init__(self, ctx: Context, roles: Roles) -> None:
        self.ctx = ctx
        self.roles = roles

    # ------------------------------------------------------------------ limits
    def to_wallet(self, amount: Money) -> Money:
        """`amount` in the wallet currency, rounded up (S1 limits, S4 daily limit)."""
        cur = self.ctx.config.wallet_currency
        if amount.currency == cur:
            return amount
        try:
            return self.ctx.fx.convert_up(amount, cur)[0]
        except CurrencyMismatch as exc:
            raise Refusal(C.PARAM_ILLEGAL, f"cannot convert {amount} to the wallet currency {cur}: {exc.message}") \
                from None

    def _day_start(self, at: datetime) -> datetime:
        at = utc(at)
        return at.replace(hour=0, minute=0, second=0, microsecond=0)

    def authorized_today(self, at: datetime) -> Money:
        """Budgets of mandates authorized since 00:00 UTC (the daily delegation limit's base)."""
        start = self._day_start(at)
        total = Money.zero(self.ctx.config.wallet_currency)
        for m in self.ctx.state.mandates.values():
            if m.created_at >= start:
                total = total + m.budget_wallet
        return total

    def debited_today(self, at: datetime) -> Money:
        start = self._day_start(at)
        total = Money.zero(self.ctx.config.wallet_currency)
        for p in self.ctx.state.payments.values():
            if p.status == "SUCCESS" and p.created_at >= start:
                total = total + p.wallet_amount - (p.refunded_wallet or Money.zero(p.wallet_amount.currency))
        return total

    def check_limits(self, budget: Money) -> Money:
        """S1 delegation limits for a mandate budget; returns the budget in wallet currency."""
        in_wallet = self.to_wallet(budget)
        per_task = self.ctx.per_task_limit
        if per_task is not None and in_wallet > per_task:
            raise Refusal(C.PER_TASK_LIMIT_EXCEEDED,
                          f"mandate budget {budget} ({in_wallet}) exceeds the per-task budget limit of {per_task}; "
                          "lower the budget or raise the limit in the wallet")
        daily = self.ctx.daily_limit
        if daily is not None:
            today = self.authorized_today(self.ctx.now())
            if today + in_wallet > daily:
                raise Refusal(C.DAILY_LIMIT_EXCEEDED,
                              f"mandate budget {in_wallet} plus {today} already authorized today exceeds the daily "
                              f"agent spending limit of {daily}; lower the budget or raise the limit in the wallet")
        return in_wallet

    # ------------------------------------------------------------------ S1 + IDV
    def s1_check(self, s: AplusSession) -> None:
        """S1 Mandate Creation Pre-Verification: refuse before the person ever sees the mandate."""
        now = self.ctx.now()
        if s.mandate_type == "AUTONOMOUS":
            if s.expiry is None:
                raise Refusal(C.PARAM_ILLEGAL, "intentExpireTime is required for an AUTONOMOUS mandate")
            if s.expiry <= now:
                raise Refusal(C.PARAM_ILLEGAL, "intent.expireTime has already passed")
            if s.budget is None:
                raise Refusal(C.PARAM_ILLEGAL, "constraints cannot be null for AUTONOMOUS")
            if not s.budget.is_positive():
                raise Refusal(C.PARAM_ILLEGAL, "constraints.budgetAmount must be a positive amount")
            if not s.merchant_names and not s.merchant_mccs:
                raise Refusal(C.PARAM_ILLEGAL, "constraints must name at least one merchant (merchantNameList) "
                                               "or MCC (merchantMccList); an empty scope is not a mandate")
            if s.agent_id not in self.ctx.state.agents:
                raise Refusal(C.AGENT_NOT_REGISTERED,
                              f"agent {s.agent_id!r} has no registered public key; the operator must register it "
                              "(POST /network/agents/register) before an AUTONOMOUS mandate can bind it")
        else:
            if s.expiry is not None and s.expiry <= now:
                raise Refusal(C.PARAM_ILLEGAL, "intent.expireTime has already passed")
            assert s.budget is not None
        self.check_limits(s.budget)

    def create_authorization(self, s: AplusSession) -> MppAuth:
        if s.auth_context == "MANDATE":
            try:
                self.s1_check(s)
            except Refusal:
                if REFUSAL_INVISIBLE not in self.ctx.config.deviations:
                    raise
                # The reference MPP raises, the network logs it, and nobody tells the CP: the
                # session waits for an identity verification that can never complete.
                auth = MppAuth(s.mpp_auth_id, s.session_id, s.auth_context, status="SILENTLY_REFUSED")
                self.ctx.state.mpp_auths[s.session_id] = auth
                return auth
        auth = MppAuth(s.mpp_auth_id, s.session_id, s.auth_context)
        self.ctx.state.mpp_auths[s.session_id] = auth
        return auth

    def resolve_by_mode(self, s: AplusSession) -> None:
        """What the person does right away under the configured IDV mode (manual: nothing yet).

        With ``idv_delay_seconds`` the automatic approval is only scheduled; `complete_due`
        applies it on the first request that looks at the session after the delay.
        """
        auth = self.ctx.state.mpp_auths.get(s.session_id)
        if auth is not None and auth.status != "AUTH_IN_PROCESS":
            return  # refused without a word (the refusal_invisible deviation): nothing to approve
        if self.ctx.idv_mode == "auto":
            delay = self.ctx.config.idv_delay_seconds
            if delay > 0:
                self.ctx.state.idv_due[s.session_id] = self.ctx.now() + timedelta(seconds=delay)
                return
            self.complete_idv(s.session_id, approve=True)
        elif self.ctx.idv_mode == "reject":
            self.complete_idv(s.session_id, approve=False)

    def complete_due(self) -> None:
        """Approve the delayed ``auto`` sessions whose time has come (oldest first).

        Time on the sandbox clock: the wall clock by default, where the person answers in real
        time as the reference wallet does; under a `ManualClock` when it is moved forward (by a
        test, or by a toolkit waiting for the wallet on that clock).
        """
        due = self.ctx.state.idv_due
        if not due:
            return
        now = self.ctx.now()
        for sid, at in sorted(due.items(), key=lambda item: item[1]):
            if at > now:
                break
            del due[sid]
            auth = self.ctx.state.mpp_auths.get(sid)
            if auth is not None and auth.status == "AUTH_IN_PROCESS":  # the person may have answered already
                self.complete_idv(sid, approve=True)

    def complete_idv(self, auth_session_id: str, *, approve: bool = True) -> MppAuth:
        """The person's answer on the trusted surface (never an agent tool)."""
        auth = self.ctx.state.mpp_auths.get(auth_session_id)
        if auth is None:
            raise Refusal(C.SESSION_NOT_FOUND, f"session not found: {auth_session_id}")
        if auth.status != "AUTH_IN_PROCESS":
            raise Refusal(C.PARAM_ILLEGAL, f"session not in IDV-pending state: {auth_session_id} ({auth.status})")
        now = self.ctx.now()
        auth.idv_time = now
        s = self.ctx.state.aplus_sessions[auth_session_id]
        if not approve:
            auth.status, auth.idv_result = "FAILED", "REJECTED"
            self.roles.network.idv_failed(s, C.IDV_REJECTED, "IDV failed: the user declined identity verification")
            return auth
        auth.status, auth.idv_result = "SUCCESS", "FACE"
        if s.auth_context == "ENROLLMENT":
            self.roles.network.notify_enrollment(s, isp_public_jwk=self.ctx.isp_key.public_jwk(), idv_time=now)
        else:
            try:
                l2 = self._sign_l2(s, now)
            except Refusal as exc:
                auth.status = "FAILED"
                self.roles.network.idv_failed(s, exc.code, exc.text)
                return auth
            self.roles.network.notify_mandate(s, l2)
        return auth

    def _sign_l2(self, s: AplusSession, now: datetime) -> str:
        st = self.ctx.state
        binding = st.binding_tokens[s.token_id or ""]
        assert s.mandate_id is not None and s.budget is not None
        # Limits may have been used by other mandates while this one waited for the person.
        self.check_limits(s.budget)
        cfg = self.ctx.config
        if s.mandate_type == "AUTONOMOUS":
            assert s.expiry is not None
            if s.expiry <= now:
                raise Refusal(C.MANDATE_EXPIRED, "intent.expireTime passed before the user completed IDV")
            expiry = s.expiry
            exp = expiry
            intent: dict[str, Any] = {
                "raw": s.intent_raw, "desc": "User authorized payment", "expiry_time": iso_z(expiry),
                "constraints": {"budget_amount": s.budget.to_chain(), "merchant_name_list": list(s.merchant_names),
                                "merchant_mcc_list": list(s.merchant_mccs)}}
            agent_jwk: dict[str, Any] | None = st.agents[s.agent_id]["publicJwk"]
        else:
            default = now + timedelta(seconds=cfg.immediate_mandate_ttl_seconds)
            expiry = min(s.expiry, default) if s.expiry is not None else default
            exp = expiry
            intent = {"raw": s.intent_raw, "desc": "User confirmed payment"}
            agent_jwk = None
        s.expiry = expiry
        return build_l2(
            self.ctx.isp_key, l1=binding.l1, mode="AUTONOMOUS" if s.mandate_type == "AUTONOMOUS" else "IMMEDIATE",
            intent=intent,
            token_info={"token_unique_reference": binding.token_id, "token_status": "ACTIVE",
                        "user_login_id": binding.user_login_id, "wallet_name": cfg.wallet_display_name},
            mandate_info={"mandate_id": s.mandate_id, "mandate_type": s.mandate_type, "mandate_status": "ACTIVE",
                          "mandate_expiry_time": iso_z(expiry)},
            checkout=s.checkout, agent_public_jwk=agent_jwk, aud=cfg.audience, idv_result="FACE",
            idv_time=now.isoformat(), now=now, exp=exp)

    # ------------------------------------------------------------------ S3 + S4 + debit
    def pay(self, token: PaymentToken, amount: Money, *, merchant_id: str, checkout_id: str | None) -> dict[str, Any]:
        """Debit for one payment token; idempotent per token (a retried debit is not repeated)."""
        fault = self.ctx.faults.take("mpp.pay")
        if fault == "timeout_before":
            raise Timeout("mpp.pay", after=False)
        if fault == "http_500":
            raise UpstreamError("mpp.pay")
        st = self.ctx.state
        done = st.mpp_debits.get(token.token)
        if done is not None:
            return done
        if fault == "decline":
            raise Refusal(C.PAYMENT_FAILED, "debit declined by the wallet (insufficient funds or risk decline)")
        self._s3(token, amount, merchant_id=merchant_id, checkout_id=checkout_id)
        wallet_amount, rate, charge = self._s4(token)
        debit = {"debitId": self.ctx.ids.hex32(), "walletAmount": wallet_amount, "rate": rate,
                 "mandateAmount": charge, "at": self.ctx.now(),
                 "pspId": self.ctx.config.wallet_name, "pspUserId": self.ctx.config.user_login_id}
        st.mpp_debits[token.token] = debit
        if fault == "timeout_after":
            raise Timeout("mpp.pay", after=True)
        return debit

    def _s3(self, token: PaymentToken, amount: Money, *, merchant_id: str, checkout_id: str | None) -> None:
        bound_mid = token.checkout["merchant"]["reference_merchant_id"]
        problems = []
        if amount != token.amount and TOKEN_AMOUNT_UNBOUND not in self.ctx.config.deviations:
            problems.append(f"amount {amount} != bound {token.amount}")
        if merchant_id != bound_mid:
            problems.append(f"merchant {merchant_id!r} != bound {bound_mid!r}")
        bound_cid = token.checkout.get("reference_checkout_id")
        unbound = CHECKOUT_UNBOUND in self.ctx.config.deviations
        if bound_cid and checkout_id and checkout_id != bound_cid and not unbound:
            problems.append(f"checkout {checkout_id!r} != bound {bound_cid!r}")
        if problems:
            raise Refusal(C.ORDER_INCONSISTENT, "S3: payment request does not match the order bound to the payment "
                                                "token: " + "; ".join(problems))

    def debit_rate(self, token: PaymentToken) -> Decimal | None:
        """The checkout -> wallet rate of this token's debit: the locked rate while the lock holds,
        else the current one; None when no conversion is needed."""
        cur = self.ctx.config.wallet_currency
        if token.amount.currency == cur:
            return None
        if token.rate_locked_until is not None and self.ctx.now() < token.rate_locked_until:
            return token.wallet_rate
        try:
            return self.ctx.fx.rate(token.amount.currency, cur)
        except CurrencyMismatch as exc:
            raise Refusal(C.PARAM_ILLEGAL, f"cannot convert {token.amount} to the wallet currency {cur}: "
                                           f"{exc.message}") from None

    def _s4(self, token: PaymentToken) -> tuple[Money, Decimal | None, Money]:
        """Returns (wallet debit, its rate or None, what the mandate is charged)."""
        m = self.ctx.state.mandates[token.mandate_id]
        if m.status != "ACTIVE":
            raise Refusal(C.MANDATE_STATUS_INVALID, f"mandate status is not ACTIVE, mandateId={m.mandate_id}")
        captured = m.spent - m.refunded + token.mandate_amount
        if captured > m.total:
            raise Refusal(C.MANDATE_BALANCE_INSUFFICIENT,
                          f"S4: cumulative spend {captured} would exceed the mandate budget {m.total}")
        rate = self.debit_rate(token)
        wallet_amount = token.amount if rate is None else token.amount.convert(
            self.ctx.config.wallet_currency, rate, rounding=ROUND_UP)
        charge = token.mandate_amount
        if rate is not None and m.total.currency == wallet_amount.currency:
            # A mandate in the wallet currency is charged the debit itself: after the token's rate
            # lock ends, a rate move changes both, and the budget still caps them.
            charge = wallet_amount
            extra = charge - token.mandate_amount
            if extra.is_positive() and m.used + extra > m.total:
                raise Refusal(C.MANDATE_BALANCE_INSUFFICIENT,
                              f"S4: at the current rate the payment needs {charge} of the mandate, {extra} more than "
                              f"the {token.mandate_amount} reserved, and only {m.remaining} remains")
        daily = self.ctx.daily_limit
        if daily is not None:
            today = self.debited_today(self.ctx.now())
            if today + wallet_amount > daily:
                raise Refusal(C.DAILY_LIMIT_EXCEEDED,
                              f"S4: debit {wallet_amount} plus {today} already debited today exceeds the daily agent "
                              f"spending limit of {daily}")
        return wallet_amount, rate, charge
