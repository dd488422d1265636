"""The Credential Provider: the agent's only door to Alipay+ (amp-reference-wire.md 3.1-3.7).

It keeps the reference contract (sessions ``cps-<12hex>``, ``PENDING_IDV`` / ``COMPLETED`` /
``FAILED``, the reference error texts) and fixes what the reference loses: the A+ result
code travels with every error, wallet-side failures reach the session instead of hanging it,
and ``applyCredential`` is idempotent on the agent's ``idempotencyKey``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from amp_tools.errors import AmpToolsError
from amp_tools.money import Money
from amp_tools.sandbox import codes as C
from amp_tools.sandbox.codes import Refusal, Timeout, UpstreamError
from amp_tools.sandbox.deviations import TOKENS_LISTED_TO_ALL
from amp_tools.sandbox.roles import Roles
from amp_tools.sandbox.state import BindingToken, Context, CpSession, Mandate, PaymentToken
from amp_tools.sandbox.timefmt import parse_time

__all__ = ["CredentialProvider"]


class CredentialProvider:
    def __init__(self, ctx: Context, roles: Roles) -> None:
        self.ctx = ctx
        self.roles = roles
        self.cp_id = f"cp-{ctx.ids.hex32()[:6]}"

    # ------------------------------------------------------------------ callbacks from Alipay+
    def notify_enrollment(self, cp_session_id: str, token: BindingToken) -> None:
        s = self.ctx.state.cp_sessions[cp_session_id]
        s.status, s.token_id = "COMPLETED", token.token_id

    def notify_mandate(self, cp_session_id: str, m: Mandate) -> None:
        s = self.ctx.state.cp_sessions[cp_session_id]
        s.status, s.mandate_id, s.mandate_type, s.token_id = "COMPLETED", m.mandate_id, m.mandate_type, m.token_id

    def notify_failed(self, cp_session_id: str, code: str, text: str) -> None:
        s = self.ctx.state.cp_sessions[cp_session_id]
        s.status, s.error, s.result_code = "FAILED", text, code

    # ------------------------------------------------------------------ sessions
    def _session(self, session_id: str) -> CpSession:
        self.roles.wallet.complete_due()
        s = self.ctx.state.cp_sessions.get(session_id)
        if s is None:
            raise Refusal(C.SESSION_NOT_FOUND, f"Session '{session_id}' not found.")
        return s

    def _start(self, kind: str, agent_id: str, wallet_name: str, **kwargs: Any) -> CpSession:
        sid = self.ctx.ids.cp_session()
        aplus = self.roles.network.create_authorization(auth_context=kind, agent_id=agent_id, cp_session_id=sid,
                                                        wallet_name=wallet_name, **kwargs)
        s = CpSession(sid, kind, agent_id, "PENDING_IDV", aplus.session_id, self.ctx.now(), wallet_name=wallet_name)
        self.ctx.state.cp_sessions[sid] = s
        self.roles.wallet.resolve_by_mode(aplus)
        return s

    def add_payment_method(self, *, agent_id: str | None, wallet_name: str | None) -> CpSession:
        agent = agent_id or f"agent-{self.ctx.ids.hex32()[:6]}"
        return self._start("ENROLLMENT", agent, wallet_name or self.ctx.config.wallet_name)

    def payment_methods(self, *, session_id: str | None, token_id: str | None,
                        wallet_name: str | None, agent_id: str | None) -> list[BindingToken]:
        st = self.ctx.state
        self.roles.wallet.complete_due()
        if session_id:
            s = self._session(session_id)
            if s.status == "PENDING_IDV":
                raise Refusal(C.PENDING_IDV, f"Session '{session_id}' is PENDING_IDV; IDV has not completed yet.")
            if s.status == "FAILED":
                raise Refusal(s.result_code or C.IDV_REJECTED, s.error or f"Session '{session_id}' FAILED.")
            return [st.binding_tokens[s.token_id]] if s.token_id in st.binding_tokens else []
        out = list(st.binding_tokens.values())
        if not agent_id and TOKENS_LISTED_TO_ALL not in self.ctx.config.deviations:
            # No caller authentication exists on this contract, so a listing must at least name its
            # agent: the reference lists every user's bindings (and their L1s) to anyone asking.
            raise Refusal(C.PARAM_ILLEGAL, "queryPaymentMethodList needs the enrollment sessionId or the agentId "
                                           "whose wallet bindings to list; it never lists other agents' bindings")
        if token_id:
            out = [t for t in out if t.token_id == token_id]
        if wallet_name:
            out = [t for t in out if t.wallet_name == wallet_name]
        if agent_id:
            out = [t for t in out if t.agent_id == agent_id]
        return out

    def create_mandate_session(self, body: dict[str, Any]) -> CpSession:
        token_id = body.get("tokenId")
        if not token_id:
            raise Refusal(C.PARAM_ILLEGAL, "Missing required field: token_id. Call /addPaymentMethod + "
                                           "/queryPaymentMethodList first.")
        intent_raw = body.get("intentRaw")
        if not isinstance(intent_raw, str) or not intent_raw.strip():
            raise Refusal(C.PARAM_ILLEGAL, "Missing required field: intent_raw.")
        checkout, constraints = body.get("checkout"), body.get("constraints")
        if checkout is not None and constraints is not None:
            raise Refusal(C.PARAM_ILLEGAL, "send checkout (IMMEDIATE) or constraints (AUTONOMOUS), not both")
        expiry: datetime | None = None
        if body.get("intentExpireTime"):
            try:
                expiry = parse_time(body["intentExpireTime"])
            except ValueError as exc:
                raise Refusal(C.PARAM_ILLEGAL, f"intentExpireTime: {exc}") from None
        binding = self.ctx.state.binding_tokens.get(str(token_id))
        agent_id = body.get("agentId") or (binding.agent_id if binding else "")
        kwargs: dict[str, Any] = {"token_id": str(token_id), "intent_raw": intent_raw.strip(), "expiry": expiry}
        if checkout is not None:
            if not isinstance(checkout, dict):
                raise Refusal(C.PARAM_ILLEGAL, "checkout must be an object")
            kwargs["checkout"] = checkout
        elif constraints is not None:
            if not isinstance(constraints, dict):
                raise Refusal(C.PARAM_ILLEGAL, "constraints must be an object")
            kwargs.update(self._constraints(constraints))
        return self._start("MANDATE", str(agent_id), binding.wallet_name if binding else "", **kwargs)

    @staticmethod
    def _constraints(c: dict[str, Any]) -> dict[str, Any]:
        budget: Money | None = None
        if c.get("budgetAmount") is not None:
            try:
                budget = Money.from_wire(c["budgetAmount"])
            except AmpToolsError as exc:
                raise Refusal(C.PARAM_ILLEGAL, f"constraints.budgetAmount: {exc.message}") from None
        names, mccs = c.get("merchantNameList") or [], c.get("merchantMccList") or []
        if not isinstance(names, list) or not isinstance(mccs, list):
            raise Refusal(C.PARAM_ILLEGAL, "merchantNameList and merchantMccList must be lists of strings")
        return {"budget": budget, "merchant_names": [str(n).strip() for n in names if str(n).strip()],
                "merchant_mccs": [str(n).strip() for n in mccs if str(n).strip()]}

    def inquiry_mandate_session(self, session_id: str) -> CpSession:
        s = self._session(session_id)
        if s.kind != "MANDATE":
            raise Refusal(C.PARAM_ILLEGAL, f"Session '{session_id}' is not a mandate session.")
        return s

    # ------------------------------------------------------------------ payment token
    def apply_credential(self, body: dict[str, Any], fx_quote_id: str | None = None) -> tuple[PaymentToken, str]:
        """Returns (payment token, mandateType); idempotent on `idempotencyKey`."""
        fault = self.ctx.faults.take("cp.applyCredential")
        if fault == "timeout_before":
            raise Timeout("cp.applyCredential", after=False)
        if fault == "http_500":
            raise UpstreamError("cp.applyCredential")
        if fault == "decline":
            raise Refusal("RISK_REJECT", "credential request declined by the network risk check")
        s = self._session(str(body.get("sessionId") or ""))
        if s.kind != "MANDATE":
            raise Refusal(C.PARAM_ILLEGAL, f"Session '{s.session_id}' is not a mandate session.")
        if s.status != "COMPLETED" or not s.mandate_id or not s.token_id:
            raise Refusal(C.PENDING_IDV if s.status == "PENDING_IDV" else C.MANDATE_STATUS_INVALID,
                          f"Session '{s.session_id}' is {s.status}; the mandate is not authorized.")
        key = body.get("idempotencyKey")
        fingerprint = hashlib.sha256(json.dumps(
            {k: body.get(k) for k in ("l1Serialized", "l2Serialized", "l3Serialized", "checkout", "fxQuoteId")},
            sort_keys=True).encode()).hexdigest()
        if key:
            seen = s.applied.get(str(key))
            if seen is not None:
                if seen[0] != fingerprint:
                    raise Refusal(C.REPEAT_REQ_INCONSISTENT,
                                  f"idempotencyKey {key!r} was already used for a different request")
                if fault == "timeout_after":
                    raise Timeout("cp.applyCredential", after=True)
                return self.ctx.state.payment_tokens[seen[1]["paymentToken"]], seen[1]["mandateType"]
        token, m = self.roles.network.apply_credential(
            token_id=s.token_id, mandate_id=s.mandate_id, l1=body.get("l1Serialized"), l2=body.get("l2Serialized"),
            l3=body.get("l3Serialized"), checkout=body.get("checkout"), fx_quote_id=fx_quote_id)
        if key:
            s.applied[str(key)] = (fingerprint, {"paymentToken": token.token, "mandateType": m.mandate_type})
        if fault == "timeout_after":
            raise Timeout("cp.applyCredential", after=True)
        return token, m.mandate_type
